"""C-MOVE (PS3.4 C.4.2) of one study to move-test's own listener, and the probe result that
joins what the SCU side saw (responses, counts) with what the listener saw (connections,
C-STOREs) on one timeline. The whole move fits the Deadline: C-CANCEL shortly before it, A-ABORT
at it, whatever the PACS does. Nothing asks the PACS to change or delete anything."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from reverseprobe.deadline import Deadline
from reverseprobe.dicom.qr import (
    QR_MOVE,
    AssocOutcome,
    AssocState,
    NoResponse,
    StatusWord,
    Target,
    abort_quietly,
    accepted,
    associate,
    close,
    counts,
    invalid_counts,
    no_response,
    status_word,
    study_query,
)
from reverseprobe.dicom.timeline import EventKind, Timeline
from reverseprobe.model.dicom import MoveOutcome as MoveOutcome
from reverseprobe.model.dicom import MoveResult as MoveResult

PENDING_EVENTS = 20  # pending responses written to the timeline
CANCEL_WAIT_S = 1.0  # C-CANCEL this long before the move's deadline


# --- C-MOVE --------------------------------------------------------------------------------


def c_move(  # noqa: PLR0912, PLR0913, PLR0915 - one bounded C-MOVE, cancel/abort paths
    target: Target,
    study_uid: str,
    destination: str,
    deadline: Deadline,
    timeline: Timeline,
    *,
    on_final: Callable[[float], None] | None = None,
) -> MoveOutcome:
    """One study-level C-MOVE to `destination` (PS3.4 C.4.2); never past `deadline`."""
    assoc, out = associate(target, [QR_MOVE], deadline)
    if assoc is None:
        return MoveOutcome(association=out)
    if not accepted(assoc, QR_MOVE):
        close(assoc, deadline)
        refused = AssocOutcome(AssocState.CONTEXT_REJECTED, detail="Study Root C-MOVE refused")
        return MoveOutcome(association=refused)
    cx_id = next(
        cx.context_id for cx in assoc.accepted_contexts if str(cx.abstract_syntax) == QR_MOVE
    )
    # Out of time: C-CANCEL (PS3.7 9.1.3) a little before the deadline, so a polite PACS stops
    # and answers Cancel; at the deadline the hard stop: whatever the PACS does (Pending
    # responses forever, half a PDU), the association is aborted and the generator returns.
    cancel = threading.Event()
    soft = max(0.0, deadline.remaining() - CANCEL_WAIT_S)
    timers = [
        threading.Timer(soft, _cancel, args=(assoc, cx_id, timeline, cancel)),
        threading.Timer(deadline.remaining() + 0.2, abort_quietly, args=(assoc,)),
    ]
    for timer in timers:
        timer.daemon = True
        timer.start()
    pending = 0
    last: Any = None
    try:
        timeline.add(EventKind.MOVE_REQUEST, destination=destination, study=study_uid)
        assoc.dimse_timeout = deadline.share(deadline.remaining())
        for st, ident in assoc.send_c_move(study_query(study_uid), destination, QR_MOVE):
            t = timeline.now()
            if not st or "Status" not in st:
                why = no_response(assoc)
                timeline.add(EventKind.MOVE_NO_RESPONSE, t=t, why=why.value)
                return _outcome(last, pending, no_response=why, cancelled=cancel.is_set())
            try:
                code = int(st.Status)
            except (TypeError, ValueError):  # a Status that is no number: garbage, not DICOM
                abort_quietly(assoc)
                timeline.add(EventKind.MOVE_NO_RESPONSE, t=t, why=NoResponse.GARBAGE.value)
                return _outcome(last, pending, no_response=NoResponse.GARBAGE)
            got: dict[str, Any] = dict(counts(st))
            bad = invalid_counts(st)
            if bad:
                got["invalid"] = bad
            if status_word(code) is StatusWord.PENDING:
                pending += 1
                last = st
                if pending <= PENDING_EVENTS or bad:
                    timeline.add(EventKind.MOVE_PENDING, t=t, detail={"code": code, **got})
                assoc.dimse_timeout = deadline.share(deadline.remaining())
                continue
            for timer in timers:
                timer.cancel()
            if on_final is not None:
                on_final(t)
            timeline.add(
                EventKind.MOVE_FINAL, t=t, detail={"code": code, "pending": pending, **got}
            )
            return _outcome(st, pending, final_t=t, identifier=ident, cancelled=cancel.is_set())
        why = no_response(assoc)
        return _outcome(last, pending, no_response=why, cancelled=cancel.is_set())
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):
            assoc.send_c_cancel(1, cx_id)  # stop the PACS's sub-operations, then leave
        abort_quietly(assoc)
        raise
    finally:
        for timer in timers:
            timer.cancel()
        close(assoc, deadline)


def _cancel(assoc: Any, cx_id: int, timeline: Timeline, done: threading.Event) -> None:
    """C-CANCEL-MOVE-RQ for message 1 (from a timer thread: pynetdicom queues it to the DUL)."""
    done.set()
    timeline.add(EventKind.MOVE_CANCEL, why="--timeout is running out")
    with contextlib.suppress(Exception):
        assoc.send_c_cancel(1, cx_id)


def _outcome(  # noqa: PLR0913 - the C-MOVE outcome's parts
    st: Any,
    pending: int,
    *,
    final_t: float | None = None,
    identifier: Any = None,
    no_response: NoResponse | None = None,
    cancelled: bool = False,
) -> MoveOutcome:
    """From the final response, or from the last pending one when no final came."""
    final = no_response is None and st is not None
    got = counts(st) if st is not None else {}
    failed_list = getattr(identifier, "FailedSOPInstanceUIDList", None) if identifier else None
    comment = getattr(st, "ErrorComment", None) if st is not None else None
    return MoveOutcome(
        association=AssocOutcome(AssocState.ACCEPTED),
        final_code=int(st.Status) if final else None,
        final_t=final_t,
        completed=got.get("completed"),
        failed=got.get("failed"),
        warning=got.get("warning"),
        remaining=got.get("remaining"),
        pending_responses=pending,
        error_comment=str(comment)[:200] if comment else None,
        failed_instances=_list_len(failed_list),
        no_response=no_response,
        cancelled=cancelled,
    )


def _list_len(v: Any) -> int | None:
    if v is None or v == "":
        return None
    if isinstance(v, str):
        return len([p for p in v.split("\\") if p])
    try:
        return len(v)
    except TypeError:
        return 1
