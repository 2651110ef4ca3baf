"""One more host on the home network's LAN (LAB.md): a namespace on the router's LAN bridge,
e.g. a PACS inside the same site. The LAN is a bridge only with `home_net(second_pc=True)`
(without it the router's lan0 is a point-to-point veth to the PC)."""

from __future__ import annotations

from .host import LabError
from .namespaces import Namespace
from .topology import HomeNet


def lan_host(net: HomeNet, short: str = "lanpacs", address: str = "192.168.2.10") -> Namespace:
    """A namespace `short` at `address`/24 on the router's br0, default route via the router."""
    if net.router_lan_if != "br0":
        raise LabError("lan_host needs the LAN bridge: build home_net(lab, second_pc=True)")
    ns = net.lab.ns(short)
    port_if = f"lan{short[:8]}"
    net.lab.veth(ns, "eth0", f"{address}/24", net.router, port_if, None)
    net.router.ip(["link", "set", port_if, "master", "br0"])
    ns.ip(["route", "add", "default", "via", net.router_lan_ip])
    return ns
