"""SSDP M-SEARCH building, answer parsing (hostile input included) and discovery on loopback."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reverseprobe.portmap import ssdp
from reverseprobe.portmap.ssdp import SsdpResponse, build_msearch, parse_response

SRC = ("192.168.2.1", 1900)
MINIUPNPD_ANSWER = (
    b"HTTP/1.1 200 OK\r\n"
    b"CACHE-CONTROL: max-age=120\r\n"
    b"ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n"
    b"USN: uuid:b9f8b0cc-cd21-4c26-bb35-ee97532fbb64::urn:schemas-upnp-org:device:"
    b"InternetGatewayDevice:1\r\n"
    b"EXT:\r\n"
    b"SERVER: Debian/6.18 UPnP/1.1 MiniUPnPd/2.3.1\r\n"
    b"LOCATION: http://192.168.2.1:41049/rootDesc.xml\r\n"
    b'OPT: "http://schemas.upnp.org/upnp/1/0/"; ns=01\r\n'
    b"01-NLS: 1795941519\r\n"
    b"\r\n"
)


def test_build_msearch_is_uda_1_1():
    msg = build_msearch("ssdp:all", mx=2)
    assert msg == (
        b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n"
        b'MAN: "ssdp:discover"\r\nMX: 2\r\nST: ssdp:all\r\n\r\n'
    )


def test_build_msearch_refuses_header_injection():
    with pytest.raises(ValueError):
        build_msearch("ssdp:all\r\nX: 1")


def test_parse_miniupnpd_answer():
    r = parse_response(MINIUPNPD_ANSWER, SRC)
    assert r == SsdpResponse(
        location="http://192.168.2.1:41049/rootDesc.xml",
        st="urn:schemas-upnp-org:device:InternetGatewayDevice:1",
        usn="uuid:b9f8b0cc-cd21-4c26-bb35-ee97532fbb64::urn:schemas-upnp-org:device:"
        "InternetGatewayDevice:1",
        server="Debian/6.18 UPnP/1.1 MiniUPnPd/2.3.1",
        source=SRC,
    )
    assert r.is_igd
    assert ssdp.trusted(r, "192.168.2.1")


def test_parse_notify_alive_and_case_insensitive_headers():
    data = (
        b"NOTIFY * HTTP/1.1\r\nhost: 239.255.255.250:1900\r\nnt: urn:schemas-upnp-org:service:"
        b"WANIPConnection:2\r\nnts: ssdp:alive\r\nlocation: http://10.0.0.1:5000/desc.xml\r\n\r\n"
    )
    r = parse_response(data, ("10.0.0.1", 1900))
    assert r is not None and r.is_igd and r.st.endswith("WANIPConnection:2")
    byebye = data.replace(b"ssdp:alive", b"ssdp:byebye")
    assert parse_response(byebye, ("10.0.0.1", 1900)) is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\xff" * 40,
        b"HTTP/1.1 404 Not Found\r\nLOCATION: http://1.2.3.4/\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nST: ssdp:all\r\n\r\n",  # no LOCATION
        b"HTTP/1.1 200 OK\r\nLOCATION: ftp://192.168.2.1/x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nLOCATION: http:///x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nLOCATION: http://192.168.2.1:99999/x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nLOCATION: http://192.168.2.1/a b\r\n\r\n",
        b"M-SEARCH * HTTP/1.1\r\nLOCATION: http://192.168.2.1/\r\n\r\n",
    ],
)
def test_parse_rejects_what_is_not_an_answer(data):
    assert parse_response(data, SRC) is None


def test_parse_huge_and_truncated():
    huge = MINIUPNPD_ANSWER.replace(b"SERVER: ", b"SERVER: " + b"x" * 100_000)
    r = parse_response(huge, SRC)
    assert r is None or len(r.server or "") <= 1024
    for cut in range(len(MINIUPNPD_ANSWER)):
        parse_response(MINIUPNPD_ANSWER[:cut], SRC)  # never raises


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_parse_never_raises_on_bytes(data):
    r = parse_response(data, SRC)
    assert r is None or r.location.startswith(("http://", "https://"))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=80), max_size=12))
def test_parse_never_raises_on_header_soup(lines):
    data = ("HTTP/1.1 200 OK\r\n" + "\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "replace")
    parse_response(data, SRC)


def test_trusted_only_for_the_answering_device_or_gateway():
    def resp(loc: str, src: str = "192.168.2.7") -> SsdpResponse:
        return SsdpResponse(
            loc, "urn:schemas-upnp-org:device:InternetGatewayDevice:1", None, None, (src, 1900)
        )

    assert ssdp.trusted(resp("http://192.168.2.7:80/d.xml"), "192.168.2.1")
    assert ssdp.trusted(resp("http://192.168.2.1:80/d.xml"), "192.168.2.1")
    assert not ssdp.trusted(resp("http://8.8.8.8/d.xml"), "192.168.2.1")
    assert not ssdp.trusted(resp("http://router.example/d.xml"), "192.168.2.1")


def test_rank_prefers_the_gateway_and_igd_device():
    a = SsdpResponse(
        "http://192.168.2.9/",
        "urn:schemas-upnp-org:device:InternetGatewayDevice:2",
        None,
        None,
        ("192.168.2.9", 1900),
    )
    b = SsdpResponse(
        "http://192.168.2.1/",
        "urn:schemas-upnp-org:service:WANIPConnection:1",
        None,
        None,
        ("192.168.2.1", 1900),
    )
    assert ssdp.rank(b, "192.168.2.1") < ssdp.rank(a, "192.168.2.1")


# --- discovery against small fake responders on loopback (hostile and slow ones) -----------


class _Responder:
    """A UDP server on 127.0.0.1 answering each datagram with `answers(request)`."""

    def __init__(self, answers, delay: float = 0.0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.answers = answers
        self.delay = delay
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except OSError:
                continue
            self.requests.append(data)
            time.sleep(self.delay)
            for a in self.answers(data, self.port):
                self.sock.sendto(a, addr)

    def close(self) -> None:
        self._stop.set()
        self._t.join(1)
        self.sock.close()


def _answer(port: int) -> bytes:
    return MINIUPNPD_ANSWER.replace(
        b"http://192.168.2.1:41049", f"http://127.0.0.1:{port}".encode()
    )


def test_discover_unicast_answer_returns_at_once():
    r = _Responder(lambda req, port: [_answer(port)] if b"InternetGatewayDevice:1" in req else [])
    try:
        t0 = time.monotonic()
        got = ssdp.discover_igd("127.0.0.1", 3.0, port=r.port, multicast=False)
        assert got is not None and got.location == f"http://127.0.0.1:{r.port}/rootDesc.xml"
        assert time.monotonic() - t0 < 2.5  # returned before the timeout, not at it
    finally:
        r.close()


def test_discover_ignores_garbage_and_untrusted_locations_then_times_out():
    def hostile(req, port):
        return [
            b"\x00" * 1500,
            b"HTTP/1.1 200 OK\r\nST: ssdp:all\r\n\r\n",
            MINIUPNPD_ANSWER.replace(b"192.168.2.1:41049", b"203.0.113.9:80"),
            b"HTTP/1.1 200 OK\r\nLOCATION: http://127.0.0.1/\r\nST: upnp:rootdevice\r\n\r\n",
        ]

    r = _Responder(hostile)
    try:
        t0 = time.monotonic()
        assert ssdp.discover_igd("127.0.0.1", 0.5, port=r.port, multicast=False) is None
        assert time.monotonic() - t0 < 2.0
    finally:
        r.close()


def test_discover_flood_is_bounded():
    r = _Responder(lambda req, port: [b"HTTP/1.1 200 OK\r\n\r\n"] * 200)
    try:
        t0 = time.monotonic()
        assert ssdp.discover_igd("127.0.0.1", 1.0, port=r.port, multicast=False) is None
        assert time.monotonic() - t0 < 3.0
    finally:
        r.close()


def test_discover_sends_later_waves_when_silent():
    r = _Responder(lambda req, port: [])
    try:
        ssdp.discover_igd("127.0.0.1", 0.8, port=r.port, multicast=False)
        time.sleep(0.1)
        sts = [line for req in r.requests for line in req.split(b"\r\n") if line.startswith(b"ST:")]
        assert b"ST: ssdp:all" in sts
        assert sts[0] == b"ST: " + ssdp.IGD_V1.encode()
    finally:
        r.close()


def test_discover_without_destinations_returns_none():
    assert ssdp.discover_igd(None, 0.2, multicast=False) is None
