"""The default gateway and the source address toward a destination: facts from the OS's
routing table, read without sending a packet (a bottom module: probes and portmap use it)."""

from __future__ import annotations

import socket
from typing import Any

# Destinations for a UDP connect(), which only asks the kernel for the route and source
# address: no packet is sent (RFC 5737 / RFC 3849 documentation addresses).
ROUTE_PROBE_V4 = "203.0.113.1"
ROUTE_PROBE_V6 = "2001:db8::1"


def default_gateway() -> tuple[str | None, str | None]:
    """(gateway address, interface) of the IPv4 default route, from netifaces-plus."""
    try:
        import netifaces

        gws: Any = netifaces.gateways()
        entry = gws.get("default", {}).get(netifaces.AF_INET)
        if entry:
            return str(entry[0]), str(entry[1])
    except Exception:  # noqa: BLE001 - a platform netifaces cannot read: not checked
        return None, None
    return None, None


def route_source(dest: str, family: int) -> str | None:
    """The source address the kernel picks toward `dest` (a UDP connect sends nothing)."""
    s = socket.socket(family, socket.SOCK_DGRAM)
    try:
        s.connect((dest, 9))
        addr = str(s.getsockname()[0])
    except OSError:
        return None
    finally:
        s.close()
    return None if addr in ("0.0.0.0", "::") else addr.split("%", 1)[0]
