"""NAT-PMP (RFC 6886) and PCP MAP (RFC 6887): a small client over the pure `wire` formats.

No well-kept Python client exists (py-natpmp speaks NAT-PMP only and both PyPI packages install
as `natpmp`; none speaks PCP), and the messages are 2 to 60 bytes. The client's I/O goes through
the `Transport` protocol, so tests drive it with recorded or hostile datagrams (aioice's stun.py
does the same). A PCP mapping is owned by its nonce (RFC 6887 11.1): keep `Mapping.nonce` to
renew or delete it.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar, cast

from reverseprobe.portmap.wire import (
    NONCE_LEN,
    PORT,
    Method,
    NatPmpAddressResponse,
    NatPmpMapResponse,
    NatPmpResult,
    PcpOp,
    PcpResponse,
    PcpResult,
    ip_proto,
    natpmp_op,
    pack_natpmp_address_request,
    pack_natpmp_map_request,
    pack_pcp_map_request,
    parse_natpmp_response,
    parse_pcp_response,
    result_text,
)

DEFAULT_LIFETIME = 7200  # RFC 6886 3.3: the recommended lifetime
_FIRST_RETRY = 0.25  # RFC 6886 3.1: 250 ms, doubled after each try
_R = TypeVar("_R")


# --- the client -----------------------------------------------------------------------------


class Transport(Protocol):
    """A datagram exchange with one server (the gateway's port 5351)."""

    @property
    def local_address(self) -> str: ...

    def send(self, data: bytes) -> None: ...

    def recv(self, timeout: float) -> bytes | None:
        """The next datagram from the server, or None after `timeout` seconds."""

    def close(self) -> None: ...


class UdpTransport:
    """A UDP socket connected to gateway:5351: the kernel drops datagrams from anyone else."""

    def __init__(self, gateway: str, port: int = PORT) -> None:
        # an IPv6 gateway (PCP for IPv6 pinholes, RFC 6887 8.1) needs an IPv6 socket
        family = socket.AF_INET6 if ":" in gateway else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self._sock.connect(socket.getaddrinfo(gateway, port, family, socket.SOCK_DGRAM)[0][4])
        except OSError:
            self._sock.close()
            raise

    @property
    def local_address(self) -> str:
        return str(self._sock.getsockname()[0]).split("%", 1)[0]

    def send(self, data: bytes) -> None:
        self._sock.send(data)

    def recv(self, timeout: float) -> bytes | None:
        self._sock.settimeout(max(0.001, timeout))
        try:
            return self._sock.recv(2048)
        except TimeoutError:
            return None
        except ConnectionRefusedError:  # ICMP port unreachable: nothing listens on 5351
            raise
        except OSError:
            return None

    def close(self) -> None:
        self._sock.close()


class NoAnswer(Exception):
    """The gateway did not answer (or refused the UDP port) within the timeout."""


def exchange(
    transport: Transport, request: bytes, match: Callable[[bytes], _R | None], timeout: float
) -> _R:
    """Send `request`, resending after 250 ms, 500 ms... (RFC 6886 3.1), until `match` accepts
    a datagram. Raises NoAnswer at the timeout or when the gateway refuses the port."""
    end = time.monotonic() + timeout
    retry = _FIRST_RETRY
    while True:
        now = time.monotonic()
        if now >= end:
            raise NoAnswer(f"no answer within {timeout:.1f} s")
        try:
            transport.send(request)
        except OSError as exc:
            raise NoAnswer(f"cannot send: {exc}") from exc
        resend_at = min(end, now + retry)
        retry *= 2
        while (left := resend_at - time.monotonic()) > 0:
            try:
                data = transport.recv(left)
            except ConnectionRefusedError as exc:
                raise NoAnswer("the gateway refused (nothing listens on UDP 5351)") from exc
            if data is None:
                continue
            try:
                got = match(data)
            except (ValueError, struct.error):
                got = None
            if got is not None:
                return got


@dataclass(frozen=True)
class AddressResult:
    """The router's external address by NAT-PMP (or why not)."""

    address: str | None
    result: int | None  # None: no answer
    meaning: str
    fix: str = ""

    @property
    def ok(self) -> bool:
        return self.result == 0 and self.address is not None


@dataclass(frozen=True)
class Mapping:
    """A mapping the router granted (or refused: `result` != 0)."""

    method: Method
    gateway: str
    client_address: str
    protocol: str
    internal_port: int
    external_port: int
    lifetime: int  # granted seconds; 0 after a delete
    result: int
    meaning: str
    fix: str = ""
    external_address: str | None = None  # PCP says it; NAT-PMP needs external_address()
    nonce: bytes | None = None  # PCP: the mapping's owner token
    epoch: int | None = None

    @property
    def ok(self) -> bool:
        return self.result == 0


def new_nonce() -> bytes:
    return os.urandom(NONCE_LEN)


def _open(gateway: str, transport: Transport | None) -> Transport:
    if transport is not None:
        return transport
    try:
        return UdpTransport(gateway)
    except OSError as exc:
        raise NoAnswer(f"cannot reach {gateway}: {exc}") from exc


def external_address(
    gateway: str, timeout: float, *, transport: Transport | None = None
) -> AddressResult:
    """RFC 6886 3.2 external address request; never raises on what the network does."""
    t = _open(gateway, transport)
    try:

        def match(d: bytes) -> NatPmpAddressResponse | None:
            r = parse_natpmp_response(d)
            return r if isinstance(r, NatPmpAddressResponse) else None

        r = exchange(t, pack_natpmp_address_request(), match, timeout)
    except NoAnswer as exc:
        return AddressResult(None, None, f"no NAT-PMP answer from {gateway}: {exc}")
    finally:
        if transport is None:
            t.close()
    meaning, fix = result_text(Method.NATPMP, r.result)
    return AddressResult(r.address, r.result, meaning, fix)


def map_port(  # noqa: PLR0913 - keyword-only fields of RFC 6886/6887 MAP
    gateway: str,
    internal_port: int,
    *,
    external_port: int | None = None,
    lifetime: int = DEFAULT_LIFETIME,
    protocol: str = "TCP",
    method: Method = Method.PCP,
    nonce: bytes | None = None,
    timeout: float = 2.0,
    transport: Transport | None = None,
    external_address: str | None = None,
) -> Mapping:
    """Ask for (or renew, or with lifetime 0 delete) a mapping with PCP MAP or NAT-PMP.

    Raises NoAnswer when the gateway does not answer; a refusal is a Mapping with result != 0.
    A PCP request answered with NAT-PMP's "unsupported version" is a Mapping with method PCP
    and result UNSUPP_VERSION: try NAT-PMP then.
    """
    eport = internal_port if external_port is None else external_port
    t = _open(gateway, transport)
    try:
        if method is Method.PCP:
            return _pcp_map(
                t,
                gateway,
                iport=internal_port,
                eport=eport,
                lifetime=lifetime,
                protocol=protocol,
                nonce=nonce,
                timeout=timeout,
                external_address=external_address,
            )
        return _natpmp_map(
            t,
            gateway,
            iport=internal_port,
            eport=eport,
            lifetime=lifetime,
            protocol=protocol,
            timeout=timeout,
        )
    finally:
        if transport is None:
            t.close()


def unmap(mapping: Mapping, *, timeout: float = 2.0, transport: Transport | None = None) -> Mapping:
    """Delete a mapping: PCP MAP with lifetime 0 and the same nonce (RFC 6887 15), or NAT-PMP
    with lifetime 0 and external port 0 (RFC 6886 3.4). Raises NoAnswer."""
    return map_port(
        mapping.gateway,
        mapping.internal_port,
        external_port=mapping.external_port if mapping.method is Method.PCP else 0,
        lifetime=0,
        protocol=mapping.protocol,
        method=mapping.method,
        nonce=mapping.nonce,
        timeout=timeout,
        transport=transport,
        external_address=(
            mapping.external_address
            if mapping.method is Method.PCP and ":" in mapping.client_address
            else None
        ),
    )


def _natpmp_map(  # noqa: PLR0913 - keyword-only fields of the RFC 6886 mapping request
    t: Transport,
    gateway: str,
    *,
    iport: int,
    eport: int,
    lifetime: int,
    protocol: str,
    timeout: float,
) -> Mapping:
    op = natpmp_op(protocol)

    def match(d: bytes) -> NatPmpMapResponse | None:
        r = parse_natpmp_response(d)
        if not isinstance(r, NatPmpMapResponse) or r.op != op:
            return None
        return r if r.result != 0 or r.internal_port == iport else None

    r = exchange(t, pack_natpmp_map_request(protocol, iport, eport, lifetime), match, timeout)
    meaning, fix = result_text(Method.NATPMP, r.result)
    return Mapping(
        method=Method.NATPMP,
        gateway=gateway,
        client_address=t.local_address,
        protocol=protocol.upper(),
        internal_port=iport,
        external_port=r.external_port if r.result == 0 else eport,
        lifetime=r.lifetime if r.result == 0 else 0,
        result=r.result,
        meaning=meaning,
        fix=fix,
        epoch=r.epoch,
    )


def _pcp_map(  # noqa: PLR0913 - keyword-only fields of the RFC 6887 MAP request
    t: Transport,
    gateway: str,
    *,
    iport: int,
    eport: int,
    lifetime: int,
    protocol: str,
    nonce: bytes | None,
    timeout: float,
    external_address: str | None = None,
) -> Mapping:
    nonce = nonce or new_nonce()
    client = t.local_address
    if external_address == "":  # a pinhole (RFC 6887 8.1): suggest the internal address itself
        external_address = client
    proto = ip_proto(protocol)
    request = pack_pcp_map_request(
        client_address=client,
        nonce=nonce,
        protocol=protocol,
        internal_port=iport,
        external_port=eport,
        lifetime=lifetime,
        **({"external_address": external_address} if external_address else {}),
    )

    def match(d: bytes) -> PcpResponse | NatPmpMapResponse | None:
        nat = parse_natpmp_response(d) if d[:1] == b"\x00" else None
        if isinstance(nat, NatPmpMapResponse) and nat.result == NatPmpResult.UNSUPPORTED_VERSION:
            return nat  # a NAT-PMP-only server (RFC 6887 9)
        r = parse_pcp_response(d)
        if r is None or r.op != PcpOp.MAP:
            return None
        if r.nonce is None:  # a short error response: not tied to our request, but to us
            return r if r.result != 0 else None
        ok = r.nonce == nonce and r.protocol == proto and r.internal_port == iport
        return r if ok else None

    r = cast("PcpResponse | NatPmpMapResponse", exchange(t, request, match, timeout))
    if isinstance(r, NatPmpMapResponse):
        result, note = int(PcpResult.UNSUPP_VERSION), " (it speaks NAT-PMP)"
    else:
        result, note = r.result, ""
    meaning, fix = result_text(Method.PCP, result)
    ok = isinstance(r, PcpResponse) and result == 0
    return Mapping(
        method=Method.PCP,
        gateway=gateway,
        client_address=client,
        protocol=protocol.upper(),
        internal_port=iport,
        external_port=(r.external_port or 0) if ok and isinstance(r, PcpResponse) else eport,
        lifetime=r.lifetime if ok else 0,
        result=result,
        meaning=meaning + note,
        fix=fix,
        external_address=r.external_address if ok and isinstance(r, PcpResponse) else None,
        nonce=nonce,
        epoch=r.epoch,
    )
