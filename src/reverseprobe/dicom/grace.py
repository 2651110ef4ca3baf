"""How long move-test keeps listening after the final C-MOVE response: the grace decision.

A PACS that works sends every image before its final response, and one that fails says so in
the counts of that response (PS3.4 C.4.2.1.5: Number of Completed, Failed and Warning
Sub-operations). Only a faulty PACS (Orthanc with SynchronousCMove false, see
MOVE_FINAL_BEFORE_IMAGES) answers first and sends afterwards: the grace period is for that one
case, so a move whose counts are settled ends at once instead of waiting --grace for nothing.
Pure: no I/O, so the rule is table-tested (tests/dicom/test_grace.py).
"""

from __future__ import annotations

from reverseprobe.model.dicom import MoveOutcome, StatusWord, status_word


def images_still_owed(out: MoveOutcome, *, received: int, instances: int | None) -> bool:
    """True while the final response leaves images unaccounted for, so waiting the grace
    period can change the verdict; False once nothing more can honestly be expected.

    - no final response: unknown, keep listening (the deadline bounds it);
    - completed (+ warning) sub-operations counted: owed until that many arrived;
    - none counted but failed ones, or a Failure/Cancel status: every sub-operation failed,
      nothing is coming (PS3.4 C.4.2.1.5);
    - success with nothing counted (completed 0 or absent): the faulty PACS that answers
      before it sends; owed until the C-FIND's instance count arrived (unknown: keep
      listening)."""
    if out.final_code is None:
        return True
    claimed = (out.completed or 0) + (out.warning or 0)
    if claimed:
        return received < claimed
    if out.failed or status_word(out.final_code) in (StatusWord.FAILURE, StatusWord.CANCEL):
        return False
    if instances is None:
        return True
    return received < instances
