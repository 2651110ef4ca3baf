"""What a firewall reading says about one inbound connection, and the packet it is about.

Every parser answers the same question: what happens to a NEW inbound IPv4 TCP connection
(a SYN) to our port, arriving from a remote address we do not know on the interface of the
default route. Conditions we cannot evaluate (the source address, a rate limit, a module we
cannot read) are never guessed: they make the verdict conditional or unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class ParseError(ValueError):
    """Firewall output that is not what the parser knows; str() says what was wrong."""


class Verdict(str, Enum):
    """For a new inbound TCP connection to the port, ordered from worst to best."""

    BLOCKED = "blocked"  # a rule provably drops or rejects it
    DEFAULT_DROP = "default-drop"  # nothing accepts it, the default policy drops it
    CONDITIONAL = "conditional"  # accepted only under conditions we cannot see (source...)
    UNKNOWN = "unknown"  # the reading could not decide (a rule we cannot evaluate)
    ALLOWED = "allowed"  # a rule accepts it
    OPEN = "open"  # nothing filters it (firewall off, or the default policy accepts)


_RANK = {v: i for i, v in enumerate(Verdict)}


def worst(verdicts: list[Verdict]) -> Verdict | None:
    """Every layer must let the connection pass, so the worst reading decides."""
    return min(verdicts, key=_RANK.__getitem__) if verdicts else None


@dataclass(frozen=True)
class Inbound:
    """The connection a PACS opens: TCP `port` on `iface` (None: not known), from `program`'s
    point of view the listener executable (Windows/macOS per-application rules)."""

    port: int
    iface: str | None = None
    program: str | None = None


@dataclass(frozen=True)
class Reading:
    """One firewall's verdict. `rule` is the deciding rule as its tool prints it; `where`
    names the chain/zone/profile holding it (for the fix); `note` explains conditions."""

    source: str  # nftables | iptables | ufw | firewalld | windows | macos
    active: bool
    verdict: Verdict
    rule: str | None = None
    where: str | None = None
    note: str = ""
