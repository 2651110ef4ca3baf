"""check looks at the local listener once (issue 10): the listeners and inbound probes share one
socket-table scan and one C-ECHO, and pynetdicom is imported by one thread for the process."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from conftest import Procs, wait_listening
from reflector_helpers import reflector
from reverseprobe.concurrent import gather
from reverseprobe.deadline import Deadline
from reverseprobe.dicom.echo import preload_pynetdicom
from reverseprobe.probes import listeners
from reverseprobe.probes.listeners import LocalOnce
from test_cli import run


def test_check_with_a_reflector_echoes_the_local_listener_once(procs: Procs, port: int) -> None:
    """Before: the listeners probe and the inbound probe's fingerprint each associated: three
    associations on the user's receiver with the dial-back. Now two: our one C-ECHO and the
    reflector's. (dcmtk's storescp, a process of its own: our own SCPs are not "the user's".)"""
    scp = procs.start(["/usr/bin/storescp", "-v", "--aetitle", "MYSCU", str(port)], "storescp")
    wait_listening(port)
    with reflector(burst=20) as r:
        argv = ["check", "--port", str(port), "--aet", "MYSCU", "--reflector", r.url]
        code, out, err = run(*argv, "--no-upnp", "--no-public-ip", "--json", "--timeout", "20")
    assert code in (0, 1), err
    doc = json.loads(out)
    echoes = doc["probes"]["listeners"]["echoes"]
    assert [e["result"] for e in echoes] == ["accepted"], echoes
    inbound = doc["probes"]["inbound"]
    assert inbound["status"] == "ok", inbound
    assert inbound["mode"] == "existing-listener"
    # the fingerprint is the listeners' echo, and matches what the reflector saw
    assert len(inbound["local_fingerprints"]) == 1
    assert inbound["local_fingerprints"][0]["result"] == "accepted"
    assert inbound["local_fingerprints"][0] == inbound["remote_fingerprint"]
    scp.kill()
    scp.wait(10)
    log = (procs.tmp / "storescp-0.log").read_text(errors="replace")
    # one C-ECHO of ours, one dial-back (wait_listening's bare connect is never acknowledged)
    assert log.count("Association Acknowledged") == 2, log


def test_the_socket_scan_runs_once_for_concurrent_callers(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    entered = threading.Event()

    def scan(port: int) -> tuple[list[Any], bool]:
        calls.append(port)
        entered.set()
        return [], True

    monkeypatch.setattr(listeners, "listening_sockets", scan)
    once = LocalOnce(4242, "ANY-SCP")
    got = gather({str(i): once.sockets for i in range(4)}, Deadline.after(10))
    assert calls == [4242]
    assert all(v == ([], True) for v in got.values()), got


def test_a_failed_scan_reaches_every_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    def scan(port: int) -> tuple[list[Any], bool]:
        raise PermissionError("no process table")

    monkeypatch.setattr(listeners, "listening_sockets", scan)
    once = LocalOnce(4242, "ANY-SCP")
    for _ in range(2):
        with pytest.raises(PermissionError):
            once.sockets()
    r = listeners.probe_listeners(4242, "ANY-SCP", Deadline.after(5), once=once)
    assert r.status.value == "error" and "could not list sockets" in (r.reason or "")


def test_the_echo_is_started_once_per_address() -> None:
    once = LocalOnce(1, "ANY-SCP")  # nothing listens on port 1: the echo fails fast
    a, b = once.get("127.0.0.1", 2.0), once.get("127.0.0.1", 2.0)
    assert a is b
    assert once.get("::1", 2.0) is not a
    for call in (a, once.get("::1", 2.0)):
        assert call.wait(10)


def test_pynetdicom_is_imported_by_one_call_for_the_process() -> None:
    first = preload_pynetdicom()
    assert preload_pynetdicom() is first
    assert first.wait(60) and first.outcome() is None
