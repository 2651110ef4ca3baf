"""Fast discovery of the UPnP Internet Gateway Device with SSDP (UPnP Device Architecture 1.1, 1.3).

miniupnpc's `discover()` waits at least 1 s per search type (~1 s with a router, ~4 s without).
Like tailscale's portmapper, one UDP socket sends M-SEARCH to the gateway (unicast) and to the
multicast group, takes the first IGD answer and waits only `settle` more for a better one.
Parsing is pure and never raises: whatever a LAN device sends is only data.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

SSDP_ADDR = "239.255.255.250"
SSDP_PORT = 1900
IGD_V1 = "urn:schemas-upnp-org:device:InternetGatewayDevice:1"
IGD_V2 = "urn:schemas-upnp-org:device:InternetGatewayDevice:2"
WANIP_V1 = "urn:schemas-upnp-org:service:WANIPConnection:1"
WANIP_V2 = "urn:schemas-upnp-org:service:WANIPConnection:2"
# (seconds after the start, search targets) sent while no IGD has answered. Measured with
# miniupnpd 2.3.1: 2 queries are answered after ~51 ms, 8 after ~110 ms, 10 incl. ssdp:all
# (13 answers each) after 75-250 ms. Devices that answer only ssdp:all get it at 0.1 s.
WAVES: tuple[tuple[float, tuple[str, ...]], ...] = (
    (0.0, (IGD_V1, IGD_V2)),
    (0.1, (WANIP_V1, WANIP_V2, "ssdp:all")),
    (0.6, (IGD_V1, IGD_V2, WANIP_V1, WANIP_V2, "ssdp:all")),  # UDP may drop one wave
)
# What marks an answer as coming from an IGD (the ST/NT or the USN names one of these).
_IGD_MARKERS = ("internetgatewaydevice", "wanipconnection", "wanpppconnection")
_MAX_DATAGRAM = 8192  # SSDP answers are a few hundred bytes; more is read and cut off
_MAX_ANSWERS = 256  # datagrams looked at per discovery: a chatty LAN cannot keep us busy
_MAX_HEADER_VALUE = 1024
_MAX_SERVER = 256  # the SERVER header names the router's make: "OS/1.0 UPnP/1.1 product/2.3"


@dataclass(frozen=True)
class SsdpResponse:
    """One SSDP search answer (or NOTIFY ssdp:alive) with a usable LOCATION."""

    location: str
    st: str
    usn: str | None
    server: str | None
    source: tuple[str, int]

    @property
    def is_igd(self) -> bool:
        text = f"{self.st} {self.usn or ''}".casefold()
        return any(m in text for m in _IGD_MARKERS)


def build_msearch(st: str, mx: int = 1, host: str = f"{SSDP_ADDR}:{SSDP_PORT}") -> bytes:
    """An M-SEARCH request (UDA 1.1, 1.3.2); `st` is the search target."""
    if any(c in st or c in host for c in "\r\n"):
        raise ValueError("CR/LF in an SSDP header value")
    return (
        "M-SEARCH * HTTP/1.1\r\n"
        f"HOST: {host}\r\n"
        'MAN: "ssdp:discover"\r\n'
        f"MX: {int(mx)}\r\n"
        f"ST: {st}\r\n"
        "\r\n"
    ).encode("ascii")


def parse_response(data: bytes, source: tuple[str, int]) -> SsdpResponse | None:
    """An `HTTP/1.1 200 OK` search answer or a `NOTIFY` alive message -> SsdpResponse.

    None for anything else: another status, no LOCATION, a LOCATION that is not an http URL
    naming a host, a body that is not text. Never raises.
    """
    try:
        return _parse(data[:_MAX_DATAGRAM], source)
    except Exception:  # noqa: BLE001 - garbage from the network is not an error of ours
        return None


def _parse(data: bytes, source: tuple[str, int]) -> SsdpResponse | None:
    text = data.decode("latin-1")
    head = text.split("\r\n\r\n", 1)[0]
    lines = head.replace("\r\n", "\n").split("\n")
    first = lines[0].strip().split()
    if len(first) >= 2 and first[0].upper().startswith("HTTP/1.") and first[1] == "200":
        notify = False
    elif len(first) >= 1 and first[0].upper() == "NOTIFY":
        notify = True
    else:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        if key and key not in headers:
            headers[key] = value.strip()[:_MAX_HEADER_VALUE]
    if notify and headers.get("nts", "").lower() != "ssdp:alive":
        return None
    location = headers.get("location", "")
    if not _usable_location(location):
        return None
    st = headers.get("nt" if notify else "st", "")
    return SsdpResponse(
        location=location,
        st=st,
        usn=headers.get("usn") or None,
        server=headers.get("server", "")[:_MAX_SERVER] or None,  # shown escaped (textsafe)
        source=(str(source[0]), int(source[1])),
    )


def _usable_location(location: str) -> bool:
    if not location or any(ord(c) < 0x21 or ord(c) > 0x7E for c in location):
        return False
    parts = urlsplit(location)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    parts.port  # noqa: B018 - raises ValueError on a bad port, caught by parse_response
    return True


def location_host(location: str) -> str | None:
    try:
        host = urlsplit(location).hostname
    except ValueError:
        return None
    return host or None


def trusted(resp: SsdpResponse, gateway: str | None) -> bool:
    """A LOCATION we will let miniupnpc fetch: on the answering device itself or the gateway.

    A LAN device could otherwise point us anywhere (even a public address).
    """
    host = location_host(resp.location)
    if host is None:
        return False
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return str(ip) == resp.source[0] or (gateway is not None and str(ip) == gateway)


def rank(resp: SsdpResponse, gateway: str | None) -> tuple[int, int, int]:
    """Sort key, best first: from the gateway, then an IGD device type, then its version."""
    st = resp.st.casefold()
    from_gateway = gateway is not None and gateway in (resp.source[0], location_host(resp.location))
    return (
        0 if from_gateway else 1,
        0 if "internetgatewaydevice" in st else 1,
        0 if st.endswith(":2") else 1,
    )


def discover_igd(  # noqa: PLR0912 - unicast and multicast waves, each with its own socket-error exits
    gateway: str | None,
    timeout: float,
    *,
    settle: float = 0.05,
    port: int = SSDP_PORT,
    multicast: bool = True,
) -> SsdpResponse | None:
    """The best IGD answer within `timeout` seconds, or None.

    One socket sends M-SEARCH to `gateway:port` (unicast) and, with `multicast`, to
    239.255.255.250:1900, in waves (`WAVES`): the IGD device types first, since every extra
    query delays miniupnpd's answers (it queues them 50 ms and more). An answer from the
    gateway itself ends the search at once; any other IGD answer starts a `settle` wait for
    the gateway's. At most `_MAX_ANSWERS` datagrams are read.
    """
    t0 = time.monotonic()
    end = t0 + max(0.0, timeout)
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    except OSError:
        return None
    try:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 2)
        dests: list[tuple[str, int]] = []
        if gateway:
            dests.append((gateway, port))
        if multicast:
            dests.append((SSDP_ADDR, SSDP_PORT))
        waves = list(WAVES)
        sent_any = False
        best: SsdpResponse | None = None
        answers = 0
        while answers < _MAX_ANSWERS:
            now = time.monotonic()
            while waves and best is None and now - t0 >= waves[0][0]:
                sent_any = _send_all(sock, dests, waves.pop(0)[1]) or sent_any
            if not sent_any or now >= end:
                break
            wait = end - now
            if waves and best is None:
                wait = min(wait, t0 + waves[0][0] - now)
            sock.settimeout(max(0.001, wait))
            try:
                data, src = sock.recvfrom(_MAX_DATAGRAM)
            except (TimeoutError, BlockingIOError, InterruptedError):
                continue
            except OSError:  # e.g. an ICMP error queued on the socket: keep listening
                answers += 1
                continue
            answers += 1
            resp = parse_response(data, src)
            if resp is None or not resp.is_igd or not trusted(resp, gateway):
                continue
            if gateway is not None and resp.source[0] == gateway:
                return resp  # the gateway's own IGD: nothing better can come
            if best is None:
                end = min(end, time.monotonic() + settle)
            if best is None or rank(resp, gateway) < rank(best, gateway):
                best = resp
        return best
    finally:
        sock.close()


def _send_all(
    sock: socket.socket, dests: Sequence[tuple[str, int]], targets: Sequence[str]
) -> bool:
    sent = False
    for st in targets:
        for dest in dests:
            host = f"{SSDP_ADDR}:{SSDP_PORT}" if dest[0] == SSDP_ADDR else f"{dest[0]}:{dest[1]}"
            try:
                sock.sendto(build_msearch(st, mx=1, host=host), dest)
                sent = True
            except OSError:  # no route for multicast, a full buffer: try the others
                continue
    return sent
