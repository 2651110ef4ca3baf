"""Issue 11, two moves at once at a receiver that takes one association (pynetdicom,
maximum_associations=1, tests/peers/busy_scp.py): a real PACS (Orthanc, synchronous C-MOVE)
serves a first move to the receiver, whose first C-STORE is held until the receiver has
refused a second association from dcmtk (Orthanc's storage sender); meanwhile move-test
--receiver running moves the same study there. Its preflight and the PACS's sub-association
for it are refused as transient (local limit exceeded); then the hold ends and the first move
completes. The first move is another program's (dcmtk movescu), or a second move-test.

What the user must see: the move that met the limit is not MOVE_OK and has LISTENER_BUSY at
fail naming the receiver's association limit; the other move succeeded.

dcmqrscp cannot be the PACS here: its C-FIND waits on its index lock while another of its
children runs a move (measured: move-test's C-FIND hit the DIMSE timeout)."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from conftest import Procs, free_port
from dicom_fixtures import MOVESCU, make_study
from receiver_support import PEERS, orthanc_pacs, port_bound, wait_log
from reverseprobe.model import Report, Severity
from reverseprobe.model.dicom import EventKind, MoveResult

N_IMAGES = 3
SCP_AET = "SCP"
PACS_AET = "ORTHANC"  # orthanc_pacs's DicomAet; its sub-associations call with it
# Orthanc waits this long for the held C-STORE's response: longer than move-test's whole run
EXTRA = {"DicomScuTimeout": 120, "ConcurrentJobs": 4}


@dataclass
class Site:
    port: int  # the receiver's
    pacs: int  # Orthanc's DICOM port
    study_uid: str
    log: Path  # the receiver's log


def _busy_scp(procs: Procs, port: int) -> Path:
    """The user's receiver. Ready when it says so and the port is bound (a TCP probe would be
    one of its associations)."""
    procs.start([sys.executable, str(PEERS / "busy_scp.py"), str(port), SCP_AET,
                 "--max-assoc", "1", "--hold-until-refused", "OFFIS_DCMTK"],
                name="busyscp")  # fmt: skip
    log = procs.tmp / f"busyscp-{len(procs.started) - 1}.log"
    wait_log(log, "listening", proc=procs.started[-1])
    end = time.monotonic() + 30
    while not port_bound(port):
        assert time.monotonic() < end, f"busy_scp.py did not bind {port}"
        time.sleep(0.05)
    return log


@contextmanager
def _site(procs: Procs, tmp_path: Path) -> Iterator[Site]:
    port = free_port()
    log = _busy_scp(procs, port)
    study = make_study(N_IMAGES)
    with orthanc_pacs(tmp_path, port, study, extra=EXTRA, aet=SCP_AET) as pacs:
        yield Site(port, pacs, str(study[0].StudyInstanceUID), log)


def _move_test(site: Site, timeout: float = 60.0) -> Report:
    from reverseprobe.commands.move_test import run_move_test
    from reverseprobe.config import MoveTestConfig

    cfg = MoveTestConfig(pacs_host="127.0.0.1", pacs_port=site.pacs, pacs_aet=PACS_AET,
                         aet=SCP_AET, port=site.port, grace=1.0, public_ip=False,
                         timeout=timeout, receiver="running")  # fmt: skip
    return run_move_test(cfg)


def _assert_met_the_limit(report: Report, peer: str) -> None:
    """What the user reads for the move that met the limit."""
    codes = [f.code for f in report.findings]
    seen = {k: getattr(v, "reason", None) for k, v in report.probes.items()}
    # the receiver refused the PACS's (dcmtk's) association for this move; the held first
    # move then stored every image
    assert re.search(rf"^refused OFFIS_DCMTK\S* {PACS_AET}$", peer, re.M), (peer, seen, codes)
    assert "released refused" in peer and f"stored {N_IMAGES}" in peer, peer
    assert "MOVE_OK" not in codes, codes
    move = report.probes["move"]
    assert isinstance(move, MoveResult) and move.receiver_mode == "running", seen
    assert not move.completed and move.final_code not in (0x0000, None), move
    assert move.connections >= 1, move  # the refused sub-association was seen
    # the first move's association, open before this one started, is not on its timeline
    told = [e.association for e in move.timeline if e.event is EventKind.CONNECTION]
    assert len(told) == move.connections and len(set(told)) == len(told), move.timeline
    busy = next(f for f in report.findings if f.code == "LISTENER_BUSY")
    assert busy.severity is Severity.FAIL, busy
    assert "local limit exceeded" in busy.summary.lower(), busy.summary
    assert "met the same limit" in busy.summary, busy.summary
    assert "association limit" in busy.fix and "maximum_associations" in busy.fix, busy.fix
    # the preflight measured the refusal itself, as transient (PS3.8 9.3.4: result 2, reason 2)
    tries = report.probes["receiver"].tries  # type: ignore[attr-defined]
    rj = next(t.reject for t in tries if t.busy)
    assert rj is not None and rj.result == 2 and rj.reason == 2, rj
    # the limit is the one cause: not told again as a store rejection or a missing entry
    other = {"MOVE_STORE_REJECTED", "MOVE_INCOMPLETE", "MOVE_DESTINATION_UNKNOWN"}
    assert not other & set(codes), codes


def test_move_while_another_programs_move_holds_the_receiver(procs: Procs, tmp_path: Path) -> None:
    with _site(procs, tmp_path) as site:
        mover = procs.start([MOVESCU, "-v", "-S", "-aet", "OTHERPROG", "-aec", PACS_AET,
                             "-aem", SCP_AET, "-k", "QueryRetrieveLevel=STUDY",
                             "-k", f"StudyInstanceUID={site.study_uid}", "127.0.0.1",
                             str(site.pacs)], name="movescu")  # fmt: skip
        mover_log = procs.tmp / f"movescu-{len(procs.started) - 1}.log"
        # the first move's sub-association is open and its first C-STORE is held
        wait_log(site.log, "holding", proc=mover)
        report = _move_test(site)
        rc = mover.wait(90)  # the hold ended on the refusal: the first move completes
    _assert_met_the_limit(report, site.log.read_text())
    other = mover_log.read_text(errors="replace")
    assert rc == 0 and "Received Final Move Response (Success)" in other, other[-1500:]


def test_two_move_tests_at_once_one_meets_the_limit(procs: Procs, tmp_path: Path) -> None:
    """Two move-test --receiver running at the same receiver port: the first is MOVE_OK (its
    preflight's second association was refused: LISTENER_BUSY stays a warning), the second,
    started while the first one's C-STORE is held, met the limit."""
    from reverseprobe import concurrent

    with _site(procs, tmp_path) as site:
        first = concurrent.start(lambda: _move_test(site, timeout=120.0), name="first-move")
        try:
            wait_log(site.log, "holding")
            second = _move_test(site)
        finally:
            done = first.wait(150)
        assert done, "the first move-test did not end"
        one = first.result(1.0)
    peer = site.log.read_text()
    _assert_met_the_limit(second, peer)
    codes = [f.code for f in one.findings]
    assert "MOVE_OK" in codes, [(f.code, f.summary) for f in one.findings]
    move = one.probes["move"]
    assert isinstance(move, MoveResult) and move.completed == N_IMAGES, move
    warn = [f for f in one.findings if f.code == "LISTENER_BUSY"]
    assert all(f.severity is Severity.WARN for f in warn), warn
