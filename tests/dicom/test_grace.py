"""The grace decision (dicom.grace, issue 10): after the final C-MOVE response move-test waits
only while the PACS's counts leave images owed. A PACS that failed every sub-operation (real
dcmqrscp that cannot connect back) ends at once however long --grace is; a working move ends
at its last image; the faulty PACS that answers first still gets its late images."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import free_port, wait_listening
from dicom_fixtures import (
    DCMQRIDX,
    DCMQRSCP,
    QrFixture,
    QrMode,
    dcmqrscp_config,
    make_study,
    write_study,
)
from reverseprobe.commands.move_test import run_move_test
from reverseprobe.config import MoveTestConfig
from reverseprobe.dicom.grace import images_still_owed
from reverseprobe.model.dicom import AssocOutcome, AssocState, MoveOutcome

AET = "MYSCU"
LONG_GRACE = 20.0  # a wait that would show: the tests assert it is not taken


def _out(code: int | None, completed: int | None = None, failed: int | None = None,
         warning: int | None = None) -> MoveOutcome:  # fmt: skip
    return MoveOutcome(
        association=AssocOutcome(state=AssocState.ACCEPTED),
        final_code=code,
        completed=completed,
        failed=failed,
        warning=warning,
    )


@pytest.mark.parametrize(
    ("out", "received", "instances", "owed"),
    [
        (_out(None), 0, 2, True),  # no final response: unknown
        (_out(0x0000, completed=2, failed=0), 2, 2, False),  # a working move
        (_out(0x0000, completed=2, failed=0), 1, 2, True),  # one still on its way
        (_out(0xB000, completed=1, failed=1), 1, 2, False),  # warning: one failed, one in
        (_out(0xB000, completed=0, failed=1, warning=1), 0, 2, True),  # warning sub-op stored
        (_out(0xA702, completed=0, failed=2), 0, 2, False),  # every sub-operation failed
        (_out(0x0000, completed=0, failed=2), 0, 2, False),  # says success, counts say failed
        (_out(0xA801), 0, 2, False),  # destination unknown: nothing was sent
        (_out(0xC000), 0, None, False),  # Orthanc's failure, no counts
        (_out(0xFE00, completed=0, failed=0), 0, 2, False),  # cancelled
        (_out(0x0000, completed=0, failed=0), 0, 2, True),  # faulty PACS: answers first
        (_out(0x0000, completed=0, failed=0), 2, 2, False),  # ... and its images came
        (_out(0x0000), 0, None, True),  # success, no counts, C-FIND gave none: keep listening
        (_out(0x0000, completed=3), 2, 2, True),  # the counts win over the C-FIND's
    ],
)
def test_images_still_owed(out: MoveOutcome, received: int, instances: int | None,
                           owed: bool) -> None:  # fmt: skip
    assert images_still_owed(out, received=received, instances=instances) is owed


def _cfg(pacs_port: int, pacs_aet: str, port: int, **kw: Any) -> MoveTestConfig:
    base: dict[str, Any] = {
        "pacs_host": "127.0.0.1",
        "pacs_port": pacs_port,
        "pacs_aet": pacs_aet,
        "aet": AET,
        "port": port,
        "grace": LONG_GRACE,
        "public_ip": False,
        "timeout": LONG_GRACE + 30.0,
    }
    base.update(kw)
    return MoveTestConfig(**base)


def _move(report: Any) -> dict[str, Any]:
    return json.loads(json.dumps(report.to_dict()))["probes"]["move"]  # type: ignore[no-any-return]


def _waited(move: dict[str, Any]) -> tuple[float, str]:
    """(seconds from the final response to the end of the wait, why it ended)."""
    final = next(e["t"] for e in move["timeline"] if e["event"] == "c-move-final")
    end = next(e for e in move["timeline"] if e["event"] == "grace-end")
    return end["t"] - final, str(end["detail"]["why"])


@pytest.fixture
def dcmqrscp(tmp_path: Path) -> Iterator[tuple[int, str, int]]:
    """dcmqrscp (AE DQ) on loopback with a two-image study, whose Move Destination MYSCU
    points at a port where nothing listens: every sub-operation fails. Yields (port, study,
    the --port move-test listens on)."""
    for tool in (DCMQRSCP, DCMQRIDX):
        if not Path(tool).exists():
            pytest.skip(f"needs {tool} (dcmtk)")
    study = make_study(2)
    files = write_study(tmp_path / "study", study)
    pacs_port, dead_port, port = free_port(), free_port(), free_port()
    cfg, db = dcmqrscp_config(
        tmp_path / "pacs", aet="DQ", port=pacs_port, hosts={"me": (AET, "127.0.0.1", dead_port)}
    )
    subprocess.run([DCMQRIDX, str(db), *map(str, files)], check=True)
    proc = subprocess.Popen(
        [DCMQRSCP, "-c", str(cfg)],
        env=dict(os.environ, TCP_NODELAY="1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(pacs_port)
        yield pacs_port, str(study[0].StudyInstanceUID), port
    finally:
        proc.terminate()
        proc.wait(10)


def test_every_sub_operation_failed_ends_before_the_grace(dcmqrscp: tuple[int, str, int]) -> None:
    pacs_port, study, port = dcmqrscp
    report = run_move_test(_cfg(pacs_port, "DQ", port, study=study))
    move = _move(report)
    assert move["received"] == 0 and move["completed"] == 0 and move["failed"] == 2
    assert move["final_status"] == "failure"
    waited, why = _waited(move)
    assert why == "no images claimed" and waited < LONG_GRACE / 2
    assert "MOVE_OK" not in {f.code for f in report.findings}


def test_destination_unknown_ends_before_the_grace(port: int) -> None:
    with QrFixture(make_study(2), destinations={}) as pacs:
        report = run_move_test(_cfg(pacs.port, pacs.aet, port))
    move = _move(report)
    assert move["final_code"] == 0xA801 and move["received"] == 0
    waited, why = _waited(move)
    assert why == "no images claimed" and waited < LONG_GRACE / 2


def test_working_move_ends_at_its_last_image(port: int) -> None:
    with QrFixture(make_study(2), destinations={AET: ("127.0.0.1", port)}) as pacs:
        report = run_move_test(_cfg(pacs.port, pacs.aet, port))
    move = _move(report)
    assert move["received"] == 2 and move["completed"] == 2
    waited, why = _waited(move)
    assert why == "all images in" and waited < LONG_GRACE / 2
    assert "MOVE_OK" in {f.code for f in report.findings}


def test_faulty_pacs_still_gets_its_late_images(port: int) -> None:
    dest = {AET: ("127.0.0.1", port)}
    with QrFixture(make_study(3), destinations=dest, mode=QrMode.FINAL_BEFORE_IMAGES) as pacs:
        report = run_move_test(_cfg(pacs.port, pacs.aet, port, grace=5.0, timeout=30.0))
    move = _move(report)
    assert move["final_code"] == 0 and move["completed"] == 0
    assert move["received"] == 3 and move["received_after_final"] == 3
    assert _waited(move)[1] == "all images in"
    assert "MOVE_FINAL_BEFORE_IMAGES" in {f.code for f in report.findings}
