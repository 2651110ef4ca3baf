"""A bounded UPnP IGD client: device description (UDA 1.1, 2) and SOAP control (UDA 1.1, 3.2).

miniupnpc reads every HTTP answer of the router into memory without a limit (an endless chunked
description took `check` to 547 MiB in 5 s) and cannot be stopped once a call has started. This
client reads each answer through `httpfetch.fetch` (requests, with a byte cap and a total
deadline), refuses a control URL on another host than the description (a LAN device must not
send us elsewhere), and takes no DTD (no entity expansion). `BoundedUpnp` has the methods of
miniupnpc.UPnP that `igd.Igd` calls, so either can sit behind an Igd; every value it returns is
still the router's raw string: `igd.Igd` validates them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import urljoin, urlsplit
from xml.sax.saxutils import escape

from reverseprobe.httpfetch import FetchError, FetchKind, HttpAnswer, fetch
from reverseprobe.portmap.errors import UpnpError, UpnpGarbage, UpnpTimeout
from reverseprobe.textsafe import quote

MAX_DESCRIPTION = 256 * 1024  # miniupnpd's rootDesc.xml is ~3 KiB; big vendor ones ~40 KiB
MAX_SOAP_ANSWER = 64 * 1024  # a SOAP answer of the actions we use is < 2 KiB
_WAN_SERVICES = (
    "urn:schemas-upnp-org:service:WANIPConnection:2",
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
)
_NO_ENTRY = (713, 714)  # SpecifiedArrayIndexInvalid, NoSuchEntryInArray: "none", not an error


def http_request(  # noqa: PLR0913 - keyword-only options of one bounded HTTP request
    url: str,
    *,
    method: str = "GET",
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    timeout: float,
    max_bytes: int,
    what: str,
) -> HttpAnswer:
    """One HTTP exchange (RFC 9112) within `timeout` seconds in all and at most `max_bytes` of
    body (`httpfetch.fetch`); its failures as UpnpTimeout, UpnpGarbage or UpnpError."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise UpnpGarbage(what, f"not an http URL: {quote(url)}")
    try:
        return fetch(
            method,
            url,
            timeout=timeout,
            max_bytes=max_bytes,
            headers=headers,
            body=body if method != "GET" or body else None,
            name=f"upnp-{what}",
        )
    except FetchError as exc:
        if exc.kind is FetchKind.TIMEOUT:
            raise UpnpTimeout(what, timeout) from None
        if exc.kind in (FetchKind.REFUSED, FetchKind.UNREACHABLE):
            raise UpnpError(
                None,
                "Miniupnpc Socket error",
                f"{what}: no connection to {_hostport(url)} ({exc.reason})",
                "check that UPnP is on in the router",
            ) from None
        raise UpnpGarbage(what, exc.reason) from None


def _hostport(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or 80
    except ValueError:
        return quote(parts.netloc, 60)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _digits(text: str, most: int) -> bool:
    return 0 < len(text) <= most and all("0" <= c <= "9" for c in text)


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


def service_control_url(body: bytes, location: str, service_type: str) -> str | None:
    """The control URL of `service_type` in a device description, or None when it has none.

    The same rules as `parse_description`: no DTD, and the URL on the host of `location`
    (UpnpGarbage otherwise)."""
    what = "the IGD description"
    root = _xml(body, what)
    base = _child_text(root, "URLBase") or location
    for el in root.iter():
        if _local(el.tag) != "service" or _child_text(el, "serviceType") != service_type:
            continue
        ctl = _child_text(el, "controlURL")
        if not ctl:
            continue
        url = urljoin(base, ctl)
        try:
            same = urlsplit(url).hostname == urlsplit(location).hostname
        except ValueError:
            same = False
        if not same or any(ord(c) < 0x21 or ord(c) > 0x7E for c in url):
            raise UpnpGarbage(what, f"control URL {quote(url, 80)} is not on the IGD itself")
        return url
    return None


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

    def call(self, action: str, args: tuple[tuple[str, str], ...] = ()) -> dict[str, str]:
        """One SOAP action of `servicetype` at `controlurl` (another service than the WAN
        connection: set both first, as `pinhole` does for WANIPv6FirewallControl)."""
        return self._soap(action, args)

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

    def addportmapping(  # noqa: PLR0913, PLR0917 - miniupnpc's positional signature
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
