"""The echo-back probe through real networks (namespace lab, LAB.md): a reflector in the
"internet", a NAT router with miniupnpd, nftables firewalls, an ISP hop dropping low ports.
`check` runs inside the lab PC exactly as a user runs it; `upnpc -l` is the independent
witness of what the router holds."""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from lab import HomeNet, Lab, LabProcess, Namespace, home_net, requires_lab, requires_tools

pytestmark = [
    pytest.mark.lab,
    requires_lab,
    requires_tools("miniupnpd", "upnpc", "/usr/bin/storescp"),
]
PORT = 11112
REFLECTOR_PORT = 8470
CHECK_TIMEOUT = 12.0


@dataclass
class Run:
    rc: int
    doc: dict[str, Any]
    stderr: str

    @property
    def codes(self) -> dict[str, str]:
        return {f["code"]: f["severity"] for f in self.doc["findings"]}

    def finding(self, code: str) -> dict[str, Any]:
        return next(f for f in self.doc["findings"] if f["code"] == code)

    @property
    def inbound(self) -> dict[str, Any]:
        return dict(self.doc["probes"]["inbound"])


def start_reflector(net: HomeNet) -> str:
    proc = net.inet.python_popen(
        ["-m", "reverseprobe", "reflector", "--listen", f"0.0.0.0:{REFLECTOR_PORT}"],
        name="reflector",
    )
    proc.wait_log(r"listening on http://", timeout=20)
    return f"http://{net.inet_ip}:{REFLECTOR_PORT}/"


def check_argv(url: str, port: int, *extra: str) -> list[str]:
    return [
        "-m", "reverseprobe", "check", "--port", str(port), "--aet", "MYSCU",
        "--reflector", url, "--no-public-ip", "--json", "--timeout", str(CHECK_TIMEOUT), *extra,
    ]  # fmt: skip


def run_check(net: HomeNet, url: str, port: int = PORT, *extra: str) -> Run:
    res = net.pc.python(check_argv(url, port, *extra), check=False, timeout=CHECK_TIMEOUT + 30)
    assert res.returncode in (0, 1), f"check exited {res.returncode}: {res.stderr[-3000:]}"
    return Run(res.returncode, json.loads(res.stdout), res.stderr)


_ROW = re.compile(r"^\s*\d+\s+TCP\s+(\d+)->([\d.]+):(\d+)\s+'([^']*)'", re.MULTILINE)


def mappings(net: HomeNet) -> dict[int, tuple[str, int, str]]:
    """`upnpc -l`: {external port: (client, internal port, description)}."""
    out = net.upnpc(["-l"]).stdout
    return {int(e): (c, int(i), d) for e, c, i, d in _ROW.findall(out)}


def add_mapping(net: HomeNet, ns: Namespace, client: str, port: int = PORT) -> None:
    res = net.upnpc(["-e", "lab", "-a", client, str(port), str(port), "TCP"], ns=ns)
    assert "is redirected to" in res.stdout, res.stdout + res.stderr


def storescp(ns: Namespace, port: int = PORT) -> LabProcess:
    """dcmtk's storescp. `-dhl`: no reverse DNS of callers; in the lab it stalls for seconds
    (no resolver), and storescp, single-process, keeps everyone else waiting meanwhile."""
    argv = ["/usr/bin/storescp", "-dhl", "--aetitle", "MYSCU", str(port)]
    proc = ns.popen(argv, name="storescp")
    ns.wait_tcp_listen(port, proc=proc)
    return proc


def listening(ns: Namespace, port: int) -> bool:
    return f":{port} " in ns.run(["ss", "-Hltn"]).stdout


@pytest.fixture(scope="module")
def home() -> Iterator[tuple[HomeNet, str]]:
    with Lab() as lab:
        net = home_net(lab)
        yield net, start_reflector(net)


@pytest.fixture
def net(home: tuple[HomeNet, str]) -> Iterator[tuple[HomeNet, str]]:
    """The shared home network, with no mapping and no firewall left after each test."""
    yield home
    n = home[0]
    n.upnpc(["-d", str(PORT), "TCP"])
    n.pc.run(["nft", "delete", "table", "inet", "rptest"], check=False)


def test_mapped_and_listening_is_ok_by_fingerprint(net: tuple[HomeNet, str]) -> None:
    n, url = net
    scp = storescp(n.pc)
    try:
        add_mapping(n, n.pc, n.pc_ip)
        run = run_check(n, url)
    finally:
        scp.stop()
    inbound = run.inbound
    assert inbound["status"] == "ok" and inbound["mode"] == "existing-listener"
    assert inbound["observed_ip"] == n.public_ip
    assert inbound["results"][0]["implementation_version_name"].startswith("OFFIS_DCMTK")
    f = run.finding("INBOUND_OK")
    assert f["severity"] == "pass" and f["detail"]["evidence"] == "fingerprint"


def test_mapped_nothing_listening_temporary_listener_is_ok(net: tuple[HomeNet, str]) -> None:
    n, url = net
    add_mapping(n, n.pc, n.pc_ip)
    run = run_check(n, url)
    inbound = run.inbound
    assert inbound["mode"] == "temporary-listener" and inbound["nonce_seen"] is True
    assert inbound["calling_aets_seen"] == [inbound["nonce"]]
    assert inbound["connections_seen"] and set(inbound["connections_seen"]) == {n.inet_ip}
    f = run.finding("INBOUND_OK")
    assert f["severity"] == "pass" and f["detail"]["evidence"] == "nonce"
    assert not listening(n.pc, PORT)  # the temporary listener is gone


def test_no_mapping_is_refused(net: tuple[HomeNet, str]) -> None:
    n, url = net
    assert PORT not in mappings(n)
    run = run_check(n, url)
    assert run.inbound["results"][0]["tcp"] == "refused"
    # One story: the refused dial-back is explained by its cause, which carries the failure.
    refused = run.finding("INBOUND_REFUSED")
    assert refused["detail"].get("caused_by") == "UPNP_MAPPING_MISSING"
    assert run.codes.get("UPNP_MAPPING_MISSING") == "fail" and run.rc == 1
    assert "INBOUND_OK" not in run.codes


def test_host_firewall_drop_is_a_timeout(net: tuple[HomeNet, str]) -> None:
    n, url = net
    add_mapping(n, n.pc, n.pc_ip)
    n.pc.nft(
        "table inet rptest {\n chain input {\n type filter hook input priority 0; policy accept;\n"
        f" tcp dport {PORT} drop\n }}\n}}\n"
    )
    run = run_check(n, url)
    assert run.inbound["results"][0]["tcp"] == "timeout"
    assert run.inbound["nonce_seen"] is False
    f = run.finding("INBOUND_TIMEOUT")
    assert "firewall" in f["summary"]
    cause = f["detail"].get("caused_by")
    if cause:  # the firewall reading names the drop: it carries the failure
        assert run.codes[cause] == "fail"
    else:
        assert f["severity"] == "fail"
    assert run.rc == 1


def test_mapping_to_a_second_pc_is_another_host() -> None:
    with Lab() as lab:
        net = home_net(lab, second_pc=True)
        assert net.pc2 is not None
        url = start_reflector(net)
        storescp(net.pc2)  # another DICOM receiver, on the other PC
        add_mapping(net, net.pc2, net.pc2_ip)
        run = run_check(net, url)
    inbound = run.inbound
    assert inbound["mode"] == "temporary-listener"
    assert inbound["results"][0]["tcp"] == "open" and inbound["nonce_seen"] is False
    f = run.finding("INBOUND_OTHER_HOST")
    assert "OFFIS_DCMTK" in f["summary"]
    # One story: the mapping to the other PC is the cause, and it carries the failure.
    assert f["detail"].get("caused_by") == "UPNP_MAPPING_OTHER_HOST"
    assert run.codes["UPNP_MAPPING_OTHER_HOST"] == "fail"
    assert run.rc == 1


@pytest.fixture(scope="module")
def isp() -> Iterator[tuple[HomeNet, str]]:
    with Lab() as lab:
        net = home_net(lab, isp_block_below=1024, allow_ports=["104", "1024-65535"])
        yield net, start_reflector(net)


def test_isp_dropping_low_ports_is_measured_with_a_control_port(
    isp: tuple[HomeNet, str],
) -> None:
    n, url = isp
    add_mapping(n, n.pc, n.pc_ip, 104)
    try:
        run = run_check(n, url, 104)
        held = mappings(n)
    finally:
        n.upnpc(["-d", "104", "TCP"])
    inbound = run.inbound
    assert inbound["results"][0]["tcp"] == "timeout"
    control = inbound["control"]
    assert control["outcome"] == "reached" and control["nonce_seen"] is True
    assert control["mapping_removed"] is True
    assert control["low_port_mapping"] == f"{n.pc_ip}:104"
    assert control["port"] not in held  # upnpc: the control mapping is gone
    assert set(held) == {104}
    f = run.finding("PORT_ISP_BLOCKED")
    assert f["severity"] == "fail" and "11112" in f["fix"]
    assert "INBOUND_TIMEOUT" not in run.codes  # the router and this PC are not to blame
    assert not listening(n.pc, 104) and not listening(n.pc, control["port"])


def test_ctrl_c_removes_the_control_mapping_and_listeners(isp: tuple[HomeNet, str]) -> None:
    n, url = isp
    add_mapping(n, n.pc, n.pc_ip, 104)
    # Only 104 may come in (the ISP drops it anyway): the control dial-back then hangs for
    # the reflector's connect timeout, long enough to interrupt check while the mapping exists.
    n.pc.nft(
        "table inet rptest {\n chain input {\n type filter hook input priority 0; policy accept;\n"
        " ct state established,related accept\n tcp dport != 104 drop\n }\n}\n"
    )
    try:
        proc = n.pc.python_popen(check_argv(url, 104), name="check")
        control = _wait_for_control_mapping(n, proc)
        proc.signal(signal.SIGINT)
        proc.proc.wait(20)
        assert proc.returncode == 130, proc.log()
        held = mappings(n)
    finally:
        n.pc.run(["nft", "delete", "table", "inet", "rptest"], check=False)
        n.upnpc(["-d", "104", "TCP"])
    assert control not in held, held
    assert not listening(n.pc, 104) and not listening(n.pc, control)


def _wait_for_control_mapping(n: HomeNet, proc: LabProcess, timeout: float = 20) -> int:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for eport, (_, _, desc) in mappings(n).items():
            if "reverseprobe control" in desc:
                return eport
        assert proc.returncode is None, proc.log()
        time.sleep(0.02)  # polling interval
    raise AssertionError(f"no control mapping appeared: {proc.log()}")
