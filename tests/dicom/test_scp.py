"""The temporary Verification SCP: accepts any AE title, records callers, always frees the port."""

from __future__ import annotations

import contextlib
import errno
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO
from reverseprobe.dicom.echo import DicomResult, echo, quiet_pynetdicom
from reverseprobe.dicom.scp import VerificationScp, held_ports, on_exit

quiet_pynetdicom()


def port_free(port: int, host: str = "0.0.0.0", *, reuse: bool = False) -> bool:
    with socket.socket() as s:
        if reuse:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            s.listen()
        except OSError:
            return False
        return True


def test_accepts_any_called_and_calling_aet_and_records_them() -> None:
    with VerificationScp(0, host="127.0.0.1") as scp:
        a = echo("127.0.0.1", scp.port, called_aet="WHATEVER", calling_aet="RPNONCE0001")
        b = echo("127.0.0.1", scp.port, called_aet="OTHER TITLE", calling_aet="SECOND")
        assert a.result is DicomResult.ACCEPTED and a.echo_status == 0
        assert b.result is DicomResult.ACCEPTED
        seen = scp.wait_for("RPNONCE0001", 2)
        assert seen is not None and seen.called_aet == "WHATEVER"
        assert seen.address == "127.0.0.1"
        assert scp.wait_for("SECOND", 2) is not None
        assert scp.calling_aets() == ("RPNONCE0001", "SECOND")
        assert len(scp.connections()) >= 4  # echo() connects once bare, once to associate


def test_wait_for_an_absent_title_returns_none_in_time() -> None:
    with VerificationScp(0, host="127.0.0.1") as scp:
        t0 = time.monotonic()
        assert scp.wait_for("NEVER", 0.2) is None
        assert time.monotonic() - t0 < 2


def test_wait_for_wakes_up_when_the_title_arrives() -> None:
    with VerificationScp(0, host="127.0.0.1") as scp:
        got: list[object] = []
        t = threading.Thread(target=lambda: got.append(scp.wait_for("LATE", 10)))
        t.start()
        echo("127.0.0.1", scp.port, called_aet="X", calling_aet="LATE")
        t.join(10)
        assert got and got[0] is not None


@pytest.mark.skipif(not shutil.which("/usr/bin/echoscu"), reason="dcmtk not installed")
def test_dcmtk_echoscu_is_recorded() -> None:
    with VerificationScp(0, host="127.0.0.1") as scp:
        res = subprocess.run(
            ["/usr/bin/echoscu", "-aet", "RPDCMTK", "-aec", "ANYTHING", "127.0.0.1",
             str(scp.port)],
            check=False,
            capture_output=True,
            timeout=30,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        seen = scp.wait_for("RPDCMTK", 2)
        assert seen is not None and seen.called_aet == "ANYTHING"


def test_a_taken_port_raises_eaddrinuse_and_holds_nothing() -> None:
    with socket.create_server(("0.0.0.0", 0)) as taken:
        port = taken.getsockname()[1]
        scp = VerificationScp(port)
        with pytest.raises(OSError) as info:
            scp.start()
        assert info.value.errno == errno.EADDRINUSE
        assert not scp.running
        scp.stop()  # idempotent, also when never started


def test_stop_frees_the_port_and_is_idempotent() -> None:
    scp = VerificationScp(0).start()
    port = scp.port
    assert held_ports().get(port) is not None
    assert not port_free(port)
    scp.stop()
    scp.stop()
    assert port_free(port)
    assert port not in held_ports()


def test_the_port_is_freed_when_the_block_is_interrupted() -> None:
    scp = VerificationScp(0)
    with pytest.raises(KeyboardInterrupt), scp:
        port = scp.port
        raise KeyboardInterrupt
    assert not scp.running
    assert port_free(port)


def test_a_connection_in_progress_does_not_keep_the_port(
    capsys: pytest.CaptureFixture[str],
) -> None:
    scp = VerificationScp(0, host="127.0.0.1", acse_timeout=0.5).start()
    port = scp.port
    hold = socket.create_connection(("127.0.0.1", port))  # a bare connection, never associates
    try:
        scp.stop()
        # a DICOM receiver (SO_REUSEADDR, as pynetdicom and dcmtk set it) can listen at once
        assert port_free(port, "127.0.0.1", reuse=True)
        hold.settimeout(10)
        with contextlib.suppress(ConnectionResetError):  # ends at the ACSE timeout or stop
            first = hold.recv(100)
            # closed, or an A-ABORT (PDU type 0x07, PS3.8 9.3.8) first when stop() cut it
            assert first == b"" or (first[:1] == b"\x07" and len(first) == 10), first
            if first:
                assert hold.recv(100) == b""
    finally:
        hold.close()
    assert "Traceback" not in capsys.readouterr().err


def test_stop_aborts_an_established_association() -> None:
    from pynetdicom import AE

    ae = AE(ae_title="PEER")
    ae.add_requested_context("1.2.840.10008.1.1")
    scp = VerificationScp(0, host="127.0.0.1").start()
    assoc = ae.associate("127.0.0.1", scp.port, ae_title="ANY")
    assert assoc.is_established
    scp.stop()
    end = time.monotonic() + 10
    while assoc.is_established and time.monotonic() < end:
        time.sleep(0.02)
    assert assoc.is_aborted
    assert port_free(scp.port, "127.0.0.1", reuse=True)


_CTRL_C = textwrap.dedent(
    """
    import atexit, sys, time
    from pathlib import Path
    state = {}
    # registered before the SCP module's own hook, so it runs after it (atexit is LIFO)
    atexit.register(lambda: Path(sys.argv[1]).write_text(str(state["scp"].running)))
    from reverseprobe.dicom.scp import VerificationScp
    state["scp"] = VerificationScp(0).start()
    print(state["scp"].port, flush=True)
    while True:
        time.sleep(0.05)
    """
)


def test_ctrl_c_stops_the_scp_through_atexit(tmp_path: Path) -> None:
    marker = tmp_path / "stopped"
    proc = subprocess.Popen(
        [sys.executable, "-c", _CTRL_C, str(marker)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        assert not port_free(port)
        proc.send_signal(signal.SIGINT)
        proc.wait(15)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode != 0  # interrupted, not a clean exit
    assert marker.read_text() == "False"  # the SCP was stopped at exit
    assert port_free(port)


def test_on_exit_returns_an_unregister() -> None:
    calls: list[int] = []
    unregister = on_exit(lambda: calls.append(1))
    unregister()
    assert calls == []
