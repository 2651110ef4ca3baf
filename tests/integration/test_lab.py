"""The network lab itself works: NAT, UPnP, NAT-PMP, CGNAT, ISP port blocks, teardown."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import (
    SRC,
    HomeNet,
    Lab,
    LabError,
    home_net,
    http_get,
    netns_names,
    requires_lab,
    requires_tools,
    start_blackhole,
    start_ip_service,
    tcp_connect,
)

pytestmark = [pytest.mark.lab, requires_lab]
needs_upnp_tools = requires_tools("miniupnpd", "upnpc", "natpmpc")


def listen_http(net: HomeNet, port: int, *, pc2: bool = False) -> None:
    """A TCP listener (python -m http.server) on 0.0.0.0:port in pc (or pc2)."""
    ns = net.pc2 if pc2 and net.pc2 is not None else net.pc
    proc = ns.popen([sys.executable, "-m", "http.server", "-b", "0.0.0.0", str(port)])
    ns.wait_tcp_listen(port, proc=proc)


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def net() -> Iterator[HomeNet]:
    with Lab() as lab:
        yield home_net(lab)


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab() as lab:
        yield lab


@needs_upnp_tools
def test_nat_outbound_seen_from_router_wan(net: HomeNet) -> None:
    url = start_ip_service(net.inet, 8080)
    assert url == f"http://{net.inet_ip}:8080/"
    assert http_get(net.pc, url) == net.router_wan_ip == net.public_ip

    as_json = start_ip_service(net.inet, 8081, json_key="ip")
    assert json.loads(http_get(net.pc, as_json)) == {"ip": net.public_ip}
    fixed = start_ip_service(net.inet, 8082, answer="198.51.100.7")
    assert http_get(net.pc, fixed) == "198.51.100.7"


@needs_upnp_tools
def test_upnpc_discovers_igd_by_ssdp(net: HomeNet) -> None:
    out = net.pc.run(["upnpc", "-s"]).stdout  # real SSDP multicast discovery (~2 s)
    assert f"desc: {net.igd_url}" in out
    assert "Status : Connected" in out
    assert f"ExternalIPAddress = {net.router_wan_ip}" in out


@needs_upnp_tools
def test_mapping_add_list_delete_and_inbound(net: HomeNet) -> None:
    wan = net.router_wan_ip
    add = net.upnpc(["-e", "lab test", "-a", net.pc_ip, "11112", "11112", "TCP"], check=True)
    try:
        assert f"external {wan}:11112 TCP is redirected to internal {net.pc_ip}:11112" in add.stdout
        listing = net.upnpc(["-l"]).stdout
        assert f"TCP 11112->{net.pc_ip}:11112 'lab test'" in listing

        listen_http(net, 11112)
        assert tcp_connect(net.inet, wan, 11112) == "open"
        # The PACS side is not masqueraded: the listener sees inet's own address.
        assert http_get(net.inet, f"http://{wan}:11112/").startswith("<!DOCTYPE")
        assert net.lab.processes[-1].wait_log(rf"^{net.inet_ip} .*GET / ")
    finally:
        net.upnpc(["-d", "11112", "TCP"], check=True)
    assert "11112->" not in net.upnpc(["-l"]).stdout
    assert tcp_connect(net.inet, wan, 11112) == "refused"  # no mapping: the router resets


@needs_upnp_tools
def test_default_allow_rules_refuse_low_ports(net: HomeNet) -> None:
    res = net.upnpc(["-a", net.pc_ip, "104", "104", "TCP"])
    assert "failed with code 606" in res.stdout


@needs_upnp_tools
def test_natpmp_public_address(net: HomeNet) -> None:
    out = net.pc.run(["natpmpc", "-g", net.router_lan_ip]).stdout
    assert f"Public IP address : {net.router_wan_ip}" in out


@needs_upnp_tools
def test_restart_miniupnpd_clears_mappings_unless_kept(net: HomeNet) -> None:
    net.upnpc(["-a", net.pc_ip, "20000", "20000", "UDP"], check=True)
    net.start_miniupnpd(keep_mappings=True)
    assert "UDP 20000->" in net.upnpc(["-l"]).stdout
    net.start_miniupnpd()
    assert "UDP 20000->" not in net.upnpc(["-l"]).stdout


@needs_upnp_tools
def test_inet_has_no_route_out_of_the_lab(net: HomeNet) -> None:
    for ns in (net.pc, net.router, net.inet):
        links = ns.ip("-o link show").split("\n")
        names = {line.split(": ")[1].split("@")[0] for line in links if line}
        assert names <= {"lo", "eth0", "lan0", "wan0"}, names
    res = net.inet.run(["ip", "route", "get", "192.0.2.1"], check=False)
    assert res.returncode != 0
    assert "unreachable" in res.stderr


@needs_upnp_tools
def test_cgnat_router_cannot_forward(lab: Lab) -> None:
    net = home_net(lab, cgnat=True)
    assert net.router_wan_ip == "100.64.0.2"
    assert net.public_ip == "100.128.0.2"
    assert http_get(net.pc, start_ip_service(net.inet, 8080)) == net.public_ip

    status = net.upnpc(["-s"]).stdout
    assert "GetExternalIPAddress failed" in status
    assert "ExternalIPAddress = 100." not in status
    add = net.upnpc(["-a", net.pc_ip, "11112", "11112", "TCP"])
    assert "failed with code 501" in add.stdout
    natpmp = net.pc.run(["natpmpc", "-g", net.router_lan_ip], check=False)
    assert natpmp.returncode != 0
    assert "Public IP address" not in natpmp.stdout
    assert net.miniupnpd is not None
    assert net.miniupnpd.wait_log("Reserved / private IP address 100.64.0.2")


@needs_upnp_tools
def test_isp_blocks_inbound_low_ports(lab: Lab) -> None:
    net = home_net(lab, isp_block_below=1024, allow_ports=["1024-65535", "104"])
    assert net.isp is not None
    for port in ("104", "11112"):
        net.upnpc(["-a", net.pc_ip, port, port, "TCP"], check=True)
        listen_http(net, int(port))
    t0 = time.monotonic()
    assert tcp_connect(net.inet, net.public_ip, 104, timeout=0.5) == "timeout"
    assert time.monotonic() - t0 >= 0.5
    assert tcp_connect(net.inet, net.public_ip, 11112) == "open"
    # Outbound to a low port (a PACS on 104 "in the internet") is not blocked.
    assert http_get(net.pc, start_ip_service(net.inet, 104)) == net.public_ip


@needs_upnp_tools
def test_second_pc_on_a_bridge(lab: Lab) -> None:
    net = home_net(lab, second_pc=True)
    assert net.pc2 is not None
    assert net.router_lan_if == "br0"
    listen_http(net, 8000, pc2=True)
    assert tcp_connect(net.pc, net.pc2_ip, 8000) == "open"
    assert http_get(net.pc2, start_ip_service(net.inet, 8080)) == net.public_ip
    # SSDP across the bridge, then a mapping that pc2 makes for itself.
    assert f"ExternalIPAddress = {net.router_wan_ip}" in net.pc2.run(["upnpc", "-s"]).stdout
    net.upnpc(["-a", net.pc2_ip, "8000", "8000", "TCP"], ns=net.pc2, check=True)
    assert tcp_connect(net.inet, net.public_ip, 8000) == "open"
    # secure_mode: pc may not map a port to pc2.
    assert "failed with code 718" in net.upnpc(["-a", net.pc2_ip, "8001", "8001", "TCP"]).stdout


def test_teardown_after_exception() -> None:
    with pytest.raises(RuntimeError, match="boom"), Lab() as lab:
        net = home_net(lab, upnp=False, natpmp=False)
        names = [ns.name for ns in lab.namespaces.values()]
        tmp = lab.tmp
        sleeper = net.pc.popen(["sleep", "600"])
        # A child that left the process group: close() finds it through `ip netns pids`.
        escaper = net.inet.popen(["sh", "-c", "setsid sleep 600 & echo $!; wait"])
        escaped = int(escaper.wait_log(r"^(\d+)$").group(1))
        raise RuntimeError("boom")
    assert names
    assert not set(names) & set(netns_names())
    assert sleeper.returncode is not None
    assert escaper.returncode is not None
    assert not running(escaped)
    assert os.environ.get("RP_LAB_KEEP") == "1" or not tmp.exists()
    lab.close()  # idempotent


def test_what_a_dead_run_left_is_reaped() -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"rpl{dead.pid}-0bad-pc"
    subprocess.run(["ip", "netns", "add", stale], check=True)
    tmp = Path(tempfile.gettempdir())
    stale_dir, kept_dir = tmp / f"rpl{dead.pid}-0bad-lab-x", tmp / f"rpl{dead.pid}-0bad-lab-k"
    stale_dir.mkdir()
    kept_dir.mkdir()
    (kept_dir / "KEPT").touch()
    try:
        with Lab() as lab:
            assert stale not in netns_names()
            assert not stale_dir.exists()
            assert kept_dir.exists()
            assert not lab.prefix.startswith(f"rpl{dead.pid}-")
    finally:
        subprocess.run(["ip", "netns", "del", stale], check=False, capture_output=True)
        shutil.rmtree(stale_dir, ignore_errors=True)
        shutil.rmtree(kept_dir, ignore_errors=True)


def test_wait_helpers_fail_fast_and_clearly(lab: Lab) -> None:
    ns = lab.ns("x")
    quitter = ns.popen(["sh", "-c", "echo about to quit; exit 3"])
    t0 = time.monotonic()
    with pytest.raises(LabError, match=r"(?s)exited with 3.*about to quit"):
        quitter.wait_log("never printed", timeout=10)
    with pytest.raises(LabError, match="exited with 3"):
        ns.wait_tcp_listen(9, timeout=10, proc=quitter)
    assert time.monotonic() - t0 < 3

    sleeper = ns.popen(["sh", "-c", "echo still here; exec sleep 600"])
    with pytest.raises(TimeoutError, match=r"(?s)not there.*still here"):
        sleeper.wait_log("not there", timeout=0.3)
    with pytest.raises(TimeoutError, match="nothing listening on TCP port 9"):
        ns.wait_tcp_listen(9, timeout=0.2)
    with pytest.raises(TimeoutError, match="nothing bound to UDP port 9"):
        ns.wait_udp_bound(9, timeout=0.2)
    sleeper.stop()
    assert sleeper.returncode is not None


def test_blackhole_accepts_and_never_answers(lab: Lab) -> None:
    a, b = lab.ns("a"), lab.ns("b")
    lab.veth(a, "eth0", "10.9.0.1/24", b, "eth0", "10.9.0.2/24")
    start_blackhole(b, 4242)
    code = (
        "import socket; s = socket.create_connection(('10.9.0.2', 4242), timeout=2); "
        "s.settimeout(0.3)\ntry:\n    print(s.recv(1))\nexcept TimeoutError:\n    print('silent')"
    )
    assert a.run([sys.executable, "-c", code]).stdout.strip() == "silent"


def test_python_runs_with_src_on_pythonpath(lab: Lab) -> None:
    ns = lab.ns("py")
    out = ns.python(
        ["-c", "import os, sys; print(sys.path[1]); print(os.environ['RP_X'])"],
        env={"RP_X": "1"},
    ).stdout.split()
    assert out == [str(SRC), "1"]
    bad = ns.run(["sh", "-c", "echo oops >&2; exit 4"], check=False)
    assert (bad.returncode, bad.stderr) == (4, "oops\n")
    with pytest.raises(subprocess.CalledProcessError, match=r"(?s)status 4.*oops"):
        ns.run(["sh", "-c", "echo oops >&2; exit 4"])
