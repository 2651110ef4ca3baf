"""A bounded UPnP IGD client: device description (UDA 1.1, 2) and SOAP control (UDA 1.1, 3.2).

miniupnpc reads every HTTP answer of the router into memory without a limit (an endless chunked
description took `check` to 547 MiB in 5 s) and cannot be stopped once a call has started. This
client reads each answer with a byte cap and a read deadline of its own, refuses a control URL
on another host than the description (a LAN device must not send us elsewhere), and takes no
DTD (no entity expansion). `BoundedUpnp` has the methods of miniupnpc.UPnP that `igd.Igd`
calls, so either can sit behind an Igd; every value it returns is still the router's raw
string: `igd.Igd` validates them.
"""

from __future__ import annotations

import socket
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit
from xml.sax.saxutils import escape

from reverseprobe.portmap.errors import UpnpError, UpnpGarbage, UpnpTimeout
from reverseprobe.textsafe import quote

MAX_DESCRIPTION = 256 * 1024  # miniupnpd's rootDesc.xml is ~3 KiB; big vendor ones ~40 KiB
MAX_SOAP_ANSWER = 64 * 1024  # a SOAP answer of the actions we use is < 2 KiB
MAX_HEAD = 16 * 1024
_WAN_SERVICES = (
    "urn:schemas-upnp-org:service:WANIPConnection:2",
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
)
_NO_ENTRY = (713, 714)  # SpecifiedArrayIndexInvalid, NoSuchEntryInArray: "none", not an error


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes
    local_address: str


def _deadline_recv(sock: socket.socket, end: float, what: str, budget: float) -> bytes:
    left = end - time.monotonic()
    if left <= 0:
        raise UpnpTimeout(what, budget)
    sock.settimeout(left)
    try:
        return sock.recv(65536)
    except TimeoutError:
        raise UpnpTimeout(what, budget) from None


def http_request(
    url: str,
    *,
    method: str = "GET",
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    timeout: float,
    max_bytes: int,
    what: str,
) -> HttpAnswer:
    """One HTTP/1.1 exchange (RFC 9112) with `Connection: close`, read within `timeout` seconds
    in all and at most `max_bytes` of body. Raises UpnpTimeout, UpnpGarbage or UpnpError."""
    end = time.monotonic() + max(0.0, timeout)
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise UpnpGarbage(what, f"not an http URL: {quote(url)}")
    host, port = parts.hostname, parts.port or 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    hosthdr = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"{method} {path} HTTP/1.1", f"Host: {hosthdr}", "Connection: close"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if method != "GET" or body:
        lines.append(f"Content-Length: {len(body)}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    try:
        sock = socket.create_connection((host, port), timeout=max(0.001, end - time.monotonic()))
    except TimeoutError:
        raise UpnpTimeout(what, timeout) from None
    except OSError as exc:
        raise UpnpError(
            None,
            "Miniupnpc Socket error",
            f"{what}: no connection to {host}:{port} ({exc.strerror or exc})",
            "check that UPnP is on in the router",
        ) from None
    with sock:
        local = str(sock.getsockname()[0])
        try:
            sock.sendall(request)
            return _read_answer(sock, end, timeout, max_bytes, what, local)
        except TimeoutError:
            raise UpnpTimeout(what, timeout) from None
        except OSError as exc:
            raise UpnpGarbage(what, f"connection broken ({exc.strerror or exc})") from None


def _read_answer(  # noqa: PLR0917 - internal
    sock: socket.socket, end: float, budget: float, max_bytes: int, what: str, local: str
) -> HttpAnswer:
    buf = bytearray()
    while b"\r\n\r\n" not in buf:
        if len(buf) > MAX_HEAD:
            raise UpnpGarbage(what, f"HTTP header longer than {MAX_HEAD} bytes")
        chunk = _deadline_recv(sock, end, what, budget)
        if not chunk:
            raise UpnpGarbage(what, "connection closed before the HTTP header ended")
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    if len(head) > MAX_HEAD:
        raise UpnpGarbage(what, f"HTTP header longer than {MAX_HEAD} bytes")
    lines = head.decode("latin-1").split("\r\n")
    first = lines[0].split(" ", 2)
    if len(first) < 2 or not first[0].startswith("HTTP/1.") or not _digits(first[1], 3):
        raise UpnpGarbage(what, f"not an HTTP status line: {quote(lines[0], 60)}")
    status = int(first[1])
    hdrs: dict[str, str] = {}
    for line in lines[1:]:
        k, sep, v = line.partition(":")
        if sep:
            hdrs.setdefault(k.strip().lower(), v.strip())
    chunked = "chunked" in hdrs.get("transfer-encoding", "").lower()
    length: int | None = None
    if not chunked and "content-length" in hdrs:
        cl = hdrs["content-length"]
        if not _digits(cl, 12):
            raise UpnpGarbage(what, f"Content-Length {quote(cl, 30)}")
        length = int(cl)
        if length > max_bytes:
            raise UpnpGarbage(what, f"announces {length} bytes (more than {max_bytes})")
    raw = bytearray(rest)
    limit = max_bytes if not chunked else max_bytes + 4096  # chunk framing on top of the body
    while length is None or len(raw) < length:
        if len(raw) > limit:
            raise UpnpGarbage(what, f"answer longer than {max_bytes} bytes")
        if chunked and raw.endswith(b"0\r\n\r\n") and _chunked_complete(raw):
            break
        chunk = _deadline_recv(sock, end, what, budget)
        if not chunk:
            break
        raw += chunk
    body = _dechunk(bytes(raw), max_bytes, what) if chunked else bytes(raw[: length or len(raw)])
    if len(body) > max_bytes:
        raise UpnpGarbage(what, f"answer longer than {max_bytes} bytes")
    return HttpAnswer(status=status, body=body, local_address=local)


def _digits(text: str, most: int) -> bool:
    return 0 < len(text) <= most and all("0" <= c <= "9" for c in text)


def _chunked_complete(raw: bytearray) -> bool:
    try:
        _dechunk(bytes(raw), len(raw) + 1, "", strict=True)
    except (ValueError, UpnpGarbage):
        return False
    return True


def _dechunk(raw: bytes, max_bytes: int, what: str, *, strict: bool = False) -> bytes:
    """RFC 9112 7.1 chunked body. With `strict`, ValueError unless the last chunk was seen."""
    out = bytearray()
    pos = 0
    while True:
        eol = raw.find(b"\r\n", pos)
        if eol < 0 or eol - pos > 64:
            if strict:
                raise ValueError("incomplete")
            raise UpnpGarbage(what, "broken chunked encoding")
        size_text = raw[pos:eol].split(b";", 1)[0].strip().decode("latin-1")
        if not size_text or any(c not in "0123456789abcdefABCDEF" for c in size_text):
            raise UpnpGarbage(what, f"chunk size {quote(size_text, 20)}")
        size = int(size_text, 16)
        if size == 0:
            return bytes(out)
        if len(out) + size > max_bytes:
            raise UpnpGarbage(what, f"answer longer than {max_bytes} bytes")
        start = eol + 2
        if start + size > len(raw):
            if strict:
                raise ValueError("incomplete")
            out += raw[start:]  # cut short by the peer: what came is all there is
            return bytes(out)
        out += raw[start : start + size]
        pos = start + size + 2


def _xml(body: bytes, what: str) -> ET.Element:
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise UpnpGarbage(what, "XML with a DTD (refused: no entity expansion)")
    try:
        return ET.fromstring(body)  # noqa: S314 - no DTD (checked above), size capped
    except ET.ParseError as exc:
        raise UpnpGarbage(what, f"not XML ({exc})") from None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(el: ET.Element, name: str) -> str:
    for c in el:
        if _local(c.tag) == name:
            return (c.text or "").strip()
    return ""


def parse_description(body: bytes, location: str) -> tuple[str, str]:
    """(control URL, service type) of the first WAN connection service, best type first.

    Raises UpnpGarbage for a document that is not a description, or UpnpError when it names no
    WAN connection service. The control URL must be on the host of `location`."""
    what = "the IGD description"
    root = _xml(body, what)
    base = _child_text(root, "URLBase") or location
    found: dict[str, str] = {}
    for el in root.iter():
        if _local(el.tag) != "service":
            continue
        stype = _child_text(el, "serviceType")
        ctl = _child_text(el, "controlURL")
        if stype in _WAN_SERVICES and ctl and stype not in found:
            found[stype] = ctl
    for stype in _WAN_SERVICES:
        if stype in found:
            url = urljoin(base, found[stype])
            try:
                same = urlsplit(url).hostname == urlsplit(location).hostname
            except ValueError:
                same = False
            if not same or any(ord(c) < 0x21 or ord(c) > 0x7E for c in url):
                raise UpnpGarbage(what, f"control URL {quote(url, 80)} is not on the IGD itself")
            return url, stype
    raise UpnpError(
        None,
        "No UPnP device discovered",
        f"{location} names no WAN connection service",
        "turn UPnP on in the router, or add the forwarding rule by hand",
    )


class BoundedUpnp:
    """The router's WAN connection service with a byte cap and deadline on every answer.

    `call_timeout` bounds one whole exchange; `igd.Igd` also abandons a call at its own share of
    the deadline (both hold: this one frees the socket, that one the caller)."""

    def __init__(self, location: str, *, timeout: float) -> None:
        self.location = location
        self.timeout = timeout
        self.lanaddr = ""
        self.controlurl = ""
        self.servicetype = ""

    def selectigd(self, url: str | None = None) -> str:
        """Read the description (capped at MAX_DESCRIPTION) and pick its WAN service."""
        self.location = url or self.location
        ans = http_request(
            self.location,
            timeout=self.timeout,
            max_bytes=MAX_DESCRIPTION,
            what="reading the IGD description",
        )
        if ans.status != 200:
            raise UpnpGarbage("the IGD description", f"HTTP status {ans.status}")
        self.lanaddr = ans.local_address
        self.controlurl, self.servicetype = parse_description(ans.body, self.location)
        return self.controlurl

    def _soap(self, action: str, args: tuple[tuple[str, str], ...] = ()) -> dict[str, str]:
        """One SOAP action (UDA 1.1, 3.2.1); its out arguments, or the UPnPError it raised."""
        inner = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in args)
        body = (
            '<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/'
            'envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>'
            f'<u:{action} xmlns:u="{self.servicetype}">{inner}</u:{action}></s:Body></s:Envelope>'
        ).encode()
        ans = http_request(
            self.controlurl,
            method="POST",
            body=body,
            headers={
                "Content-Type": 'text/xml; charset="utf-8"',
                "SOAPAction": f'"{self.servicetype}#{action}"',
            },
            timeout=self.timeout,
            max_bytes=MAX_SOAP_ANSWER,
            what=action,
        )
        if ans.status == 500:
            root = _xml(ans.body, action)
            for el in root.iter():
                if _local(el.tag) == "errorCode":
                    code = (el.text or "").strip()
                    if _digits(code, 4):
                        raise UpnpError.for_code(int(code))
                    raise UpnpGarbage(action, f"errorCode {quote(code, 30)}")
            raise UpnpGarbage(action, "HTTP 500 without a UPnP errorCode")
        if ans.status != 200:
            raise UpnpError(
                None,
                "Miniupnpc HTTP error",
                f"{action}: the router's control URL answered HTTP {ans.status}",
                "the router's UPnP is faulty or off: add the forwarding rule by hand",
            )
        root = _xml(ans.body, action)
        for el in root.iter():
            if _local(el.tag) == f"{action}Response":
                return {_local(c.tag): (c.text or "") for c in el}
        raise UpnpGarbage(action, f"no {action}Response in the answer")

    def _entry(self, action: str, args: tuple[tuple[str, str], ...]) -> dict[str, str] | None:
        try:
            return self._soap(action, args)
        except UpnpError as exc:
            if exc.code in _NO_ENTRY:
                return None
            raise

    def statusinfo(self) -> tuple[str, str, str]:
        r = self._soap("GetStatusInfo")
        return (
            r.get("NewConnectionStatus", ""),
            r.get("NewUptime", ""),
            r.get("NewLastConnectionError", ""),
        )

    def externalipaddress(self) -> str:
        return self._soap("GetExternalIPAddress").get("NewExternalIPAddress", "")

    def getspecificportmapping(
        self, eport: int, proto: str
    ) -> tuple[str, str, str, str, str] | None:
        r = self._entry(
            "GetSpecificPortMappingEntry",
            (("NewRemoteHost", ""), ("NewExternalPort", str(eport)), ("NewProtocol", proto)),
        )
        if r is None:
            return None
        return (
            r.get("NewInternalClient", ""),
            r.get("NewInternalPort", ""),
            r.get("NewPortMappingDescription", ""),
            r.get("NewEnabled", ""),
            r.get("NewLeaseDuration", ""),
        )

    def getgenericportmapping(
        self, index: int
    ) -> tuple[str, str, tuple[str, str], str, str, str, str] | None:
        r = self._entry("GetGenericPortMappingEntry", (("NewPortMappingIndex", str(index)),))
        if r is None:
            return None
        return (
            r.get("NewExternalPort", ""),
            r.get("NewProtocol", ""),
            (r.get("NewInternalClient", ""), r.get("NewInternalPort", "")),
            r.get("NewPortMappingDescription", ""),
            r.get("NewEnabled", ""),
            r.get("NewRemoteHost", ""),
            r.get("NewLeaseDuration", ""),
        )

    def addportmapping(  # noqa: PLR0917 - miniupnpc's positional signature
        self, eport: int, proto: str, iaddr: str, iport: int, desc: str, rhost: str, lease: int
    ) -> bool:
        self._soap(
            "AddPortMapping",
            (
                ("NewRemoteHost", rhost),
                ("NewExternalPort", str(eport)),
                ("NewProtocol", proto),
                ("NewInternalPort", str(iport)),
                ("NewInternalClient", iaddr),
                ("NewEnabled", "1"),
                ("NewPortMappingDescription", desc),
                ("NewLeaseDuration", str(lease)),
            ),
        )
        return True

    def deleteportmapping(self, eport: int, proto: str, rhost: str = "") -> bool:
        self._soap(
            "DeletePortMapping",
            (("NewRemoteHost", rhost), ("NewExternalPort", str(eport)), ("NewProtocol", proto)),
        )
        return True
