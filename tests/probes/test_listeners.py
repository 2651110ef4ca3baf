"""The listener probe against real listeners on this host (loopback): dcmtk, pynetdicom, HTTP,
SO_REUSEPORT twins, a loopback-only SCP, an SCP that rejects the called AE, a silent one."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from conftest import TESTS, Procs, wait_listening
from test_cli import run

PEERS = TESTS / "peers"
LOCAL = ("--no-upnp", "--no-public-ip")


def check(port: int, *extra: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    code, out, err = run("check", "--port", str(port), *LOCAL, "--json", *extra)
    assert code in (0, 1), err
    return code, json.loads(out)


def codes(doc: dict) -> set[str]:  # type: ignore[type-arg]
    """The listener findings (check also reports INBOUND_NOT_TESTED etc. on loopback)."""
    return {f["code"] for f in doc["findings"] if f["code"].startswith("LISTENER_")}


def finding(doc: dict, code: str) -> dict:  # type: ignore[type-arg]
    return next(f for f in doc["findings"] if f["code"] == code)  # type: ignore[no-any-return]


def pyscp(procs: Procs, host: str, port: int, aet: str, *flags: str) -> None:
    procs.start([sys.executable, str(PEERS / "pyscp.py"), host, str(port), aet, *flags], "scp")
    wait_listening(port, "127.0.0.1" if host in ("0.0.0.0", "127.0.0.1") else host)


def raw(procs: Procs, host: str, port: int, *flags: str) -> None:
    procs.start([sys.executable, str(PEERS / "rawlisten.py"), host, str(port), *flags], "raw")


@pytest.mark.skipif(not Path("/usr/bin/storescp").exists(), reason="dcmtk storescp not installed")
def test_dcmtk_storescp_is_ok_with_its_fingerprint(procs: Procs, port: int, tmp_path: Path) -> None:
    procs.start(["/usr/bin/storescp", "-aet", "MYSCU", "-od", str(tmp_path), str(port)], "storescp")
    wait_listening(port)
    code, doc = check(port, "--aet", "MYSCU", "--expect-process", "storescp")
    assert code == 0
    assert codes(doc) == {"LISTENER_OK"}
    ok = finding(doc, "LISTENER_OK")["detail"]
    assert ok["implementation_class_uid"].startswith("1.2.276.0.7230010.3")
    assert ok["implementation_version_name"].startswith("OFFIS_DCMTK")
    sockets = doc["probes"]["listeners"]["sockets"]
    assert sockets and all(s["process"] == "storescp" and s["pid"] for s in sockets)


def test_pynetdicom_scp_is_ok(procs: Procs, port: int) -> None:
    pyscp(procs, "0.0.0.0", port, "MYSCU")
    code, doc = check(port, "--aet", "MYSCU")
    assert code == 0 and codes(doc) == {"LISTENER_OK"}
    ok = finding(doc, "LISTENER_OK")["detail"]
    assert ok["implementation_version_name"].startswith("PYNETDICOM")
    echo = doc["probes"]["listeners"]["echoes"][0]
    assert echo["result"] == "accepted" and echo["echo_status"] == 0


def test_unexpected_process(procs: Procs, port: int) -> None:
    pyscp(procs, "0.0.0.0", port, "MYSCU")
    code, doc = check(port, "--aet", "MYSCU", "--expect-process", "horos")
    assert code == 1 and "LISTENER_UNEXPECTED_PROCESS" in codes(doc)


def test_so_reuseport_twins_are_multiple(procs: Procs, port: int) -> None:
    raw(procs, "0.0.0.0", port, "--reuseport")
    wait_listening(port)
    raw(procs, "0.0.0.0", port, "--reuseport")
    _wait_sockets(port, 2)
    code, doc = check(port, "--timeout", "3")
    assert code == 1 and "LISTENER_MULTIPLE" in codes(doc)
    assert len({s["pid"] for s in doc["probes"]["listeners"]["sockets"]}) == 2


def test_wildcard_plus_specific_address_is_multiple(procs: Procs, port: int) -> None:
    # Linux lets a specific-address bind sit beside a wildcard one only with SO_REUSEPORT on
    # both; Windows and the BSDs allow it more readily, which is how two viewers end up there.
    raw(procs, "0.0.0.0", port, "--reuseport")
    wait_listening(port)
    raw(procs, "127.0.0.1", port, "--reuseport")
    _wait_sockets(port, 2)
    code, doc = check(port, "--timeout", "3")
    assert code == 1 and "LISTENER_MULTIPLE" in codes(doc)
    assert {s["address"] for s in doc["probes"]["listeners"]["sockets"]} == {"0.0.0.0", "127.0.0.1"}


def test_loopback_only(procs: Procs, port: int) -> None:
    pyscp(procs, "127.0.0.1", port, "MYSCU")
    code, doc = check(port, "--aet", "MYSCU")
    assert code == 1 and codes(doc) == {"LISTENER_LOOPBACK_ONLY"}


def test_http_server_is_not_dicom(procs: Procs, port: int) -> None:
    procs.start([sys.executable, "-m", "http.server", "--bind", "0.0.0.0", str(port)], "http")
    wait_listening(port)
    code, doc = check(port, "--timeout", "4")
    assert code == 1 and "LISTENER_NOT_DICOM" in codes(doc)
    assert doc["probes"]["listeners"]["echoes"][0]["result"] in ("not-dicom", "no-answer")


def test_scp_rejecting_the_called_aet(procs: Procs, port: int) -> None:
    pyscp(procs, "0.0.0.0", port, "OTHERAE", "--require-called")
    code, doc = check(port, "--aet", "MYSCU")
    assert code == 1 and codes(doc) == {"LISTENER_REJECTS_AET"}
    rej = finding(doc, "LISTENER_REJECTS_AET")["detail"]["reject"]
    assert (rej["result"], rej["source"], rej["reason"]) == (1, 1, 7)


def test_silent_listener_does_not_hang_past_the_timeout(procs: Procs, port: int) -> None:
    raw(procs, "0.0.0.0", port)
    wait_listening(port)
    t0 = time.monotonic()
    code, doc = check(port, "--timeout", "2")
    elapsed = time.monotonic() - t0
    assert elapsed < 2 + 1.5, f"check took {elapsed:.1f} s with --timeout 2"
    assert code == 1 and "LISTENER_NOT_DICOM" in codes(doc)
    assert doc["probes"]["listeners"]["echoes"][0]["result"] == "no-answer"


def _wait_sockets(port: int, n: int, timeout: float = 10) -> None:
    from reverseprobe.probes.listeners import listening_sockets

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if len(listening_sockets(port)[0]) >= n:
            return
        time.sleep(0.02)
    raise TimeoutError(f"expected {n} sockets on port {port}")
