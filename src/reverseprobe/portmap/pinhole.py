"""IPv6 pinholes: the router's IPv6 firewall opened for one port of this PC (no NAT on IPv6).

Two ways, both reaching the router over IPv6 from the PC's own global address, since the
router admits a pinhole only for the address that asks (UPnP-gw-WANIPv6FirewallControl-v1
2.5.3 "InternalClient ... equals the control point's IP address"; RFC 6887 8.1):

- UPnP IGD v2 WANIPv6FirewallControl:1 (`PinholeControl`): GetFirewallStatus, AddPinhole ->
  UniqueID, UpdatePinhole, DeletePinhole, CheckPinholeWorking. The service is found in the IGD's
  description (read over IPv4 where SSDP found it) and called at the router's IPv6 address on the
  same port: miniupnpd 2.3.1 answers AddPinhole from an IPv4 client with 606.
- PCP MAP (RFC 6887 11) sent to the router's IPv6 address: the client and suggested external
  address are the PC's IPv6 address, the external port the internal one (a firewall maps
  nothing, RFC 6887 8.1 and 11.3); deleting it needs the nonce that made it (`state`).

Every value the router sends is checked here (UniqueID 0-65535, booleans, counts); an answer
that fails is UpnpGarbage.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from reverseprobe.portmap.errors import UpnpError, UpnpGarbage, pinhole_error
from reverseprobe.portmap.soap import MAX_DESCRIPTION, BoundedUpnp, http_request
from reverseprobe.portmap.soap import service_control_url as service_control_url
from reverseprobe.textsafe import quote

SERVICE = "urn:schemas-upnp-org:service:WANIPv6FirewallControl:1"
MAX_LEASE = 86400  # WANIPv6FirewallControl-v1 2.3.8: LeaseTime 1-86400 s (no permanent pinhole)
MAX_UID = 65535
_NO_SUCH_ENTRY = 704
_NO_PACKET_SENT = 709  # CheckPinholeWorking on a pinhole no packet used yet: it exists


@dataclass(frozen=True)
class FirewallStatus:
    """GetFirewallStatus: whether the router filters IPv6 and lets control points open it."""

    enabled: bool
    inbound_allowed: bool


def pinhole_lease(lease: int) -> int:
    """The LeaseTime to ask: forward's lease, 0 (permanent) and longer ones as 86400 s."""
    return MAX_LEASE if lease <= 0 or lease > MAX_LEASE else lease


def default_gateway6() -> str | None:
    """The IPv6 default route's gateway (netifaces-plus), with its zone for a link-local one."""
    try:
        import netifaces

        gws: Any = netifaces.gateways()
        entry = gws.get("default", {}).get(netifaces.AF_INET6)
    except Exception:  # noqa: BLE001 - a platform netifaces cannot read: not known
        return None
    if not entry:
        return None
    gw, ifname = str(entry[0]), str(entry[1])
    if "%" not in gw and gw.lower().startswith("fe80:"):
        gw = f"{gw}%{ifname}"
    return gw


def global_source6(gateway6: str | None) -> str | None:
    """This PC's global IPv6 address: the source toward the IPv6 default route (a UDP connect
    sends nothing); None without one (no route, or only ULA/link-local)."""
    from reverseprobe.addresses import AddressClass, classify
    from reverseprobe.routes import ROUTE_PROBE_V6, route_source

    del gateway6  # the route to the internet decides, not the one to the gateway
    src = route_source(ROUTE_PROBE_V6, socket.AF_INET6)
    return src if src is not None and classify(src) is AddressClass.GLOBAL_V6 else None


def ipv6_url(url: str, router6: str) -> str:
    """`url` with its host replaced by the router's IPv6 address (same port and path): the
    IGD serves one HTTP port on both families (miniupnpd binds it dual-stack)."""
    parts = urlsplit(url)
    addr, _, zone = router6.partition("%")
    host = f"[{ipaddress.IPv6Address(addr)}{'%25' + zone if zone else ''}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def find_service(location: str, timeout: float) -> str | None:
    """The WANIPv6FirewallControl:1 control URL of the IGD at `location`, or None when its
    description names none (an IGD v1, or v2 built without it). Raises UpnpError."""
    ans = http_request(
        location, timeout=timeout, max_bytes=MAX_DESCRIPTION, what="reading the IGD description"
    )
    if ans.status != 200:
        raise UpnpGarbage("the IGD description", f"HTTP status {ans.status}")
    return service_control_url(ans.body, location, SERVICE)


def _uint(value: str | None, what: str, name: str, most: int) -> int:
    text = (value or "").strip()
    if not 0 < len(text) <= 10 or not all("0" <= c <= "9" for c in text):
        raise UpnpGarbage(what, f"{name} {quote(text, 30)} is not a number")
    n = int(text)
    if n > most:
        raise UpnpGarbage(what, f"{name} {n} is out of range (0-{most})")
    return n


def _bool(value: str | None, what: str, name: str) -> bool:
    text = (value or "").strip().lower()
    if text in ("1", "true", "yes"):
        return True
    if text in ("0", "false", "no"):
        return False
    raise UpnpGarbage(what, f"{name} {quote(text, 20)} is not a boolean")


class PinholeControl:
    """The router's WANIPv6FirewallControl:1 service at `control_url` (an IPv6 URL). Every
    method raises UpnpError with the service's own meaning of its code (errors.pinhole_error)."""

    def __init__(self, control_url: str, *, timeout: float) -> None:
        self.control_url = control_url
        self._upnp = BoundedUpnp(control_url, timeout=timeout)
        self._upnp.controlurl = control_url
        self._upnp.servicetype = SERVICE

    @property
    def timeout(self) -> float:
        return self._upnp.timeout

    @timeout.setter
    def timeout(self, value: float) -> None:
        self._upnp.timeout = value

    def _call(self, action: str, args: tuple[tuple[str, str], ...] = ()) -> dict[str, str]:
        try:
            return self._upnp.call(action, args)
        except UpnpError as exc:
            raise pinhole_error(exc) from exc

    def status(self) -> FirewallStatus:
        """GetFirewallStatus (2.4.1): FirewallEnabled and InboundPinholeAllowed."""
        what = "GetFirewallStatus"
        r = self._call(what)
        return FirewallStatus(
            enabled=_bool(r.get("FirewallEnabled"), what, "FirewallEnabled"),
            inbound_allowed=_bool(r.get("InboundPinholeAllowed"), what, "InboundPinholeAllowed"),
        )

    def add(self, internal_client: str, internal_port: int, lease: int, protocol: int = 6) -> int:
        """AddPinhole (2.4.3) from any remote host and port to internal_client:internal_port;
        the UniqueID the router gives it. The router extends an identical pinhole instead of
        adding another (same UniqueID)."""
        if not 1 <= lease <= MAX_LEASE:
            raise ValueError(f"pinhole lease out of range: {lease}")
        what = "AddPinhole"
        r = self._call(
            what,
            (
                ("RemoteHost", ""),
                ("RemotePort", "0"),
                ("InternalClient", str(ipaddress.IPv6Address(internal_client))),
                ("InternalPort", str(internal_port)),
                ("Protocol", str(protocol)),
                ("LeaseTime", str(lease)),
            ),
        )
        if "UniqueID" not in r:
            raise UpnpGarbage(what, "no UniqueID in the answer")
        return _uint(r["UniqueID"], what, "UniqueID", MAX_UID)

    def update(self, uid: int, lease: int) -> None:
        """UpdatePinhole (2.4.4): a new lease for our pinhole `uid`."""
        self._call("UpdatePinhole", (("UniqueID", str(uid)), ("NewLeaseTime", str(lease))))

    def delete(self, uid: int) -> None:
        """DeletePinhole (2.4.6). The router refuses (606) a pinhole of another address."""
        self._call("DeletePinhole", (("UniqueID", str(uid)),))

    def exists(self, uid: int) -> bool:
        """Whether the router holds pinhole `uid` for this PC (CheckPinholeWorking, 2.4.7):
        IsWorking or 709 NoPacketSent say it is there, 704 NoSuchEntry that it is not; 606 (a
        pinhole of another address) and anything else raise."""
        what = "CheckPinholeWorking"
        try:
            r = self._call(what, (("UniqueID", str(uid)),))
        except UpnpError as exc:
            if exc.code == _NO_PACKET_SENT:
                return True
            if exc.code == _NO_SUCH_ENTRY:
                return False
            raise
        _bool(r.get("IsWorking"), what, "IsWorking")
        return True

    def packets(self, uid: int) -> int:
        """GetPinholePackets (2.4.8): how many packets went through pinhole `uid`."""
        what = "GetPinholePackets"
        r = self._call(what, (("UniqueID", str(uid)),))
        return _uint(r.get("PinholePackets"), what, "PinholePackets", 2**32 - 1)
