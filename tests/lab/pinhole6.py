"""IPv6 pinholes in the dual-stack home network (issue 15): miniupnpd with its IPv6 firewall
service (WANIPv6FirewallControl and PCP over IPv6, Debian's 2.3.1 has both), a router whose
IPv6 forward policy admits nothing new from the WAN but what miniupnpd's chain accepts (the
shape of a CPE's IPv6 firewall, RFC 6092 3.3), and a second PC with its own global IPv6 address.
"""

from __future__ import annotations

from .dualstack import DualStack, dual_stack
from .topology import HomeNet, home_net

# after `jump miniupnpd` (whose pinhole rules accept): established traffic back, then drop
# every new IPv6 connection from the WAN
_ROUTER_V6_POLICY = """\
add rule inet filter forward ct state established,related accept
add rule inet filter forward iifname "{wan}" meta nfproto ipv6 drop
"""

PC2_IP6 = "2a0c:0:0:1::3"


def pinhole_net(lab: object, *, second_pc: bool = False) -> tuple[HomeNet, DualStack]:
    """home_net + dual_stack, the router's IPv6 default-deny, miniupnpd with IPv6 on."""
    net = home_net(lab, upnp=False, natpmp=False, second_pc=second_pc)  # type: ignore[arg-type]
    ds = dual_stack(net)
    if net.pc2 is not None:
        net.pc2.sysctl("net.ipv6.conf.all.disable_ipv6", 0)
        net.pc2.ip(["-6", "addr", "add", f"{PC2_IP6}/64", "dev", "eth0", "nodad"])
        net.pc2.ip(["-6", "route", "add", "default", "via", ds.router_lan_ip6])
    net.router.nft(_ROUTER_V6_POLICY.format(wan=net.router_wan_if))
    start_miniupnpd6(net)
    return net, ds


def start_miniupnpd6(net: HomeNet, **kw: object) -> None:
    """(Re)start miniupnpd with its IPv6 side: ext_ifname6 (PCP then listens on [::]:5351)."""
    net.start_miniupnpd(extra_config=[f"ext_ifname6={net.router_wan_if}"], **kw)  # type: ignore[arg-type]
    net.router.wait_udp_bound(5351, 10, "::", proc=net.miniupnpd)


def pinhole_rules(net: HomeNet) -> str:
    """miniupnpd's IPv6 pinhole rules: its forward chain (the ground truth of a pinhole)."""
    return net.router.run(["nft", "list", "chain", "inet", "filter", "miniupnpd"]).stdout


def pinhole_rule_for(address: str) -> str:
    """How miniupnpd 2.3.1 (nftables) matches a pinhole's internal address: the raw IPv6
    destination (@nh,192,128 = bytes 24-39 of the IPv6 header) in hex."""
    import ipaddress

    return "0x" + ipaddress.IPv6Address(address).packed.hex()
