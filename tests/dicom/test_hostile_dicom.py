"""Hostile DICOM peers on loopback (issue 16): a PDU header announcing 1 GiB then silence, a
byte every 0.5 s, an endless PDU, an A-ASSOCIATE-RJ with undefined values, a C-MOVE response
without Command Field, a PACS that never answers C-FIND or a listener that never answers
C-ECHO. Each case asserts the deadline, the memory bound where it matters, and the finding."""

from __future__ import annotations

import json
import time

import psutil
import pytest
from pydicom.dataset import Dataset

from conftest import free_port
from peers.hostile_dicom import (
    STALLED_AC,
    FakePacs,
    RawPeer,
    bad_rj,
    dripper,
    flood,
    pdu,
    reply,
    send_as_sender,
    streamer,
)
from peers.hostile_dicom import drip as drip_peer
from reverseprobe.commands.move_test import run_move_test
from reverseprobe.config import MoveTestConfig
from reverseprobe.dicom.echo import DicomResult, echo
from reverseprobe.dicom.qr import counts, invalid_counts
from reverseprobe.dicom.receiver import Receiver
from reverseprobe.dicom.scp import VerificationScp
from reverseprobe.dicom.timeline import EventKind, Timeline
from test_cli import run

MARGIN = 3.0  # seconds beyond --timeout, generous for a loaded 2-core machine
MIB = 1 << 20


def _rss() -> int:
    return int(psutil.Process().memory_info().rss)


def _check(port: int, timeout: int) -> tuple[int, dict, str, float]:  # type: ignore[type-arg]
    t0 = time.monotonic()
    code, out, err = run(
        "check", "--no-upnp", "--no-public-ip", "--port", str(port), "--timeout", str(timeout),
        "--require-listener", "--json",
    )  # fmt: skip
    return code, json.loads(out), err, time.monotonic() - t0


@pytest.mark.parametrize(
    ("behaviour", "fast"),
    [
        (reply(STALLED_AC), True),
        (flood(), True),
        (reply(bad_rj()), True),
        (drip_peer(pdu(2, bytes(200))), False),
    ],
    ids=["stalled-header", "flood-1GiB", "invalid-rj", "drip"],
)
def test_check_against_hostile_listener_ends_with_a_finding(
    behaviour: object, fast: bool, capfd: pytest.CaptureFixture[str]
) -> None:
    rss0 = _rss()
    with RawPeer(behaviour) as peer:  # type: ignore[arg-type]
        code, doc, err, took = _check(peer.port, 5)
    assert took < 5 + MARGIN, f"check took {took:.1f} s with --timeout 5"
    if fast:  # garbage is named at once, not after the whole budget
        assert took < 3.0, took
    # (the fake listens on loopback only, which is a finding of its own)
    codes = {f["code"] for f in doc["findings"]}
    assert "LISTENER_NOT_DICOM" in codes and "LISTENER_OK" not in codes, codes
    assert code != 0 and doc["verdict"] != "PASS"
    assert _rss() - rss0 < 200 * MIB
    assert "Traceback" not in err + capfd.readouterr().err


def test_echo_scu_against_1gib_flood_stays_small() -> None:
    rss0 = _rss()
    with RawPeer(flood()) as peer:
        t0 = time.monotonic()
        r = echo("127.0.0.1", peer.port, called_aet="X", timeout=5, tcp_first=False)
    assert time.monotonic() - t0 < 5 + MARGIN
    assert r.result is DicomResult.NOT_DICOM and "1073741824" in (r.detail or "")
    assert _rss() - rss0 < 200 * MIB


def test_listener_that_never_answers_c_echo_is_not_ok() -> None:
    with FakePacs("echo-silent") as pacs:
        code, doc, _err, took = _check(pacs.port, 4)
    assert took < 4 + MARGIN
    codes = {f["code"] for f in doc["findings"]}
    assert "LISTENER_OK" not in codes and "LISTENER_NOT_DICOM" in codes
    assert code != 0


def _move_test(pacs_port: int, timeout: float = 8.0):  # type: ignore[no-untyped-def]
    cfg = MoveTestConfig(
        pacs_host="127.0.0.1", pacs_port=pacs_port, pacs_aet="PACS", aet="MYSCU",
        port=free_port(), grace=1.0, public_ip=False, timeout=timeout,
    )  # fmt: skip
    t0 = time.monotonic()
    report = run_move_test(cfg)
    return report, time.monotonic() - t0


@pytest.mark.parametrize("behaviour", [reply(STALLED_AC), reply(bad_rj())], ids=["stalled", "rj"])
def test_move_test_against_hostile_pacs_ends_in_time(
    behaviour: object, capfd: pytest.CaptureFixture[str]
) -> None:
    with RawPeer(behaviour) as peer:  # type: ignore[arg-type]
        report, took = _move_test(peer.port)
    assert took < 8 + MARGIN
    assert "PACS_UNREACHABLE" in {f.code for f in report.findings}
    assert "Traceback" not in capfd.readouterr().err


def test_pacs_that_never_answers_c_find_is_a_find_failure() -> None:
    with FakePacs("find-silent") as pacs:
        report, took = _move_test(pacs.port)
    assert took < 8 + MARGIN
    codes = {f.code for f in report.findings}
    assert "PACS_ABORTED" in codes, codes


def test_garbage_c_move_response_is_named_as_garbage(capfd: pytest.CaptureFixture[str]) -> None:
    with FakePacs("move-garbage") as pacs:
        report, took = _move_test(pacs.port)
    assert took < 8 + MARGIN
    codes = {f.code for f in report.findings}
    assert "PACS_PROTOCOL_ERROR" in codes and "MOVE_NO_CONNECT_BACK" not in codes, codes
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("sender", [dripper(), streamer()], ids=["drip", "stream-1GiB"])
def test_receiver_stops_promptly_and_stays_small(sender: object) -> None:
    rss0 = _rss()
    tl = Timeline()
    recv = Receiver("MYSCU", 0, tl, host="127.0.0.1", network_timeout=10)
    recv.start()
    try:
        port = int(recv._server.server_address[1])
        thread, stop = send_as_sender(port, sender)  # type: ignore[arg-type]
        end = time.monotonic() + 10
        while not recv.stats().connections and time.monotonic() < end:
            time.sleep(0.02)
        assert recv.stats().connections == 1
    finally:
        t0 = time.monotonic()
        recv.stop()
        took = time.monotonic() - t0
    stop.set()
    thread.join(5)
    assert took < 2.0, f"Receiver.stop() took {took:.1f} s"
    assert _rss() - rss0 < 200 * MIB


def test_receiver_says_when_it_cuts_a_peer_off() -> None:
    tl = Timeline()
    recv = Receiver("MYSCU", 0, tl, host="127.0.0.1", network_timeout=10)
    recv.start()
    try:
        thread, stop = send_as_sender(int(recv._server.server_address[1]), streamer())
        end = time.monotonic() + 10
        while not any(e.event is EventKind.CUT_OFF for e in tl.events()):
            assert time.monotonic() < end, tl.events()
            time.sleep(0.02)
    finally:
        recv.stop()
    stop.set()
    thread.join(5)
    cut = next(e for e in tl.events() if e.event is EventKind.CUT_OFF)
    assert "1073741824" in cut.detail["reason"]


def test_verification_scp_stops_promptly_under_drip() -> None:
    scp = VerificationScp(0, host="127.0.0.1").start()
    thread, stop = send_as_sender(scp.port, dripper())
    end = time.monotonic() + 10
    while not scp.connections() and time.monotonic() < end:
        time.sleep(0.02)
    t0 = time.monotonic()
    scp.stop()
    assert time.monotonic() - t0 < 2.0
    stop.set()
    thread.join(5)


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns as it builds the bad values
def test_invalid_counts_are_flagged_not_passed_on() -> None:
    st = Dataset()
    st.NumberOfCompletedSuboperations = -5
    st.NumberOfFailedSuboperations = 10**20
    st.NumberOfRemainingSuboperations = 3
    assert counts(st) == {"remaining": 3}
    bad = invalid_counts(st)
    assert any("PACS sent invalid count NumberOfCompletedSuboperations=-5" in b for b in bad)
    assert any("NumberOfFailedSuboperations=100000000000000000000" in b for b in bad)


def test_library_warnings_about_a_peers_values_stay_off_stderr() -> None:
    """pydicom warns (with its file paths) about bad element values a peer sent; after
    quiet_pynetdicom() such warnings are not shown, and ours still are."""
    import warnings

    from reverseprobe.dicom.echo import quiet_pynetdicom

    with warnings.catch_warnings(record=True) as seen:
        quiet_pynetdicom(debug=False)
        warnings.warn_explicit(
            "bad value", UserWarning, "valuerep.py", 1, module="pydicom.valuerep"
        )
        warnings.warn_explicit("bad PDU", UserWarning, "pdu.py", 1, module="pynetdicom.pdu")
        warnings.warn_explicit("ours", UserWarning, "x.py", 1, module="reverseprobe.x")
    assert [str(w.message) for w in seen] == ["ours"]


def test_a_rejection_that_loses_the_race_with_the_close_is_still_read() -> None:
    """A peer that sends A-ASSOCIATE-RJ and resets at once (dcmqrscp now and then): pynetdicom
    sees the RJ (Evt4) but not always is_rejected; the guard's first bytes still hold it."""
    import contextlib
    import socket as _socket
    import struct
    import threading as _threading

    from reverseprobe.deadline import Deadline as _Deadline
    from reverseprobe.dicom.qr import Target, associate

    srv = _socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]

    def peer() -> None:
        for _ in range(3):
            c, _a = srv.accept()
            c.settimeout(5)
            with contextlib.suppress(OSError):
                c.recv(65536)
                c.sendall(bytes([0x03, 0, 0, 0, 0, 4, 0, 1, 1, 7]))
                c.setsockopt(_socket.SOL_SOCKET, _socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()  # linger 0: a reset right behind the RJ

    t = _threading.Thread(target=peer, daemon=True)
    t.start()
    try:
        for _ in range(3):
            _assoc, out = associate(
                Target("127.0.0.1", port, "WRONG", "ME"), ["1.2.840.10008.1.1"],
                _Deadline.after(5.0),
            )  # fmt: skip
            assert out.state.value == "rejected", out
            assert out.reject is not None and out.reject.reason == 7, out
    finally:
        srv.close()
