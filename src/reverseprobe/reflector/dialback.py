"""The dial-back itself: associate with the requester's port, C-ECHO, release (PS3.7 9.1.5),
and say what answered. Blocking (pynetdicom); the server runs it in its thread pool."""

from __future__ import annotations

import dataclasses
import ipaddress
import time
from typing import Protocol

from reverseprobe.dicom.echo import DicomResult, EchoResult, echo
from reverseprobe.dicom.tcp import TcpState, tcp_connect


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


def dial_back(  # noqa: PLR0913 - keyword-only fields of one dial-back
    host: str,
    port: int,
    *,
    called_aet: str,
    calling_aet: str,
    connect_timeout: float,
    budget: float,
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
