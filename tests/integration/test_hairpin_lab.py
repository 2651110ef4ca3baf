"""Hairpin NAT in the namespace lab (issue 13): a PACS inside the site (a second host on the
router's LAN bridge) whose entry for us gives the site's public address. The checklist runs
move-test against it from the PC; the router forwards the port to the PC (a UPnP mapping) but
miniupnpd does not hairpin (notes/nat.md): NAT_HAIRPIN (warn), measured "does not hairpin",
and the entry it asks for names the PC's LAN address."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dicom_fixtures import DCMQRSCP, dcmqrscp_config, make_study, storescu_argv, write_study
from lab import Lab, home_net, lan_host, requires_lab, requires_tools, start_ip_service

pytestmark = [pytest.mark.lab, requires_lab, requires_tools("miniupnpd", "upnpc", DCMQRSCP)]

PORT = 11112
PACS_PORT = 11113
PACS_IP = "192.168.2.10"


def test_lan_pacs_given_the_public_entry_is_nat_hairpin() -> None:
    with Lab() as lab:
        net = home_net(lab, natpmp=False, second_pc=True)
        ip_url = start_ip_service(net.inet, 8080)
        pacs = lan_host(net, "lanpacs", PACS_IP)
        hosts = {"myscu": ("MYSCU", net.public_ip, PORT)}  # the public entry, as given
        cfg, _db = dcmqrscp_config(lab.tmp / "pacs", aet="ARCHIVE", port=PACS_PORT, hosts=hosts)
        proc = pacs.popen([DCMQRSCP, "-c", str(cfg), str(PACS_PORT)], name="dcmqrscp")
        pacs.wait_tcp_listen(PACS_PORT, proc=proc)
        files = write_study(lab.tmp / "study", make_study(1))
        pacs.run(storescu_argv("127.0.0.1", PACS_PORT, "ARCHIVE", files))
        net.upnpc(["-e", "lab", "-a", net.pc_ip, str(PORT), str(PORT), "TCP"], check=True)

        site = lab.tmp / "site.toml"
        site.write_text(
            f'[site]\nname = "hairpin"\naet = "MYSCU"\nport = {PORT}\n'
            f'ip_services = ["{ip_url}"]\n\n'
            f'[[pacs]]\nname = "archive"\nhost = "{PACS_IP}"\nport = {PACS_PORT}\n'
            f'aet = "ARCHIVE"\nentry = "MYSCU@{net.public_ip}:{PORT}"\ngrace = 1\ntimeout = 30\n'
        )
        out = lab.tmp / "reports"
        argv = ["-m", "reverseprobe", "checklist", str(site), "--output-dir", str(out)]
        res = net.pc.python([*argv, "--timeout", "90"], check=False, timeout=150)
        assert res.returncode in (0, 1), res.stderr[-3000:]
        doc: dict[str, Any] = json.loads((out / "report.json").read_text())

    mine = {f["code"]: f for f in doc["findings"] if f["target"] == "archive"}
    f = mine["NAT_HAIRPIN"]
    assert f["severity"] == "warn", f
    assert f["detail"]["hairpin"] is False and "does not hairpin" in f["summary"]
    assert f["detail"]["public_address"] == net.public_ip
    assert "refused" in f["detail"]["hairpin_how"], f  # how: miniupnpd answers RST
    assert f"MYSCU @ {net.pc_ip}:{PORT}" in f["fix"]
    # the one entry for this PACS names the LAN address, never the public one
    entry = doc["probes"]["move-test:archive"]["pacs_entry"]
    assert entry["host"] == net.pc_ip, entry
    assert "PACS_ENTRY_OK" not in mine and "PACS_ENTRY_WRONG" not in mine, sorted(mine)
