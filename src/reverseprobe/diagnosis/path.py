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


# The PACS could not be talked to: nothing downstream was measured for its connection.
PACS_NOT_REACHED = frozenset({"PACS_UNREACHABLE", "PACS_REJECTED_ASSOCIATION", "PACS_ABORTED"})


def hop_states(findings: Sequence[Finding]) -> list[HopState]:
    """Each hop marked by its worst finding; green only where something measured it good.

    A finding explained by another (`detail["caused_by"]`, diagnosis/story.py) marks no hop:
    its cause marks its own. A dial-back into our temporary listener proves the way to this PC,
    not a receiver that is not running (LISTENER_NONE). Behind a PACS that could not be reached,
    no hop gets a pass from this PC's own findings."""
    marking = [f for f in findings if not f.detail.get("caused_by")]
    codes = {f.code for f in marking}
    proven = {h for f in marking for h in PROVES.get(f.code, ())}
    if "LISTENER_NONE" in codes and "MOVE_OK" not in codes:
        proven.discard(Hop.LISTENER)
    unreached = any(f.code in PACS_NOT_REACHED and f.severity is Severity.FAIL for f in marking)
    out = []
    for hop in Hop:
        mine = [f for f in marking if f.code in CATALOGUE and CATALOGUE[f.code].hop is hop]
        worst = min((f.severity for f in mine), key=SEVERITY_ORDER.__getitem__, default=None)
        state = HopState(hop, HOP_LABELS[hop], worst, tuple(f.code for f in mine))
        if hop in proven and (worst is None or worst is Severity.INFO):
            state = dataclasses.replace(state, severity=Severity.PASS)
        if hop is Hop.LISTENER and "LISTENER_NONE" in codes and state.severity is Severity.PASS:
            state = dataclasses.replace(state, severity=Severity.INFO)
        if unreached and hop is not Hop.PACS and state.severity in (Severity.PASS, Severity.INFO):
            state = dataclasses.replace(state, severity=None)  # not measured for this PACS
        out.append(state)
    return out


def run_hops(result: ChecklistResult, run: TargetRun) -> list[HopState]:
    """Each hop of the path to `run`'s PACS marked by its worst finding: this PC's findings
    plus that PACS's (images that arrived there prove the hops in between)."""
    return hop_states(result.path_findings(run))
