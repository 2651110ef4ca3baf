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
