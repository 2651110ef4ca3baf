"""A reflector inside the network proves nothing (issue 12): on the router's LAN side and on the
PC itself, `check --reflector URL --no-public-ip` says REFLECTOR_INSIDE, never INBOUND_OK or
NAT_NONE, and gives no PACS entry with the private address as the public one. Real reflector,
real NAT router (LAB.md home network)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from lab import HomeNet, Lab, Namespace, home_net, requires_lab, requires_tools

pytestmark = [pytest.mark.lab, requires_lab, requires_tools("miniupnpd", "/usr/bin/storescp")]
PORT = 11112
REFLECTOR_PORT = 8472
TIMEOUT = 12.0


@pytest.fixture(scope="module")
def net() -> Iterator[HomeNet]:
    with Lab() as lab:
        yield home_net(lab)


def start_reflector(ns: Namespace, ip: str) -> Any:
    proc = ns.python_popen(
        ["-m", "reverseprobe", "reflector", "--listen", f"{ip}:{REFLECTOR_PORT}"],
        name=f"reflector-{ns.name}",
    )
    proc.wait_log(r"listening on http://", timeout=20)
    return proc


def check(net: HomeNet, url: str) -> tuple[int, dict[str, Any]]:
    argv = ["-m", "reverseprobe", "check", "--port", str(PORT), "--aet", "MYSCU"]
    argv += ["--reflector", url, "--no-public-ip", "--json", "--timeout", str(TIMEOUT)]
    res = net.pc.python(argv, check=False, timeout=TIMEOUT + 30)
    assert res.returncode in (0, 1), res.stderr[-2000:]
    return res.returncode, json.loads(res.stdout)


@pytest.mark.parametrize("where", ["router-lan", "pc"])
def test_an_inside_reflector_is_reflector_inside_and_proves_nothing(
    net: HomeNet, where: str
) -> None:
    ns, ip = (net.router, net.router_lan_ip) if where == "router-lan" else (net.pc, net.pc_ip)
    proc = start_reflector(ns, ip)
    try:
        rc, doc = check(net, f"http://{ip}:{REFLECTOR_PORT}")
    finally:
        proc.stop()
    codes = {f["code"]: f for f in doc["findings"]}
    assert "REFLECTOR_INSIDE" in codes, list(codes)
    inside = codes["REFLECTOR_INSIDE"]
    assert inside["severity"] == "warn" and ip in inside["summary"]
    assert not {"INBOUND_OK", "NAT_NONE", "NAT_DOUBLE"} & set(codes)
    entry = doc["pacs_entry"]
    # the router's own UPnP answer may name its external address; the reflector's view never
    # makes the private address a public one, nor this PC "without NAT"
    assert entry["host"] in (net.pc_ip, net.public_ip, None)
    assert "public address itself" not in entry["note"] and "no nat" not in entry["note"].lower()
    assert rc in (0, 1)


def test_strict_makes_an_inside_reflector_fail(net: HomeNet) -> None:
    proc = start_reflector(net.router, net.router_lan_ip)
    try:
        argv = ["-m", "reverseprobe", "check", "--port", str(PORT), "--aet", "MYSCU", "--strict"]
        argv += ["--reflector", f"http://{net.router_lan_ip}:{REFLECTOR_PORT}", "--no-public-ip"]
        argv += ["--json", "--timeout", str(TIMEOUT)]
        res = net.pc.python(argv, check=False, timeout=TIMEOUT + 30)
    finally:
        proc.stop()
    doc = json.loads(res.stdout)
    assert res.returncode == 1 and doc["verdict"] == "fail"
    assert "REFLECTOR_INSIDE" in {f["code"] for f in doc["findings"]}
