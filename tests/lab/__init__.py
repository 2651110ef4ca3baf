"""A real network lab built from Linux network namespaces, for integration tests.

See /work/shared/LAB.md for why. Typical use::

    from lab import Lab, home_net, http_get, requires_lab, start_ip_service

    @requires_lab
    def test_nat():
        with Lab() as lab:
            net = home_net(lab)
            url = start_ip_service(net.inet, 8080)
            assert http_get(net.pc, url) == net.public_ip

Everything a `Lab` makes (namespaces, processes, the temp dir) is removed by `Lab.close()`, also
when the test fails. Namespace names carry the creating PID (`rpl<pid>-<token>-<short>`), so
parallel runs never collide and a later `Lab()` deletes what a crashed run left behind.
Nothing here routes a namespace to the host's interfaces: traffic stays inside the lab.

The parts, each importing only those above it:

- host: REPO/SRC paths, LabError, LabCommandError, host_run (the host's namespace), child_env
- markers: lab_available, missing_tools, requires_lab, requires_tools
- procs: LabProcess (a process in a namespace, its log, its stop)
- namespaces: Namespace, Lab, netns_names, reap_stale_labs
- topology: HomeNet, home_net (LAB.md's home network, miniupnpd)
- containers: Guest, nat_guest, virtualbox_guest (a container/VM behind the PC's NAT)
- lan: lan_host (one more host on the LAN bridge, e.g. a PACS inside the site)
- dualstack: DualStack, dual_stack (routed global IPv6 beside the NATed IPv4, no NAT66)
- pinhole6: pinhole_net, start_miniupnpd6, pinhole_rules, pinhole_rule_for, PC2_IP6 (a router
  whose IPv6 firewall drops new inbound connections, for forward's pinholes)
- servers: start_ip_service, start_ip_service6, start_blackhole, tcp_connect, http_get

Import from `lab` itself (every public name of every part is re-exported here); the parts are
where to read and change the code.
"""

from __future__ import annotations

from .containers import Guest, nat_guest, virtualbox_guest
from .dualstack import DualStack, dual_stack
from .host import (
    NETNS_PREFIX,
    POLL,
    REPO,
    SRC,
    LabCommandError,
    LabError,
    child_env,
    host_run,
    tail,
)
from .lan import lan_host
from .markers import Marker, lab_available, missing_tools, requires_lab, requires_tools
from .namespaces import Lab, Namespace, netns_names, reap_stale_labs
from .pinhole6 import PC2_IP6, pinhole_net, pinhole_rule_for, pinhole_rules, start_miniupnpd6
from .procs import LabProcess
from .servers import http_get, start_blackhole, start_ip_service, start_ip_service6, tcp_connect
from .topology import HomeNet, home_net

__all__ = [
    "NETNS_PREFIX",
    "PC2_IP6",
    "POLL",
    "REPO",
    "SRC",
    "DualStack",
    "Guest",
    "HomeNet",
    "Lab",
    "LabCommandError",
    "LabError",
    "LabProcess",
    "Marker",
    "Namespace",
    "child_env",
    "dual_stack",
    "home_net",
    "host_run",
    "http_get",
    "lab_available",
    "lan_host",
    "missing_tools",
    "nat_guest",
    "netns_names",
    "pinhole_net",
    "pinhole_rule_for",
    "pinhole_rules",
    "reap_stale_labs",
    "requires_lab",
    "requires_tools",
    "start_blackhole",
    "start_ip_service",
    "start_ip_service6",
    "start_miniupnpd6",
    "tail",
    "tcp_connect",
    "virtualbox_guest",
]
