"""Running mode of move-test: the user's own receiver holds the port and we only watch the
kernel's connection table (psutil, like `ss -tnp`); nothing is sent to that receiver."""

from __future__ import annotations

import threading
from typing import Any

from reverseprobe.dicom.timeline import EventKind, Timeline
from reverseprobe.model.dicom import InboundAssociation

OBSERVE_EVERY_S = 0.02  # psutil's table sampled this often: a short association lasts ~50 ms
MAX_OBSERVED = 64  # inbound connections described one by one


class Observer:
    """Watches inbound TCP connections to `port` while the user's own receiver takes them.

    Nothing is sent to that receiver: psutil's connection table (the kernel's, like `ss -tnp`)
    is sampled every OBSERVE_EVERY_S in a thread started with concurrent.start; each new
    established connection whose local port is `port` is one inbound association, with the
    peer address and the PID and program that own it. Where the table or the owners are hidden
    (no permission), `note` says so: zero connections is then "not visible", not "none came".
    """

    def __init__(
        self, port: int, timeline: Timeline, owner: tuple[int | None, str | None] = (None, None)
    ) -> None:
        # `owner`: the listening socket's PID and program, for a connection seen already
        # closing (TIME_WAIT has no process: the kernel keeps it after close()).
        self.port, self.timeline, self.owner = port, timeline, owner
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._seen: dict[tuple[str, int], InboundAssociation] = {}
        self._count = 0
        self.note: str | None = None
        self._call: Any = None
        self.samples = 0

    def start(self) -> None:
        from reverseprobe import concurrent

        # connections already open are not the PACS's: remember them first, untold
        self._sample(tell=False)
        with self._lock:
            self._preexisting = set(self._seen)
            self._seen.clear()
            self._count = 0
        self._call = concurrent.start(self._loop, name=f"observe-{self.port}")
        self.timeline.add(EventKind.LISTENING, port=self.port, detail={"mode": "observing"})

    def stop(self) -> None:
        self._stop.set()
        if self._call is not None:
            self._call.wait(1.0)
            self._call = None
        self._sample()  # one last look: a connection of the last 30 ms

    def __enter__(self) -> Observer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stop.wait(OBSERVE_EVERY_S):
            self._sample()

    def _sample(self, *, tell: bool = True) -> None:
        """One look at the table; `tell`: new connections go on the timeline."""
        import psutil

        try:
            conns = psutil.net_connections(kind="tcp")
        except (psutil.AccessDenied, PermissionError, OSError) as exc:
            with self._lock:
                self.note = f"the connection table is not readable here ({type(exc).__name__})"
            return
        t = self.timeline.now()
        new: list[InboundAssociation] = []
        hidden_owner = False
        with self._lock:
            self.samples += 1
            for c in conns:
                if not c.laddr or not c.raddr or c.status == psutil.CONN_LISTEN:
                    continue
                if c.laddr.port == self.port:
                    key = (str(c.raddr.ip), int(c.raddr.port))
                elif c.raddr.port == self.port and c.status == psutil.CONN_TIME_WAIT:
                    # A sender on this host that already closed: its side outlives the
                    # association by the TIME_WAIT period, ours is gone (RFC 9293 3.6.1).
                    key = (str(c.laddr.ip), int(c.laddr.port))
                else:
                    continue
                if key in self._seen or key in getattr(self, "_preexisting", set()):
                    continue
                self._count += 1
                if len(self._seen) >= MAX_OBSERVED:
                    continue
                pid, name = c.pid, _process_name(c.pid)
                if pid is None:
                    pid, name = self.owner
                hidden_owner |= pid is None
                a = InboundAssociation(
                    number=self._count,
                    peer=key[0].removeprefix("::ffff:"),
                    peer_port=key[1],
                    connected_t=round(t, 4),
                    pid=pid,
                    process=name,
                )
                self._seen[key] = a
                new.append(a)
            if hidden_owner and self.note is None:
                self.note = "the owning process of a connection is hidden (no permission)"
        for a in new if tell else ():
            self.timeline.add(
                EventKind.CONNECTION,
                peer=f"{a.peer}:{a.peer_port}",
                association=a.number,
                t=a.connected_t,
                detail={"pid": a.pid, "process": a.process},
            )

    @property
    def connections(self) -> int:
        with self._lock:
            return self._count

    def associations(self) -> tuple[InboundAssociation, ...]:
        with self._lock:
            return tuple(sorted(self._seen.values(), key=lambda a: a.number))


def _process_name(pid: int | None) -> str | None:
    if pid is None:
        return None
    import psutil

    try:
        return str(psutil.Process(pid).name())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
