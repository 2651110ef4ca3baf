"""The inbound probe in-process against a real reflector on loopback, real listeners, and
hostile reflectors. (The real network paths - NAT, firewalls, ISP - are in test_inbound_lab.)"""

from __future__ import annotations

import errno
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from reflector_helpers import free_port, reflector
from reverseprobe.config import CheckConfig
from reverseprobe.diagnosis.inbound import rules
from reverseprobe.dicom.echo import DicomResult, quiet_pynetdicom
from reverseprobe.dicom.scp import held_ports
from reverseprobe.dicom.tcp import TcpState
from reverseprobe.model import Severity, Status
from reverseprobe.model.inbound import PortProbe, ProbeAnswer
from reverseprobe.portmap.errors import UpnpError
from reverseprobe.probes.inbound import (
    ControlOutcome,
    InboundMode,
    InboundResult,
    make_nonce,
    probe_inbound,
)
from reverseprobe.reflector.client import ask_probe
from reverseprobe.runner import Deadline

quiet_pynetdicom()


def run(cfg: CheckConfig, seconds: float = 8.0, **kw: Any) -> InboundResult:
    deadline = Deadline.after(seconds)
    r = probe_inbound(cfg, deadline, **kw)
    assert not deadline.expired, "the probe overran its deadline"
    return r


def findings(r: InboundResult, cfg: CheckConfig) -> list[tuple[str, Severity]]:
    return [(f.code, f.severity) for f in rules({"inbound": r}, cfg)]


def bindable(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
            s.listen()
        except OSError:
            return False
        return True


def test_nonce_is_a_valid_one_time_ae_title() -> None:
    nonces = {make_nonce() for _ in range(200)}
    assert len(nonces) == 200
    for n in nonces:
        assert len(n) == 16 and n.isalnum() and n.isupper() and n.startswith("RP")


def test_without_a_reflector_it_is_skipped_with_the_reason() -> None:
    r = run(CheckConfig(port=free_port()))
    assert r.status is Status.SKIPPED and "no reflector" in (r.reason or "")


def test_free_port_temporary_listener_sees_the_nonce() -> None:
    port = free_port()
    with reflector() as refl:
        cfg = CheckConfig(port=port, aet="MYSCU", reflector=refl.url, upnp=False)
        r = run(cfg)
    assert r.status is Status.OK, r.reason
    assert r.mode is InboundMode.TEMPORARY_LISTENER
    assert r.observed_ip == "127.0.0.1"
    assert r.nonce is not None and r.nonce_seen is True
    assert r.calling_aets_seen == (r.nonce,)
    assert r.main is not None and r.main.tcp is TcpState.OPEN
    assert findings(r, cfg) == [("INBOUND_OK", Severity.PASS)]
    assert port not in held_ports() and bindable(port)  # the temporary listener is gone


@contextmanager
def pynetdicom_listener(port: int) -> Iterator[None]:
    from pynetdicom import AE

    ae = AE(ae_title="MYSCU")
    ae.add_supported_context("1.2.840.10008.1.1")
    ae.start_server(("0.0.0.0", port), block=False)
    try:
        yield
    finally:
        ae.shutdown()


@contextmanager
def dcmtk_listener(port: int) -> Iterator[None]:
    proc = subprocess.Popen(
        ["/usr/bin/storescp", "--aetitle", "MYSCU", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        end = time.monotonic() + 10
        while not _listening(port):
            assert proc.poll() is None and time.monotonic() < end, "storescp did not start"
            time.sleep(0.02)
        yield
    finally:
        proc.terminate()
        proc.wait(5)


def _listening(port: int) -> bool:
    from reverseprobe.probes.listeners import listening_sockets

    return bool(listening_sockets(port)[0])


@pytest.mark.parametrize(
    ("listener", "name"),
    [
        (pynetdicom_listener, "PYNETDICOM"),
        pytest.param(
            dcmtk_listener,
            "OFFIS_DCMTK",
            marks=pytest.mark.skipif(not shutil.which("/usr/bin/storescp"), reason="no dcmtk"),
        ),
    ],
)
def test_taken_port_compares_fingerprints(listener: Callable[[int], Any], name: str) -> None:
    port = free_port()
    with listener(port), reflector() as refl:
        cfg = CheckConfig(port=port, aet="MYSCU", reflector=refl.url, upnp=False)
        r = run(cfg)
    assert r.status is Status.OK, r.reason
    assert r.mode is InboundMode.EXISTING_LISTENER and r.nonce is None
    assert r.remote_fingerprint is not None
    assert (r.remote_fingerprint.implementation_version_name or "").startswith(name)
    assert r.remote_fingerprint in r.local_fingerprints
    ((code, sev),) = findings(r, cfg)
    assert (code, sev) == ("INBOUND_OK", Severity.PASS)


def test_unreachable_reflector_is_an_error_and_frees_the_port() -> None:
    port = free_port()
    cfg = CheckConfig(port=port, reflector=f"http://127.0.0.1:{free_port()}/", upnp=False)
    r = run(cfg)
    assert r.status is Status.ERROR and r.reflector_error == "unreachable"
    assert findings(r, cfg) == [("REFLECTOR_UNREACHABLE", Severity.WARN)]
    assert bindable(port)


def test_token_in_the_url_is_sent_as_bearer_and_never_shown() -> None:
    port = free_port()
    with reflector(token="tok-123") as refl:
        host_port = refl.url.split("//", 1)[1]
        without = run(CheckConfig(port=port, reflector=refl.url, upnp=False))
        cfg = CheckConfig(port=port, reflector=f"http://:tok-123@{host_port}/", upnp=False)
        good = run(cfg)
    assert without.status is Status.ERROR and without.http_status == 401, without
    assert findings(without, cfg)[0] == ("INBOUND_NOT_TESTED", Severity.WARN)
    assert good.status is Status.OK and good.nonce_seen is True, good
    assert "tok-123" not in (good.reflector or "") and good.reflector == f"http://{host_port}/"


# --- hostile reflectors --------------------------------------------------------------------


@contextmanager
def fake_reflector(behave: Callable[[socket.socket], None]) -> Iterator[str]:
    srv = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    conns: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conns.append(conn)
            threading.Thread(target=_guard, args=(behave, conn), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}/"
    finally:
        stop.set()
        srv.close()
        for c in conns:
            c.close()


def _guard(behave: Callable[[socket.socket], None], conn: socket.socket) -> None:
    try:
        conn.recv(65536)
        behave(conn)
    except OSError:
        pass


def _answer(body: bytes, status: str = "200 OK") -> Callable[[socket.socket], None]:
    def behave(conn: socket.socket) -> None:
        head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        conn.sendall(head.encode() + b"Content-Length: %d\r\n\r\n" % len(body) + body)

    return behave


def _trickle(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
    for _ in range(200):
        conn.sendall(b" ")
        time.sleep(0.1)


def _silent(conn: socket.socket) -> None:
    time.sleep(30)


def _huge(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n[")
    for _ in range(200):
        conn.sendall(b"1," * 4096)


@pytest.mark.parametrize(
    ("behave", "kind"),
    [
        (_answer(b"<html>hello</html>"), "garbage"),
        (_answer(b'{"observed_ip": "1.2.3.4", "results": []}'), "garbage"),
        (_answer(b'{"observed_ip": "1.2.3.4", "results": [{"port": 1}]}'), "garbage"),
        (_answer(b'{"error": "nope", "message": "' + b"x" * 5000 + b'"}', "500 Oops"), "refused"),
        (_answer(b"[" * 5000), "garbage"),
        (_huge, "garbage"),
        (_trickle, "unreachable"),
        (_silent, "unreachable"),
    ],
)
def test_hostile_reflectors_become_results_within_the_deadline(
    behave: Callable[[socket.socket], None], kind: str
) -> None:
    port = free_port()
    with fake_reflector(behave) as url:
        t0 = time.monotonic()
        r = run(CheckConfig(port=port, reflector=url, upnp=False), seconds=4.0)
        elapsed = time.monotonic() - t0
    assert r.status is Status.ERROR and r.reflector_error == kind, r.reason
    assert len(r.reason or "") < 400
    assert elapsed < 4.0
    assert bindable(port) and port not in held_ports()


# --- the control port, with a fake IGD (the real router is in test_inbound_lab) ------------


class FakeIgd:
    def __init__(self, fail: int | None = None) -> None:
        self.lan_address = "127.0.0.1"
        self.fail = fail
        self.added: list[tuple[int, str, int, int]] = []
        self.deleted: list[int] = []

    def get_mapping(self, port: int) -> None:
        return None

    def add_mapping(
        self, eport: int, client: str, iport: int, desc: str, lease: int = 0, protocol: str = "TCP"
    ) -> None:
        if self.fail is not None and not (self.fail == 725 and lease == 0):
            raise UpnpError.for_code(self.fail)
        assert eport == iport and "reverseprobe" in desc
        self.added.append((eport, client, iport, lease))

    def delete_mapping(self, port: int, protocol: str = "TCP") -> None:
        self.deleted.append(port)


def dropping(low: int) -> Any:
    """The real reflector, except that `low` is dropped on the way (as an ISP would)."""

    def ask(url: str, ports: list[int], **kw: Any) -> ProbeAnswer:
        if ports == [low]:
            return ProbeAnswer(
                "127.0.0.1", (PortProbe(low, TcpState.TIMEOUT, DicomResult.NOT_TESTED),)
            )
        return ask_probe(url, ports, **kw)

    return ask


@pytest.fixture
def port104() -> int:
    """A free port below 1024 (104 where free): the control port is for low ports only."""
    candidates: tuple[int, ...] = (104, *range(990, 1000))
    for port in candidates:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("0.0.0.0", port))
            except OSError as exc:
                if exc.errno == errno.EACCES:
                    pytest.skip("listening below 1024 needs root")
                continue
            return port
    pytest.skip("no free port below 1024")


def test_isp_block_measured_through_a_control_port(port104: int) -> None:
    igd = FakeIgd()
    with reflector() as refl:
        cfg = CheckConfig(port=port104, reflector=refl.url)
        r = run(cfg, ask=dropping(port104), find_igd=lambda gw, d: igd)
    c = r.control
    assert c is not None and c.outcome is ControlOutcome.REACHED, c
    assert c.nonce_seen and c.mapping_removed is True
    assert igd.added == [(c.port, "127.0.0.1", c.port, 120)] and igd.deleted == [c.port]
    assert c.port is not None and c.port >= 1024 and bindable(c.port)
    assert [code for code, _ in findings(r, cfg)] == ["PORT_ISP_BLOCKED"]
    assert bindable(port104)


def test_control_mapping_retried_as_permanent(port104: int) -> None:
    igd = FakeIgd(fail=725)
    with reflector() as refl:
        r = run(
            CheckConfig(port=port104, reflector=refl.url),
            ask=dropping(port104),
            find_igd=lambda gw, d: igd,
        )
    assert r.control is not None and r.control.outcome is ControlOutcome.REACHED
    assert igd.added[0][3] == 0 and igd.deleted == [igd.added[0][0]]


@pytest.mark.parametrize(
    ("finder", "says"),
    [
        (lambda gw, d: None, "no UPnP router answered"),
        (lambda gw, d: FakeIgd(fail=606), "606 Action not authorized"),
        (lambda gw, d: (_ for _ in ()).throw(UpnpError.for_code(501)), "UPnP discovery failed"),
    ],
)
def test_control_port_not_tested_says_why(port104: int, finder: Any, says: str) -> None:
    with reflector() as refl:
        cfg = CheckConfig(port=port104, reflector=refl.url)
        r = run(cfg, ask=dropping(port104), find_igd=finder)
    assert r.control is not None and r.control.outcome is ControlOutcome.NOT_TESTED
    assert says in (r.control.reason or "")
    ((f),) = rules({"inbound": r}, cfg)
    assert f.code == "INBOUND_TIMEOUT" and says in f.detail["isp_block"]


def test_no_control_port_for_a_reachable_low_port(port104: int) -> None:
    igd = FakeIgd()
    with reflector() as refl:
        r = run(CheckConfig(port=port104, reflector=refl.url), find_igd=lambda gw, d: igd)
    assert r.nonce_seen is True and r.control is None and igd.added == []
