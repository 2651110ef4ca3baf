"""The path a C-MOVE's reverse connection takes, each hop marked by its findings (pure)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from reverseprobe.diagnosis.catalogue import CATALOGUE
from reverseprobe.model import SEVERITY_ORDER, Finding, Severity
from reverseprobe.model.checklist import ChecklistResult, TargetRun
from reverseprobe.model.path import HOP_LABELS, Hop
from reverseprobe.model.path import HopState as HopState

# A connection that measurably went all the way proves the hops it crossed, so those show as
# passed rather than "not measured": images that arrived crossed every hop from the PACS; the
# reflector's dial-back crossed the internet, the router and this PC to the listener.
PROVES: Mapping[str, frozenset[Hop]] = {
    "MOVE_OK": frozenset(Hop),
    "INBOUND_OK": frozenset({Hop.INTERNET, Hop.ROUTER, Hop.PC, Hop.LISTENER}),
}


def hop_states(findings: Sequence[Finding]) -> list[HopState]:
    proven = {h for f in findings for h in PROVES.get(f.code, ())}
    out = []
    for hop in Hop:
        mine = [f for f in findings if f.code in CATALOGUE and CATALOGUE[f.code].hop is hop]
        worst = min((f.severity for f in mine), key=SEVERITY_ORDER.__getitem__, default=None)
        state = HopState(hop, HOP_LABELS[hop], worst, tuple(f.code for f in mine))
        if hop in proven and (worst is None or worst is Severity.INFO):
            state = dataclasses.replace(state, severity=Severity.PASS)
        out.append(state)
    return out


def run_hops(result: ChecklistResult, run: TargetRun) -> list[HopState]:
    """Each hop of the path to `run`'s PACS marked by its worst finding: this PC's findings
    plus that PACS's (images that arrived there prove the hops in between)."""
    return hop_states(result.path_findings(run))
