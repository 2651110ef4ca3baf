"""move-test against our own pynetdicom Q/R fixture on loopback: the faults real PACS will not
produce on demand (final success before the images, completed sub-operations sent elsewhere,
another called AE title, a PACS that never answers), plus the CLI, --save, C-GET and Ctrl-C."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pydicom
import pytest

from conftest import SRC, free_port, wait_listening
from dicom_fixtures import QrFixture, QrMode, SinkScp, make_study
from reverseprobe.cli import main
from reverseprobe.commands.move_test import run_move_test
from reverseprobe.config import MoveTestConfig
from reverseprobe.environment import Environment
from reverseprobe.model import Report, Status

AET = "MYSCU"


def _cfg(pacs: QrFixture, port: int, **kw: Any) -> MoveTestConfig:
    base: dict[str, Any] = {
        "pacs_host": "127.0.0.1",
        "pacs_port": pacs.port,
        "pacs_aet": pacs.aet,
        "aet": AET,
        "port": port,
        "grace": 1.0,
        "public_ip": False,
        "timeout": 20.0,
    }
    base.update(kw)
    return MoveTestConfig(**base)


def codes(report: Report) -> set[str]:
    return {f.code for f in report.findings}


def move_json(report: Report) -> dict[str, Any]:
    d = json.loads(json.dumps(report.to_dict()))
    return d["probes"]["move"]  # type: ignore[no-any-return]


def assert_port_free(port: int) -> None:
    """Nothing listens on the port (TIME_WAIT leftovers do not count: SO_REUSEADDR)."""
    from reverseprobe.probes.listeners import listening_sockets

    assert listening_sockets(port)[0] == []
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        s.listen()


def events(move: dict[str, Any]) -> list[str]:
    return [e["event"] for e in move["timeline"]]


def test_normal_move_ok_with_timeline(port: int) -> None:
    study = make_study(3)
    with QrFixture(study, destinations={AET: ("127.0.0.1", port)}) as pacs:
        report = run_move_test(_cfg(pacs, port))
    assert codes(report) >= {"MOVE_OK", "CGET_AVAILABLE"}
    assert report.verdict.value == "pass"
    d = report.to_dict()
    assert set(d["probes"]) == {"echo", "find", "move", "get"}
    move = move_json(report)
    assert move["status"] == "ok"
    assert move["final_status"] == "success" and move["final_code"] == 0
    assert (move["completed"], move["failed"], move["warning"]) == (3, 0, 0)
    assert move["received"] == 3 and move["received_after_final"] == 0
    assert move["study_uid"] == study[0].StudyInstanceUID
    ev = events(move)
    for kind in ("listening", "c-move-rq", "connection", "a-associate-rq", "c-store",
                 "c-move-final", "grace-end", "stopped"):  # fmt: skip
        assert kind in ev, kind
    assert ev.index("c-move-rq") < ev.index("connection") < ev.index("c-move-final")
    ts = [e["t"] for e in move["timeline"]]
    assert ts == sorted(ts)
    (assoc,) = move["associations"]
    assert assoc["called_aet"] == AET and assoc["calling_aet"] == "FIXTURE"
    assert assoc["peer"] == "127.0.0.1" and assoc["stores"] == 3
    assert d["pacs_entry"]["aet"] == AET and d["pacs_entry"]["port"] == port
    assert f"Move Destination exactly '{AET}'" in d["pacs_entry"]["note"]
    assert_port_free(port)  # the listener stopped


def test_final_response_before_images(port: int) -> None:
    study = make_study(3)
    dest = {AET: ("127.0.0.1", port)}
    with QrFixture(study, destinations=dest, mode=QrMode.FINAL_BEFORE_IMAGES) as pacs:
        report = run_move_test(_cfg(pacs, port, grace=3.0))
    assert "MOVE_FINAL_BEFORE_IMAGES" in codes(report)
    move = move_json(report)
    assert move["final_code"] == 0 and move["completed"] == 0
    assert move["received"] == 3 and move["received_after_final"] == 3
    ev = events(move)
    assert ev.index("c-move-final") < ev.index("connection") < ev.index("c-store")
    late = next(f for f in report.findings if f.code == "MOVE_FINAL_BEFORE_IMAGES")
    assert late.severity.value == "warn" and "keep" in late.fix.lower()


def test_completed_sub_operations_sent_elsewhere(port: int) -> None:
    study = make_study(3)
    with SinkScp() as sink:
        dest = {AET: ("127.0.0.1", sink.port)}
        with QrFixture(study, destinations=dest) as pacs:
            report = run_move_test(_cfg(pacs, port))
        assert sink.received == 3
    assert "MOVE_DELIVERED_ELSEWHERE" in codes(report)
    assert "MOVE_OK" not in codes(report)
    move = move_json(report)
    assert move["completed"] == 3 and move["received"] == 0 and move["connections"] == 0


def test_called_aet_mismatch_is_a_warning_and_images_still_counted(port: int) -> None:
    study = make_study(2)
    dest = {AET: ("127.0.0.1", port, {"ae_title": "OLDNAME"})}
    with QrFixture(study, destinations=dest) as pacs:
        report = run_move_test(_cfg(pacs, port))
    assert {"MOVE_CALLED_AET_MISMATCH", "MOVE_OK"} <= codes(report)
    f = next(f for f in report.findings if f.code == "MOVE_CALLED_AET_MISMATCH")
    assert "OLDNAME" in f.summary and AET in f.fix


def test_destination_unknown(port: int) -> None:
    with QrFixture(make_study(1), destinations={}) as pacs:
        report = run_move_test(_cfg(pacs, port))
    assert "MOVE_DESTINATION_UNKNOWN" in codes(report)
    move = move_json(report)
    assert move["final_code"] == 0xA801 and move["final_code_hex"] == "0xA801"
    assert move["connections"] == 0
    f = next(f for f in report.findings if f.code == "MOVE_DESTINATION_UNKNOWN")
    assert f"port {port}" in f.fix and AET in f.fix and "127.0.0.1" in f.fix


def test_pacs_that_never_answers_the_move_stays_inside_the_deadline(port: int) -> None:
    dest = {AET: ("127.0.0.1", port)}
    with QrFixture(make_study(1), destinations=dest, mode=QrMode.SILENT) as pacs:
        t0 = time.monotonic()
        report = run_move_test(_cfg(pacs, port, timeout=6.0, grace=0.5))
        elapsed = time.monotonic() - t0
    move = move_json(report)
    assert move["status"] in ("timeout", "fail")
    assert move["cancelled"] and "c-move-cancel" in events(move)  # C-CANCEL before the end
    assert pacs.cancelled
    f = next(f for f in report.findings if f.code == "MOVE_NO_CONNECT_BACK")
    assert "--timeout" in f.fix
    assert elapsed < 6.0 + 1.5  # the contract: finished by --timeout plus a small margin


def test_pacs_that_never_stops_sending_is_cut_off_at_the_deadline(port: int) -> None:
    dest = {AET: ("127.0.0.1", port)}
    with QrFixture(make_study(1), destinations=dest, mode=QrMode.ENDLESS) as pacs:
        t0 = time.monotonic()
        report = run_move_test(_cfg(pacs, port, timeout=5.0, grace=0.5))
        elapsed = time.monotonic() - t0
    move = move_json(report)
    assert move["final_code"] is None and move["pending_responses"] > 0
    assert move["received"] > 0
    assert "MOVE_OK" not in codes(report)
    assert "c-move-cancel" in events(move)  # asked politely first, then aborted
    f = next(f for f in report.findings if f.code == "MOVE_INCOMPLETE")
    assert "--timeout" in f.summary and "--timeout" in f.fix
    assert elapsed < 5.0 + 1.5


def test_pacs_aborts_the_move(port: int) -> None:
    with QrFixture(make_study(1), destinations={}, mode=QrMode.ABORT) as pacs:
        report = run_move_test(_cfg(pacs, port))
    assert "PACS_ABORTED" in codes(report)
    move = move_json(report)
    assert move["no_response"] == "aborted"


def test_port_busy_names_the_program(port: int) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        with QrFixture(make_study(1), destinations={AET: ("127.0.0.1", port)}) as pacs:
            report = run_move_test(_cfg(pacs, port, receiver="own"))  # auto would observe it
            assert pacs.moves == 0  # no images went to the program that holds the port
    assert "MOVE_PORT_BUSY" in codes(report)
    f = next(f for f in report.findings if f.code == "MOVE_PORT_BUSY")
    assert f"PID {os.getpid()}" in f.summary
    assert move_json(report)["port_busy"][0]["pid"] == os.getpid()


def test_study_counted_image_by_image_when_the_pacs_gives_no_counts(port: int) -> None:
    small, big = make_study(2), make_study(4)
    with QrFixture(big + small, destinations={AET: ("127.0.0.1", port)}, counts=False) as pacs:
        report = run_move_test(_cfg(pacs, port))
    find = report.to_dict()["probes"]["find"]
    assert find["studies"] == 2
    assert find["study_uid"] == small[0].StudyInstanceUID  # the smallest
    assert find["instances"] == 2 and find["instances_from"] == "image-level C-FIND"
    assert "MOVE_OK" in codes(report)


def test_nothing_to_move(port: int) -> None:
    with QrFixture([], destinations={AET: ("127.0.0.1", port)}) as pacs:
        report = run_move_test(_cfg(pacs, port))
    assert "MOVE_NOTHING_TO_MOVE" in codes(report)
    assert report.probes["move"].status is Status.SKIPPED


def test_requested_study_not_on_pacs(port: int) -> None:
    with QrFixture(make_study(1), destinations={AET: ("127.0.0.1", port)}) as pacs:
        report = run_move_test(_cfg(pacs, port, study="1.2.3.4.5"))
    f = next(f for f in report.findings if f.code == "MOVE_NOTHING_TO_MOVE")
    assert "1.2.3.4.5" in f.summary


def test_try_cget_and_save(port: int, tmp_path: Path) -> None:
    study = make_study(3)
    with QrFixture(study, destinations={AET: ("127.0.0.1", port)}) as pacs:
        report = run_move_test(_cfg(pacs, port, try_cget=True, save_dir=tmp_path))
    get = report.to_dict()["probes"]["get"]
    assert get["supported"] is True and get["tried"] is True
    assert get["received"] == 3 and get["final_code"] == 0
    saved = sorted(p for p in tmp_path.iterdir() if not p.name.startswith("cget-"))
    assert len(saved) == 3
    uids = {pydicom.dcmread(p).SOPInstanceUID for p in saved}
    assert uids == {d.SOPInstanceUID for d in study}
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("cget-")]) == 3


def test_no_cget_finding_when_the_pacs_refuses_cget(port: int) -> None:
    with QrFixture(make_study(1), destinations={AET: ("127.0.0.1", port)}, get=False) as pacs:
        report = run_move_test(_cfg(pacs, port))
    assert "CGET_AVAILABLE" not in codes(report)
    assert report.to_dict()["probes"]["get"]["supported"] is False


def test_unreachable_pacs(port: int) -> None:
    closed = free_port()
    cfg = MoveTestConfig(
        pacs_host="127.0.0.1", pacs_port=closed, pacs_aet="X", aet=AET, port=port,
        public_ip=False, timeout=10.0,
    )  # fmt: skip
    report = run_move_test(cfg)
    assert "PACS_UNREACHABLE" in codes(report)
    d = report.to_dict()
    assert d["probes"]["echo"]["tcp"] == "refused"
    assert {d["probes"][n]["status"] for n in ("find", "move", "get")} == {"skipped"}


def test_pacs_given_by_name(port: int) -> None:
    with QrFixture(make_study(1), destinations={AET: ("127.0.0.1", port)}) as pacs:
        report = run_move_test(_cfg(pacs, port, pacs_host="localhost"))
    assert "MOVE_OK" in codes(report)
    assert report.to_dict()["addresses"]["pacs_ip"] in ("127.0.0.1", "::1")


def test_name_that_does_not_resolve(port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_a: object, **_k: object) -> None:
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    cfg = MoveTestConfig(pacs_host="pacs.example", pacs_port=104, pacs_aet="X", aet=AET,
                         port=port, public_ip=False, timeout=5.0)  # fmt: skip
    report = run_move_test(cfg)
    f = next(f for f in report.findings if f.code == "PACS_UNREACHABLE")
    assert "'pacs.example' does not resolve" in f.summary
    assert report.to_dict()["probes"]["echo"]["tcp"] == "unresolved"


def test_a_stuck_resolver_cannot_hold_the_command() -> None:
    from reverseprobe.probes.pacs_address import resolve

    def slow(*_a: object, **_k: object) -> None:
        time.sleep(3)
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket, "getaddrinfo", slow)
        t0 = time.monotonic()
        ip, why = resolve("pacs.example", 0.3)
        assert time.monotonic() - t0 < 2.0
    assert ip is None and why and "longer than" in why


def test_silent_listener_as_pacs_is_bounded(port: int) -> None:
    with socket.socket() as hole:  # accepts TCP (kernel backlog), never says a word
        hole.bind(("127.0.0.1", 0))
        hole.listen()
        cfg = MoveTestConfig(
            pacs_host="127.0.0.1", pacs_port=hole.getsockname()[1], pacs_aet="X", aet=AET,
            port=port, public_ip=False, timeout=4.0,
        )  # fmt: skip
        t0 = time.monotonic()
        report = run_move_test(cfg)
        elapsed = time.monotonic() - t0
    assert "PACS_UNREACHABLE" in codes(report)
    assert report.to_dict()["probes"]["echo"]["result"] == "no-answer"
    assert elapsed < 4.0 + 1.5


def test_rejected_association_is_decoded(port: int) -> None:
    from pynetdicom import AE

    ae = AE(ae_title="REALNAME")
    ae.require_called_aet = True
    ae.add_supported_context("1.2.840.10008.1.1")
    server = ae.start_server(("127.0.0.1", 0), block=False)
    assert server is not None
    try:
        cfg = MoveTestConfig(
            pacs_host="127.0.0.1", pacs_port=server.server_address[1], pacs_aet="WRONG",
            aet=AET, port=port, public_ip=False, timeout=10.0,
        )  # fmt: skip
        report = run_move_test(cfg)
    finally:
        server.shutdown()
    f = next(f for f in report.findings if f.code == "PACS_REJECTED_ASSOCIATION")
    assert f.detail["reject"] == {"result": 1, "source": 1, "reason": 7}
    assert "WRONG" in f.fix and "calling" in f.fix


# --- the CLI ------------------------------------------------------------------------------------


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdout=out, stderr=err, environ={}, stdout_isatty=False, stderr_isatty=False)
    return main(list(argv), env), out.getvalue(), err.getvalue()


def test_cli_json_and_exit_codes(port: int) -> None:
    study = make_study(2)
    with QrFixture(study, destinations={AET: ("127.0.0.1", port)}) as pacs:
        common = ["move-test", "--pacs", f"127.0.0.1:{pacs.port}", "--pacs-aet", pacs.aet,
                  "--port", str(port), "--no-public-ip", "--grace", "1", "--json"]  # fmt: skip
        code, out, err = cli(*common, "--aet", AET)
        assert code == 0, err
        d = json.loads(out)
        assert d["command"] == "move-test" and d["verdict"] == "pass"
        assert d["probes"]["move"]["received"] == 2
        code, out, _ = cli(*common, "--aet", "NOBODY")
        assert code == 1
        assert "MOVE_DESTINATION_UNKNOWN" in {f["code"] for f in json.loads(out)["findings"]}


def test_cli_text_report_ends_with_the_scu_settings(port: int) -> None:
    with QrFixture(make_study(1), destinations={AET: ("127.0.0.1", port)}) as pacs:
        code, out, _ = cli("move-test", "--pacs", f"127.0.0.1:{pacs.port}", "--pacs-aet",
                           pacs.aet, "--aet", AET, "--port", str(port), "--no-public-ip",
                           "--grace", "1")  # fmt: skip
    assert code == 0
    assert "MOVE_OK" in out and f"Move Destination exactly '{AET}'" in out


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--save", "/nonexistent/dir"], "/nonexistent/dir"),
        (["--grace", "30", "--timeout", "10"], "30"),
        (["--ip-service", "ftp://x"], "ftp://x"),
        (["--study", "1.2.x"], "1.2.x"),
    ],
)
def test_cli_bad_input(extra: list[str], needle: str) -> None:
    code, out, err = cli("move-test", "--pacs", "127.0.0.1:104", "--pacs-aet", "P", "--aet",
                         AET, "--no-public-ip", *extra)  # fmt: skip
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and needle in err


def test_ctrl_c_releases_the_association_and_stops_the_listener(port: int) -> None:
    dest = {AET: ("127.0.0.1", port)}
    with QrFixture(make_study(1), destinations=dest, mode=QrMode.SILENT) as pacs:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reverseprobe", "move-test", "--pacs",
             f"127.0.0.1:{pacs.port}", "--pacs-aet", pacs.aet, "--aet", AET, "--port", str(port),
             "--no-public-ip", "--timeout", "60"],
            env=dict(os.environ, PYTHONPATH=str(SRC)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            wait_listening(port, timeout=20)  # our Storage SCP is up: the C-MOVE is in flight
            end = time.monotonic() + 10
            while pacs.moves == 0 and time.monotonic() < end:
                time.sleep(0.02)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 130, err
        end = time.monotonic() + 5
        while "A_ABORT_RQ" not in pacs.pdus_received and time.monotonic() < end:
            time.sleep(0.02)
        assert pacs.cancelled  # the PACS was asked to stop the sub-operations (C-CANCEL)
        assert "A_ABORT_RQ" in pacs.pdus_received  # and the association was ended, not dropped
    assert_port_free(port)  # and so is our listener
