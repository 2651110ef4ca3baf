"""NAT layers in network namespaces (issue 13): reverseprobe in a container behind the PC's
masquerade, a VirtualBox-like 10.0.2.15 via 10.0.2.2 guest, the receiver in a container behind
the PC's DNAT, the path probe across router and carrier NAT, --pacs-entry against the truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lab import (
    HomeNet,
    Lab,
    Namespace,
    home_net,
    nat_guest,
    requires_lab,
    start_ip_service,
    virtualbox_guest,
)

PORT = 11112
pytestmark = requires_lab


def _check(ns: Namespace, root: Path, url: str, *extra: str) -> dict[str, Any]:
    args = ["-m", "reverseprobe", "check", "--port", str(PORT), "--json", "--timeout", "6"]
    args += ["--no-upnp", "--ip-service", url, "--aet", "MYSCU", *extra]
    res = ns.python(args, check=False, timeout=40, env={"REVERSEPROBE_SYSROOT": str(root)})
    assert res.returncode in (0, 1), res.stderr[-2000:]
    doc: dict[str, Any] = json.loads(res.stdout)
    return doc


def _codes(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["code"]: f for f in doc["findings"]}


def _hops(doc: dict[str, Any]) -> list[str | None]:
    return [h["address"] for h in doc["probes"]["path"]["hops"]]


def test_container_behind_pc_nat(tmp_path: Path) -> None:
    (tmp_path / ".dockerenv").touch()
    with Lab() as lab:
        net = home_net(lab, upnp=False, natpmp=False)
        ctr = nat_guest(net)
        url = start_ip_service(net.inet, 8080)
        doc = _check(ctr.ns, tmp_path, url)
        v = doc["probes"]["virtual"]
        assert v["verdict"] == "virtual-nat" and v["kind"] == "docker"
        assert {e["signal"] for e in v["evidence"]} == {"/.dockerenv", "default route"}
        f = _codes(doc)["NAT_VIRTUAL"]
        assert f["severity"] == "warn" and "docker run -p 11112:11112" in f["fix"]
        # the path: the container's host, the home router, the IP service
        assert _hops(doc) == ["172.17.0.1", "192.168.2.1", net.inet_ip]
        assert doc["probes"]["path"]["reached"] is True
        # the entry never names the container's address
        assert doc["pacs_entry"]["host"] == net.public_ip
        assert "NAT_VIRTUAL" in doc["pacs_entry"]["note"]


def test_marker_without_nat_route_could_not_tell(tmp_path: Path) -> None:
    """/.dockerenv with a route that is no container NAT (host networking): no claim."""
    (tmp_path / ".dockerenv").touch()
    with Lab() as lab:
        net = home_net(lab, upnp=False, natpmp=False)
        url = start_ip_service(net.inet, 8080)
        doc = _check(net.pc, tmp_path, url)
        assert doc["probes"]["virtual"]["verdict"] == "could-not-tell"
        assert "NAT_VIRTUAL" not in _codes(doc)


def test_virtualbox_nat_guest(tmp_path: Path) -> None:
    dmi = tmp_path / "sys/class/dmi/id"
    dmi.mkdir(parents=True)
    (dmi / "sys_vendor").write_text("innotek GmbH\n")
    (dmi / "product_name").write_text("VirtualBox\n")
    with Lab() as lab:
        net = home_net(lab, upnp=False, natpmp=False)
        vm = virtualbox_guest(net)
        url = start_ip_service(net.inet, 8080)
        doc = _check(vm.ns, tmp_path, url)
        v = doc["probes"]["virtual"]
        assert (v["verdict"], v["kind"], v["address"]) == ("virtual-nat", "virtualbox", "10.0.2.15")
        f = _codes(doc)["NAT_VIRTUAL"]
        assert "Port Forwarding" in f["fix"] and "bridged" in f["fix"]
        assert _hops(doc)[:2] == ["10.0.2.2", "192.168.2.1"]


def test_receiver_in_container_behind_dnat(tmp_path: Path) -> None:
    with Lab() as lab:
        net = home_net(lab, upnp=False, natpmp=False)
        ctr = nat_guest(net)
        ctr.publish(PORT)
        url = start_ip_service(net.inet, 8080)
        doc = _check(net.pc, tmp_path, url)
        assert doc["probes"]["virtual"]["verdict"] == "none"
        f = _codes(doc)["LISTENER_IN_CONTAINER"]
        assert f["severity"] == "info" and f["detail"]["container_address"] == "172.17.0.2"
        assert "NAT_VIRTUAL" not in _codes(doc)


def test_path_across_carrier_nat(tmp_path: Path) -> None:
    with Lab() as lab:
        net = home_net(lab, upnp=False, natpmp=False, cgnat=True)
        url = start_ip_service(net.inet, 8080)
        doc = _check(net.pc, tmp_path, url)
        assert _hops(doc) == ["192.168.2.1", "100.64.0.1", net.inet_ip]
        f = _codes(doc)["NAT_DOUBLE"]
        assert f["detail"]["source"] == "path" and "100.64.0.1" in f["summary"]


def test_path_across_isp_hop_no_double_nat(tmp_path: Path) -> None:
    with Lab() as lab:
        net = home_net(lab, upnp=False, natpmp=False, isp_block_below=1024)
        url = start_ip_service(net.inet, 8080)
        doc = _check(net.pc, tmp_path, url)
        assert _hops(doc) == ["192.168.2.1", "100.128.0.1", net.inet_ip]
        assert "NAT_DOUBLE" not in _codes(doc)


@pytest.mark.parametrize(
    ("entry", "code", "severity", "words"),
    [
        ("MYSCU@100.128.0.2:11112", "PACS_ENTRY_OK", "pass", "matches"),
        ("MYSCU@100.128.0.2:104", "PACS_ENTRY_WRONG", "fail", "the port is 104"),
        ("OTHER@100.128.0.2:11112", "PACS_ENTRY_WRONG", "fail", "AE title is 'OTHER'"),
        ("MYSCU@192.168.2.2:11112", "PACS_ENTRY_WRONG", "warn", "LAN address"),
        ("MYSCU@192.168.2.77:11112", "PACS_ENTRY_WRONG", "fail", "DHCP"),
        ("MYSCU@100.128.0.9:11112", "PACS_ENTRY_WRONG", "fail", "dynamic"),
    ],
)
def test_pacs_entry_mistakes(
    tmp_path: Path, entry: str, code: str, severity: str, words: str
) -> None:
    with Lab() as lab:
        net = home_net(lab, upnp=False, natpmp=False)
        url = start_ip_service(net.inet, 8080)
        doc = _check(net.pc, tmp_path, url, "--pacs-entry", entry)
        f = _codes(doc)[code]
        assert f["severity"] == severity and words in f["summary"], f


REFLECTOR_PORT = 8470


def _start_reflector(net: HomeNet) -> str:
    """The reflector in the lab's internet (as tests/integration/test_inbound_lab.py starts it)."""
    proc = net.inet.python_popen(
        ["-m", "reverseprobe", "reflector", "--listen", f"0.0.0.0:{REFLECTOR_PORT}"],
        name="reflector",
    )
    proc.wait_log(r"listening on http://", timeout=20)
    return f"http://{net.inet_ip}:{REFLECTOR_PORT}/"


def _check_reflector(ns: Namespace, root: Path, url: str) -> dict[str, Any]:
    """check inside `ns` with the lab reflector; no UPnP (SSDP does not cross the PC's NAT)."""
    args = ["-m", "reverseprobe", "check", "--port", str(PORT), "--json", "--timeout", "12"]
    args += ["--no-upnp", "--no-public-ip", "--reflector", url, "--aet", "MYSCU"]
    res = ns.python(args, check=False, timeout=60, env={"REVERSEPROBE_SYSROOT": str(root)})
    assert res.returncode in (0, 1), res.stderr[-2000:]
    doc: dict[str, Any] = json.loads(res.stdout)
    return doc


def test_published_port_lets_the_dial_back_reach_the_container(tmp_path: Path) -> None:
    """The router forwards PORT to the PC (a UPnP mapping); the container behind the PC's
    masquerade sees nothing until the host publishes the port (`docker run -p`: DNAT)."""
    (tmp_path / ".dockerenv").touch()
    with Lab() as lab:
        net = home_net(lab, upnp=True, natpmp=False)
        ctr = nat_guest(net)
        url = _start_reflector(net)
        res = net.upnpc(["-e", "lab", "-a", net.pc_ip, str(PORT), str(PORT), "TCP"])
        assert "is redirected to" in res.stdout, res.stdout + res.stderr

        before = _check_reflector(ctr.ns, tmp_path, url)
        assert before["probes"]["inbound"]["results"][0]["tcp"] == "refused"
        f = _codes(before)["NAT_VIRTUAL"]
        assert f["severity"] == "fail" and "did not get in" in f["summary"]
        assert "docker run -p 11112:11112" in f["fix"] and "ports:" in f["fix"]
        assert "INBOUND_OK" not in _codes(before)
        assert f["detail"]["dial_back_reached"] is False

        ctr.publish(PORT)
        after = _check_reflector(ctr.ns, tmp_path, url)
        inbound = after["probes"]["inbound"]
        assert inbound["results"][0]["tcp"] == "open" and inbound["nonce_seen"] is True
        assert _codes(after)["INBOUND_OK"]["severity"] == "pass"
        v = _codes(after)["NAT_VIRTUAL"]
        assert v["severity"] == "warn" and v["detail"]["dial_back_reached"] is True
        assert "reached this listener" in v["summary"] and "Nothing reaches" not in v["summary"]
        assert "docker run -p" not in v["fix"]  # done: what is left is the entry
        assert after["pacs_entry"]["host"] == net.public_ip
