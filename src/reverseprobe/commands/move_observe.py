"""move-test's running mode (issue 11): the user's own receiver holds --port; we C-MOVE to
--aet and watch which connections reach the port (dicom/observer.py), touching nothing of
that receiver."""

from __future__ import annotations

import time
from typing import Any

from reverseprobe.commands.move_receive import (
    GRACE_POLL_S,
    move_status,
    outcome_fields,
    timing_fields,
)
from reverseprobe.config import MoveTestConfig
from reverseprobe.dicom.find import FindResult
from reverseprobe.dicom.move import MoveOutcome, MoveResult, c_move
from reverseprobe.dicom.observer import Observer
from reverseprobe.dicom.qr import (
    AssocState,
    Target,
    status_word,
)
from reverseprobe.dicom.timeline import EventKind, Timeline
from reverseprobe.model import Status
from reverseprobe.model.dicom import StatusWord
from reverseprobe.runner import Deadline

OBSERVE_TAIL_S = 0.3  # running mode: watched after the final response once a connection came


def move_observed(  # noqa: PLR0913 - the observed move's inputs (running receiver mode, issue 11)
    cfg: MoveTestConfig,
    target: Target,
    find: FindResult,
    dl: Deadline,
    timeline: Timeline,
    *,
    grace: float,
    base: dict[str, Any],
    holders: tuple[Any, ...],
) -> MoveResult:
    """Running mode: the user's receiver holds --port; C-MOVE to --aet and watch which
    connections reach the port (Observer), touching nothing of that receiver."""
    assert find.study_uid
    if not holders:
        return MoveResult(
            status=Status.FAIL,
            reason=f"nothing listens on port {cfg.port}: start your receiver before the move",
            receiver_mode="running",
            **base,
        )
    first = holders[0]
    obs = Observer(
        cfg.port, timeline, (getattr(first, "pid", None), getattr(first, "process", None))
    )
    out: MoveOutcome | None = None
    try:
        obs.start()
        move_dl = Deadline(max(time.monotonic() + 0.5, dl.at - grace - OBSERVE_TAIL_S))
        out = c_move(target, find.study_uid, cfg.aet, move_dl, timeline)
        if out.association.state is AssocState.ACCEPTED:
            # A PACS that answers before it sends (asynchronous move) connects afterwards.
            end = time.monotonic() + (OBSERVE_TAIL_S if obs.connections else grace)
            while time.monotonic() < min(end, dl.at) and not obs.connections:
                time.sleep(GRACE_POLL_S)
            timeline.add(EventKind.GRACE_END, why="observed", received=0)
    finally:
        obs.stop()
    assocs = obs.associations()
    code = out.final_code
    word = status_word(code) if code is not None else None
    complete = (
        word in (StatusWord.SUCCESS, StatusWord.WARNING)
        and not out.failed
        and bool(out.completed)
        and bool(assocs)
    )
    status, reason = move_status(
        out, complete, f"{len(assocs)} connection(s) to port {cfg.port} observed"
    )
    return MoveResult(
        status=status,
        reason=reason,
        **outcome_fields(out),
        connections=obs.connections,
        associations=assocs,
        grace_s=round(grace, 3),
        **timing_fields(out, timeline),
        receiver_mode="running",
        observer_note=obs.note,
        port_busy=None,
        **base,
    )
