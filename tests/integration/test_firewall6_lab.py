"""Issue 15 in the namespace lab: the host's own IPv6 rules. A dual-stack line (lab.dualstack:
routed global IPv6 beside NATed IPv4), a reflector reached over IPv6 that dials the PC back
over IPv6, a dual-stack pynetdicom receiver, and real nftables / ip6tables rules in the PC.

The PC's IPv6 rules drop inbound 11112 while IPv4 is open: check names this PC's firewall for
IPv6 (not the router's IPv6 policy, test_ipv6_lab.py has that one), exit 1; the fix it names
opens the port and the dial-back gets in. `forward --firewall` opens both families where each
has its own rules and --remove leaves the rules as they were, byte for byte.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from lab import (
    REPO,
    DualStack,
    HomeNet,
    Lab,
    LabProcess,
    Namespace,
    dual_stack,
    home_net,
    requires_lab,
    requires_tools,
)
from netcheck_lab import CheckRun, connect, sh, shell_of_fix
from test_json_schema import assert_valid

pytestmark = [pytest.mark.lab, requires_lab, requires_tools("miniupnpd", "upnpc")]
PORT = 11112
REFLECTOR_PORT = 8472
CHECK_TIMEOUT = 12.0

IP6_DROP = f"""\
table ip6 host6 {{
  chain input {{
    type filter hook input priority 0; policy accept;
    tcp dport {PORT} drop
  }}
}}
"""
INET_NFPROTO6_DROP = f"""\
table inet host6 {{
  chain input {{
    type filter hook input priority 0; policy accept;
    ct state established,related accept
    meta nfproto ipv6 tcp dport {PORT} drop
  }}
}}
"""
# policy drop per family, as a hand-written two-table host firewall (ICMPv6 must pass, or
# neighbour discovery dies with it)
PER_FAMILY_DROP = """\
table ip host4 {
  chain input {
    type filter hook input priority 0; policy drop;
    ct state established,related accept
    iifname "lo" accept
    tcp dport 4242 accept comment "somebody else's"
  }
}
table ip6 host6 {
  chain input {
    type filter hook input priority 0; policy drop;
    ct state established,related accept
    iifname "lo" accept
    meta l4proto ipv6-icmp accept
  }
}
"""


@dataclass
class Site:
    net: HomeNet
    ds: DualStack
    reflector6: str
    state: str  # REVERSEPROBE_STATE_DIR


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with Lab() as lab:
        net = home_net(lab)
        ds = dual_stack(net)
        listen = f"[{ds.inet_ip6}]:{REFLECTOR_PORT}"
        proc = net.inet.python_popen(
            ["-m", "reverseprobe", "reflector", "--listen", listen], name="reflector"
        )
        net.inet.wait_tcp_listen(REFLECTOR_PORT, timeout=20, addr=ds.inet_ip6, proc=proc)
        yield Site(net, ds, f"http://[{ds.inet_ip6}]:{REFLECTOR_PORT}/", str(lab.tmp / "state"))


@pytest.fixture
def s(site: Site) -> Iterator[Site]:
    """The shared site, with the PC's own rules and the mapping gone after each test."""
    yield site
    site.net.pc.run(["nft", "flush", "ruleset"])
    site.net.upnpc(["-d", str(PORT), "TCP"])


def pyscp_dual(ns: Namespace) -> LabProcess:
    """A pynetdicom Verification SCP on [::] (IPV6_V6ONLY off: both families)."""
    script = str(REPO / "tests" / "peers" / "pyscp.py")
    proc = ns.popen([sys.executable, script, "::", str(PORT), "MYSCU"], name="pyscp")
    ns.wait_tcp_listen(PORT, addr="::", proc=proc)
    return proc


def run_check(s: Site) -> CheckRun:
    argv = [
        "-m", "reverseprobe", "check", "--port", str(PORT), "--aet", "MYSCU", "--no-public-ip",
        "--reflector", s.reflector6, "--json", "--timeout", str(CHECK_TIMEOUT),
    ]  # fmt: skip
    res = s.net.pc.python(argv, check=False, timeout=CHECK_TIMEOUT + 40)
    assert res.returncode in (0, 1), f"check exited {res.returncode}: {res.stderr[-3000:]}"
    doc = json.loads(res.stdout)
    assert_valid(doc, "check")
    return CheckRun(res.returncode, doc, res.stderr)


def add_mapping(s: Site) -> None:
    res = s.net.upnpc(["-e", "lab", "-a", s.net.pc_ip, str(PORT), str(PORT), "TCP"])
    assert "is redirected to" in res.stdout, res.stdout + res.stderr


def host_drop_is_named_for_ipv6(s: Site, where: str) -> None:
    """Both IPv6 cases: a real IPv4 client gets in, a real IPv6 one does not; check blames
    this PC's IPv6 rules, not the router; the fix it names lets the dial-back in."""
    add_mapping(s)
    scp = pyscp_dual(s.net.pc)
    try:
        assert connect(s.net.router, s.net.pc_ip) == "open"
        assert connect(s.net.inet, s.ds.pc_ip6) == "timeout"
        run = run_check(s)
        assert run.doc["probes"]["inbound"]["observed_ip"] == s.ds.pc_ip6
        assert run.doc["probes"]["inbound"]["results"][0]["tcp"] == "timeout"
        fw = run.probe("firewall")
        fams = {f["family"]: f for f in fw["families"]}
        assert fams["ipv4"]["verdict"] in ("open", "allowed"), fams
        assert fams["ipv6"]["verdict"] == "blocked" and fams["ipv6"]["deciding"]["where"] == where
        f = run.finding("FIREWALL_BLOCKS")
        assert f["severity"] == "fail" and f["detail"]["family"] == "ipv6", f
        assert f["summary"].startswith("Over IPv6,") and where in f["summary"]
        t = run.finding("INBOUND_TIMEOUT")
        assert t["detail"].get("caused_by") == "FIREWALL_BLOCKS", t
        assert t["severity"] == "info" and t["detail"].get("likely") != "router-ipv6-policy"
        assert "forward policy" not in t["summary"]
        assert run.rc == 1
        sh(s.net.pc, shell_of_fix(f["fix"]))
        after = run_check(s)
        assert after.codes.get("INBOUND_OK") == "pass", after.codes
        assert "FIREWALL_BLOCKS" not in after.codes
    finally:
        scp.stop()


def test_ip6_table_drop_is_the_host_firewall_not_the_router(s: Site) -> None:
    s.net.pc.nft(IP6_DROP)
    host_drop_is_named_for_ipv6(s, "ip6 host6 input")


def test_inet_table_restricted_to_ipv6_by_meta_nfproto(s: Site) -> None:
    s.net.pc.nft(INET_NFPROTO6_DROP)
    host_drop_is_named_for_ipv6(s, "inet host6 input")


# --- forward --firewall: both families --------------------------------------------------------


def forward(s: Site, *args: str) -> tuple[int, dict[str, Any], str]:
    argv = ["-m", "reverseprobe", "forward", "--firewall", "--port", str(PORT), "--json"]
    argv += ["--timeout", "20", *args]
    env = {"REVERSEPROBE_STATE_DIR": s.state}
    res = s.net.pc.python(argv, check=False, timeout=60, env=env)
    doc = json.loads(res.stdout) if res.stdout.strip().startswith("{") else {}
    if doc:
        assert_valid(doc, "forward")
    return res.returncode, doc, res.stderr


def both_reach(s: Site) -> tuple[str, str]:
    return connect(s.net.router, s.net.pc_ip), connect(s.net.inet, s.ds.pc_ip6)


def open_and_remove(s: Site, state: Any, expect: list[str]) -> None:
    """Dry run (nothing changes), open (both families get in), --remove (as before)."""
    before = state()
    assert both_reach(s) == ("timeout", "timeout")
    rc, doc, err = forward(s, "--dry-run")
    assert rc == 0, err
    hf = doc["probes"]["host_firewall"]
    assert hf["commands"] == expect, hf
    assert state() == before
    rc, doc, err = forward(s)
    assert rc == 0, err
    hf = doc["probes"]["host_firewall"]
    assert hf["changed"] and hf["families"] == ["ipv4", "ipv6"], hf
    fams = {f["family"]: f["verdict"] for f in doc["probes"]["firewall"]["families"]}
    assert fams == {"ipv4": "allowed", "ipv6": "allowed"}
    assert not {"FIREWALL_BLOCKS", "FIREWALL_MAY_BLOCK"} & {f["code"] for f in doc["findings"]}
    assert both_reach(s) == ("open", "open")
    rc, doc, err = forward(s, "--remove")
    assert rc == 0, err
    assert doc["probes"]["host_firewall"]["changed"]
    assert state() == before  # byte for byte, somebody else's rule included
    assert both_reach(s) == ("timeout", "timeout")
    rc, doc, err = forward(s, "--remove")
    assert rc == 0 and not doc["probes"]["host_firewall"]["changed"], err
    assert state() == before


def test_forward_opens_an_ip_and_an_ip6_chain(s: Site) -> None:
    s.net.pc.nft(PER_FAMILY_DROP)
    scp = pyscp_dual(s.net.pc)
    mark = f"'\"reverseprobe DICOM {PORT}\"'"
    try:
        open_and_remove(
            s,
            lambda: s.net.pc.run(["nft", "list", "ruleset"]).stdout,
            [
                f"nft insert rule ip host4 input tcp dport {PORT} accept comment {mark}",
                f"nft insert rule ip6 host6 input tcp dport {PORT} accept comment {mark}",
            ],
        )
    finally:
        scp.stop()


def test_forward_opens_one_rule_in_an_inet_chain(s: Site) -> None:
    s.net.pc.nft(PER_FAMILY_DROP.replace("table ip host4", "table inet both"))
    s.net.pc.run(["nft", "delete", "table", "ip6", "host6"])
    s.net.pc.run(
        ["nft", "add", "rule", "inet", "both", "input", "meta", "l4proto", "ipv6-icmp", "accept"]
    )
    scp = pyscp_dual(s.net.pc)
    try:
        rc, doc, err = forward(s, "--dry-run")
        assert rc == 0, err
        cmds = doc["probes"]["host_firewall"]["commands"]
        assert len(cmds) == 1 and cmds[0].startswith("nft insert rule inet both input"), cmds
    finally:
        scp.stop()


def _save(ns: Namespace, prog: str) -> str:
    """`ip6tables-save` without its timestamped comment lines and packet counters."""
    out = ns.run([prog]).stdout
    lines = [ln for ln in out.splitlines() if not ln.startswith("#")]
    return "\n".join(re.sub(r"\[\d+:\d+\]", "[]", ln) for ln in lines)


@requires_tools("iptables", "ip6tables", "iptables-save", "ip6tables-save")
def test_forward_opens_iptables_and_ip6tables(s: Site) -> None:
    pc = s.net.pc
    for prog, icmp in (("iptables", "icmp"), ("ip6tables", "ipv6-icmp")):
        sh(
            pc,
            f"{prog} -P INPUT DROP && {prog} -A INPUT -m conntrack"
            f" --ctstate ESTABLISHED,RELATED -j ACCEPT && {prog} -A INPUT -i lo -j ACCEPT"
            f" && {prog} -A INPUT -p {icmp} -j ACCEPT",
        )
    scp = pyscp_dual(pc)
    comment = f"--comment 'reverseprobe DICOM {PORT}'"
    try:
        open_and_remove(
            s,
            lambda: (_save(pc, "iptables-save"), _save(pc, "ip6tables-save")),
            [
                f"iptables -I INPUT 1 -p tcp --dport {PORT} -m comment {comment} -j ACCEPT",
                f"ip6tables -I INPUT 1 -p tcp --dport {PORT} -m comment {comment} -j ACCEPT",
            ],
        )
    finally:
        scp.stop()
        for prog in ("iptables", "ip6tables"):
            pc.run([prog, "-P", "INPUT", "ACCEPT"], check=False)
            pc.run([prog, "-F", "INPUT"], check=False)
