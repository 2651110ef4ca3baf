"""Which addresses the reflector may dial back (SPEC.md reflector security rules).

It dials only the address a request came from, but that address can still be one it must
never connect to: `X-Forwarded-For: 0.0.0.0` from a trusted proxy's client would make it dial
its own host, and a multicast or broadcast address is no single machine's. Refused, whatever
the source: unspecified and "this network" (0.0.0.0/8, ::; RFC 1122 3.2.1.3), loopback,
multicast (RFC 5771, RFC 4291 2.7), limited broadcast and reserved 240.0.0.0/4 (RFC 919,
RFC 1112 4), the subnet broadcast of its own interfaces, link-local (RFC 3927, RFC 4291 2.5.6:
a client on the reflector's own link proves nothing about a way in from outside) and every
address of its own. `allow_loopback` (tests and labs only) lets loopback through.

`refusal` is pure; `OwnAddresses` reads the interfaces (psutil) and caches them briefly.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_RESERVED_V4 = ipaddress.ip_network("240.0.0.0/4")  # includes 255.255.255.255
REFRESH_S = 30.0  # interface addresses are re-read at most this often


@dataclass(frozen=True)
class LocalAddresses:
    """The reflector's own unicast addresses and the subnet broadcasts of its interfaces."""

    unicast: frozenset[IpAddress] = frozenset()
    broadcast: frozenset[IpAddress] = frozenset()


def refusal(  # noqa: PLR0911 - one return per refusal reason
    address: str,
    local: LocalAddresses,
    *,
    allow_loopback: bool = False,
    extra_own: Iterable[str] = (),
) -> str | None:
    """Why `address` must not be dialled (a few words for the client and the log), or None.
    `extra_own`: more own addresses (the one the request arrived on)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified or (ip.version == 4 and ip in _THIS_NETWORK):
        return "an unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.version == 4 and ip in _RESERVED_V4:
        return "a broadcast or reserved address"
    if ip in local.broadcast:
        return "a subnet broadcast address of the reflector"
    if ip.is_loopback:
        return None if allow_loopback else "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    own = set(local.unicast)
    for a in extra_own:
        try:
            own.add(_unmapped(ipaddress.ip_address(a.split("%", 1)[0])))
        except ValueError:
            continue
    if ip in own:
        return "an address of the reflector itself"
    return None


def _unmapped(ip: IpAddress) -> IpAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def read_local_addresses() -> LocalAddresses:
    """Every interface's addresses and IPv4 subnet broadcasts (given or computed from the
    netmask; /31 and /32 have none, RFC 3021)."""
    import psutil

    unicast: set[IpAddress] = set()
    broadcast: set[IpAddress] = set()
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            try:
                ip = ipaddress.ip_address(a.address.split("%", 1)[0])
            except ValueError:
                continue
            unicast.add(ip)
            if a.family != socket.AF_INET:
                continue
            if a.broadcast:
                with contextlib.suppress(ValueError):
                    broadcast.add(ipaddress.ip_address(a.broadcast))
            if a.netmask:
                try:
                    net = ipaddress.IPv4Network(f"{a.address}/{a.netmask}", strict=False)
                except ValueError:
                    continue
                if net.prefixlen < 31 and not ip.is_loopback:
                    broadcast.add(net.broadcast_address)
    return LocalAddresses(frozenset(unicast), frozenset(broadcast))


class OwnAddresses:
    """`read_local_addresses`, cached for `REFRESH_S` (addresses change: DHCP, VPNs)."""

    def __init__(
        self,
        reader: Callable[[], LocalAddresses] = read_local_addresses,
        *,
        clock: Callable[[], float] = time.monotonic,
        refresh_s: float = REFRESH_S,
    ) -> None:
        self._reader = reader
        self._clock = clock
        self._refresh_s = refresh_s
        self._value = LocalAddresses()
        self._stamp: float | None = None
        self._lock = threading.Lock()

    def get(self) -> LocalAddresses:
        now = self._clock()
        with self._lock:
            if self._stamp is None or now - self._stamp >= self._refresh_s:
                # keep the last known on failure; the request's own address still counts
                with contextlib.suppress(Exception):
                    self._value = self._reader()
                self._stamp = now
            return self._value
