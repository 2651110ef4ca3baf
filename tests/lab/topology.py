"""The topologies of LAB.md built from a `Lab`: the home network (pc -- router with NAT and
miniupnpd [-- carrier NAT] [-- isp filter] -- inet) and its miniupnpd."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .host import LabError
from .namespaces import Lab, Namespace
from .procs import LabProcess

_ROUTER_NFT = """\
table inet filter {{
  chain forward {{
    type filter hook forward priority 0; policy accept;
    jump miniupnpd
  }}
  chain miniupnpd {{
  }}
}}
table inet nat {{
  chain prerouting {{
    type nat hook prerouting priority -100; policy accept;
    jump prerouting_miniupnpd
  }}
  chain postrouting {{
    type nat hook postrouting priority 100; policy accept;
    jump postrouting_miniupnpd
    oifname "{wan}" masquerade
  }}
  chain prerouting_miniupnpd {{
  }}
  chain postrouting_miniupnpd {{
  }}
}}
"""

_ROUTER_FLUSH = """\
flush chain inet filter miniupnpd
flush chain inet nat prerouting_miniupnpd
flush chain inet nat postrouting_miniupnpd
"""

_CARRIER_NFT = """\
table ip nat {{
  chain postrouting {{
    type nat hook postrouting priority 100; policy accept;
    oifname "{wan}" masquerade
  }}
}}
"""

_ISP_NFT = """\
table inet isp {{
  chain forward {{
    type filter hook forward priority 0; policy accept;
    iifname "{upstream}" tcp dport < {below} drop
  }}
}}
"""


@dataclass(kw_only=True)
class HomeNet:
    """pc -- router (NAT, miniupnpd) [-- carrier NAT] [-- isp filter] -- inet."""

    lab: Lab
    pc: Namespace
    router: Namespace
    inet: Namespace
    pc2: Namespace | None = None
    isp: Namespace | None = None
    carrier: Namespace | None = None
    pc_ip: str = "192.168.2.2"
    pc2_ip: str = "192.168.2.3"
    router_lan_ip: str = "192.168.2.1"
    lan_cidr: str = "192.168.2.0/24"
    router_lan_if: str = "lan0"  # "br0" with a second PC
    router_wan_if: str = "wan0"
    router_wan_ip: str = "100.128.0.2"
    inet_ip: str = "100.128.0.1"
    public_ip: str = "100.128.0.2"
    miniupnpd: LabProcess | None = None
    igd_url: str | None = None  # rootDesc.xml URL while miniupnpd runs with UPnP
    miniupnpd_conf: Path | None = None

    def start_miniupnpd(
        self,
        *,
        upnp: bool = True,
        natpmp: bool = True,
        allow_ports: Iterable[str] = ("1024-65535",),
        extra_config: Iterable[str] = (),
        keep_mappings: bool = False,
        timeout: float = 10,
    ) -> LabProcess:
        """(Re)start miniupnpd in the router (foreground, -d) and wait until it serves.

        `allow_ports`: one `allow P <lan> P` line each (e.g. "104"), then deny everything else.
        With `keep_mappings`, a running daemon's mappings survive the restart.
        """
        self.stop_miniupnpd(clear=not keep_mappings)
        tmp = self.lab.tmp
        lines = [
            f"ext_ifname={self.router_wan_if}",
            f"listening_ip={self.router_lan_if}",
            f"enable_upnp={'yes' if upnp else 'no'}",
            f"enable_natpmp={'yes' if natpmp else 'no'}",
            "secure_mode=yes",
            "system_uptime=no",
            f"uuid={uuid.uuid4()}",
            "upnp_table_name=filter",
            "upnp_nat_table_name=nat",
            "upnp_forward_chain=miniupnpd",
            "upnp_nat_chain=prerouting_miniupnpd",
            "upnp_nat_postrouting_chain=postrouting_miniupnpd",
            f"lease_file={tmp / 'miniupnpd.leases'}",
            *extra_config,
            *(f"allow {p} {self.lan_cidr} {p}" for p in allow_ports),
            "deny 0-65535 0.0.0.0/0 0-65535",
        ]
        conf = tmp / "miniupnpd.conf"
        conf.write_text("\n".join(lines) + "\n")
        self.miniupnpd_conf = conf
        proc = self.router.popen(
            ["miniupnpd", "-d", "-f", str(conf), "-P", str(tmp / "miniupnpd.pid")]
        )
        self.miniupnpd = proc
        if upnp:
            m = proc.wait_log(r"HTTP listening on port (\d+)", timeout)
            self.igd_url = f"http://{self.router_lan_ip}:{m.group(1)}/rootDesc.xml"
            self.router.wait_udp_bound(1900, timeout, proc=proc)
        if natpmp:
            self.router.wait_udp_bound(5351, timeout, self.router_lan_ip, proc=proc)
        return proc

    def stop_miniupnpd(self, *, clear: bool = True) -> None:
        """Stop miniupnpd; with `clear`, also drop its mappings (rules and lease file).

        miniupnpd leaves its nftables rules in place when it stops and reloads the lease
        file when it starts: `clear=False` keeps both, as after a daemon crash.
        """
        if self.miniupnpd is not None:
            self.miniupnpd.stop()
        self.miniupnpd = None
        self.igd_url = None
        if clear and self.miniupnpd_conf is not None:
            self.router.nft(_ROUTER_FLUSH)
            (self.lab.tmp / "miniupnpd.leases").unlink(missing_ok=True)

    def upnpc(
        self, args: Sequence[str], *, ns: Namespace | None = None, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """`upnpc` in pc (or `ns`), pointed at the router's rootDesc (no 2 s SSDP discovery)."""
        if self.igd_url is None:
            raise LabError("miniupnpd does not run with UPnP in this HomeNet")
        return (ns or self.pc).run(["upnpc", "-u", self.igd_url, *args], check=check)


def home_net(
    lab: Lab,
    *,
    upnp: bool = True,
    natpmp: bool = True,
    second_pc: bool = False,
    isp_block_below: int | None = None,
    cgnat: bool = False,
    allow_ports: Iterable[str] = ("1024-65535",),
) -> HomeNet:
    """Build LAB.md's home network in `lab`; starts miniupnpd when `upnp` or `natpmp`.

    Addresses: LAN 192.168.2.0/24 (router .1, pc .2, pc2 .3). The router's WAN is
    100.128.0.2/24 facing 100.128.0.1, a non-reserved address so miniupnpd reports Connected.
    With `cgnat` the router's WAN is 100.64.0.2/24 (RFC 6598) behind a carrier NAT whose WAN
    is 100.128.0.2. With `isp_block_below` an "isp" hop (100.128.0.1 | 100.129.0.1) drops
    inbound TCP (coming from inet) to ports below N; inet is then 100.129.0.2. Outbound
    traffic to low ports (pc -> inet:104) is not blocked.
    """
    pc = lab.ns("pc")
    router = lab.ns("router", ip_forward=True)
    pc2 = lab.ns("pc2") if second_pc else None
    carrier = lab.ns("carrier", ip_forward=True) if cgnat else None
    isp = lab.ns("isp", ip_forward=True) if isp_block_below is not None else None
    inet = lab.ns("inet")
    net = HomeNet(lab=lab, pc=pc, router=router, inet=inet, pc2=pc2, isp=isp, carrier=carrier)

    # LAN side.
    lan_ip = f"{net.router_lan_ip}/24"
    if pc2 is None:
        lab.veth(pc, "eth0", f"{net.pc_ip}/24", router, "lan0", lan_ip)
    else:
        net.router_lan_if = "br0"
        router.ip("link add br0 type bridge stp_state 0 mcast_snooping 0")
        router.ip(["addr", "add", lan_ip, "dev", "br0"])
        for host, ip, port_if in ((pc, net.pc_ip, "lan0"), (pc2, net.pc2_ip, "lan1")):
            lab.veth(host, "eth0", f"{ip}/24", router, port_if, None)
            router.ip(["link", "set", port_if, "master", "br0"])
        router.ip("link set br0 up")
    for host in filter(None, (pc, pc2)):
        host.ip(["route", "add", "default", "via", net.router_lan_ip])
        host.ip("route add 239.0.0.0/8 dev eth0")
    router.ip(["route", "add", "239.0.0.0/8", "dev", net.router_lan_if])

    # WAN side: router [-- carrier] [-- isp] -- inet.
    if carrier is not None:
        net.router_wan_ip = "100.64.0.2"
        lab.veth(router, "wan0", "100.64.0.2/24", carrier, "lan0", "100.64.0.1/24")
        router.ip("route add default via 100.64.0.1")
        nat_ns = carrier
    else:
        nat_ns = router
    net.public_ip = "100.128.0.2"
    upstream = isp or inet
    up_if = "cust0" if isp is not None else "eth0"
    lab.veth(nat_ns, "wan0", "100.128.0.2/24", upstream, up_if, "100.128.0.1/24")
    nat_ns.ip("route add default via 100.128.0.1")
    if isp is not None:
        lab.veth(isp, "up0", "100.129.0.1/24", inet, "eth0", "100.129.0.2/24")
        inet.ip("route add 100.128.0.0/24 via 100.129.0.1")
        isp.nft(_ISP_NFT.format(upstream="up0", below=isp_block_below))
        net.inet_ip = "100.129.0.2"
    else:
        net.inet_ip = "100.128.0.1"

    router.nft(_ROUTER_NFT.format(wan=net.router_wan_if))
    if carrier is not None:
        carrier.nft(_CARRIER_NFT.format(wan="wan0"))
    if upnp or natpmp:
        net.start_miniupnpd(upnp=upnp, natpmp=natpmp, allow_ports=allow_ports)
    return net
