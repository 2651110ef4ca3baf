"""Interfaces, their address classes, the default gateway and the route toward it.

The LAN address the PACS must use on the same LAN is the source address of the default route;
a tunnel interface carrying that route means the PACS may see a VPN's exit, not this network.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from reverseprobe.addresses import classify
from reverseprobe.model import Status
from reverseprobe.model.check import Interface as Interface
from reverseprobe.model.check import InterfaceAddress as InterfaceAddress
from reverseprobe.model.check import InterfacesResult as InterfacesResult
from reverseprobe.routes import ROUTE_PROBE_V4 as _ROUTE_PROBE_V4
from reverseprobe.routes import ROUTE_PROBE_V6 as _ROUTE_PROBE_V6
from reverseprobe.routes import default_gateway as default_gateway
from reverseprobe.routes import route_source as route_source
from reverseprobe.runner import Deadline

# Linux ARPHRD_* link types of tunnels (include/uapi/linux/if_arp.h).
_TUNNEL_ARPHRD = {
    65534: "tun/wireguard (ARPHRD_NONE)",
    768: "ipip",
    769: "ip6tnl",
    776: "sit",
    778: "gre",
    823: "ip6gre",
    512: "ppp",
}
_TUNNEL_NAME_PREFIXES = (
    "tun", "tap", "wg", "ppp", "utun", "ipsec", "tailscale", "zt", "nordlynx", "gpd",
    "cscotun", "vpn", "proton", "mullvad", "gre", "ipip", "sit",
)  # fmt: skip
_TUNNEL_NAME_WORDS = (
    "vpn", "tap-windows", "wireguard", "tailscale", "openvpn", "anyconnect", "forticlient",
    "zerotier", "wintun", "globalprotect", "pangp", "juniper", "pulse secure",
)  # fmt: skip


def probe_interfaces(deadline: Deadline) -> InterfacesResult:
    del deadline  # local reads only; nothing here blocks on the network
    import psutil

    stats = psutil.net_if_stats()
    interfaces: list[Interface] = []
    for name, addrs in sorted(psutil.net_if_addrs().items()):
        items = []
        for a in addrs:
            if a.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            ip = a.address.split("%", 1)[0]
            items.append(
                InterfaceAddress(
                    address=ip,
                    family="ipv6" if a.family == socket.AF_INET6 else "ipv4",
                    netmask=a.netmask,
                    klass=classify(ip),
                )
            )
        st = stats.get(name)
        interfaces.append(
            Interface(
                name=name,
                up=st.isup if st else None,
                tunnel=tunnel_kind(name),
                addresses=tuple(items),
            )
        )
    gw, gw_if = default_gateway()
    src = route_source(_ROUTE_PROBE_V4, socket.AF_INET)
    src6 = route_source(_ROUTE_PROBE_V6, socket.AF_INET6)
    src_if = next(
        (i.name for i in interfaces for a in i.addresses if src and a.address == src), None
    )
    route_if = src_if or gw_if
    tunnel_if = next(
        (i.name for i in interfaces if i.name == route_if and i.tunnel is not None), None
    )
    return InterfacesResult(
        status=Status.OK,
        interfaces=tuple(interfaces),
        default_gateway=gw,
        default_interface=gw_if,
        source_address=src,
        source_interface=src_if,
        source_address_v6=src6,
        route_via_tunnel=tunnel_if,
    )


def tunnel_kind(name: str, sysfs: Path = Path("/sys/class/net")) -> str | None:
    """Why `name` looks like a tunnel (Linux link type, or a VPN's usual name), else None."""
    if sys.platform.startswith("linux"):
        if (sysfs / name / "tun_flags").exists():
            return "tun/tap"
        try:
            arphrd = int((sysfs / name / "type").read_text().strip())
        except (OSError, ValueError):
            arphrd = None
        if arphrd in _TUNNEL_ARPHRD:
            return _TUNNEL_ARPHRD[arphrd]
    lower = name.lower()
    if lower.startswith(_TUNNEL_NAME_PREFIXES):
        return f"name {name!r}"
    if any(w in lower for w in _TUNNEL_NAME_WORDS):
        return f"name {name!r}"
    return None
