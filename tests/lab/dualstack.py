"""Routed global IPv6 beside the home network's NATed IPv4 (issue 15): the usual dual-stack
line. No NAT66: the router forwards IPv6 as it is, so only firewalls decide what gets in.

The prefix 2a0c::/29 is outside every reserved range (Python's ipaddress says is_global, as
the code under test would for a real line; 2001:db8::/32 would not) and lives only inside
the lab's namespaces. Addresses carry `nodad` so they are usable at once (no tentative state).
"""

from __future__ import annotations

from dataclasses import dataclass

from .topology import HomeNet

# the topology's `inet nat` masquerade NATs IPv6 too: keep it to IPv4 (RFC 6296 NPTv6 and
# NAT66 are not what a dual-stack line does)
_POSTROUTING_V4_ONLY = """\
flush chain inet nat postrouting
add rule inet nat postrouting jump postrouting_miniupnpd
add rule inet nat postrouting meta nfproto ipv4 oifname "{wan}" masquerade
"""

_ROUTER_V6_DROP = """\
table ip6 rpdrop6 {{
  chain forward {{
    type filter hook forward priority -10; policy accept;
    iifname "{wan}" tcp dport {port} drop
  }}
}}
"""


@dataclass(kw_only=True)
class DualStack:
    """The IPv6 half of a HomeNet: pc <-> router <-> inet routed, not NATed."""

    net: HomeNet
    inet_ip6: str = "2a0c::1"
    router_wan_ip6: str = "2a0c::2"
    router_lan_ip6: str = "2a0c:0:0:1::1"
    pc_ip6: str = "2a0c:0:0:1::2"
    lan_prefix6: str = "2a0c:0:0:1::/64"

    def drop_inbound(self, port: int) -> None:
        """The router's IPv6 forward policy drops inbound TCP to `port` (a typical CPE's
        default-deny for IPv6, RFC 6092 section 3.3, narrowed to one port)."""
        self.net.router.nft(_ROUTER_V6_DROP.format(wan=self.net.router_wan_if, port=port))

    def allow_inbound(self) -> None:
        """Undo `drop_inbound` (no error when it was not set)."""
        self.net.router.run(["nft", "delete", "table", "ip6", "rpdrop6"], check=False)


def dual_stack(net: HomeNet) -> DualStack:
    """Add routed global IPv6 to `net` (pc, router, inet; without cgnat/isp hops)."""
    ds = DualStack(net=net)
    pc, router, inet = net.pc, net.router, net.inet
    for ns in (pc, router, inet):
        ns.sysctl("net.ipv6.conf.all.disable_ipv6", 0)
    router.sysctl("net.ipv6.conf.all.forwarding", 1)
    # /64 on each link, as a provider delegates one to the LAN
    for ns, ifname, addr in (
        (pc, "eth0", ds.pc_ip6),
        (router, net.router_lan_if, ds.router_lan_ip6),
        (router, net.router_wan_if, ds.router_wan_ip6),
        (inet, "eth0", ds.inet_ip6),
    ):
        ns.ip(["-6", "addr", "add", f"{addr}/64", "dev", ifname, "nodad"])
    pc.ip(["-6", "route", "add", "default", "via", ds.router_lan_ip6])
    router.ip(["-6", "route", "add", "default", "via", ds.inet_ip6])
    inet.ip(["-6", "route", "add", ds.lan_prefix6, "via", ds.router_wan_ip6])
    router.nft(_POSTROUTING_V4_ONLY.format(wan=net.router_wan_if))
    return ds
