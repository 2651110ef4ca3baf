"""NAT-PMP (RFC 6886) and PCP (RFC 6887) wire formats and the client, with I/O injected."""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reverseprobe.portmap import natpmp, wire
from reverseprobe.portmap.wire import (
    Method,
    NatPmpAddressResponse,
    NatPmpMapResponse,
    PcpResponse,
    PcpResult,
)

NONCE = bytes(range(12))


# --- wire formats ------------------------------------------------------------------------


def test_natpmp_requests_are_rfc6886_bytes():
    assert wire.pack_natpmp_address_request() == b"\x00\x00"
    req = wire.pack_natpmp_map_request("TCP", 11112, 11112, 7200)
    assert req == struct.pack("!BBHHHI", 0, 2, 0, 11112, 11112, 7200)
    assert len(req) == 12
    assert wire.pack_natpmp_map_request("udp", 5000, 0, 0)[1] == 1


@pytest.mark.parametrize(
    "args",
    [
        ("TCP", 0, 1, 1),
        ("TCP", 65536, 1, 1),
        ("TCP", 1, -1, 1),
        ("TCP", 1, 1, -1),
        ("TCP", 1, 1, 2**32),
        ("SCTP", 1, 1, 1),
    ],
)
def test_natpmp_pack_refuses_bad_values(args):
    with pytest.raises(ValueError):
        wire.pack_natpmp_map_request(*args)


def test_parse_natpmp_address_and_map_responses():
    addr = struct.pack("!BBHI", 0, 128, 0, 77) + socket.inet_aton("100.128.0.2")
    assert wire.parse_natpmp_response(addr) == NatPmpAddressResponse(0, 77, "100.128.0.2")
    refused = struct.pack("!BBHI", 0, 128, 3, 77)  # error responses may stop after the epoch
    assert wire.parse_natpmp_response(refused) == NatPmpAddressResponse(3, 77, None)
    m = struct.pack("!BBHIHHI", 0, 130, 0, 5, 11112, 11113, 120)
    assert wire.parse_natpmp_response(m) == NatPmpMapResponse(2, 0, 5, 11112, 11113, 120)
    assert wire.parse_natpmp_response(struct.pack("!BBHI", 0, 130, 2, 5)) == NatPmpMapResponse(
        2, 2, 5, 0, 0, 0
    )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        b"\x00\x80\x00\x00\x00\x00\x00",  # 7 bytes
        struct.pack("!BBHI", 0, 128, 0, 1),  # success without the address
        struct.pack("!BBHI", 0, 130, 0, 1),  # map success without its fields
        struct.pack("!BBHI", 1, 128, 0, 1) + b"\x01\x02\x03\x04",  # version 1
        struct.pack("!BBHI", 0, 2, 0, 1) + b"\x01\x02\x03\x04",  # a request, not a response
        struct.pack("!BBHI", 0, 200, 0, 1) + b"\x00" * 8,  # unknown opcode
    ],
)
def test_parse_natpmp_rejects(data):
    assert wire.parse_natpmp_response(data) is None


def test_pcp_map_request_is_rfc6887_bytes():
    req = wire.pack_pcp_map_request(
        client_address="192.168.2.2",
        nonce=NONCE,
        protocol="TCP",
        internal_port=11112,
        external_port=11112,
        lifetime=3600,
    )
    assert len(req) == 60
    assert req[:4] == bytes([2, 1, 0, 0])
    assert struct.unpack("!I", req[4:8])[0] == 3600
    assert req[8:24] == b"\x00" * 10 + b"\xff\xff" + socket.inet_aton("192.168.2.2")
    assert req[24:36] == NONCE
    assert req[36] == 6 and req[37:40] == b"\x00\x00\x00"
    assert struct.unpack("!HH", req[40:44]) == (11112, 11112)
    assert req[44:60] == b"\x00" * 10 + b"\xff\xff" + b"\x00" * 4
    assert len(wire.pack_pcp_announce("192.168.2.2")) == 24
    with pytest.raises(ValueError):
        wire.pack_pcp_map_request(
            client_address="192.168.2.2",
            nonce=b"x",
            protocol="TCP",
            internal_port=1,
            external_port=1,
            lifetime=1,
        )


def pcp_map_response(
    result: int = 0,
    *,
    nonce: bytes = NONCE,
    proto: int = 6,
    iport: int = 11112,
    eport: int = 11112,
    lifetime: int = 120,
    ext: str = "100.128.0.2",
) -> bytes:
    head = struct.pack("!BBBBII", 2, 0x81, 0, result, lifetime, 9) + b"\x00" * 12
    body = nonce + struct.pack("!B3xHH", proto, iport, eport)
    return head + body + b"\x00" * 10 + b"\xff\xff" + socket.inet_aton(ext)


def test_parse_pcp_map_response():
    r = wire.parse_pcp_response(pcp_map_response(eport=1024))
    assert r == PcpResponse(
        op=1,
        result=0,
        lifetime=120,
        epoch=9,
        nonce=NONCE,
        protocol=6,
        internal_port=11112,
        external_port=1024,
        external_address="100.128.0.2",
    )
    short_error = struct.pack("!BBBBII", 2, 0x81, 0, 2, 30, 9) + b"\x00" * 12
    assert wire.parse_pcp_response(short_error) == PcpResponse(op=1, result=2, lifetime=30, epoch=9)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        pcp_map_response()[:23],
        pcp_map_response()[:59],  # a success cut short
        b"\x01" + pcp_map_response()[1:],  # version 1
        pcp_map_response()[:1] + b"\x01" + pcp_map_response()[2:],  # R bit clear: a request
        pcp_map_response() + b"\x00" * 2000,  # longer than PCP's 1100 bytes
    ],
)
def test_parse_pcp_rejects(data):
    assert wire.parse_pcp_response(data) is None


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=1300))
def test_parsers_never_raise(data):
    wire.parse_natpmp_response(data)
    wire.parse_pcp_response(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=60, max_size=60))
def test_pcp_parse_of_any_60_bytes_with_version_and_r_bit(tail):
    data = bytes([2, 0x81]) + tail[2:]
    r = wire.parse_pcp_response(data)
    assert r is not None and r.op == 1


def test_every_result_code_has_text():
    for code in wire.NatPmpResult:
        assert wire.result_text(Method.NATPMP, code)[0]
    for pcode in wire.PcpResult:
        assert wire.result_text(Method.PCP, pcode)[0]
    assert "unknown" in wire.result_text(Method.PCP, 99)[0]


# --- the client, through a scripted transport ---------------------------------------------


class ScriptedTransport:
    """Answers each sent request with `reply(request)` (a list of datagrams, maybe empty)."""

    def __init__(self, reply: Callable[[bytes], list[bytes]], local: str = "192.168.2.2"):
        self.reply = reply
        self.sent: list[bytes] = []
        self.queue: list[bytes] = []
        self._local = local

    @property
    def local_address(self) -> str:
        return self._local

    def send(self, data: bytes) -> None:
        self.sent.append(data)
        self.queue.extend(self.reply(data))

    def recv(self, timeout: float) -> bytes | None:
        if self.queue:
            return self.queue.pop(0)
        return None

    def close(self) -> None:
        pass


def test_external_address_success_and_refusal():
    ok = ScriptedTransport(
        lambda req: [struct.pack("!BBHI", 0, 128, 0, 1) + socket.inet_aton("100.128.0.2")]
    )
    r = natpmp.external_address("192.168.2.1", 1.0, transport=ok)
    assert r.ok and r.address == "100.128.0.2"
    bad = ScriptedTransport(lambda req: [struct.pack("!BBHI", 0, 128, 3, 1)])
    r = natpmp.external_address("192.168.2.1", 1.0, transport=bad)
    assert not r.ok and r.result == 3 and "double NAT" in r.meaning


def test_external_address_no_answer_is_a_result():
    silent = ScriptedTransport(lambda req: [])
    r = natpmp.external_address("192.168.2.1", 0.3, transport=silent)
    assert r.result is None and not r.ok and "no NAT-PMP answer" in r.meaning
    assert len(silent.sent) >= 2  # retransmitted (RFC 6886 3.1)


def test_pcp_map_matches_nonce_and_ignores_strangers():
    def reply(req: bytes) -> list[bytes]:
        nonce = req[24:36]
        return [
            b"garbage",
            pcp_map_response(nonce=b"z" * 12),  # another client's answer
            pcp_map_response(nonce=nonce, iport=9999),  # another internal port
            pcp_map_response(nonce=nonce, eport=1024, lifetime=120),
        ]

    t = ScriptedTransport(reply)
    m = natpmp.map_port("192.168.2.1", 11112, lifetime=60, method=Method.PCP, transport=t)
    assert m.ok and m.external_port == 1024 and m.lifetime == 120
    assert m.external_address == "100.128.0.2" and m.nonce == t.sent[0][24:36]
    assert m.client_address == "192.168.2.2"


def test_pcp_refusal_and_natpmp_only_server():
    t = ScriptedTransport(
        lambda req: [pcp_map_response(PcpResult.NOT_AUTHORIZED, nonce=req[24:36], iport=104)]
    )
    m = natpmp.map_port("192.168.2.1", 104, method=Method.PCP, transport=t)
    assert not m.ok and m.result == 2 and m.external_port == 104 and m.fix

    old = ScriptedTransport(lambda req: [struct.pack("!BBHI", 0, 129, 1, 5)])
    m = natpmp.map_port("192.168.2.1", 11112, method=Method.PCP, transport=old)
    assert m.result == PcpResult.UNSUPP_VERSION and "NAT-PMP" in m.meaning


def test_natpmp_map_and_unmap():
    def reply(req: bytes) -> list[bytes]:
        _, op, _, iport, eport, life = struct.unpack("!BBHHHI", req)
        return [struct.pack("!BBHIHHI", 0, 128 + op, 0, 3, iport, eport or 0, min(life, 3600))]

    t = ScriptedTransport(reply)
    m = natpmp.map_port("192.168.2.1", 11112, lifetime=7200, method=Method.NATPMP, transport=t)
    assert m.ok and m.lifetime == 3600 and m.nonce is None
    gone = natpmp.unmap(m, transport=t)
    assert gone.ok and gone.lifetime == 0
    assert struct.unpack("!BBHHHI", t.sent[-1])[3:] == (11112, 0, 0)


def test_pcp_unmap_reuses_the_nonce():
    t = ScriptedTransport(lambda req: [pcp_map_response(nonce=req[24:36], lifetime=0)])
    m = natpmp.Mapping(
        method=Method.PCP,
        gateway="192.168.2.1",
        client_address="192.168.2.2",
        protocol="TCP",
        internal_port=11112,
        external_port=11112,
        lifetime=120,
        result=0,
        meaning="success",
        nonce=NONCE,
    )
    natpmp.unmap(m, transport=t)
    assert t.sent[0][24:36] == NONCE and struct.unpack("!I", t.sent[0][4:8])[0] == 0


def test_map_no_answer_raises_no_answer():
    with pytest.raises(natpmp.NoAnswer):
        natpmp.map_port(
            "192.168.2.1", 11112, timeout=0.3, transport=ScriptedTransport(lambda r: [])
        )


def test_refused_udp_port_is_no_answer():
    """A real socket to a closed loopback port: ICMP port unreachable ends the wait early."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    t = natpmp.UdpTransport("127.0.0.1", port)
    try:
        with pytest.raises(natpmp.NoAnswer, match="refused"):
            natpmp.map_port("127.0.0.1", 11112, timeout=5.0, transport=t)
    finally:
        t.close()
