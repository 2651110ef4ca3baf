"""`reverseprobe forward` opening an IPv6 pinhole (issue 15) in the dual-stack home network:
Debian's miniupnpd 2.3.1 (nftables) with WANIPv6FirewallControl and PCP over IPv6, a router
whose IPv6 forward policy drops every new connection from the WAN, and a second PC.

Each step is read back with what decides: miniupnpd's nftables chain in the router, and a TCP
connection from the inet namespace over IPv6 to the PC's port (timeout before, open after).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from lab import Lab, LabProcess, Namespace, requires_lab, requires_tools, tcp_connect
from lab.pinhole6 import PC2_IP6, pinhole_net, pinhole_rule_for, pinhole_rules, start_miniupnpd6
from portmap_lab import codes, forward_json, run_json, upnpc_held
from test_json_schema import assert_valid

pytestmark = [pytest.mark.lab, requires_lab, requires_tools("miniupnpd", "upnpc", "nft")]

_LISTEN = """\
import socket
s = socket.create_server(("::", 11112), family=socket.AF_INET6, dualstack_ipv6=True)
print("listening", flush=True)
while True:
    c, _ = s.accept()
    c.close()
"""

# a pinhole made without reverseprobe's state file: another program on that host
_FOREIGN = """\
import json, sys
from reverseprobe.portmap.pinhole import PinholeControl, find_service, ipv6_url
url = ipv6_url(find_service(sys.argv[1], 5), sys.argv[2])
print(json.dumps(PinholeControl(url, timeout=5).add(sys.argv[3], int(sys.argv[4]), 3600)))
"""


def _env(lab: Lab) -> dict[str, str]:
    return {"REVERSEPROBE_STATE_DIR": str(lab.tmp / "state"), "NO_COLOR": "1"}


def _listen(ns: Namespace) -> LabProcess:
    proc = ns.popen([sys.executable, "-c", _LISTEN], name="listen11112")
    ns.wait_tcp_listen(11112, proc=proc)
    return proc


def _foreign(ns: Namespace, igd_url: str, router6: str, addr: str, port: int) -> int:
    code = _FOREIGN.replace("sys.argv[1]", repr(igd_url)).replace("sys.argv[2]", repr(router6))
    code = code.replace("sys.argv[3]", repr(addr)).replace("int(sys.argv[4])", str(port))
    uid = run_json(ns, code)
    assert isinstance(uid, int)
    return uid


def _pin(doc: dict[str, Any]) -> dict[str, Any]:
    pin: dict[str, Any] = doc["probes"]["pinhole"]
    return pin


def _rules_for(net, addr: str, port: int) -> list[str]:
    hexed = pinhole_rule_for(addr)
    return [ln for ln in pinhole_rules(net).splitlines() if hexed in ln and f"dport {port}" in ln]


def test_upnp_pinhole_opens_reads_back_and_remove_takes_out_only_ours():
    with Lab() as lab:
        net, ds = pinhole_net(lab, second_pc=True)
        assert net.pc2 is not None and net.igd_url is not None
        env = _env(lab)
        _listen(net.pc)
        assert tcp_connect(net.inet, ds.pc_ip6, 11112, 2) == "timeout"  # the IPv6 default-deny
        # what we do not own: pc2's pinhole for the same port, and one of pc's own for another
        # port made by another program
        _foreign(net.pc2, net.igd_url, ds.router_lan_ip6, PC2_IP6, 11112)
        _foreign(net.pc, net.igd_url, ds.router_lan_ip6, ds.pc_ip6, 12000)
        others = (_rules_for(net, PC2_IP6, 11112), _rules_for(net, ds.pc_ip6, 12000))
        assert all(len(r) == 1 for r in others)

        rc, doc, err = forward_json(net.pc, "--aet", "MYSCU", env=env)
        assert rc == 0, err
        assert_valid(doc, "forward")
        p = _pin(doc)
        assert (p["status"], p["action"], p["via"], p["verified"], p["recorded"]) == (
            "ok", "added", "upnp", True, True)  # fmt: skip
        assert p["internal_client"] == ds.pc_ip6 and isinstance(p["unique_id"], int)
        assert (p["firewall_enabled"], p["inbound_allowed"]) == (True, True)
        assert doc["probes"]["mapping"]["action"] == "added"  # the IPv4 part as before
        assert upnpc_held(net, 11112) is not None
        ok = [f for f in doc["findings"] if f["code"] == "UPNP_MAPPING_OK"]
        assert sorted(f["detail"].get("family", 4) for f in ok) == [4, 6]
        assert doc["announcement"]["ipv6"]["internal_client"] == ds.pc_ip6
        assert "IPv6 firewall (a pinhole)" in err and ds.pc_ip6 in err  # said before asking
        alt = doc["pacs_entry"]["alternatives"]
        assert [(a["family"], a["host"], a["port"]) for a in alt] == [("ipv6", ds.pc_ip6, 11112)]
        assert len(_rules_for(net, ds.pc_ip6, 11112)) == 1
        assert tcp_connect(net.inet, ds.pc_ip6, 11112, 5) == "open"

        rc, doc, _ = forward_json(net.pc, "--aet", "MYSCU", env=env)  # again: the same pinhole
        assert rc == 0 and _pin(doc)["action"] == "renewed"
        assert _pin(doc)["unique_id"] == p["unique_id"]
        assert len(_rules_for(net, ds.pc_ip6, 11112)) == 1

        rc, doc, err = forward_json(net.pc, "--remove", env=env)
        assert rc == 0, err
        assert_valid(doc, "forward")
        assert _pin(doc)["action"] == "removed"
        assert _rules_for(net, ds.pc_ip6, 11112) == []
        assert (_rules_for(net, PC2_IP6, 11112), _rules_for(net, ds.pc_ip6, 12000)) == others
        assert tcp_connect(net.inet, ds.pc_ip6, 11112, 2) == "timeout"
        assert upnpc_held(net, 11112) is None

        rc, doc, _ = forward_json(net.pc, "--remove", env=env)
        assert rc == 0 and _pin(doc)["action"] == "absent"
        assert (_rules_for(net, PC2_IP6, 11112), _rules_for(net, ds.pc_ip6, 12000)) == others


def test_pcp_pinhole_over_ipv6_and_its_removal_by_nonce():
    with Lab() as lab:
        net, ds = pinhole_net(lab)
        env = _env(lab)
        _listen(net.pc)
        assert tcp_connect(net.inet, ds.pc_ip6, 11112, 2) == "timeout"
        rc, doc, err = forward_json(net.pc, "--natpmp", env=env)
        assert rc == 0, err
        assert_valid(doc, "forward")
        p = _pin(doc)
        assert (p["status"], p["action"], p["via"], p["verified"], p["recorded"]) == (
            "ok", "added", "pcp", None, True)  # fmt: skip
        assert p["router"] == ds.router_lan_ip6 and p["lease_granted"] == 3600
        state = json.loads((lab.tmp / "state" / "pinholes.json").read_text())
        assert [v["via"] for v in state.values()] == ["pcp"] and all(
            len(v["nonce"]) == 24 for v in state.values()
        )
        assert len(_rules_for(net, ds.pc_ip6, 11112)) == 1
        assert tcp_connect(net.inet, ds.pc_ip6, 11112, 5) == "open"

        rc, doc, err = forward_json(net.pc, "--natpmp", "--remove", env=env)
        assert _pin(doc)["action"] == "removed", err
        assert _rules_for(net, ds.pc_ip6, 11112) == []
        assert tcp_connect(net.inet, ds.pc_ip6, 11112, 2) == "timeout"
        assert json.loads((lab.tmp / "state" / "pinholes.json").read_text()) == {}


def test_family_6_opens_only_the_pinhole_and_family_4_only_the_mapping():
    with Lab() as lab:
        net, ds = pinhole_net(lab)
        env = _env(lab)
        rc, doc, err = forward_json(net.pc, "--family", "6", "--aet", "MYSCU", env=env)
        assert rc == 0, err
        assert_valid(doc, "forward")
        assert set(doc["probes"]) == {"pinhole"} and _pin(doc)["action"] == "added"
        assert upnpc_held(net, 11112) is None  # no IPv4 mapping asked
        assert doc["pacs_entry"]["host"] == ds.pc_ip6 and doc["pacs_entry"]["port"] == 11112
        assert doc["announcement"]["ipv4"] is False
        rc, doc, _ = forward_json(net.pc, "--family", "6", "--remove", env=env)
        assert rc == 0 and _pin(doc)["action"] == "removed"
        assert _rules_for(net, ds.pc_ip6, 11112) == []

        rc, doc, _ = forward_json(net.pc, "--family", "4", env=env)
        assert rc == 0 and "pinhole" not in doc["probes"]
        assert _rules_for(net, ds.pc_ip6, 11112) == [] and upnpc_held(net, 11112) is not None


def test_a_router_without_the_pinhole_service_is_reported_and_ipv4_still_succeeds():
    with Lab() as lab:
        net, ds = pinhole_net(lab)
        env = _env(lab)
        # an IGD v1 description: miniupnpd then names no WANIPv6FirewallControl service
        net.stop_miniupnpd()
        net.start_miniupnpd(
            natpmp=False, extra_config=[f"ext_ifname6={net.router_wan_if}", "force_igd_desc_v1=yes"]
        )
        rc, doc, err = forward_json(net.pc, "--upnp", env=env)
        assert rc == 0, err
        assert_valid(doc, "forward")
        p = _pin(doc)
        assert (p["status"], p["offered"], p["action"]) == ("skipped", False, "not-tried")
        assert "WANIPv6FirewallControl" in p["reason"]
        six = [f for f in doc["findings"] if f["detail"].get("family") == 6]
        assert [(f["code"], f["severity"]) for f in six] == [("UPNP_MAPPING_MISSING", "info")]
        assert "UPNP_MAPPING_OK" in codes(doc) and doc["probes"]["mapping"]["action"] == "added"
        assert _rules_for(net, ds.pc_ip6, 11112) == []

        rc, doc, _ = forward_json(net.pc, "--upnp", "--family", "6", env=env)  # the pinhole alone
        assert rc == 1 and [f["severity"] for f in doc["findings"]] == ["fail"]
        start_miniupnpd6(net)  # (the restart clears miniupnpd's rules: nothing left behind)
