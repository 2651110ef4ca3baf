"""The path a C-MOVE's reverse connection takes, each hop marked by its findings (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reverseprobe.findings import CATALOGUE, HOP_LABELS, Hop
from reverseprobe.model import SEVERITY_ORDER, Finding, Severity


@dataclass(frozen=True)
class HopState:
    hop: Hop
    label: str
    severity: Severity | None  # worst finding on this hop; None: nothing measured here
    codes: tuple[str, ...]


def hop_states(findings: Sequence[Finding]) -> list[HopState]:
    out = []
    for hop in Hop:
        mine = [f for f in findings if f.code in CATALOGUE and CATALOGUE[f.code].hop is hop]
        worst = min((f.severity for f in mine), key=SEVERITY_ORDER.__getitem__, default=None)
        out.append(HopState(hop, HOP_LABELS[hop], worst, tuple(f.code for f in mine)))
    return out
