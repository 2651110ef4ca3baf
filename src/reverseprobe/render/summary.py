"""One target's word (pass | warn | fail, or not measured), for every renderer.

The checklist's text summary and its HTML must never disagree for the same PACS (issue 12): both
call `target_severity`, which is the report's own verdict rule (model.verdict) applied to one
target, with "not measured" where the run ended without a finding and without a result.
"""

from __future__ import annotations

from collections.abc import Sequence

from reverseprobe.model import Finding, Severity, Status, verdict


def target_severity(
    findings: Sequence[Finding], status: Status, *, strict: bool = False
) -> Severity | None:
    """The verdict of one target; None when nothing was measured (never a pass)."""
    if not findings and status is not Status.OK:
        return None
    return verdict(list(findings), strict=strict)
