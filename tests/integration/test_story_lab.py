"""Issue 12 in the lab: `check` with a short deadline says what it did not measure (once, with
the time it needs) instead of network facts, and the real reports of the lab's shapes obey the
same one-story pair rules as tests/diagnosis/test_story.py's hand-built ones."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from test_story import assert_one_story

from lab import (
    HomeNet,
    Lab,
    LabProcess,
    Namespace,
    home_net,
    requires_lab,
    requires_tools,
    start_ip_service,
)
from netcheck_lab import CheckRun
from reverseprobe.model import Finding, Severity

pytestmark = [
    pytest.mark.lab,
    requires_lab,
    requires_tools("miniupnpd", "upnpc", "/usr/bin/storescp"),
]
PORT = 11112
REFLECTOR_PORT = 8473
IP_PORT = 8083


@dataclass
class Home:
    net: HomeNet
    reflector: str
    ip_service: str


def _reflector(net: HomeNet) -> str:
    proc = net.inet.python_popen(
        ["-m", "reverseprobe", "reflector", "--listen", f"0.0.0.0:{REFLECTOR_PORT}"],
        name="reflector",
    )
    proc.wait_log(r"listening on http://", timeout=20)
    return f"http://{net.inet_ip}:{REFLECTOR_PORT}/"


@pytest.fixture(scope="module")
def home() -> Iterator[Home]:
    with Lab() as lab:
        net = home_net(lab)
        yield Home(net, _reflector(net), start_ip_service(net.inet, IP_PORT))


@pytest.fixture
def h(home: Home) -> Iterator[Home]:
    """The shared home network, with no mapping left after each test."""
    yield home
    home.net.upnpc(["-d", str(PORT), "TCP"])


def check(h: Home, timeout: float) -> CheckRun:
    argv = [
        "-m", "reverseprobe", "check", "--port", str(PORT), "--aet", "MYSCU",
        "--reflector", h.reflector, "--ip-service", h.ip_service,
        "--json", "--timeout", str(timeout),
    ]  # fmt: skip
    res = h.net.pc.python(argv, check=False, timeout=timeout + 40)
    assert res.returncode in (0, 1), f"check exited {res.returncode}: {res.stderr[-3000:]}"
    return CheckRun(res.returncode, json.loads(res.stdout), res.stderr)


def add_mapping(h: Home) -> None:
    res = h.net.upnpc(["-e", "lab", "-a", h.net.pc_ip, str(PORT), str(PORT), "TCP"])
    assert "is redirected to" in res.stdout, res.stdout + res.stderr


def storescp(ns: Namespace) -> LabProcess:
    """dcmtk's storescp on every address (`-dhl`: no reverse DNS, which stalls in the lab)."""
    proc = ns.popen(["/usr/bin/storescp", "-dhl", "--aetitle", "MYSCU", str(PORT)], name="storescp")
    ns.wait_tcp_listen(PORT, proc=proc)
    return proc


_LOOPBACK = (
    "import socket, time\n"
    "s = socket.create_server(('127.0.0.1', %d))\n"
    "print('listening', flush=True)\n"
    "time.sleep(600)\n"
)


def loopback_listener(ns: Namespace) -> LabProcess:
    """A listener bound to 127.0.0.1 only (dcmtk's storescp cannot bind one address)."""
    proc = ns.python_popen(["-c", _LOOPBACK % PORT], name="loopback")
    ns.wait_tcp_listen(PORT, proc=proc)
    return proc


def findings(run: CheckRun) -> list[Finding]:
    return [
        Finding(d["code"], Severity(d["severity"]), d["summary"], d["fix"], d["detail"])
        for d in run.doc["findings"]
    ]


def test_a_short_deadline_says_not_measured_once_never_a_network_fact(h: Home) -> None:
    scp = storescp(h.net.pc)
    try:
        add_mapping(h)
        run = check(h, 1)
    finally:
        scp.stop()
    codes = run.codes
    text = json.dumps(run.doc["findings"])
    # the router answers: not asked in time is not "no UPnP"
    assert "UPNP_UNAVAILABLE" not in codes, run.doc["findings"]
    inbound = [f for f in run.doc["findings"] if f["code"] == "INBOUND_NOT_TESTED"]
    for f in inbound:  # a reflector was given: never "not tested" as if it was not
        assert "not measured in time" in f["summary"], f
    assert text.count("not measured in time") >= 1 or run.doc["probes"]["inbound"]["status"] == "ok"
    # the deadline too short is said once, with the time the probes need
    needs = [f for f in run.doc["findings"] if re.search(r"--timeout \d", f["fix"])]
    assert len({f["fix"] for f in needs}) <= 1, needs
    assert needs, run.doc["findings"]
    # what was not measured is never a pass
    assert run.doc["verdict"] != "pass" or all(
        p["status"] == "ok" for p in run.doc["probes"].values()
    ), (
        run.rc,
        run.doc["probes"],
    )
    assert "INBOUND_OK" not in codes or run.doc["probes"]["inbound"]["status"] == "ok"
    assert_one_story(findings(run))


SHAPES = ("healthy", "no-mapping", "loopback-listener", "nothing-listens")


@pytest.mark.parametrize("shape", SHAPES)
def test_real_reports_of_the_lab_shapes_tell_one_story(h: Home, shape: str) -> None:
    """The pair rules of tests/diagnosis/test_story.py over real reports, at the default
    deadline."""
    procs: list[LabProcess] = []
    try:
        if shape in ("healthy", "no-mapping"):
            procs.append(storescp(h.net.pc))
        if shape == "loopback-listener":
            procs.append(loopback_listener(h.net.pc))
        if shape != "no-mapping":
            add_mapping(h)
        run = check(h, 8)
    finally:
        for p in procs:
            p.stop()
    codes = run.codes
    assert_one_story(findings(run))
    if shape == "healthy":
        assert codes.get("UPNP_MAPPING_OK") == "pass" and codes.get("INBOUND_OK") == "pass"
        assert codes.get("LISTENER_OK") == "pass" and run.rc == 0
    elif shape == "no-mapping":
        assert codes.get("UPNP_MAPPING_MISSING") == "fail" and run.rc == 1
        assert run.finding("INBOUND_REFUSED")["detail"].get("caused_by") == "UPNP_MAPPING_MISSING"
    elif shape == "loopback-listener":
        # the listener is the cause: the router is not blamed, the dial-back names it
        assert codes.get("LISTENER_LOOPBACK_ONLY") == "fail" and run.rc == 1
        assert codes.get("UPNP_MAPPING_OK") == "pass"
        dial = [f for f in run.doc["findings"] if f["code"].startswith("INBOUND_")]
        for f in dial:
            if f["severity"] != "pass":
                assert f["detail"].get("caused_by") == "LISTENER_LOOPBACK_ONLY", f
                assert "forward" not in f["fix"].lower(), f
    else:  # nothing listens: the temporary listener proves the way in; the verdict says start it
        assert codes.get("LISTENER_NONE") and codes.get("INBOUND_OK") == "pass"
        proc = h.net.pc.python(
            ["-m", "reverseprobe", "check", "--port", str(PORT), "--no-upnp", "--no-public-ip"],
            check=False,
            timeout=40,
        )
        assert "nothing listens" in proc.stdout and "start the" in proc.stdout
