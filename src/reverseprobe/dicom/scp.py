"""A temporary Verification SCP (PS3.4 Annex A) held on a port while a probe runs.

It accepts any called and any calling AE title (PS3.8 7.1.1.5/7.1.1.6 leave checking them to
the acceptor) and records who called: the address of every TCP connection and the calling AE
title of every A-ASSOCIATE-RQ. `check` asks the reflector to call it with a one-time calling
AE title (a nonce); seeing that title arrive proves the connection reached this machine and
not another one behind the same port.

`stop()` always frees the port: it is called by the context manager, and an `atexit` hook
stops whatever still runs when the interpreter exits (Ctrl-C ends `check` in the main thread
while probes run in daemon threads).
"""

from __future__ import annotations

import atexit
import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reverseprobe.dicom.echo import VERIFICATION_SOP_CLASS
from reverseprobe.dicom.guard import Limits
from reverseprobe.dicom.guarded_server import ServerLimits, start_guarded_server

DEFAULT_AE_TITLE = "REVERSEPROBE"
# A bare TCP connect (the reflector's reachability test) holds a pynetdicom association slot
# until the ACSE timeout: keep it short, and allow more than pynetdicom's default 10.
ACSE_TIMEOUT_S = 3.0
MAX_ASSOCIATIONS = 32
# What callers may cost (guard.py): the reflector and anyone else who reaches the port.
MAX_CONNECTIONS = 48  # open at once; a bare TCP connect counts too
MAX_PER_SOURCE = 16
MAX_BYTES_PER_ASSOCIATION = 1 << 20  # A-ASSOCIATE-RQ, C-ECHO, release: a few KiB
MAX_TOTAL_BYTES = 64 << 20  # all callers over the SCP's life

_active: set[VerificationScp] = set()
_active_lock = threading.Lock()


@dataclass(frozen=True)
class SeenAssociation:
    """One A-ASSOCIATE-RQ that reached us: from where, with which AE titles, when."""

    address: str
    port: int
    calling_aet: str
    called_aet: str
    at: float  # time.monotonic()


@dataclass(frozen=True)
class SeenConnection:
    address: str
    port: int
    at: float


@dataclass(frozen=True)
class SeenCutOff:
    """A caller our guard cut off: too slow, too big, too many (guard.py)."""

    address: str
    port: int
    kind: str
    detail: str
    at: float


class VerificationScp:
    """`with VerificationScp(11112) as scp: ...`; `start()` raises OSError when the port is
    taken (EADDRINUSE) or needs privileges (EACCES)."""

    def __init__(
        self,
        port: int,
        *,
        host: str | None = None,
        ae_title: str = DEFAULT_AE_TITLE,
        acse_timeout: float = ACSE_TIMEOUT_S,
    ) -> None:
        self.host = host or dual_stack_host()  # None: [::], IPv4 and IPv6 on one socket
        self.requested_port = port
        self.ae_title = ae_title
        self.acse_timeout = acse_timeout
        self._ae: Any = None
        self._server: Any = None
        self._bound_port: int | None = None
        self._cond = threading.Condition()
        self._associations: list[SeenAssociation] = []
        self._connections: list[SeenConnection] = []
        self._cut_offs: list[SeenCutOff] = []

    def __repr__(self) -> str:
        return f"<VerificationScp {self.host}:{self.port} running={self.running}>"

    @property
    def port(self) -> int:
        return self._bound_port if self._bound_port is not None else self.requested_port

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> VerificationScp:
        from pynetdicom import AE, evt

        ae = AE(ae_title=self.ae_title)
        ae.add_supported_context(VERIFICATION_SOP_CLASS)
        ae.require_called_aet = False
        ae.require_calling_aet = []
        ae.acse_timeout = self.acse_timeout
        ae.dimse_timeout = self.acse_timeout
        ae.network_timeout = self.acse_timeout
        ae.maximum_associations = MAX_ASSOCIATIONS
        handlers: list[Any] = [
            (evt.EVT_CONN_OPEN, self._on_connection),
            (evt.EVT_REQUESTED, self._on_requested),
        ]
        limits = ServerLimits(
            per_association=Limits(
                pdu_timeout=self.acse_timeout,
                max_bytes=MAX_BYTES_PER_ASSOCIATION,
                max_message=MAX_BYTES_PER_ASSOCIATION,
            ),
            max_connections=MAX_CONNECTIONS,
            max_per_source=MAX_PER_SOURCE,
            max_total_bytes=MAX_TOTAL_BYTES,
        )
        server: Any = start_guarded_server(
            ae,
            (self.host, self.requested_port),
            limits=limits,
            evt_handlers=handlers,
            on_cut=self._on_cut,
        )
        self._ae, self._server = ae, server
        self._bound_port = int(server.server_address[1])
        with _active_lock:
            _active.add(self)
        return self

    def stop(self) -> None:
        """Close the listening socket and abort established associations; idempotent, never
        raises. A connection that never sent an A-ASSOCIATE-RQ is left to end at the ACSE
        timeout (aborting it trips pynetdicom's state machine, Sta2 + Evt15); it does not
        keep the port from a new listener that sets SO_REUSEADDR, as DICOM receivers do."""
        ae, server, self._ae, self._server = self._ae, self._server, None, None
        with _active_lock:
            _active.discard(self)
        if server is None:
            return
        with contextlib.suppress(Exception):  # wakes readers blocked in recv(), see guard.py
            server.stop_all("the temporary SCP stopped")
        with contextlib.suppress(Exception):  # the socket is closed either way
            server.shutdown()
        for assoc in list(getattr(ae, "active_associations", [])):
            if assoc.is_established:
                with contextlib.suppress(Exception):
                    assoc.abort()

    def __enter__(self) -> VerificationScp:
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what it saw --

    def associations(self) -> tuple[SeenAssociation, ...]:
        with self._cond:
            return tuple(self._associations)

    def connections(self) -> tuple[SeenConnection, ...]:
        with self._cond:
            return tuple(self._connections)

    def calling_aets(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a.calling_aet for a in self.associations()))

    def wait_for(self, calling_aet: str, timeout: float) -> SeenAssociation | None:
        """The first association with this calling AE title, waiting up to `timeout`."""
        end = time.monotonic() + max(0.0, timeout)

        def found() -> SeenAssociation | None:
            return next((a for a in self._associations if a.calling_aet == calling_aet), None)

        with self._cond:
            hit = found()
            while hit is None:
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
                hit = found()
            return hit

    def cut_offs(self) -> tuple[SeenCutOff, ...]:
        """Connections our guard ended or refused (not those we stopped ourselves)."""
        with self._cond:
            return tuple(self._cut_offs)

    # -- pynetdicom handlers (association threads) --

    def _on_cut(self, guard: Any, peer: tuple[str, int], cut: Any) -> None:
        if cut.kind == "stopped":
            return
        with self._cond:
            if len(self._cut_offs) < 100:
                self._cut_offs.append(
                    SeenCutOff(peer[0], peer[1], cut.kind, cut.detail, time.monotonic())
                )

    def _on_connection(self, event: Any) -> None:
        addr, port = _peer(event)
        with self._cond:
            if len(self._connections) < 1000:
                self._connections.append(SeenConnection(addr, port, time.monotonic()))

    def _on_requested(self, event: Any) -> None:
        # In EVT_REQUESTED requestor.ae_title is still empty: read the primitive (notes/dicom.md).
        prim = event.assoc.requestor.primitive
        addr, port = _peer(event)
        seen = SeenAssociation(
            address=addr,
            port=port,
            calling_aet=_aet_text(getattr(prim, "calling_ae_title", "")),
            called_aet=_aet_text(getattr(prim, "called_ae_title", "")),
            at=time.monotonic(),
        )
        with self._cond:
            if len(self._associations) < 1000:
                self._associations.append(seen)
            self._cond.notify_all()


def dual_stack_host() -> str:
    """ "::" where this host has IPv6 (one socket takes both families: guard.py clears
    IPV6_V6ONLY, RFC 3493 5.3), else "0.0.0.0"."""
    if not socket.has_ipv6:
        return "0.0.0.0"
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.bind(("::", 0))
    except OSError:
        return "0.0.0.0"  # IPv6 disabled (ipv6.disable=1) or not built in
    return "::"


def unmapped(address: str) -> str:
    """A dual-stack socket sees an IPv4 peer as ::ffff:a.b.c.d: report it as a.b.c.d."""
    return address[7:] if address.lower().startswith("::ffff:") and "." in address else address


def _peer(event: Any) -> tuple[str, int]:
    try:
        req = event.assoc.requestor
        return unmapped(str(req.address)), int(req.port)
    except (AttributeError, TypeError, ValueError):
        return "?", 0


def _aet_text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value or "").strip()


def held_ports() -> dict[int, int]:
    """Ports held by temporary SCPs of this process -> our PID (so a listener scan running at
    the same time can tell our own temporary listener from the user's)."""
    import os

    with _active_lock:
        return {s.port: os.getpid() for s in _active}


def stop_all() -> None:
    with _active_lock:
        running = list(_active)
    for scp in running:
        scp.stop()


def on_exit(fn: Callable[[], None]) -> Callable[[], None]:
    """Register `fn` to run at interpreter exit; returns the function that unregisters it."""
    atexit.register(fn)
    return lambda: atexit.unregister(fn)


atexit.register(stop_all)
