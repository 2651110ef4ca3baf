"""The receiver preflight (probes/receiver.py) against real receivers: dcmtk storescp with its
defaults (uncompressed only) and +xa, a pynetdicom receiver that checks its called AE title and
one that takes one association at a time; then the rules it feeds."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from conftest import TESTS, Procs, free_port, wait_listening
from dicom_fixtures import STORESCP
from receiver_support import JPEG_BASELINE
from reverseprobe.deadline import Deadline
from reverseprobe.diagnosis.receiver import preflight_rules
from reverseprobe.model import Severity, Status
from reverseprobe.model.dicom import MoveResult
from reverseprobe.probes.receiver import CT_IMAGE, EXPLICIT_LE, preflight

PEER = TESTS / "peers" / "store_scp.py"
PRIVATE_SOP = "1.2.826.0.1.3680043.9.9999.1"  # a private SOP class no receiver knows
PAIRS = [(CT_IMAGE, EXPLICIT_LE), (CT_IMAGE, JPEG_BASELINE), (PRIVATE_SOP, EXPLICIT_LE)]


def _storescp(procs: Procs, port: int, *options: str) -> None:
    procs.start([STORESCP, *options, "-od", str(procs.tmp), str(port)], name="storescp")
    wait_listening(port)


def _pyscp(procs: Procs, port: int, *args: str) -> None:
    """Ready when it says so and the port is bound: a TCP probe (wait_listening) would count
    as one of its associations for a while, and --max-assoc 1 would refuse our first."""
    procs.start([sys.executable, str(PEER), str(port), "SCP", *args], name="pyscp")
    log = procs.tmp / f"pyscp-{len(procs.started) - 1}.log"
    end = time.monotonic() + 30
    while time.monotonic() < end:
        if "listening" in log.read_text() and _bound(port):
            return
        time.sleep(0.05)
    raise TimeoutError(f"store_scp.py did not listen on {port}: {log.read_text()[-500:]}")


def _bound(port: int) -> bool:
    """The port is in LISTEN state (bind without connecting: no association is started)."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _run(port: int, called: str = "STORESCP") -> object:
    return preflight("127.0.0.1", port, called, "DQ", PAIRS, deadline=Deadline.after(20.0))


def _results(pf: object) -> dict[tuple[str, str], str]:
    return {(c.abstract_syntax, c.transfer_syntax): c.result for c in pf.contexts}  # type: ignore[attr-defined]


def test_storescp_defaults_refuse_jpeg_and_unknown_sop_class(procs: Procs) -> None:
    port = free_port()
    _storescp(procs, port)
    pf = _run(port)
    got = _results(pf)
    assert got[(CT_IMAGE, EXPLICIT_LE)] == "accepted"
    assert got[(CT_IMAGE, JPEG_BASELINE)] == "transfer-syntaxes-not-supported"
    assert got[(PRIVATE_SOP, EXPLICIT_LE)] == "abstract-syntax-not-supported"
    assert pf.status is Status.FAIL  # type: ignore[attr-defined]
    findings = preflight_rules(pf)  # type: ignore[arg-type]
    f = next(f for f in findings if f.code == "LISTENER_REJECTS_CONTEXT")
    assert JPEG_BASELINE in f.summary and "+xa" in f.fix
    assert {c["result"] for c in f.detail["contexts"]} == {
        "transfer-syntaxes-not-supported",
        "abstract-syntax-not-supported",
    }
    # storescp without --fork serves one association at a time: the second waits unanswered
    # (queued, not rejected: no LISTENER_BUSY); it takes any called AE title
    tries = {t.purpose: t.state for t in pf.tries}  # type: ignore[attr-defined]
    assert tries == {"contexts": "accepted", "second": "no-answer",
                     "wrong-called-aet": "accepted"}  # fmt: skip
    assert "LISTENER_BUSY" not in {f.code for f in findings}


def test_storescp_xa_accepts_jpeg(procs: Procs) -> None:
    port = free_port()
    _storescp(procs, port, "+xa")
    got = _results(_run(port))
    assert got[(CT_IMAGE, JPEG_BASELINE)] == "accepted"
    assert got[(PRIVATE_SOP, EXPLICIT_LE)] == "abstract-syntax-not-supported"


def test_receiver_that_checks_its_called_aet(procs: Procs) -> None:
    port = free_port()
    _pyscp(procs, port, "--require-called")
    right = _run(port, called="SCP")
    assert right.attempt("contexts").state == "accepted"  # type: ignore[attr-defined]
    assert right.attempt("wrong-called-aet").state == "rejected"  # type: ignore[attr-defined]
    wrong = _run(port, called="MYSCU")
    assert wrong.status is Status.FAIL  # type: ignore[attr-defined]
    codes = {f.code for f in preflight_rules(wrong)}  # type: ignore[arg-type]
    assert "LISTENER_REJECTS_AET" in codes


def test_dcmtk_receiver_that_checks_its_called_aet(tmp_path: Path) -> None:
    """dcmtk as the user's receiver, with its called AE title checked: dcmqrscp (it stores
    what it is sent) refuses an association called with a title not in its AETable. storescp
    itself has no such check: -aet only sets its own title."""
    from dicom_fixtures import make_study
    from receiver_support import dcmqrscp

    with dcmqrscp(tmp_path, make_study(1), ("MYSCU", "127.0.0.1", free_port())) as port:
        right = _run(port, called="DQ")
    # Under load dcmqrscp's A-ASSOCIATE-RJ is now and then not seen (the association ends as
    # "no answer": seen about 1 in 8 with the CPU saturated, never on a quiet machine), so
    # the wrong title is tried on up to three fresh dcmqrscp; never accepted, always.
    tries = []
    for n in range(3):
        (tmp_path / f"w{n}").mkdir()
        with dcmqrscp(tmp_path / f"w{n}", make_study(1), ("MYSCU", "127.0.0.1", free_port())) as p:
            tries.append(_run(p, called="MYSCU"))
        if tries[-1].attempt("contexts").reject is not None:  # type: ignore[attr-defined]
            break
    assert all(w.attempt("contexts").state != "accepted" for w in tries)  # type: ignore[attr-defined]
    wrong = tries[-1]
    # (its answer to the later, short-budget tries depends on how fast it forks: not asserted)
    assert right.attempt("contexts").state == "accepted"  # type: ignore[attr-defined]
    assert wrong.status is Status.FAIL  # type: ignore[attr-defined]
    assert wrong.attempt("contexts").reject.reason == 7  # type: ignore[attr-defined]
    f = next(f for f in preflight_rules(wrong) if f.code == "LISTENER_REJECTS_AET")  # type: ignore[arg-type]
    assert "'MYSCU'" in f.summary and "-aet MYSCU" in f.fix, f


def test_one_association_at_a_time_is_listener_busy(procs: Procs) -> None:
    port = free_port()
    _pyscp(procs, port, "--max-assoc", "1")
    pf = _run(port, called="SCP")
    second = pf.attempt("second")  # type: ignore[attr-defined]
    assert second is not None and second.busy, pf
    assert second.reject.result == 2 and second.reject.reason == 2
    findings = preflight_rules(pf)  # type: ignore[arg-type]
    busy = next(f for f in findings if f.code == "LISTENER_BUSY")
    assert busy.severity is Severity.WARN
    # a move whose sub-operations failed met the same limit: fail
    failed = MoveResult(status=Status.FAIL, failed=1, final_code=0xA702)
    hit = preflight_rules(pf, failed)  # type: ignore[arg-type]
    assert next(f for f in hit if f.code == "LISTENER_BUSY").severity is Severity.FAIL


def test_nothing_listening_is_a_failed_preflight_not_a_pass() -> None:
    port = free_port()
    pf = _run(port)
    assert pf.status is Status.FAIL  # type: ignore[attr-defined]
    assert all(c.result == "not-answered" for c in pf.contexts)  # type: ignore[attr-defined]
    assert not preflight_rules(pf)  # type: ignore[arg-type]


def test_bad_context_option_is_exit_2() -> None:
    for bad in ("1.2.3", "1.2.3=abc"):
        p = subprocess.run(
            [sys.executable, "-m", "reverseprobe", "move-test", "--pacs", "127.0.0.1:1",
             "--pacs-aet", "P", "--aet", "A", "--no-public-ip", "--context", bad],
            check=False, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert p.returncode == 2, p.stderr
        assert bad in p.stderr and "Traceback" not in p.stderr


# --- move-test end to end: a PACS that stalls, one that says 0x0122 --------------------------


def _qr_move_test(behaviour: str, timeout: float) -> tuple[object, float]:
    from dicom_fixtures import make_study
    from peers.qr_modes import QrModes
    from reverseprobe.commands.move_test import run_move_test
    from reverseprobe.config import MoveTestConfig

    port = free_port()
    with QrModes(make_study(2), {"MYSCU": ("127.0.0.1", port)}, behaviour=behaviour) as pacs:
        cfg = MoveTestConfig(pacs_host="127.0.0.1", pacs_port=pacs.port, pacs_aet=pacs.aet,
                             aet="MYSCU", port=port, grace=1.0, public_ip=False,
                             timeout=timeout, receiver="own")  # fmt: skip
        t0 = time.monotonic()
        report = run_move_test(cfg)
        return report, time.monotonic() - t0


def test_pacs_that_stops_sending_pending_responses_is_move_stalled() -> None:
    report, took = _qr_move_test("stall", 12.0)
    f = next(f for f in report.findings if f.code == "MOVE_STALLED")  # type: ignore[attr-defined]
    assert f.detail["completed"] == 1 and f.detail["remaining"] == 1
    assert f.detail["pending"] == 1 and f.detail["stall_s"] >= 1.0
    assert "--timeout" in f.fix
    codes = {x.code for x in report.findings}  # type: ignore[attr-defined]
    assert "MOVE_OK" not in codes and "MOVE_NO_CONNECT_BACK" not in codes
    assert took < 12.0 + 10.0  # ends within --timeout + margin


def test_0x0122_is_move_not_supported() -> None:
    report, _ = _qr_move_test("not-supported", 12.0)
    codes = [x.code for x in report.findings]  # type: ignore[attr-defined]
    assert "MOVE_NOT_SUPPORTED" in codes and "MOVE_INCOMPLETE" not in codes, codes
    f = next(f for f in report.findings if f.code == "MOVE_NOT_SUPPORTED")  # type: ignore[attr-defined]
    assert f.detail["final_code"] == "0x0122" and "C-GET" in f.fix


# --- the text timeline: what was proposed, what was refused -----------------------------------


def test_timeline_lists_proposed_and_refused_contexts() -> None:
    from reverseprobe.model import Report
    from reverseprobe.model.dicom import ContextRecord, InboundAssociation, TimelineEvent
    from reverseprobe.model.dicom import EventKind as K
    from reverseprobe.render.timeline import timeline_lines

    cx = (
        ContextRecord(1, CT_IMAGE, (EXPLICIT_LE,), "accepted", EXPLICIT_LE),
        ContextRecord(3, CT_IMAGE, (JPEG_BASELINE,), "transfer-syntaxes-not-supported"),
        ContextRecord(5, PRIVATE_SOP, (EXPLICIT_LE,), "abstract-syntax-not-supported"),
    )
    a = InboundAssociation(1, "192.0.2.9", 40000, 0.1, "MYSCU", "DQ", True, contexts=cx,
                           max_pdu=16384)  # fmt: skip
    events = (
        TimelineEvent(0.1, K.CONNECTION, "192.0.2.9", 1, {}),
        TimelineEvent(0.2, K.ACCEPTED, "192.0.2.9", 1, {}),
    )
    move = MoveResult(status=Status.FAIL, associations=(a,), timeline=events)
    report = Report(command="move-test", probes={"move": move}, findings=[], pacs_entry=None,
                    elapsed_s=1.0)  # fmt: skip
    lines = timeline_lines(report)
    text = "\n".join(lines)
    assert "proposed 3 context(s): 1 accepted, 2 refused, max PDU 16384" in text
    assert f"refused {CT_IMAGE} in {JPEG_BASELINE} (transfer-syntaxes-not-supported)" in text
    assert f"refused {PRIVATE_SOP} in {EXPLICIT_LE} (abstract-syntax-not-supported)" in text
    assert f"accepted in {EXPLICIT_LE}" in text
    # the context lines follow their association's accept line, indented
    i = next(i for i, x in enumerate(lines) if "association accepted" in x)
    assert lines[i + 1].startswith(" " * 10) and "proposed 3" in lines[i + 1]


# --- check: the preflight beside the other probes ---------------------------------------------


def _check(*args: str) -> tuple[int, dict[str, object], str]:
    import json

    p = subprocess.run(
        [sys.executable, "-m", "reverseprobe", "check", "--no-upnp", "--no-public-ip", "--json",
         "--timeout", "20", *args],
        check=False, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert "Traceback" not in p.stderr, p.stderr
    return p.returncode, json.loads(p.stdout) if p.stdout else {}, p.stderr


def test_check_with_contexts_runs_the_preflight(procs: Procs) -> None:
    from test_json_schema import assert_valid

    port = free_port()
    _storescp(procs, port)
    rc, d, _ = _check("--port", str(port), "--aet", "STORESCP",
                      "--context", f"{CT_IMAGE}={JPEG_BASELINE}",
                      "--context", f"{CT_IMAGE}={EXPLICIT_LE}")  # fmt: skip
    assert rc == 1
    assert_valid(d, "check")
    pf = d["probes"]["receiver"]  # type: ignore[index]
    assert [c["result"] for c in pf["contexts"]] == ["transfer-syntaxes-not-supported", "accepted"]
    assert "LISTENER_REJECTS_CONTEXT" in {f["code"] for f in d["findings"]}  # type: ignore[attr-defined]


def test_check_with_the_pacs_takes_the_contexts_from_its_c_find(procs: Procs) -> None:
    from dicom_fixtures import QrFixture, make_study

    port = free_port()
    _storescp(procs, port, "+xa")
    with QrFixture(make_study(1)) as pacs:
        _, d, _ = _check("--port", str(port), "--aet", "STORESCP", "--pacs",
                          f"127.0.0.1:{pacs.port}", "--pacs-aet", pacs.aet)  # fmt: skip
    pf = d["probes"]["receiver"]  # type: ignore[index]
    assert pf["status"] == "ok" and pf["contexts_from"] == "c-find", pf
    assert pf["contexts"] and all(c["result"] == "accepted" for c in pf["contexts"])
    assert "LISTENER_REJECTS_CONTEXT" not in {f["code"] for f in d["findings"]}  # type: ignore[attr-defined]


def test_check_pacs_without_pacs_aet_is_exit_2() -> None:
    rc, _, err = _check("--pacs", "127.0.0.1:104")
    assert rc == 2 and "--pacs-aet" in err


# --- a receiver that takes one association while another move holds it ----------------------


def test_receiver_limit_hit_by_a_move_is_listener_busy_fail(procs: Procs) -> None:
    """pynetdicom receiver with maximum_associations=1; the first move's association is held
    open (deterministic stand-in for a first move in progress) while move-test runs the second:
    the preflight and the PACS's sub-association are both rejected transient, local limit."""
    from pynetdicom import AE

    from dicom_fixtures import QrFixture, make_study
    from reverseprobe.commands.move_test import run_move_test
    from reverseprobe.config import MoveTestConfig

    port = free_port()
    _pyscp(procs, port, "--max-assoc", "1")
    first = AE(ae_title="FIRSTMOVE")
    first.add_requested_context("1.2.840.10008.1.1")
    held = first.associate("127.0.0.1", port, ae_title="SCP")
    assert held.is_established
    try:
        with QrFixture(make_study(2), {"SCP": ("127.0.0.1", port)}) as pacs:
            cfg = MoveTestConfig(pacs_host="127.0.0.1", pacs_port=pacs.port, pacs_aet=pacs.aet,
                                 aet="SCP", port=port, grace=1.0, public_ip=False, timeout=30.0,
                                 receiver="running")  # fmt: skip
            report = run_move_test(cfg)
    finally:
        held.release()
    codes = [f.code for f in report.findings]
    busy = next(f for f in report.findings if f.code == "LISTENER_BUSY")
    assert busy.severity is Severity.FAIL, busy
    assert "the move met the same limit" in busy.summary and "maximum_associations" in busy.fix
    move = report.probes["move"]
    # pynetdicom as the PACS answers 0xA801 when its sub-association is rejected: the limit,
    # not an unknown AE, is the cause, and it is said once
    assert isinstance(move, MoveResult) and move.final_code == 0xA801 and not move.completed
    assert move.connections >= 1
    assert not {"MOVE_OK", "MOVE_STORE_REJECTED", "MOVE_INCOMPLETE"} & set(codes), codes


def test_check_runs_the_preflight_after_the_listeners_probe(monkeypatch: object) -> None:
    """A receiver that serves one association at a time (storescp without --fork) held by the
    preflight would leave the listeners' C-ECHO unanswered (a false LISTENER_NOT_DICOM): in
    check the preflight starts only when the listeners probe has ended."""
    import pytest

    from reverseprobe import concurrent
    from reverseprobe.commands import check
    from reverseprobe.config import CheckConfig
    from reverseprobe.model import ProbeResult

    mp: pytest.MonkeyPatch = monkeypatch  # type: ignore[assignment]
    order: list[str] = []

    def fake_listeners(*_a: object, **_k: object) -> ProbeResult:
        order.append("listeners")
        time.sleep(0.5)  # the C-ECHO in progress
        order.append("listeners done")
        return ProbeResult(status=Status.OK)

    def fake_preflight(*_a: object) -> ProbeResult:
        order.append("preflight")
        return ProbeResult(status=Status.OK)

    mp.setattr("reverseprobe.probes.listeners.probe_listeners", fake_listeners)
    mp.setattr(check, "_receiver_preflight", fake_preflight)
    cfg = CheckConfig(port=11112, aet="MYSCU", contexts=((CT_IMAGE, EXPLICIT_LE),))
    probes = check.build_probes(cfg)
    pre = concurrent.start(lambda: probes["receiver"](Deadline.after(20.0)), name="pre")
    probes["listeners"](Deadline.after(20.0))
    pre.result(20.0)
    assert order == ["listeners", "listeners done", "preflight"], order
