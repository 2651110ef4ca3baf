"""move-test against real PACS (dcmtk dcmqrscp, Orthanc) in the network lab: the PC behind a
NAT router, the PACS "on the internet" (the inet namespace), as in issue 6.

    pc 192.168.2.2 -- router (NAT, miniupnpd) 100.128.0.2 -- inet 100.128.0.1: PACS, IP service
    pc2 192.168.2.3 (the other PC on the LAN)

move-test runs as the real CLI in pc (`python -m reverseprobe move-test --json`).
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dicom_fixtures import (
    DCMQRIDX,
    DCMQRSCP,
    ORTHANC,
    STORESCP,
    STORESCU,
    dcmqrscp_config,
    make_study,
    orthanc_config,
    storescu_argv,
    write_study,
)
from lab import HomeNet, Lab, LabProcess, home_net, requires_lab, requires_tools, start_ip_service

pytestmark = [
    pytest.mark.lab,
    requires_lab,
    requires_tools("miniupnpd", "upnpc"),
    pytest.mark.skipif(
        not all(Path(p).exists() for p in (DCMQRSCP, DCMQRIDX, ORTHANC, STORESCP, STORESCU)),
        reason="needs dcmtk (dcmqrscp, dcmqridx, storescp, storescu) and Orthanc",
    ),
]

AET = "MYSCU"
PORT = 11112  # forwarded by the router to pc (UPnP)
ELSEWHERE_PORT = 11113  # forwarded by the router to pc2, where storescp listens
BUSY_PORT = 11114  # taken by storescp in pc
PACS_PORT = 4242
ORTHANC_HTTP = 8042
N_IMAGES = 3


@dataclass
class PacsLab:
    lab: Lab
    net: HomeNet
    ip_service: str
    images: list[Path]
    study_uid: str
    dq_db: Path
    orthanc_dir: Path
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def pacs_ip(self) -> str:
        return self.net.inet_ip

    def start_dcmqrscp(self, hosts: dict[str, tuple[str, str, int]]) -> LabProcess:
        """dcmqrscp (AE DQ) in inet with this HostTable, over the indexed test study."""
        d = self.lab.tmp / f"dq{next(self._counter)}"
        cfg, _ = dcmqrscp_config(d, aet="DQ", port=PACS_PORT, hosts=hosts)
        text = cfg.read_text().replace(str((d / "db").resolve()), str(self.dq_db))
        cfg.write_text(text)
        proc = self.net.inet.popen([DCMQRSCP, "-dhl", "-c", str(cfg)], name="dcmqrscp")
        self.net.inet.wait_tcp_listen(PACS_PORT, proc=proc)
        return proc

    def start_orthanc(
        self,
        modalities: dict[str, tuple[str, str, int]],
        *,
        synchronous: bool = True,
        always_allow: bool = False,
    ) -> LabProcess:
        """Orthanc (AE ORTHANC) in inet, foreground, on the storage loaded once."""
        cfg = orthanc_config(
            self.lab.tmp / f"orthanc{next(self._counter)}",
            aet="ORTHANC",
            port=PACS_PORT,
            http_port=ORTHANC_HTTP,
            modalities=modalities,
            synchronous=synchronous,
            always_allow=always_allow,
        )
        data = json.loads(cfg.read_text())
        data["StorageDirectory"] = data["IndexDirectory"] = str(self.orthanc_dir)
        cfg.write_text(json.dumps(data))
        proc = self.net.inet.popen([ORTHANC, str(cfg)], name="orthanc")
        self.net.inet.wait_tcp_listen(PACS_PORT, proc=proc)
        proc.wait_log(r"Orthanc has started", timeout=20)  # the DICOM port opens earlier
        return proc

    def move_test(self, pacs_aet: str, *extra: str, port: int = PORT) -> tuple[int, dict[str, Any]]:
        """The real CLI in pc; (exit code, JSON)."""
        pacs = f"{self.pacs_ip}:{PACS_PORT}"
        argv = ["-m", "reverseprobe", "move-test", "--json", "--pacs", pacs, "--pacs-aet",
                pacs_aet, "--aet", AET, "--port", str(port), "--grace", "1", "--timeout", "40",
                "--ip-service", self.ip_service, *extra]  # fmt: skip
        res = self.net.pc.python(argv, check=False, timeout=60)
        assert res.returncode in (0, 1), res.stderr
        return res.returncode, json.loads(res.stdout)


@pytest.fixture(scope="module")
def pl() -> Iterator[PacsLab]:
    with Lab() as lab:
        net = home_net(lab, second_pc=True)
        assert net.pc2 is not None
        url = start_ip_service(net.inet, 8080)
        study = make_study(N_IMAGES)
        images = write_study(lab.tmp / "study", study)
        # dcmqrscp's index, built once (dcmqridx records absolute paths).
        dq_db = (lab.tmp / "dqdb").resolve()
        dq_db.mkdir()
        net.inet.run([DCMQRIDX, str(dq_db), *map(str, images)])
        # Orthanc's storage, loaded once over DICOM (storescu) by a first instance.
        odir = (lab.tmp / "orthanc-db").resolve()
        pl = PacsLab(lab, net, url, images, str(study[0].StudyInstanceUID), dq_db, odir)
        loader = pl.start_orthanc({})
        net.inet.run(storescu_argv("127.0.0.1", PACS_PORT, "ORTHANC", images))
        loader.stop()
        # The port forwards: PORT -> pc, ELSEWHERE_PORT -> pc2 (whose storescp takes images).
        net.upnpc(["-a", net.pc_ip, str(PORT), str(PORT), "TCP"], check=True)
        net.upnpc(["-a", net.pc2_ip, str(ELSEWHERE_PORT), str(ELSEWHERE_PORT), "TCP"],
                  ns=net.pc2, check=True)  # fmt: skip
        sink = lab.tmp / "pc2-store"
        sink.mkdir()
        scp = net.pc2.popen(  # -dhl: no reverse DNS (the lab has no resolver to ask)
            [STORESCP, "-dhl", "-od", str(sink), str(ELSEWHERE_PORT)], name="storescp"
        )
        net.pc2.wait_tcp_listen(ELSEWHERE_PORT, proc=scp)
        yield pl


def codes(d: dict[str, Any]) -> set[str]:
    return {f["code"] for f in d["findings"]}


def finding(d: dict[str, Any], code: str) -> dict[str, Any]:
    return next(f for f in d["findings"] if f["code"] == code)


@pytest.fixture
def pacs_procs() -> Iterator[list[LabProcess]]:
    """PACS started by one test, stopped after it (the next one reuses the port)."""
    procs: list[LabProcess] = []
    yield procs
    for p in procs:
        p.stop()


# --- dcmqrscp -----------------------------------------------------------------------------------


def test_dcmqrscp_destination_unknown(pl: PacsLab, pacs_procs: list[LabProcess]) -> None:
    pacs_procs.append(pl.start_dcmqrscp({}))
    rc, d = pl.move_test("DQ")
    assert rc == 1
    assert "MOVE_DESTINATION_UNKNOWN" in codes(d)
    assert d["probes"]["move"]["final_code"] == 0xA801
    assert d["probes"]["move"]["connections"] == 0
    # The PACS is outside, the PC behind NAT: the entry names the public address.
    assert d["pacs_entry"] == {
        **d["pacs_entry"],
        "aet": AET,
        "host": pl.net.public_ip,
        "port": PORT,
    }
    assert pl.net.public_ip in finding(d, "MOVE_DESTINATION_UNKNOWN")["fix"]
    assert "CGET_AVAILABLE" in codes(d)


def test_dcmqrscp_registered_with_the_lan_address(
    pl: PacsLab, pacs_procs: list[LabProcess]
) -> None:
    pacs_procs.append(pl.start_dcmqrscp({"me": (AET, pl.net.pc_ip, PORT)}))
    rc, d = pl.move_test("DQ")
    assert rc == 1
    move = d["probes"]["move"]
    assert move["final_code"] == 0xA702 and move["failed"] == N_IMAGES
    assert move["connections"] == 0
    f = finding(d, "MOVE_NO_CONNECT_BACK")
    assert pl.net.public_ip in f["fix"]  # the address the PACS must dial instead
    assert f"forward TCP port {PORT} to {pl.net.pc_ip}:{PORT}" in f["fix"]


def test_dcmqrscp_registered_with_the_public_address(
    pl: PacsLab, pacs_procs: list[LabProcess]
) -> None:
    pacs_procs.append(pl.start_dcmqrscp({"me": (AET, pl.net.public_ip, PORT)}))
    rc, d = pl.move_test("DQ")
    assert rc == 0, d["findings"]
    assert "MOVE_OK" in codes(d)
    move = d["probes"]["move"]
    assert move["received"] == N_IMAGES and move["completed"] == N_IMAGES
    assert move["study_uid"] == pl.study_uid
    assert move["expected"] == N_IMAGES  # counted image by image: dcmqrscp gives no counts
    (assoc,) = move["associations"]
    assert assoc["peer"] == pl.pacs_ip and assoc["calling_aet"] == "DQ"
    assert assoc["called_aet"] == AET


def test_dcmqrscp_delivers_to_the_pc_the_router_forwards_to(
    pl: PacsLab, pacs_procs: list[LabProcess]
) -> None:
    pacs_procs.append(pl.start_dcmqrscp({"me": (AET, pl.net.public_ip, ELSEWHERE_PORT)}))
    rc, d = pl.move_test("DQ", port=ELSEWHERE_PORT)
    assert rc == 1
    assert "MOVE_DELIVERED_ELSEWHERE" in codes(d)
    move = d["probes"]["move"]
    assert move["completed"] == N_IMAGES and move["received"] == 0
    assert len(list((pl.lab.tmp / "pc2-store").iterdir())) >= N_IMAGES  # pc2 got them


def test_receive_port_taken(pl: PacsLab, pacs_procs: list[LabProcess]) -> None:
    pacs_procs.append(pl.start_dcmqrscp({"me": (AET, pl.net.public_ip, BUSY_PORT)}))
    holder = pl.net.pc.popen([STORESCP, "-dhl", "--ignore", str(BUSY_PORT)], name="storescp-busy")
    pacs_procs.append(holder)
    pl.net.pc.wait_tcp_listen(BUSY_PORT, proc=holder)
    rc, d = pl.move_test("DQ", "--receiver", "own", port=BUSY_PORT)  # auto would observe it
    assert rc == 1
    f = finding(d, "MOVE_PORT_BUSY")
    assert "storescp" in f["summary"] and f"PID {holder.pid}" in f["summary"]
    assert d["probes"]["move"]["status"] == "fail"


# --- Orthanc ----------------------------------------------------------------------------------


def test_orthanc_destination_unknown(pl: PacsLab, pacs_procs: list[LabProcess]) -> None:
    pacs_procs.append(pl.start_orthanc({}, always_allow=True))
    rc, d = pl.move_test("ORTHANC")
    assert rc == 1
    move = d["probes"]["move"]
    assert move["final_code"] == 0xC000 and move["connections"] == 0
    assert "MOVE_NO_CONNECT_BACK" in codes(d)  # Orthanc says 0xC000, not 0xA801


def test_orthanc_registered_with_the_lan_address(pl: PacsLab, pacs_procs: list[LabProcess]) -> None:
    pacs_procs.append(pl.start_orthanc({"myscu": (AET, pl.net.pc_ip, PORT)}))
    rc, d = pl.move_test("ORTHANC")
    assert rc == 1
    f = finding(d, "MOVE_NO_CONNECT_BACK")
    assert pl.net.public_ip in f["fix"]
    assert d["probes"]["move"]["final_code"] == 0xC000


def test_orthanc_registered_with_the_public_address(
    pl: PacsLab, pacs_procs: list[LabProcess]
) -> None:
    pacs_procs.append(pl.start_orthanc({"myscu": (AET, pl.net.public_ip, PORT)}))
    rc, d = pl.move_test("ORTHANC", "--try-cget")
    assert rc == 0, d["findings"]
    assert {"MOVE_OK", "CGET_AVAILABLE"} <= codes(d)
    move = d["probes"]["move"]
    assert move["received"] == N_IMAGES and move["received_after_final"] == 0
    assert d["probes"]["find"]["instances_from"] == "NumberOfStudyRelatedInstances"
    assert d["probes"]["get"]["received"] == N_IMAGES


def test_orthanc_asynchronous_move_sends_final_before_images(
    pl: PacsLab, pacs_procs: list[LabProcess]
) -> None:
    modalities = {"myscu": (AET, pl.net.public_ip, PORT)}
    pacs_procs.append(pl.start_orthanc(modalities, synchronous=False))
    rc, d = pl.move_test("ORTHANC")
    assert "MOVE_FINAL_BEFORE_IMAGES" in codes(d)
    move = d["probes"]["move"]
    assert move["final_code"] == 0 and move["received"] == N_IMAGES
    # Orthanc sends the final response first; on a loaded machine our receiver's thread may
    # still record the first C-STORE a moment before the DIMSE thread records that response.
    assert move["received_after_final"] >= 1
    kinds = [e["event"] for e in move["timeline"]]
    assert "c-store" in kinds[kinds.index("c-move-final") :]
    assert rc == 0  # a warning only ...
    rc_strict, _ = pl.move_test("ORTHANC", "--strict")
    assert rc_strict == 1  # ... unless --strict


def test_orthanc_does_not_know_the_calling_ae(pl: PacsLab, pacs_procs: list[LabProcess]) -> None:
    pacs_procs.append(pl.start_orthanc({}))
    rc, d = pl.move_test("ORTHANC")
    assert rc == 1
    assert d["probes"]["echo"]["status"] == "ok"  # C-ECHO is always allowed ...
    assert "PACS_ABORTED" in codes(d)  # ... C-FIND is aborted
    f = finding(d, "PACS_ABORTED")
    assert AET in f["fix"] and pl.net.public_ip in f["fix"]


def test_lab_leaves_no_pacs_running(pl: PacsLab) -> None:
    """Each test stopped its PACS: the port is free for the next (and nothing leaked)."""
    out = pl.net.inet.run(["ss", "-Hltn"]).stdout
    assert f":{PACS_PORT} " not in out
    assert shutil.which("ss")
