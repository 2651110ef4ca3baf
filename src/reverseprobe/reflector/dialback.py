"""The dial-back itself: associate with the requester's port, C-ECHO, release (PS3.7 9.1.5),
and say what answered. Blocking (pynetdicom); the server runs it in its thread pool."""

from __future__ import annotations

import dataclasses
import ipaddress
import time
from typing import Any, Protocol

from reverseprobe.dicom.echo import DicomResult, EchoResult, echo
from reverseprobe.dicom.tcp import TcpState, tcp_connect
from reverseprobe.dicom.tls import TlsSettings, handshake_probe


class Dialer(Protocol):
    """Dials host:port back and reports what answered (injected in tests and benchmarks)."""

    def __call__(  # noqa: PLR0913 - keyword-only fields of one dial-back
        self,
        host: str,
        port: int,
        *,
        called_aet: str,
        calling_aet: str,
        connect_timeout: float,
        budget: float,
    ) -> EchoResult: ...


TLS_SHARE = 0.4  # of the budget, for the bounded TLS look before the association
TLS_LOOK_MAX_S = 5.0


def dial_back(  # noqa: PLR0913 - keyword-only fields of one dial-back
    host: str,
    port: int,
    *,
    called_aet: str,
    calling_aet: str,
    connect_timeout: float,
    budget: float,
    tls: bool = False,
    server_name: str | None = None,
) -> EchoResult:
    """Associate, C-ECHO, release; where no TCP connection came about, tell refused /
    unreachable / timeout apart. Never raises, never takes much longer than `budget`.

    One connection in the common case: a bare TCP connect before the association would cost
    the listener an association slot (pynetdicom holds one until its ACSE timeout, dcmtk
    logs a failed association), and a C-MOVE receiver is exactly what must not be disturbed.
    A failed connect is told apart by the time it took (the whole connection timeout: a
    timeout) and, when it failed at once, by one plain `tcp_connect` (refused or unreachable,
    answered in milliseconds)."""
    t0 = time.monotonic()
    host = dial_address(host)
    if tls:
        return _dial_back_tls(
            host,
            port,
            called_aet=called_aet,
            calling_aet=calling_aet,
            connect_timeout=connect_timeout,
            budget=budget,
            server_name=server_name,
        )
    res = echo(
        host,
        port,
        called_aet=called_aet,
        calling_aet=calling_aet,
        timeout=budget,
        tcp_first=False,
        connect_timeout=connect_timeout,
    )
    if "Evt2" in res.fsm_events or res.result is not DicomResult.NOT_TESTED:
        return dataclasses.replace(res, elapsed_ms=_ms(t0))
    took = time.monotonic() - t0
    detail: str | None
    if took >= 0.8 * min(connect_timeout, budget):
        state, detail = TcpState.TIMEOUT, f"no TCP answer within {took:.1f} s"
    else:
        left = max(0.05, min(connect_timeout, budget - took))
        tcp = tcp_connect(host, port, left)
        state, detail = tcp.state, tcp.error
        if state is TcpState.OPEN:  # it answered this time: say what the association saw
            detail = res.detail
    return EchoResult(
        host=host,
        port=port,
        tcp=state,
        result=DicomResult.NOT_TESTED,
        called_aet=called_aet,
        calling_aet=calling_aet,
        detail=detail,
        elapsed_ms=_ms(t0),
    )


def _dial_back_tls(  # noqa: PLR0913 - the fields of one TLS dial-back
    host: str,
    port: int,
    *,
    called_aet: str,
    calling_aet: str,
    connect_timeout: float,
    budget: float,
    server_name: str | None,
) -> EchoResult:
    """DICOM over TLS (PS3.15 B.1): first our own bounded look at the handshake (dicom/tls.py:
    one deadline, HANDSHAKE_BUDGET bytes, on a memory BIO), which gives the certificate as it
    is shown from outside; only when it completes, the association over TLS, verifying
    nothing (the reflector has no CA of the user's: the client verifies the PEM). A receiver
    that answers the ClientHello with garbage or an endless certificate is cut by the look and
    never reaches pynetdicom."""
    t0 = time.monotonic()
    look = min(TLS_LOOK_MAX_S, max(0.2, budget * TLS_SHARE))
    facts = handshake_probe(host, port, look, server_name=server_name, keep_pem=True)
    base: dict[str, Any] = {
        "host": host,
        "port": port,
        "called_aet": called_aet,
        "calling_aet": calling_aet,
    }
    if facts.problem is not None:
        tcp = TcpState.OPEN if facts.answered else _tcp_state(facts.detail or "")
        return EchoResult(
            tcp=tcp,
            result=DicomResult.NOT_TESTED,
            detail=f"TLS: {facts.detail}",
            elapsed_ms=_ms(t0),
            tls=facts,
            **base,
        )
    left = max(0.2, budget - (time.monotonic() - t0))
    res = echo(
        host,
        port,
        called_aet=called_aet,
        calling_aet=calling_aet,
        timeout=left,
        tcp_first=False,
        connect_timeout=min(connect_timeout, left),
        tls=TlsSettings(insecure=True),
        tls_name=server_name,
    )
    return dataclasses.replace(res, elapsed_ms=_ms(t0), tls=facts)


def _tcp_state(detail: str) -> TcpState:
    """Whether the TLS look got a TCP connection, from its words (handshake_probe names the
    OSError of a failed connect; anything else happened on an open connection)."""
    if detail.startswith("ConnectionRefusedError"):
        return TcpState.REFUSED
    if detail.startswith(("TimeoutError", "socket.timeout")):
        return TcpState.TIMEOUT
    if detail.startswith("OSError") and ("unreachable" in detail or "No route" in detail):
        return TcpState.UNREACHABLE
    return TcpState.OPEN


def dial_address(host: str) -> str:
    """The address to dial, whose family is the one the request came in on: an IPv4-mapped
    IPv6 address (::ffff:a.b.c.d, RFC 4291 2.5.5.2, what a dual-stack socket reports for an
    IPv4 peer) is dialled over IPv4; anything else as it is."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return host


def family(host: str) -> str:
    """ "ipv6" or "ipv4": the family a dial-back to `host` goes over."""
    return "ipv6" if ":" in dial_address(host) else "ipv4"


def _ms(t0: float) -> float:
    return round((time.monotonic() - t0) * 1000, 1)
