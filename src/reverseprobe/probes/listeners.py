"""Who listens on the port (psutil) and what each listener answers to a DICOM C-ECHO."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from typing import Any

from reverseprobe.concurrent import Call, start
from reverseprobe.dicom.echo import (
    DEFAULT_CALLING_AET,
    DicomResult,
    EchoResult,
    echo,
    preload_pynetdicom,
)
from reverseprobe.dicom.tcp import TcpState
from reverseprobe.dicom.tls import TlsSettings, handshake_probe
from reverseprobe.model import Status
from reverseprobe.model.check import ListenersResult as ListenersResult
from reverseprobe.model.check import ListeningSocket as ListeningSocket
from reverseprobe.model.check import overlapping as overlapping
from reverseprobe.runner import Deadline

ECHO_BUDGET_S = 4.0
TLS_BUDGET_S = 3.0  # one ClientHello and its answer


def probe_listeners(  # noqa: PLR0913 - keyword-only options: AETs, TLS, the shared echo
    port: int,
    called_aet: str,
    deadline: Deadline,
    *,
    calling_aet: str = DEFAULT_CALLING_AET,
    tls: TlsSettings | None = None,
    once: LocalOnce | None = None,
) -> ListenersResult:
    # pynetdicom with pydicom takes ~0.45 s to import: overlap it with the scan (the command
    # usually started it already; this starts it when the probe runs on its own).
    preload_pynetdicom()
    try:
        shared = once is not None and once.port == port
        sockets, visible = once.sockets() if once and shared else listening_sockets(port)
    except Exception as exc:  # noqa: BLE001 - psutil raises AccessDenied on macOS without root
        return ListenersResult(
            status=Status.ERROR,
            port=port,
            reason=f"could not list sockets ({type(exc).__name__}: {exc}); run as administrator",
        )
    targets = sorted({echo_target(s) for s in sockets})
    budget = deadline.share(ECHO_BUDGET_S)
    echoes = _echo_all(targets, port, called_aet, calling_aet, budget, tls=tls, once=once)
    if tls is None:
        echoes = tuple(tls_look(e, deadline.share(TLS_BUDGET_S)) for e in echoes)
    return ListenersResult(
        status=Status.OK,
        port=port,
        sockets=tuple(sockets),
        echoes=echoes,
        pids_visible=visible,
        bindv6only=bindv6only_default(),
    )


def bindv6only_default() -> bool | None:
    """The IPV6_V6ONLY an IPv6 socket gets unless it sets its own (Linux sysctl); None
    where there is no such file: the family of another process's [::] socket is then
    not told."""
    try:
        with open("/proc/sys/net/ipv6/bindv6only", encoding="ascii") as f:
            return f.read().strip() == "1"
    except (OSError, ValueError):
        return None


def own_v6only(fd: int | None, pid: int | None) -> bool | None:
    """IPV6_V6ONLY of a socket of this process, read from a duplicate of its fd; None for
    another process's socket (its options are not readable from here)."""
    import os

    if fd is None or fd < 0 or pid != os.getpid():
        return None
    try:
        dup = socket.socket(fileno=os.dup(fd))
    except OSError:
        return None
    try:
        return bool(dup.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY))
    except OSError:
        return None
    finally:
        dup.close()  # closes the duplicate only; the listener keeps its own fd


def listening_sockets(port: int) -> tuple[list[ListeningSocket], bool]:
    """Every TCP socket in LISTEN on `port`, with its owner where the OS tells us."""
    import psutil

    try:
        conns: list[Any] = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        conns = []
        for proc in psutil.process_iter():
            try:
                conns.extend(proc.net_connections(kind="tcp"))
            except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
    from reverseprobe.dicom.scp import held_ports

    ours = held_ports()  # our own temporary listener (the inbound probe) is not the user's
    out: list[ListeningSocket] = []
    visible = True
    seen: set[tuple[Any, ...]] = set()
    for c in conns:
        if c.status != psutil.CONN_LISTEN or not c.laddr or c.laddr.port != port:
            continue
        if ours.get(port) is not None and c.pid == ours[port]:
            continue
        key = (c.fd, c.pid, c.laddr.ip, c.family)
        if key in seen:
            continue
        seen.add(key)
        name = None
        if c.pid is None:
            visible = False
        else:
            try:
                name = psutil.Process(c.pid).name()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                name = None
        out.append(
            ListeningSocket(
                address=_strip_scope(c.laddr.ip),
                port=port,
                family="ipv6" if c.family == socket.AF_INET6 else "ipv4",
                pid=c.pid,
                process=name,
                v6only=own_v6only(c.fd, c.pid) if c.family == socket.AF_INET6 else None,
            )
        )
    out.sort(key=lambda s: (s.pid or 0, s.family, s.address))
    return out, visible


def echo_target(s: ListeningSocket) -> str:
    """Where to send our C-ECHO to reach this socket."""
    if s.address == "0.0.0.0":
        return "127.0.0.1"
    if s.address == "::":
        return "::1"
    return s.address


def tls_look(e: EchoResult, budget: float) -> EchoResult:
    """A plain A-ASSOCIATE-RQ met by a TLS alert, a close or silence: does a ClientHello get
    an answer (PS3.15 B.1)? Then the listener speaks DICOM over TLS, and is not "not DICOM"."""
    if e.result not in (DicomResult.NOT_DICOM, DicomResult.NO_ANSWER):
        return e
    if e.tls is not None:
        seen = e.tls.seen
    else:
        seen = "silence" if e.result is DicomResult.NO_ANSWER else "closed"
    facts = handshake_probe(e.host, e.port, budget, seen=seen)
    if not facts.answered:
        return e
    return dataclasses.replace(e, tls=facts)


class LocalOnce:
    """One look at the local listener per check run, shared by the listeners probe and the
    inbound probe: one socket-table scan (psutil reads every process's fds: ~50 ms of CPU)
    and one C-ECHO per local address (same AETs, plain DICOM), so the user's receiver sees
    one association instead of two. The first probe to ask starts each; each caller waits
    within its own budget."""

    def __init__(self, port: int, called_aet: str, calling_aet: str = DEFAULT_CALLING_AET):
        self.port, self.called_aet, self.calling_aet = port, called_aet, calling_aet
        self._lock = threading.Lock()
        self._calls: dict[str, Call[EchoResult]] = {}
        self._scan_lock = threading.Lock()
        self._scan: tuple[list[ListeningSocket], bool] | BaseException | None = None

    def sockets(self) -> tuple[list[ListeningSocket], bool]:
        """`listening_sockets(port)`, read once; its exception, raised to every caller."""
        with self._scan_lock:  # the second caller waits for the first one's scan
            if self._scan is None:
                try:
                    self._scan = listening_sockets(self.port)
                except Exception as exc:  # noqa: BLE001 - each caller handles it as before
                    self._scan = exc
            scan = self._scan
        if isinstance(scan, BaseException):
            raise scan
        return list(scan[0]), scan[1]

    def get(self, host: str, budget: float) -> Call[EchoResult]:
        with self._lock:
            call = self._calls.get(host)
            if call is None:
                # The socket table says something listens: no bare TCP connect first, which
                # would cost the user's receiver an empty association attempt.
                call = start(
                    lambda: echo(host, self.port, called_aet=self.called_aet,
                                 calling_aet=self.calling_aet, timeout=budget, tcp_first=False),
                    name="local-echo",
                )  # fmt: skip
                self._calls[host] = call
            return call


def _echo_all(  # noqa: PLR0913 - internal; the echo's AETs, port and budget
    targets: list[str],
    port: int,
    called: str,
    calling: str,
    budget: float,
    *,
    tls: TlsSettings | None = None,
    once: LocalOnce | None = None,
) -> tuple[EchoResult, ...]:
    def one(host: str) -> Call[EchoResult]:
        if (
            once is not None
            and tls is None
            and (once.port, once.called_aet, once.calling_aet) == (port, called, calling)
        ):
            return once.get(host, budget)
        # The socket table says something listens: no bare TCP connect first, which would
        # cost the user's receiver an empty association attempt (and a line in its log).
        return start(
            lambda: echo(host, port, called_aet=called, calling_aet=calling, timeout=budget,
                         tcp_first=False, tls=tls),
            name="listener-echo",
        )  # fmt: skip

    calls = {h: one(h) for h in targets}
    end = time.monotonic() + budget + 1.0
    results: dict[str, EchoResult] = {}
    for h, call in calls.items():
        call.wait(end - time.monotonic())
        got = call.outcome()
        if isinstance(got, EchoResult):
            results[h] = got
    # A C-ECHO that did not come back is a result too, never a silent pass.
    return tuple(results.get(h) or _no_answer(h, port, called, calling, budget) for h in targets)


def _no_answer(host: str, port: int, called: str, calling: str, budget: float) -> EchoResult:
    return EchoResult(
        host=host,
        port=port,
        tcp=TcpState.OPEN,
        result=DicomResult.NO_ANSWER,
        called_aet=called,
        calling_aet=calling,
        detail=f"did not answer within {budget:g} s",
        elapsed_ms=round(budget * 1000, 1),
    )


def _strip_scope(ip: str) -> str:
    return ip.split("%", 1)[0]
