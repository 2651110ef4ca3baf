"""NAT-PMP (RFC 6886) and PCP (RFC 6887) wire formats: pure pack_*/parse_* and result codes.

Parsers return None for anything that is not a well-formed answer; they never raise on bytes
from the network. The client that sends these is `natpmp`.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass
from enum import Enum, IntEnum

PORT = 5351
NATPMP_VERSION = 0
PCP_VERSION = 2
PCP_MAX_MESSAGE = 1100  # RFC 6887 7
NONCE_LEN = 12
MAX_LIFETIME = 2**32 - 1


class Method(str, Enum):
    NATPMP = "natpmp"
    PCP = "pcp"


class NatPmpOp(IntEnum):
    """RFC 6886 3.2/3.3 opcodes; a response's opcode is 128 + the request's."""

    EXTERNAL_ADDRESS = 0
    MAP_UDP = 1
    MAP_TCP = 2


class NatPmpResult(IntEnum):
    """RFC 6886 3.5 result codes."""

    SUCCESS = 0
    UNSUPPORTED_VERSION = 1
    NOT_AUTHORIZED = 2
    NETWORK_FAILURE = 3
    OUT_OF_RESOURCES = 4
    UNSUPPORTED_OPCODE = 5


class PcpOp(IntEnum):
    ANNOUNCE = 0
    MAP = 1
    PEER = 2


class PcpResult(IntEnum):
    """RFC 6887 7.4 result codes."""

    SUCCESS = 0
    UNSUPP_VERSION = 1
    NOT_AUTHORIZED = 2
    MALFORMED_REQUEST = 3
    UNSUPP_OPCODE = 4
    UNSUPP_OPTION = 5
    MALFORMED_OPTION = 6
    NETWORK_FAILURE = 7
    NO_RESOURCES = 8
    UNSUPP_PROTOCOL = 9
    USER_EX_QUOTA = 10
    CANNOT_PROVIDE_EXTERNAL = 11
    ADDRESS_MISMATCH = 12
    EXCESSIVE_REMOTE_PEERS = 13


_ADMIN = "add the forwarding rule by hand in the router's admin page"
_NATPMP_TEXT: dict[int, tuple[str, str]] = {
    0: ("success", ""),
    1: ("the router does not speak this version of the protocol", _ADMIN),
    2: ("the router refuses: NAT-PMP/PCP mappings are off or not allowed for this port "
        "(miniupnpd allows only 1024-65535 by default)",
        f"use a port from 1024 to 65535, allow it in the router's settings, or {_ADMIN}"),
    3: ("the router has no usable external address (not connected, or a private/shared WAN "
        "address: double NAT)",
        "check the router's internet connection; behind a second NAT, forward on that one too"),
    4: ("the router's mapping table is full", f"remove unused mappings, or {_ADMIN}"),
    5: ("the router does not support this request", _ADMIN),
}  # fmt: skip
_PCP_TEXT: dict[int, tuple[str, str]] = {
    0: ("success", ""),
    1: ("the router does not speak this PCP version", _ADMIN),
    2: ("the router refuses: mapping not allowed, or the port is held under another nonce "
        "(created by another program or an earlier run whose nonce is lost)",
        f"remove the old mapping on the router, choose another --external-port, or {_ADMIN}"),
    3: ("the router found the request malformed", _ADMIN),
    4: ("the router does not support this PCP opcode", _ADMIN),
    5: ("the router does not support a PCP option sent", _ADMIN),
    6: ("the router found a PCP option malformed", _ADMIN),
    7: ("the router has no usable external address (not connected, or double NAT)",
        "check the router's internet connection; behind a second NAT, forward on that one too"),
    8: ("the router is out of resources (mapping table full)",
        f"remove unused mappings, or {_ADMIN}"),
    9: ("the router does not support this protocol", "use TCP"),
    10: ("this PC has used up its mapping quota on the router", "remove unused mappings"),
    11: ("the router cannot provide the requested external port/address",
         "choose another --external-port"),
    12: ("the router saw another source address than the one in the request (a NAT between)",
         "run it on the PC itself, not behind another NAT"),
    13: ("the router refuses: too many remote peers", _ADMIN),
}  # fmt: skip


def result_text(method: Method, code: int) -> tuple[str, str]:
    """(meaning, fix) of a NAT-PMP or PCP result code."""
    table = _PCP_TEXT if method is Method.PCP else _NATPMP_TEXT
    return table.get(code, (f"unknown result code {code}", _ADMIN))


# --- NAT-PMP wire format (RFC 6886 3) -------------------------------------------------------


@dataclass(frozen=True)
class NatPmpAddressResponse:
    result: int
    epoch: int
    address: str | None  # None unless result is SUCCESS


@dataclass(frozen=True)
class NatPmpMapResponse:
    op: int  # NatPmpOp.MAP_UDP / MAP_TCP
    result: int
    epoch: int
    internal_port: int
    external_port: int
    lifetime: int


def pack_natpmp_address_request() -> bytes:
    return struct.pack("!BB", NATPMP_VERSION, NatPmpOp.EXTERNAL_ADDRESS)


def pack_natpmp_map_request(
    protocol: str, internal_port: int, external_port: int, lifetime: int
) -> bytes:
    """RFC 6886 3.3. lifetime 0 with external_port 0 deletes the mapping of internal_port."""
    _check_port(internal_port, zero_ok=False)
    _check_port(external_port, zero_ok=True)
    _check_lifetime(lifetime)
    return struct.pack(
        "!BBHHHI", NATPMP_VERSION, natpmp_op(protocol), 0, internal_port, external_port, lifetime
    )


def parse_natpmp_response(data: bytes) -> NatPmpAddressResponse | NatPmpMapResponse | None:  # noqa: PLR0911 - one return per RFC 6886 opcode and malformation
    """A NAT-PMP response, or None for anything that is not one. Error responses may stop
    after the epoch (8 bytes): their other fields are undefined (RFC 6886 3.5)."""
    if len(data) < 8 or data[0] != NATPMP_VERSION or data[1] < 128:
        return None
    op = data[1] - 128
    result, epoch = struct.unpack_from("!HI", data, 2)
    if op == NatPmpOp.EXTERNAL_ADDRESS:
        address = None
        if result == NatPmpResult.SUCCESS:
            if len(data) < 12:
                return None
            address = str(ipaddress.IPv4Address(data[8:12]))
        return NatPmpAddressResponse(result=result, epoch=epoch, address=address)
    if op in (NatPmpOp.MAP_UDP, NatPmpOp.MAP_TCP):
        if len(data) < 16:
            if result == NatPmpResult.SUCCESS:
                return None
            return NatPmpMapResponse(op, result, epoch, 0, 0, 0)
        iport, eport, lifetime = struct.unpack_from("!HHI", data, 8)
        return NatPmpMapResponse(op, result, epoch, iport, eport, lifetime)
    return None


# --- PCP wire format (RFC 6887 7 and 11) ----------------------------------------------------


@dataclass(frozen=True)
class PcpResponse:
    op: int
    result: int
    lifetime: int
    epoch: int
    nonce: bytes | None = None  # MAP only
    protocol: int | None = None
    internal_port: int | None = None
    external_port: int | None = None
    external_address: str | None = None


def _ip16(address: str) -> bytes:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv4Address):
        return b"\x00" * 10 + b"\xff\xff" + ip.packed  # IPv4-mapped (RFC 6887 5)
    return ip.packed


def _ip_from16(raw: bytes) -> str:
    ip = ipaddress.IPv6Address(raw)
    return str(ip.ipv4_mapped) if ip.ipv4_mapped is not None else str(ip)


def pack_pcp_header(op: int, lifetime: int, client_address: str) -> bytes:
    _check_lifetime(lifetime)
    return struct.pack("!BBHI", PCP_VERSION, op & 0x7F, 0, lifetime) + _ip16(client_address)


def pack_pcp_announce(client_address: str) -> bytes:
    return pack_pcp_header(PcpOp.ANNOUNCE, 0, client_address)


def pack_pcp_map_request(  # noqa: PLR0913 - keyword-only fields of the RFC 6887 11.1 MAP request
    *,
    client_address: str,
    nonce: bytes,
    protocol: str,
    internal_port: int,
    external_port: int,
    lifetime: int,
    external_address: str = "0.0.0.0",
) -> bytes:
    """RFC 6887 11.1 MAP request (60 bytes). lifetime 0 deletes the mapping of this nonce."""
    if len(nonce) != NONCE_LEN:
        raise ValueError("a PCP nonce is 12 bytes")
    _check_port(internal_port, zero_ok=False)
    _check_port(external_port, zero_ok=True)
    return (
        pack_pcp_header(PcpOp.MAP, lifetime, client_address)
        + nonce
        + struct.pack("!B3xHH", ip_proto(protocol), internal_port, external_port)
        + _ip16(external_address)
    )


def parse_pcp_response(data: bytes) -> PcpResponse | None:
    """A PCP response (R bit set), or None. A MAP response shorter than 60 bytes is kept only
    when it reports an error (then its MAP fields may be missing)."""
    if not 24 <= len(data) <= PCP_MAX_MESSAGE or data[0] != PCP_VERSION or not data[1] & 0x80:
        return None
    op = data[1] & 0x7F
    result = data[3]
    lifetime, epoch = struct.unpack_from("!II", data, 4)
    if op != PcpOp.MAP or (len(data) < 60 and result != PcpResult.SUCCESS):
        return PcpResponse(op=op, result=result, lifetime=lifetime, epoch=epoch)
    if len(data) < 60:
        return None
    nonce = bytes(data[24:36])
    proto, iport, eport = struct.unpack_from("!B3xHH", data, 36)
    return PcpResponse(
        op=op,
        result=result,
        lifetime=lifetime,
        epoch=epoch,
        nonce=nonce,
        protocol=proto,
        internal_port=iport,
        external_port=eport,
        external_address=_ip_from16(bytes(data[44:60])),
    )


def natpmp_op(protocol: str) -> NatPmpOp:
    p = protocol.upper()
    if p == "TCP":
        return NatPmpOp.MAP_TCP
    if p == "UDP":
        return NatPmpOp.MAP_UDP
    raise ValueError(f"protocol must be TCP or UDP, not {protocol!r}")


def ip_proto(protocol: str) -> int:
    return socket.IPPROTO_TCP if natpmp_op(protocol) is NatPmpOp.MAP_TCP else socket.IPPROTO_UDP


def _check_port(port: int, *, zero_ok: bool) -> None:
    if not (0 if zero_ok else 1) <= port <= 65535:
        raise ValueError(f"port out of range: {port}")


def _check_lifetime(lifetime: int) -> None:
    if not 0 <= lifetime <= MAX_LIFETIME:
        raise ValueError(f"lifetime out of range: {lifetime}")
