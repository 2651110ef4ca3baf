"""The interfaces probe: tunnel detection (fake sysfs) and, in a network namespace, a default
route through a real tun device -> ROUTE_VIA_VPN."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from lab import Lab, requires_lab
from reverseprobe.probes.interfaces import probe_interfaces, tunnel_kind
from reverseprobe.runner import Deadline


def fake_sysfs(tmp_path: Path, name: str, arphrd: int, tun: bool = False) -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "type").write_text(f"{arphrd}\n")
    if tun:
        (d / "tun_flags").write_text("0x1001\n")
    return tmp_path


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sysfs is Linux")
def test_tunnel_kind_from_link_type(tmp_path: Path) -> None:
    assert tunnel_kind("wgx", fake_sysfs(tmp_path, "wgx", 65534)) is not None
    assert tunnel_kind("eth9", fake_sysfs(tmp_path, "eth9", 1)) is None
    assert tunnel_kind("gre9", fake_sysfs(tmp_path, "gre9", 778)) == "gre"
    assert tunnel_kind("x", fake_sysfs(tmp_path, "x", 1, tun=True)) == "tun/tap"


def test_tunnel_kind_from_vpn_names(tmp_path: Path) -> None:
    for name in ("utun3", "Tailscale", "OpenVPN TAP-Windows6", "ppp0", "wg0"):
        assert tunnel_kind(name, tmp_path) is not None, name
    for name in ("eth0", "en0", "Ethernet", "Wi-Fi", "wlan0", "br0"):
        assert tunnel_kind(name, tmp_path) is None, name


def test_probe_reads_this_host_without_sending_anything() -> None:
    r = probe_interfaces(Deadline.after(2))
    assert r.status.value == "ok"
    assert any(a.address == "127.0.0.1" for i in r.interfaces for a in i.addresses)
    lo = r.interface("lo")
    assert lo is None or all(a.klass.value == "loopback" for a in lo.addresses)


def _check_in(ns, port: int = 11112) -> dict:  # type: ignore[no-untyped-def,type-arg]
    p = ns.python(
        [
            "-m",
            "reverseprobe",
            "check",
            "--port",
            str(port),
            "--no-upnp",
            "--no-public-ip",
            "--json",
            "--timeout",
            "4",
        ],
        check=False,
        timeout=60,
    )
    assert p.returncode in (0, 1), p.stderr
    return json.loads(p.stdout)  # type: ignore[no-any-return]


@pytest.mark.lab
@requires_lab
def test_default_route_through_a_tun_device_is_route_via_vpn() -> None:
    with Lab() as lab:
        pc, router = lab.ns("pc"), lab.ns("rt")
        lab.veth(pc, "eth0", "192.168.2.2/24", router, "lan0", "192.168.2.1/24")
        pc.run(["ip", "tuntap", "add", "dev", "tun0", "mode", "tun"])
        pc.run(["ip", "addr", "add", "10.8.0.2/24", "dev", "tun0"])
        pc.run(["ip", "link", "set", "tun0", "up"])
        pc.run(["ip", "route", "add", "default", "dev", "tun0"])

        doc = _check_in(pc)
        codes = {f["code"] for f in doc["findings"]}
        assert "ROUTE_VIA_VPN" in codes
        ifs = doc["probes"]["interfaces"]
        assert ifs["route_via_tunnel"] == "tun0"
        tun = next(i for i in ifs["interfaces"] if i["name"] == "tun0")
        assert tun["tunnel"] == "tun/tap"
        eth = next(i for i in ifs["interfaces"] if i["name"] == "eth0")
        assert eth["tunnel"] is None
        assert eth["addresses"][0]["klass"] == "private"


@pytest.mark.lab
@requires_lab
def test_default_route_through_the_lan_is_not_a_vpn_and_names_the_lan_address() -> None:
    with Lab() as lab:
        pc, router = lab.ns("pc"), lab.ns("rt")
        lab.veth(pc, "eth0", "192.168.2.2/24", router, "lan0", "192.168.2.1/24")
        pc.run(["ip", "tuntap", "add", "dev", "tun0", "mode", "tun"])  # present, not the route
        pc.run(["ip", "route", "add", "default", "via", "192.168.2.1"])

        doc = _check_in(pc)
        assert "ROUTE_VIA_VPN" not in {f["code"] for f in doc["findings"]}
        ifs = doc["probes"]["interfaces"]
        assert ifs["default_gateway"] == "192.168.2.1"
        assert ifs["default_interface"] == "eth0"
        assert ifs["source_address"] == "192.168.2.2"
        assert doc["pacs_entry"]["host"] == "192.168.2.2"
