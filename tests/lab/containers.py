"""A container (or a NAT-mode VM) on the lab's PC: one more namespace behind the PC's own
masquerade (LAB.md "More shapes worth building"). Docker's default bridge is docker0 172.17.0.1/16
with the container at 172.17.0.2; VirtualBox NAT puts the guest at 10.0.2.15 behind 10.0.2.2.
A published port is a DNAT rule in the PC's namespace."""

from __future__ import annotations

from dataclasses import dataclass

from .namespaces import Namespace
from .topology import HomeNet

_HOST_NAT = """\
table ip vnat {{
  chain prerouting {{
    type nat hook prerouting priority -100; policy accept;
  }}
  chain postrouting {{
    type nat hook postrouting priority 100; policy accept;
    ip saddr {cidr} oifname "eth0" masquerade
  }}
}}
"""


@dataclass
class Guest:
    ns: Namespace
    host: Namespace
    address: str
    gateway: str

    def publish(self, port: int, guest_port: int | None = None) -> None:
        """`docker run -p port:guest_port`: DNAT on the host's LAN side to the guest."""
        self.host.run(
            ["nft", "add", "rule", "ip", "vnat", "prerouting", "iifname", "eth0", "tcp",
             "dport", str(port), "dnat", "to", f"{self.address}:{guest_port or port}"]
        )  # fmt: skip


def nat_guest(
    net: HomeNet,
    *,
    address: str = "172.17.0.2",
    gateway: str = "172.17.0.1",
    prefix: int = 16,
    short: str = "ctr",
) -> Guest:
    """A namespace `short` behind the PC's masquerade (defaults: Docker's default bridge)."""
    ns = net.lab.ns(short)
    net.lab.veth(ns, "eth0", f"{address}/{prefix}", net.pc, "docker0", f"{gateway}/{prefix}")
    ns.ip(["route", "add", "default", "via", gateway])
    net.pc.sysctl("net.ipv4.ip_forward", 1)
    cidr = f"{address}/{prefix}"
    net.pc.nft(_HOST_NAT.format(cidr=cidr))
    return Guest(ns=ns, host=net.pc, address=address, gateway=gateway)


def virtualbox_guest(net: HomeNet) -> Guest:
    """VirtualBox's NAT shape: 10.0.2.15/24 via 10.0.2.2."""
    return nat_guest(net, address="10.0.2.15", gateway="10.0.2.2", prefix=24, short="vbox")
