"""The checklist end to end in the network-namespace lab: this PC behind a NAT router running
miniupnpd, a real dcmqrscp PACS and a public-IP service on the "internet".

A healthy site (the PACS knows MYSCU at the public address, the router forwards the port) and a
broken one (the PACS does not know MYSCU, nothing forwarded) run the real `reverseprobe
checklist` command inside the PC's namespace; every report it writes is checked.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import xmlschema

from conftest import TESTS
from dicom_fixtures import DCMQRSCP, dcmqrscp_config, make_study, storescu_argv, write_study
from lab import HomeNet, Lab, LabProcess, home_net, requires_lab, requires_tools, start_ip_service

pytestmark = [pytest.mark.lab, requires_lab, requires_tools("miniupnpd", "upnpc", DCMQRSCP)]

SCHEMA = TESTS / "data" / "junit.xsd"
PACS_PORT = 11113
PORT = 11112


def start_pacs(net: HomeNet, name: str, hosts: dict[str, tuple[str, str, int]]) -> LabProcess:
    """dcmqrscp in inet with a two-image study; `hosts` is its HostTable."""
    cfg, _db = dcmqrscp_config(net.lab.tmp / name, aet="ARCHIVE", port=PACS_PORT, hosts=hosts)
    proc = net.inet.popen([DCMQRSCP, "-c", str(cfg), str(PACS_PORT)], name=name)
    net.inet.wait_tcp_listen(PACS_PORT, proc=proc)
    files = write_study(net.lab.tmp / f"{name}-study", make_study(2))
    net.inet.run(storescu_argv("127.0.0.1", PACS_PORT, "ARCHIVE", files))
    return proc


def run_checklist(net: HomeNet, ip_url: str, name: str) -> tuple[int, Path, str]:
    site = net.lab.tmp / f"{name}.toml"
    site.write_text(
        f'[site]\nname = "{name}"\naet = "MYSCU"\nport = {PORT}\nip_services = ["{ip_url}"]\n\n'
        f'[[pacs]]\nname = "archive"\nhost = "{net.inet_ip}"\nport = {PACS_PORT}\naet = "ARCHIVE"\n'
        "grace = 1\ntimeout = 40\n"
    )
    out = net.lab.tmp / f"{name}-reports"
    res = net.pc.python(
        ["-m", "reverseprobe", "checklist", str(site), "--output-dir", str(out), "--timeout", "90"],
        check=False,
        timeout=150,
    )
    assert res.returncode in (0, 1), res.stderr
    return res.returncode, out, res.stdout


def reports(out: Path) -> tuple[dict[str, Any], ET.Element, str]:
    assert sorted(p.name for p in out.iterdir()) == [
        "report.html",
        "report.json",
        "report.txt",
        "report.xml",
    ]
    doc = json.loads((out / "report.json").read_text())
    xml = (out / "report.xml").read_text()
    xmlschema.XMLSchema(SCHEMA).validate(xml)
    return doc, ET.fromstring(xml), (out / "report.html").read_text()


def codes(doc: dict[str, Any], target: str) -> set[str]:
    return {f["code"] for f in doc["findings"] if f["target"] == target}


def test_healthy_and_broken_site() -> None:
    with Lab() as lab:
        net = home_net(lab, natpmp=False)
        ip_url = start_ip_service(net.inet, 8080)

        # Healthy: the PACS knows MYSCU at the public address; the router forwards the port.
        good = start_pacs(net, "good", {"myscu": ("MYSCU", net.public_ip, PORT)})
        net.upnpc(["-a", net.pc_ip, str(PORT), str(PORT), "TCP"], check=True)
        code, out, stdout = run_checklist(net, ip_url, "healthy")
        doc, xml, html = reports(out)
        assert code == 0, stdout
        assert doc["command"] == "checklist" and doc["verdict"] in ("pass", "warn")
        assert "MOVE_OK" in codes(doc, "archive"), doc["findings"]
        assert not [f for f in doc["findings"] if f["severity"] == "fail"]
        move = doc["probes"]["move-test:archive"]["probes"]["move"]
        assert move["status"] == "ok" and move["received"] == 2
        assert {f["target"] for f in doc["findings"]} <= {"site", "archive"}
        assert xml.get("failures") == "0" and xml.get("errors") == "0"
        assert html.count('<svg class="path"') == 1 and "MOVE_OK" in html
        assert "Verdict: PASS" in stdout or "Verdict: WARN" in stdout

        # Broken: the same network, but the PACS does not know MYSCU and nothing is forwarded.
        good.stop()
        net.upnpc(["-d", str(PORT), "TCP"], check=True)
        start_pacs(net, "bad", {"other": ("OTHER", net.inet_ip, 4242)})
        code, out, stdout = run_checklist(net, ip_url, "broken")
        doc, xml, html = reports(out)
        assert code == 1, stdout
        assert doc["verdict"] == "fail"
        pacs_codes = codes(doc, "archive")
        assert pacs_codes & {"MOVE_DESTINATION_UNKNOWN", "MOVE_NO_CONNECT_BACK"}, doc["findings"]
        assert "MOVE_OK" not in pacs_codes
        suite = next(s for s in xml.iter("testsuite") if "archive" in (s.get("name") or ""))
        move_case = next(c for c in suite.iter("testcase") if c.get("name") == "move")
        assert move_case.find("failure") is not None
        assert 'class="hop hop-fail" data-hop="PACS"' in html
        assert "Verdict: FAIL" in stdout
