"""One target's word (pass | warn | fail, or not measured), for every renderer.

The checklist's text summary and its HTML must never disagree for the same PACS (issue 12): both
call `target_severity`, which is the report's own verdict rule (model.verdict) applied to one
target, with "not measured" where the run ended without a finding and without a result.
"""

from __future__ import annotations

from collections.abc import Sequence

from reverseprobe.model import Finding, Severity, Status, verdict

NOT_MEASURED = frozenset({Status.SKIPPED, Status.TIMEOUT, Status.ERROR})


def measured(status: Status) -> bool:
    """ok and fail were measured (a receiver that refused contexts measured the refusals);
    skipped, timeout (cut short) and error were not."""
    return status not in NOT_MEASURED


def target_severity(
    findings: Sequence[Finding], status: Status, *, strict: bool = False
) -> Severity | None:
    """The verdict of one target; None when nothing was measured (never a pass), fail when a
    run measured a failure without saying why in a finding."""
    if not findings and not measured(status):
        return None
    if not findings and status is Status.FAIL:
        return Severity.FAIL
    return verdict(list(findings), strict=strict)
