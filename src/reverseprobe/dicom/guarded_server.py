"""Every server of ours (dicom/scp.py, the move-test receiver): pynetdicom's threaded server
with each accepted socket on a Guard (guard.py), connections counted and capped per peer and in
all, the TLS handshake in the connection's own thread (PS3.15 B.1), and a stop_all()."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reverseprobe.dicom.guard import Cut, CutKind, Guard, Limits
from reverseprobe.dicom.guarded_ae import tls_association_socket

# socketserver.shutdown() waits for serve_forever's select() to time out: the default 0.5 s
# made every stop of a temporary SCP cost ~0.45 s (measured); 20 wake-ups a second cost nothing.
SERVE_POLL_S = 0.05


def accept_tls(
    request: socket.socket, ssl_context: Any, timeout: float, peer: str
) -> tuple[Any, Cut | None]:
    """The server side of PS3.15 B.1 on an accepted socket, in the connection's own thread
    (pynetdicom's server does the handshake in its accept loop, where a silent peer stops every
    other connection): a plain A-ASSOCIATE-RQ, or a failed handshake, is a Cut."""
    from reverseprobe.dicom.tls import first_bytes_kind, problem_of

    try:
        request.settimeout(timeout)
        head = request.recv(8, socket.MSG_PEEK)
    except OSError as exc:
        return None, Cut(CutKind.TIMEOUT, f"nothing from {peer} within {timeout:g} s ({exc})")
    if first_bytes_kind(head) == "dicom":
        return None, Cut(CutKind.TLS, f"a plain DICOM A-ASSOCIATE-RQ from {peer} at a TLS receiver")
    try:
        tls = ssl_context.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
        tls.settimeout(timeout)
        tls.do_handshake()
    except OSError as exc:
        problem, detail = problem_of(exc)
        return None, Cut(CutKind.TLS, f"TLS handshake with {peer} failed ({problem}): {detail}")
    return tls, None


@dataclass(frozen=True)
class ServerLimits:
    """What one peer and all peers together may cost a server of ours."""

    per_association: Limits
    max_connections: int = 32  # open at once, association or not
    max_per_source: int = 8  # open at once from one address
    max_total_bytes: int | None = None  # over the server's life, all peers


def start_guarded_server(  # noqa: PLR0913 - keyword-only limits and hooks of the one guarded server
    ae: Any,
    address: tuple[str, int],
    *,
    limits: ServerLimits,
    evt_handlers: list[Any],
    contexts: list[Any] | None = None,
    on_cut: Callable[[Guard | None, tuple[str, int], Cut], None] | None = None,
    ssl_context: Any = None,
) -> Any:
    """ae.start_server(block=False), with every accepted socket on a Guard, connections
    counted (refused beyond the caps) and a stop_all() that ends every connection at once."""
    from pynetdicom.transport import RequestHandler, ThreadedAssociationServer

    class GuardedHandler(RequestHandler):
        def handle(self) -> None:
            if ssl_context is not None:
                host, port = str(self.client_address[0]), int(self.client_address[1])
                tls, cut = accept_tls(
                    self.request, ssl_context, limits.per_association.pdu_timeout, f"{host}:{port}"
                )
                if tls is None:
                    with contextlib.suppress(OSError):
                        self.request.close()
                    srv: Any = self.server
                    srv._unpend(host)
                    if on_cut is not None and cut is not None:
                        with contextlib.suppress(Exception):
                            on_cut(None, (host, port), cut)
                    return
                self.request = tls
            super().handle()

        def _create_association(self) -> Any:
            srv: Any = self.server
            guard = srv._wrap(self.request, self.client_address)
            self.request = guard
            assoc = super()._create_association()
            guard.assoc = assoc
            if ssl_context is not None:
                assoc.dul.socket.__class__ = tls_association_socket()
            return assoc

    class GuardedServer(ThreadedAssociationServer):
        daemon_threads = True
        block_on_close = False

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._glock = threading.Lock()
            self._open: dict[int, Guard] = {}
            self._per_source: dict[str, int] = {}
            self._pending: dict[str, int] = {}
            self._total = 0
            super().__init__(*args, **kwargs)

        def server_bind(self) -> None:
            # [::] takes IPv4 too (RFC 3493 5.3) whatever net.ipv6.bindv6only says (issue 15)
            sock = self.socket
            if sock is not None and self.address_family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            super().server_bind()

        def verify_request(self, request: Any, client_address: Any) -> bool:
            host = str(client_address[0])
            with self._glock:
                open_now = len(self._open) + sum(self._pending.values())
                from_host = self._per_source.get(host, 0) + self._pending.get(host, 0)
                if open_now >= limits.max_connections:
                    why = f"{open_now} connections open, the limit"
                elif from_host >= limits.max_per_source:
                    why = f"{from_host} connections open from {host}, the limit per address"
                elif limits.max_total_bytes is not None and self._total >= limits.max_total_bytes:
                    why = f"all peers together sent {self._total} bytes, the limit"
                else:
                    self._pending[host] = self._pending.get(host, 0) + 1
                    return True
            if on_cut is not None:
                with contextlib.suppress(Exception):
                    on_cut(None, (host, int(client_address[1])), Cut(CutKind.REFUSED, why))
            return False

        def _wrap(self, request: Any, client_address: Any) -> Guard:
            host = str(client_address[0])
            budget = limits.per_association
            if limits.max_total_bytes is not None:
                with self._glock:
                    left = max(0, limits.max_total_bytes - self._total)
                cap = left if budget.max_bytes is None else min(left, budget.max_bytes)
                budget = Limits(budget.pdu_timeout, budget.deadline, cap, budget.max_message)
            guard = Guard(
                request,
                budget,
                lambda: ae.maximum_pdu_size,
                on_cut=self._cut_hook,
                on_close=self._closed,
            )
            guard.peer = (host, int(client_address[1]))
            with self._glock:
                self._pending[host] = max(0, self._pending.get(host, 0) - 1)
                self._per_source[host] = self._per_source.get(host, 0) + 1
                self._open[id(guard)] = guard
            return guard

        def _unpend(self, host: str) -> None:
            with self._glock:
                self._pending[host] = max(0, self._pending.get(host, 0) - 1)

        def _cut_hook(self, guard: Guard, cut: Cut) -> None:
            if on_cut is not None and guard.peer is not None:
                on_cut(guard, guard.peer, cut)

        def _closed(self, guard: Guard) -> None:
            with self._glock:
                if self._open.pop(id(guard), None) is None:
                    return
                self._total += guard.bytes_in
                host = guard.peer[0] if guard.peer else "?"
                self._per_source[host] = max(0, self._per_source.get(host, 0) - 1)

        def stop_all(self, detail: str = "stopped") -> None:
            with self._glock:
                guards = list(self._open.values())
            for g in guards:
                g.stop(detail)

    server = ae.make_server(
        address,
        contexts=contexts,
        evt_handlers=evt_handlers,
        server_class=GuardedServer,
        request_handler=GuardedHandler,
    )
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": SERVE_POLL_S},
        name=f"GuardedServer@{address[1]}",
        daemon=True,
    )
    thread.start()
    ae._servers.append(server)
    return server
