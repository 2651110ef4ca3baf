"""The portmap API against a real miniupnpd in network namespaces, each result read back with
an independent client (`upnpc -l`, `natpmpc`, the router's nftables rules)."""

from __future__ import annotations

import pytest

from lab import Lab, home_net, requires_lab, requires_tools
from portmap_lab import natpmpc_public_address, router_nat_rules, run_json, upnpc_held

pytestmark = [pytest.mark.lab, requires_lab, requires_tools("miniupnpd", "upnpc", "natpmpc")]

_FIND = """
import json, time
from reverseprobe.portmap.igd import find_igd
from reverseprobe.portmap.errors import UpnpError
from reverseprobe.runner import Deadline
t0 = time.monotonic()
g = find_igd("192.168.2.1", Deadline.after({budget}))
out = {{"found": g is not None, "elapsed": time.monotonic() - t0}}
if g is not None:
    out.update(location=g.location, lan=g.lan_address, control=g.control_url)
    out["status"] = list(g.status())
    out["external_ip"] = g.external_ip()
    def attempt(name, fn):
        try:
            out[name] = fn()
        except UpnpError as e:
            out[name] = {{"error": e.code, "name": e.name, "fix": e.fix}}
{body}
print(json.dumps(out, default=str))
"""


def find(ns, body: str = "", budget: float = 5.0):
    return run_json(ns, _FIND.format(body=body, budget=budget))


@requires_lab
def test_igd_add_read_list_delete_against_upnpc():
    with Lab() as lab:
        net = home_net(lab)
        out = find(
            net.pc,
            """
    attempt("add", lambda: g.add_mapping(11112, g.lan_address, 11112, "rp test", lease=3600))
    m = g.get_mapping(11112)
    out["get"] = m.__dict__ if m else None
    out["list"] = [x.__dict__ for x in g.list_mappings()]
    out["missing"] = g.get_mapping(11113) is None
""",
        )
        assert out["found"] and out["location"] == net.igd_url
        assert out["lan"] == net.pc_ip
        assert out["status"][0] == "Connected"
        assert out["external_ip"] == net.public_ip
        assert out["add"] is None
        assert out["get"]["internal_client"] == net.pc_ip and out["get"]["internal_port"] == 11112
        assert 0 < out["get"]["lease"] <= 3600
        assert [m["external_port"] for m in out["list"]] == [11112]
        assert out["missing"]
        held = upnpc_held(net, 11112)
        assert held is not None and held.internal_client == net.pc_ip
        assert held.description == "rp test"
        assert "dport 11112 dnat ip to 192.168.2.2:11112" in router_nat_rules(net)

        out = find(net.pc, '    attempt("delete", lambda: g.delete_mapping(11112))\n')
        assert out["delete"] is None
        assert upnpc_held(net, 11112) is None
        assert "dport 11112" not in router_nat_rules(net)


@requires_lab
def test_igd_refusals_have_codes():
    """606 for a port the router's rules refuse; 718 for a port mapped to another LAN host."""
    with Lab() as lab:
        net = home_net(lab, second_pc=True)
        assert net.pc2 is not None
        r = net.upnpc(["-a", net.pc2_ip, "11112", "11112", "TCP"], ns=net.pc2, check=True)
        assert "is redirected to internal 192.168.2.3:11112" in r.stdout
        out = find(
            net.pc,
            """
    attempt("low", lambda: g.add_mapping(104, g.lan_address, 104, "rp", lease=60))
    attempt("taken", lambda: g.add_mapping(11112, g.lan_address, 11112, "rp", lease=60))
    attempt("other", lambda: g.add_mapping(12000, "192.168.2.3", 12000, "rp", lease=60))
""",
        )
        assert out["low"]["error"] == 606 and "1024" in out["low"]["fix"]
        assert out["taken"]["error"] == 718
        assert out["other"]["error"] in (606, 718)  # secure mode: not for another host
        held = upnpc_held(net, 11112)
        assert held is not None and held.internal_client == net.pc2_ip  # untouched
        assert upnpc_held(net, 104) is None


@requires_lab
def test_igd_behind_carrier_nat():
    """miniupnpd with a WAN in 100.64/10: Connected, no external address, mapping refused."""
    with Lab() as lab:
        net = home_net(lab, cgnat=True)
        out = find(
            net.pc,
            '    attempt("add", lambda: g.add_mapping(11112, g.lan_address, 11112, "rp"))\n',
        )
        assert out["found"]
        assert out["external_ip"] is None
        assert out["add"]["error"] == 501 and "double NAT" in str(out)
        assert natpmpc_public_address(net) is None  # libnatpmp agrees: no public address


@requires_lab
def test_no_igd_is_none_within_the_budget():
    with Lab() as lab:
        net = home_net(lab, upnp=False, natpmp=False)
        out = find(net.pc, budget=1.5)
        assert out == {"found": False, "elapsed": pytest.approx(out["elapsed"])}
        assert out["elapsed"] < 1.5 + 1.0  # the deadline contract, with a margin for scheduling


_PMP = """
import json
from reverseprobe.portmap import natpmp
from reverseprobe.portmap.wire import Method
addr = natpmp.external_address("192.168.2.1", 2.0)
out = {{"address": addr.address, "result": addr.result}}
m = natpmp.map_port("192.168.2.1", {port}, lifetime=300, method=Method.{method})
out["map"] = {{"ok": m.ok, "eport": m.external_port, "lifetime": m.lifetime,
              "ext": m.external_address, "nonce": (m.nonce or b"").hex()}}
print(json.dumps(out))
"""

_UNMAP = """
import json
from reverseprobe.portmap import natpmp
from reverseprobe.portmap.wire import Method
m = natpmp.map_port("192.168.2.1", {port}, lifetime=300, method=Method.{method},
                    nonce=bytes.fromhex("{nonce}") or None)
gone = natpmp.unmap(m)
print(json.dumps({{"ok": gone.ok, "lifetime": gone.lifetime}}))
"""


@requires_lab
@pytest.mark.parametrize(("method", "port"), [("PCP", 12001), ("NATPMP", 12002)])
def test_natpmp_and_pcp_create_and_remove(method, port):
    with Lab() as lab:
        net = home_net(lab)
        out = run_json(net.pc, _PMP.format(method=method, port=port))
        assert out["address"] == net.public_ip == natpmpc_public_address(net)
        assert out["map"]["ok"] and out["map"]["eport"] == port
        assert out["map"]["lifetime"] >= 120  # miniupnpd clamps to its minimum
        if method == "PCP":
            assert out["map"]["ext"] == net.public_ip and len(out["map"]["nonce"]) == 24
        held = upnpc_held(net, port)
        assert held is not None and held.internal_client == net.pc_ip
        assert f"dport {port} dnat ip to {net.pc_ip}:{port}" in router_nat_rules(net)

        gone = run_json(net.pc, _UNMAP.format(method=method, port=port, nonce=out["map"]["nonce"]))
        assert gone["ok"]
        assert upnpc_held(net, port) is None
        assert f"dport {port}" not in router_nat_rules(net)
