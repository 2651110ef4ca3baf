"""The timeline of a move-test: every request and response of ours and everything our
listener saw, on one monotonic clock (seconds since the command started), bounded in size."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from reverseprobe.model.dicom import EventKind as EventKind
from reverseprobe.model.dicom import TimelineEvent as TimelineEvent

MAX_EVENTS = 400  # timeline entries kept; later ones are counted, not stored


class Timeline:
    """Thread-safe, bounded list of events on one monotonic clock."""

    def __init__(self, t0: float | None = None, *, max_events: int = MAX_EVENTS) -> None:
        self.t0 = time.monotonic() if t0 is None else t0
        self._max = max_events
        self._events: list[TimelineEvent] = []
        self._dropped = 0
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def add(
        self,
        kind: EventKind,
        *,
        peer: str | None = None,
        association: int | None = None,
        t: float | None = None,
        detail: Mapping[str, Any] | None = None,
        **more: Any,
    ) -> float:
        at = self.now() if t is None else t
        ev = TimelineEvent(round(at, 4), kind, peer, association, {**(detail or {}), **more})
        with self._lock:
            if len(self._events) < self._max:
                self._events.append(ev)
            else:
                self._dropped += 1
        return at

    @property
    def dropped(self) -> int:
        with self._lock:
            return self._dropped

    def events(self) -> tuple[TimelineEvent, ...]:
        with self._lock:
            return tuple(sorted(self._events, key=lambda e: e.t))


def describe(e: TimelineEvent) -> str:
    """One timeline event in words (pure; for the text report)."""
    d = e.detail
    n = f"#{e.association} " if e.association is not None else ""
    counts = ", ".join(
        f"{k} {d[k]}" for k in ("completed", "remaining", "failed", "warning") if k in d
    )
    counts = f" ({counts})" if counts else ""
    if d.get("invalid"):
        counts += " [" + "; ".join(map(str, d["invalid"])) + "]"
    code = f"0x{d['code']:04X}" if isinstance(d.get("code"), int) else "?"
    texts = {
        EventKind.LISTENING: f"listening on {d.get('address')}:{d.get('port')} as {d.get('aet')}",
        EventKind.MOVE_REQUEST: f"C-MOVE-RQ to {d.get('destination')}, study {d.get('study')}",
        EventKind.MOVE_PENDING: f"C-MOVE-RSP pending {code}{counts}",
        EventKind.MOVE_FINAL: f"C-MOVE-RSP final {code}{counts}",
        EventKind.MOVE_NO_RESPONSE: f"no final C-MOVE-RSP: {d.get('why')}",
        EventKind.MOVE_CANCEL: f"C-CANCEL sent ({d.get('why')})",
        EventKind.CONNECTION: f"{n}inbound connection from {e.peer}",
        EventKind.ASSOCIATE_RQ: f"{n}A-ASSOCIATE-RQ calling {d.get('calling_aet')!r} "
        f"called {d.get('called_aet')!r}",
        EventKind.ACCEPTED: f"{n}association accepted",
        EventKind.REJECTED: f"{n}association rejected",
        EventKind.C_STORE: f"{n}C-STORE, {d.get('bytes')} bytes, status 0x{d.get('status', 0):04X}",
        EventKind.RELEASED: f"{n}released after {d.get('stores')} C-STORE(s)",
        EventKind.ABORTED: f"{n}aborted after {d.get('stores')} C-STORE(s)",
        EventKind.CLOSED: f"{n}connection closed after {d.get('stores')} C-STORE(s)",
        EventKind.GRACE_END: f"stopped waiting: {d.get('why')} ({d.get('received')} received)",
        EventKind.STOPPED: "listener stopped",
        EventKind.CUT_OFF: f"{n}cut off {e.peer}: {d.get('reason')}",
    }
    return texts.get(e.event, e.event.value)
