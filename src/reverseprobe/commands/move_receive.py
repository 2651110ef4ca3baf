"""move-test's C-MOVE to our own receiver (dicom/receiver.py) on --port: listen, move, keep
listening for the grace period (late images, PS3.4 C.4.2.1.4), then the MoveResult from the
move's outcome and what the receiver saw."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from reverseprobe.config import MoveTestConfig
from reverseprobe.diagnosis.move import delivered
from reverseprobe.dicom.find import FindResult
from reverseprobe.dicom.grace import images_still_owed
from reverseprobe.dicom.move import MoveOutcome, MoveResult, c_move
from reverseprobe.dicom.qr import (
    NO_RESPONSE_TEXT,
    AssocState,
    NoResponse,
    Target,
    status_meaning,
    status_word,
)
from reverseprobe.dicom.receiver import PortBusyError, Receiver
from reverseprobe.dicom.timeline import EventKind, Timeline
from reverseprobe.model import Status
from reverseprobe.runner import Deadline

GRACE_POLL_S = 0.05
STOP_RESERVE_S = 0.5  # pynetdicom's server polls every 0.5 s: shutdown() waits that long


def move_to_own_receiver(  # noqa: PLR0913 - the move step's inputs and the result's common fields
    cfg: MoveTestConfig,
    target: Target,
    find: FindResult,
    dl: Deadline,
    timeline: Timeline,
    *,
    grace: float,
    base: dict[str, Any],
) -> MoveResult:
    """Our receiver on --port, the C-MOVE to --aet, the grace period; the port is free."""
    from reverseprobe.probes.listeners import listening_sockets

    assert find.study_uid
    recv = Receiver(
        cfg.aet,
        cfg.port,
        timeline,
        save_dir=cfg.save_dir,
        acse_timeout=min(10.0, dl.remaining()),
        network_timeout=max(1.0, dl.remaining()),
        ssl_context=_receiver_tls(cfg),
    )
    try:
        recv.start()
    except PortBusyError as exc:
        try:
            holders = tuple(listening_sockets(cfg.port)[0])
        except Exception:  # noqa: BLE001
            holders = ()
        return MoveResult(
            status=Status.FAIL,
            reason=f"port {cfg.port} is taken",
            port_busy=holders,
            port_error=str(exc),
            **base,
        )
    out: MoveOutcome | None = None
    try:
        listen_dl = Deadline(dl.at - STOP_RESERVE_S)  # stopping the listener takes ~0.5 s
        move_dl = Deadline(max(time.monotonic() + 0.5, listen_dl.at - grace))
        out = c_move(target, find.study_uid, cfg.aet, move_dl, timeline, on_final=recv.mark_final)
        if out.association.state is AssocState.ACCEPTED:
            _grace(
                recv, out, instances=find.instances, grace=grace, dl=listen_dl, timeline=timeline
            )
    except KeyboardInterrupt as exc:
        recv.stop()
        if out is not None:  # the final response is in: keep what was measured (runner.run_steps)
            timeline.add(EventKind.GRACE_END, why="interrupted", received=recv.received)
            kept = _move_result(out, recv, grace, timeline, base)
            exc.partial = dataclasses.replace(  # type: ignore[attr-defined]
                kept, reason=f"interrupted (Ctrl-C); {kept.reason or 'measured so far'}"
            )
        raise
    finally:
        recv.stop()
    return _move_result(out, recv, grace, timeline, base)


def _receiver_tls(cfg: MoveTestConfig) -> Any:
    """move-test --tls: our receiver's server context (PS3.15 B.1); with --tls-ca the PACS
    must show a certificate of that CA. config.py checked that the pair loads."""
    if cfg.tls is None or not cfg.tls.cert:
        return None
    from reverseprobe.dicom.tls import server_context

    return server_context(cfg.tls)


def _grace(  # noqa: PLR0913 - the grace wait reads the move, the receiver and the study's count
    recv: Receiver,
    out: MoveOutcome,
    *,
    instances: int | None,
    grace: float,
    dl: Deadline,
    timeline: Timeline,
) -> None:
    """Keep listening after the final response: until no association is open and no image is
    owed (dicom.grace: the counts decide), or `grace` seconds have passed with nothing
    happening."""
    start = timeline.now()
    why = "deadline"
    while not dl.expired:
        now = timeline.now()
        idle = now - max(recv.last_activity, start)
        if recv.open_associations == 0:
            if not images_still_owed(out, received=recv.received, instances=instances):
                why = "all images in" if recv.received else "no images claimed"
                break
            if idle >= grace:
                why = "grace period over"
                break
        elif idle >= grace:
            why = "an inbound association stayed silent"
            break
        time.sleep(GRACE_POLL_S)
    timeline.add(EventKind.GRACE_END, why=why, received=recv.received)


def _move_result(
    out: MoveOutcome, recv: Receiver, grace: float, timeline: Timeline, base: dict[str, Any]
) -> MoveResult:
    st = recv.stats()
    code = out.final_code
    word = status_word(code) if code is not None else None
    want = out.completed or base.get("expected")
    ok = delivered(word=word, received=st.received, failed=(out.failed or 0) + st.failed, want=want)
    ok = ok and not out.cancelled and not out.remaining  # cut short by our C-CANCEL: not all
    status, reason = move_status(out, ok, f"{st.received} received")
    return MoveResult(
        status=status,
        reason=reason,
        **outcome_fields(out),
        received=st.received,
        store_failures=st.failed,
        received_after_final=st.received_after_final,
        bytes_received=st.bytes,
        connections=st.connections,
        associations=st.associations,
        grace_s=round(grace, 3),
        **timing_fields(out, timeline),
        **base,
        tls=recv.tls,
    )


def move_status(out: MoveOutcome, ok: bool, seen: str) -> tuple[Status, str | None]:
    """The move probe's status and reason, both receiver modes: `ok` is the mode's verdict,
    `seen` what its receiver saw (images received, connections observed)."""
    a, code = out.association, out.final_code
    if a.state is not AssocState.ACCEPTED:
        reason: str | None = f"association {a.state.value}" + (f": {a.detail}" if a.detail else "")
    elif code is None:
        reason = (
            f"no final C-MOVE response: {NO_RESPONSE_TEXT[out.no_response or NoResponse.TIMEOUT]}"
        )
    elif not ok:
        reason = f"final status 0x{code:04X} ({status_meaning(code)}), {seen}"
    else:
        reason = None
    if code is None and out.no_response is NoResponse.TIMEOUT:
        return Status.TIMEOUT, reason
    return (Status.OK if ok else Status.FAIL), reason


def outcome_fields(out: MoveOutcome) -> dict[str, Any]:
    """The MoveResult fields that restate the C-MOVE's own outcome (own and observed mode)."""
    code, a = out.final_code, out.association
    return {
        "association": a.state,
        "reject": a.reject,
        "final_status": status_word(code) if code is not None else None,
        "final_code": code,
        "final_code_hex": f"0x{code:04X}" if code is not None else None,
        "final_meaning": status_meaning(code) if code is not None else None,
        "completed": out.completed,
        "failed": out.failed,
        "warning": out.warning,
        "remaining": out.remaining,
        "pending_responses": out.pending_responses,
        "error_comment": out.error_comment,
        "failed_instances": out.failed_instances,
        "no_response": out.no_response,
        "cancelled": out.cancelled,
    }


def timing_fields(out: MoveOutcome, timeline: Timeline) -> dict[str, Any]:
    """When the final response came, the timeline, and the stall (own and observed mode)."""
    return {
        "final_t": None if out.final_t is None else round(out.final_t, 4),
        "timeline": timeline.events(),
        "timeline_dropped": timeline.dropped,
        "stall_s": _stall(out, timeline),
    }


def _stall(out: MoveOutcome, timeline: Timeline) -> float | None:
    """Seconds from the last pending C-MOVE response to the end of the wait, when pending
    responses came and then no final one (PS3.4 C.4.2.1.4: pending until the last sub-op)."""
    if not out.pending_responses or (out.final_code is not None and not out.cancelled):
        return None  # a final response that our C-CANCEL did not force: no stall
    events = timeline.events()
    pending = [e.t for e in events if e.event is EventKind.MOVE_PENDING]
    if not pending:
        return None
    end = [e.t for e in events if e.event in (EventKind.MOVE_NO_RESPONSE, EventKind.MOVE_CANCEL)]
    return round(min(end or [timeline.now()]) - pending[-1], 3)  # until we gave up
