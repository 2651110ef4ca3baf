"""move-test in the network lab with the user's receiver running, and with a reflector that
measures the way in before the move (issues 11 and 12). LAB.md's home network:

    pc 192.168.2.2 -- router (NAT, miniupnpd) 100.128.0.2 -- inet 100.128.0.1: dcmqrscp, reflector

Port 11112 is forwarded to pc (UPnP); 11115 is forwarded nowhere. move-test runs as the real
CLI in pc, with --no-public-ip (the router's WAN address is the PACS's view of this PC).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dicom_fixtures import DCMQRIDX, DCMQRSCP, STORESCP, dcmqrscp_config, make_study, write_study
from lab import HomeNet, Lab, LabProcess, home_net, requires_lab, requires_tools
from test_json_schema import assert_valid

pytestmark = [
    pytest.mark.lab,
    requires_lab,
    requires_tools("miniupnpd", "upnpc"),
    pytest.mark.skipif(
        not all(Path(p).exists() for p in (DCMQRSCP, DCMQRIDX, STORESCP)),
        reason="needs dcmtk (dcmqrscp, dcmqridx, storescp)",
    ),
]

AET = "MYSCU"
PORT = 11112  # forwarded to pc
CLOSED_PORT = 11115  # forwarded nowhere: the way in is closed
PACS_PORT = 4242
REFLECTOR_PORT = 8472
N_IMAGES = 2


@dataclass
class RunLab:
    lab: Lab
    net: HomeNet
    reflector: str
    dq_db: Path
    _n: itertools.count[int] = field(default_factory=itertools.count)

    def dcmqrscp(self, hosts: dict[str, tuple[str, str, int]]) -> LabProcess:
        d = self.lab.tmp / f"dq{next(self._n)}"
        cfg, _ = dcmqrscp_config(d, aet="DQ", port=PACS_PORT, hosts=hosts)
        cfg.write_text(cfg.read_text().replace(str((d / "db").resolve()), str(self.dq_db)))
        proc = self.net.inet.popen([DCMQRSCP, "-dhl", "-c", str(cfg)], name="dcmqrscp")
        self.net.inet.wait_tcp_listen(PACS_PORT, proc=proc)
        return proc

    def move_test(self, *extra: str, port: int = PORT) -> tuple[int, dict[str, Any]]:
        argv = ["-m", "reverseprobe", "move-test", "--json", "--pacs",
                f"{self.net.inet_ip}:{PACS_PORT}", "--pacs-aet", "DQ", "--aet", AET, "--port",
                str(port), "--grace", "1", "--timeout", "60", "--no-public-ip", *extra]  # fmt: skip
        res = self.net.pc.python(argv, check=False, timeout=90)
        assert res.returncode in (0, 1), res.stderr[-3000:]
        assert "Traceback" not in res.stderr
        doc = json.loads(res.stdout)
        assert_valid(doc, "move-test")  # inbound and receiver probes follow their schemas
        return res.returncode, doc


@pytest.fixture(scope="module")
def rl() -> Iterator[RunLab]:
    with Lab() as lab:
        net = home_net(lab)
        images = write_study(lab.tmp / "study", make_study(N_IMAGES))
        dq_db = (lab.tmp / "dqdb").resolve()
        dq_db.mkdir()
        net.inet.run([DCMQRIDX, str(dq_db), *map(str, images)])
        refl = net.inet.python_popen(
            ["-m", "reverseprobe", "reflector", "--listen", f"0.0.0.0:{REFLECTOR_PORT}"],
            name="reflector",
        )
        refl.wait_log(r"listening on http://", timeout=20)
        net.upnpc(["-a", net.pc_ip, str(PORT), str(PORT), "TCP"], check=True)
        yield RunLab(lab, net, f"http://{net.inet_ip}:{REFLECTOR_PORT}/", dq_db)


@pytest.fixture
def started() -> Iterator[list[LabProcess]]:
    procs: list[LabProcess] = []
    yield procs
    for p in reversed(procs):
        p.stop()


def codes(d: dict[str, Any]) -> list[str]:
    return [f["code"] for f in d["findings"]]


def finding(d: dict[str, Any], code: str) -> dict[str, Any]:
    return next(f for f in d["findings"] if f["code"] == code)


def test_running_storescp_behind_the_router_is_move_ok(
    rl: RunLab, started: list[LabProcess]
) -> None:
    started.append(rl.dcmqrscp({"me": (AET, rl.net.public_ip, PORT)}))
    out = rl.lab.tmp / "pc-store"
    out.mkdir(exist_ok=True)
    scp = rl.net.pc.popen([STORESCP, "-dhl", "+xa", "-od", str(out), str(PORT)], name="scp")
    started.append(scp)
    rl.net.pc.wait_tcp_listen(PORT, proc=scp)
    rc, d = rl.move_test()
    assert rc == 0, d["findings"]
    ok = finding(d, "MOVE_OK")
    assert ok["detail"]["storage_sender"] == [rl.net.inet_ip]  # the sender the receiver allows
    assert rl.net.inet_ip in ok["summary"]
    move = d["probes"]["move"]
    assert move["receiver_mode"] == "running" and move["completed"] == N_IMAGES
    assert {a["process"] for a in move["associations"]} == {"storescp"}
    pf = d["probes"]["receiver"]  # the preflight ran against storescp, and passed
    assert pf["status"] == "ok" and pf["contexts"], pf
    assert all(c["result"] == "accepted" for c in pf["contexts"])
    assert len(list(out.iterdir())) >= N_IMAGES


def test_way_in_open_and_pacs_tries_elsewhere_is_pacs_entry_wrong(
    rl: RunLab, started: list[LabProcess]
) -> None:
    """The PACS has the LAN address: it knows the AE (failed 2), the reflector got through."""
    started.append(rl.dcmqrscp({"me": (AET, rl.net.pc_ip, PORT)}))
    rc, d = rl.move_test("--reflector", rl.reflector)
    assert rc == 1
    assert d["probes"]["inbound"]["status"] == "ok"
    f = finding(d, "PACS_ENTRY_WRONG")
    assert "dials somewhere that is not this PC" in f["summary"]
    assert "reflector" in f["detail"]["evidence"] and "failed" in f["detail"]["evidence"]
    assert rl.net.public_ip in f["fix"]
    assert "MOVE_NO_CONNECT_BACK" not in codes(d)


def test_way_in_closed_is_said_with_its_evidence(rl: RunLab, started: list[LabProcess]) -> None:
    started.append(rl.dcmqrscp({"me": (AET, rl.net.public_ip, CLOSED_PORT)}))
    rc, d = rl.move_test("--reflector", rl.reflector, port=CLOSED_PORT)
    assert rc == 1
    f = finding(d, "MOVE_NO_CONNECT_BACK")
    assert f["detail"]["way_in"] == "closed", f
    assert "reflector" in f["detail"]["evidence"]
    assert "way in" in f["fix"]
    assert any(c.startswith("INBOUND_") and c != "INBOUND_OK" for c in codes(d)), codes(d)
    assert "PACS_ENTRY_WRONG" not in codes(d)


def test_pacs_that_does_not_know_the_ae(rl: RunLab, started: list[LabProcess]) -> None:
    started.append(rl.dcmqrscp({}))
    rc, d = rl.move_test("--reflector", rl.reflector)
    assert rc == 1
    f = finding(d, "MOVE_DESTINATION_UNKNOWN")
    assert "0xA801" in f["detail"]["evidence"] and "zero sub-operations" in f["detail"]["evidence"]
    assert f["detail"]["way_in"] == "open"
