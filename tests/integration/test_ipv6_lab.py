"""Issue 15 in the namespace lab: a dual-stack line (routed global IPv6 beside NATed IPv4,
lab.dualstack), a reflector listening on both families, and `check` run in the PC as a user
runs it. Receivers are real: a pynetdicom SCP on [::] (dual-stack) and dcmtk's storescp
(IPv4 only); the router's IPv6 forward policy is a real nftables ip6 rule."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass

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
    http_get,
    requires_lab,
    requires_tools,
    start_ip_service,
    start_ip_service6,
)
from netcheck_lab import CheckRun

pytestmark = [
    pytest.mark.lab,
    requires_lab,
    requires_tools("miniupnpd", "upnpc", "/usr/bin/storescp"),
]
PORT = 11112
REFLECTOR_PORT = 8472
IP_SERVICE_PORT = 8080
CHECK_TIMEOUT = 12.0


@dataclass
class Site:
    net: HomeNet
    ds: DualStack
    reflector6: str  # the reflector's URL over IPv6


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with Lab() as lab:
        net = home_net(lab)
        ds = dual_stack(net)
        listen = [f"{net.inet_ip}:{REFLECTOR_PORT}", f"[{ds.inet_ip6}]:{REFLECTOR_PORT}"]
        argv = ["-m", "reverseprobe", "reflector", "--listen", listen[0], "--listen", listen[1]]
        proc = net.inet.python_popen(argv, name="reflector")
        net.inet.wait_tcp_listen(REFLECTOR_PORT, timeout=20, addr=ds.inet_ip6, proc=proc)
        net.inet.wait_tcp_listen(REFLECTOR_PORT, timeout=20, addr=net.inet_ip, proc=proc)
        yield Site(net, ds, f"http://[{ds.inet_ip6}]:{REFLECTOR_PORT}/")


@pytest.fixture
def s(site: Site) -> Iterator[Site]:
    """The shared site with no mapping and no IPv6 drop left after each test."""
    yield site
    site.net.upnpc(["-d", str(PORT), "TCP"])
    site.ds.allow_inbound()


def run_check(s: Site, *extra: str) -> CheckRun:
    argv = [
        "-m", "reverseprobe", "check", "--port", str(PORT), "--aet", "MYSCU",
        "--reflector", s.reflector6, "--json", "--timeout", str(CHECK_TIMEOUT), *extra,
    ]  # fmt: skip
    res = s.net.pc.python(argv, check=False, timeout=CHECK_TIMEOUT + 40)
    assert res.returncode in (0, 1), f"check exited {res.returncode}: {res.stderr[-3000:]}"
    return CheckRun(res.returncode, json.loads(res.stdout), res.stderr)


def add_mapping(s: Site) -> None:
    res = s.net.upnpc(["-e", "lab", "-a", s.net.pc_ip, str(PORT), str(PORT), "TCP"])
    assert "is redirected to" in res.stdout, res.stdout + res.stderr


def pyscp_dual(ns: Namespace) -> LabProcess:
    """A pynetdicom Verification SCP on [::] (IPV6_V6ONLY off: both families)."""
    script = str(REPO / "tests" / "peers" / "pyscp.py")
    proc = ns.popen([sys.executable, script, "::", str(PORT), "MYSCU"], name="pyscp")
    ns.wait_tcp_listen(PORT, addr="::", proc=proc)
    return proc


def storescp(ns: Namespace) -> LabProcess:
    """dcmtk's storescp: IPv4 only (0.0.0.0). `-dhl`: no reverse DNS (no resolver here)."""
    proc = ns.popen(["/usr/bin/storescp", "-dhl", "--aetitle", "MYSCU", str(PORT)], name="scp")
    ns.wait_tcp_listen(PORT, addr="0.0.0.0", proc=proc)
    return proc


def test_lab_routes_ipv6_without_nat(s: Site) -> None:
    """The lab itself: the reflector sees the PC's own global IPv6 address (no NAT66)."""
    url = start_ip_service6(s.net.inet, 8090, s.ds.inet_ip6)
    assert http_get(s.net.pc, url) == s.ds.pc_ip6


def test_dual_stack_receiver_over_ipv6_is_ok_without_double_nat(s: Site) -> None:
    add_mapping(s)
    scp = pyscp_dual(s.net.pc)
    try:
        run = run_check(s, "--no-public-ip")
    finally:
        scp.stop()
    inbound = run.doc["probes"]["inbound"]
    assert inbound["observed_ip"] == s.ds.pc_ip6, inbound
    assert run.codes.get("INBOUND_OK") == "pass", run.codes
    assert "NAT_DOUBLE" not in run.codes, run.finding("NAT_DOUBLE")
    assert run.rc == 0, run.codes


def test_ipv4_only_receiver_dialled_over_ipv6_names_the_listener(s: Site) -> None:
    add_mapping(s)
    scp = storescp(s.net.pc)
    try:
        run = run_check(s, "--no-public-ip")
    finally:
        scp.stop()
    assert run.codes.get("LISTENER_IPV4_ONLY") == "fail", run.codes
    # the effect stays in the report as info, pointing at its cause (diagnosis/story.py)
    refused = run.finding("INBOUND_REFUSED")
    assert refused["detail"].get("caused_by") == "LISTENER_IPV4_ONLY", refused
    assert refused["severity"] == "info" and not refused["fix"]
    assert run.doc["probes"]["inbound"]["results"][0]["tcp"] == "refused"
    assert run.rc == 1


def test_ipv6_drop_at_the_router_is_named_as_its_forward_policy(s: Site) -> None:
    add_mapping(s)
    s.ds.drop_inbound(PORT)
    scp = pyscp_dual(s.net.pc)
    try:
        run = run_check(s, "--no-public-ip")
    finally:
        scp.stop()
    assert run.doc["probes"]["inbound"]["results"][0]["tcp"] == "timeout"
    f = run.finding("INBOUND_TIMEOUT")
    assert f["severity"] == "fail"
    text = (f["summary"] + " " + f.get("fix", "")).lower()
    assert "ipv6" in text and "router" in text, f
    # no port-forwarding advice to the PC's IPv4 LAN address: IPv6 is not NATed
    assert s.net.pc_ip not in f["fix"] and "forwards it" not in f["fix"], f["fix"]
    assert f["detail"].get("likely") == "router-ipv6-policy"
    assert run.rc == 1


def test_public_ip_is_asked_per_family(s: Site) -> None:
    url4 = start_ip_service(s.net.inet, IP_SERVICE_PORT)
    url6 = start_ip_service6(s.net.inet, IP_SERVICE_PORT, s.ds.inet_ip6)
    add_mapping(s)
    scp = pyscp_dual(s.net.pc)
    try:
        run = run_check(s, "--ip-service", url4, "--ip-service", url6)
    finally:
        scp.stop()
    pub = run.doc["probes"]["public_ip"]
    fams = {f["family"]: f for f in pub["families"]}
    assert set(fams) == {"ipv4", "ipv6"}, pub
    assert s.net.public_ip in json.dumps(fams["ipv4"]), fams["ipv4"]
    assert s.ds.pc_ip6 in json.dumps(fams["ipv6"]), fams["ipv6"]
    assert "NAT_DOUBLE" not in run.codes, run.codes
