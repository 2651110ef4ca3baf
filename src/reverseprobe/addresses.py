"""Address classes as a diagnosis needs them (docs/reference.md "interfaces").

Python's `is_private`/`is_global` are not enough: 100.64.0.0/10 (RFC 6598 shared address space,
carrier-grade NAT) is neither, and it is exactly what double NAT looks like.
"""

from __future__ import annotations

import ipaddress
from enum import Enum

SHARED_V4 = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598
RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
ULA_V6 = ipaddress.ip_network("fc00::/7")  # RFC 4193


class AddressClass(str, Enum):
    LOOPBACK = "loopback"
    LINK_LOCAL = "link-local"
    PRIVATE = "private"  # RFC 1918
    SHARED = "shared"  # RFC 6598, carrier-grade NAT
    PUBLIC = "public"
    ULA = "ula"  # IPv6 unique local
    GLOBAL_V6 = "global"  # IPv6 global unicast
    RESERVED = "reserved"  # documentation, multicast, unspecified and the rest
    INVALID = "invalid"


def classify(address: str) -> AddressClass:  # noqa: PLR0911 - one return per RFC 6890 address class, a flat table
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return AddressClass.INVALID
    if ip.is_loopback:
        return AddressClass.LOOPBACK
    if ip.is_link_local:
        return AddressClass.LINK_LOCAL
    if isinstance(ip, ipaddress.IPv4Address):
        if ip in SHARED_V4:
            return AddressClass.SHARED
        if any(ip in n for n in RFC1918):
            return AddressClass.PRIVATE
        if ip.is_global:
            return AddressClass.PUBLIC
        return AddressClass.RESERVED
    if ip.ipv4_mapped:
        return classify(str(ip.ipv4_mapped))
    if ip in ULA_V6:
        return AddressClass.ULA
    if ip.is_global:
        return AddressClass.GLOBAL_V6
    return AddressClass.RESERVED


def is_publicly_routable(address: str) -> bool:
    return classify(address) in (AddressClass.PUBLIC, AddressClass.GLOBAL_V6)


def is_behind_nat_address(address: str) -> bool:
    """An address a remote PACS cannot dial directly (private, shared, link-local...)."""
    return classify(address) in (
        AddressClass.PRIVATE,
        AddressClass.SHARED,
        AddressClass.LINK_LOCAL,
        AddressClass.ULA,
        AddressClass.LOOPBACK,
    )
