"""The hops of the path a C-MOVE's reverse connection takes (PS3.4 C.4.2: the PACS opens a new
association to the move destination), and the state a rule set gives each one (data only;
diagnosis/path.py computes the states)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from reverseprobe.model import Severity


class Hop(str, Enum):
    """The path a C-MOVE's reverse connection takes, from the PACS to our listener."""

    PACS = "pacs"
    INTERNET = "internet"
    ROUTER = "router"
    PC = "pc"
    LISTENER = "listener"


HOP_LABELS = {
    Hop.PACS: "PACS",
    Hop.INTERNET: "Internet / WAN",
    Hop.ROUTER: "Router (NAT)",
    Hop.PC: "This PC",
    Hop.LISTENER: "Listener",
}


@dataclass(frozen=True)
class HopState:
    hop: Hop
    label: str
    severity: Severity | None  # worst finding on this hop; None: nothing measured here
    codes: tuple[str, ...]
