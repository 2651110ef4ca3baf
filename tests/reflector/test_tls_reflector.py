"""The reflector's dial-back over DICOM TLS (issue 15): the request field, a real dcmtk TLS
storescp, a plain one, the certificate verified by the client (unknown CA, wrong name), and
hostile TLS receivers (garbage after the ClientHello, an endless certificate, silence) cut at
the handshake's byte cap and deadline. Loopback only: the reflector runs with allow_loopback."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from test_tls import _storescp

from conftest import free_port
from peers.tls_certs import make_ca, make_server
from reflector_helpers import probe, reflector
from reverseprobe.config import CheckConfig
from reverseprobe.dicom.tls import HANDSHAKE_BUDGET, verify_pem
from reverseprobe.model import Severity
from reverseprobe.model.tls import TlsProblem, TlsSettings
from reverseprobe.reflector.answers import AnswerError, parse_probe_answer
from reverseprobe.reflector.protocol import RequestError, parse_probe_request, probe_request_body
from test_json_schema import assert_valid

pytestmark = pytest.mark.skipif(
    not shutil.which("openssl") or not os.path.exists("/usr/bin/storescp"),
    reason="needs openssl and dcmtk",
)
ALLOW = [(1024, 65535)]
TIMEOUT = 6.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pki-refl")
    ca, other = make_ca(d, "TestCA"), make_ca(d, "OtherCA")
    good, good_key = make_server(d, "TestCA", "good", "DNS:pc.example,IP:127.0.0.1")
    return {"ca": ca, "other": other, "good": good, "good_key": good_key}


@pytest.fixture()
def tls_scp(pki: dict[str, Path]) -> Iterator[int]:
    yield from _storescp(free_port(), "+tls", str(pki["good_key"]), str(pki["good"]), "-ic")


def _ask(url: str, port: int, **tls: Any) -> dict[str, Any]:
    body = probe_request_body([port], "ANY-SCP", "RPTEST", TIMEOUT, **tls)
    r = probe(url, body, timeout=TIMEOUT + 15)
    assert r.status == 200, r.body
    doc: dict[str, Any] = r.json()
    assert_valid(doc, "reflector", "#/$defs/probe_answer")
    return doc


# --- the request and the answer ---------------------------------------------------------------


def test_the_tls_request_fields_are_validated() -> None:
    req = parse_probe_request(b'{"ports": [11112], "tls": true}', ALLOW)
    assert req.tls and req.tls_server_name is None
    req = parse_probe_request(
        b'{"ports": [11112], "tls": true, "tls_server_name": "PC.Example."}', ALLOW
    )
    assert req.tls_server_name == "pc.example" and req.ignored == ()
    bad = [
        b'{"ports": [11112], "tls": "yes"}',
        b'{"ports": [11112], "tls_server_name": "pc.example"}',  # without "tls": true
        b'{"ports": [11112], "tls": true, "tls_server_name": "10.0.0.1"}',  # an address
        b'{"ports": [11112], "tls": true, "tls_server_name": "a b"}',
        b'{"ports": [11112], "tls": true, "tls_server_name": 7}',
    ]
    for body in bad:
        with pytest.raises(RequestError) as exc:
            parse_probe_request(body, ALLOW)
        assert exc.value.status == 400
    doc = probe_request_body([11112], "A", "B", 5.0, tls=True, tls_server_name="pc.example")
    assert_valid(doc, "reflector", "#/$defs/probe_request")


def test_an_answer_with_a_bad_tls_object_is_refused() -> None:
    base = {"port": 11112, "tcp": "open", "dicom": {"result": "accepted"}}
    for tls in ({"answered": "yes"}, {"answered": True, "problem": "pwned"},
                {"answered": True, "certificate_pem": "<script>"}):  # fmt: skip
        with pytest.raises(AnswerError):
            parse_probe_answer({"observed_ip": "127.0.0.1", "results": [{**base, "tls": tls}]},
                               [11112])  # fmt: skip


# --- a real TLS receiver -------------------------------------------------------------------------


def test_dial_back_over_tls_to_a_tls_storescp(tls_scp: int, pki: dict[str, Path]) -> None:
    with reflector() as r:
        doc = _ask(r.url, tls_scp, tls=True, tls_server_name="pc.example")
    res = doc["results"][0]
    assert res["tcp"] == "open" and res["dicom"]["result"] == "accepted", res
    t = res["tls"]
    assert t["answered"] and t["problem"] is None and t["version"].startswith("TLSv1.")
    assert (t["subject"], t["issuer"], t["self_signed"]) == ("good", "TestCA", False)
    pem = t["certificate_pem"]
    assert pem.startswith("-----BEGIN CERTIFICATE-----")
    # the client verifies what the reflector saw, against its own CA
    assert verify_pem(pem, str(pki["ca"]), "pc.example")[0] is None
    assert verify_pem(pem, str(pki["ca"]), "127.0.0.1")[0] is None
    assert verify_pem(pem, str(pki["other"]), "pc.example")[0] == TlsProblem.UNKNOWN_CA
    assert verify_pem(pem, str(pki["ca"]), "pacs.example")[0] == TlsProblem.WRONG_NAME


def test_the_log_says_tls_and_does_not_copy_the_certificate(
    tls_scp: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="reverseprobe.reflector")
    with reflector() as r:
        _ask(r.url, tls_scp, tls=True)
    with reflector(json_log=True) as r:
        _ask(r.url, tls_scp, tls=True)
    lines = [rec.getMessage() for rec in caplog.records if "probe" in rec.getMessage()]
    assert any(f"{tls_scp}:open/accepted" in x and "+tls:ok" in x for x in lines), lines
    records = [json.loads(x) for x in lines if x.startswith("{")]
    assert records and records[0]["tls"] is True
    assert records[0]["results"][0]["tls"]["subject"] == "good"
    assert "BEGIN CERTIFICATE" not in "".join(lines)


def test_dial_back_over_tls_to_a_plain_storescp_is_not_tls() -> None:
    with reflector() as r:
        for port in _storescp(free_port()):
            doc = _ask(r.url, port, tls=True)
    res = doc["results"][0]
    assert res["tcp"] == "open" and res["dicom"]["result"] == "not-tested"
    assert res["tls"]["problem"] == TlsProblem.NOT_TLS and not res["tls"]["answered"]
    assert res["tls"]["certificate_pem"] is None


def test_without_tls_the_answer_has_no_tls(tls_scp: int) -> None:
    with reflector() as r:
        doc = _ask(r.url, tls_scp)
    assert "tls" not in doc["results"][0]


def _check(port: int, url: str, tls: TlsSettings) -> dict[str, Any]:
    from reverseprobe.commands.check import run

    cfg = CheckConfig(port=port, aet="ANY-SCP", reflector=url, upnp=False, public_ip=False,
                      timeout=40.0, tls=tls)  # fmt: skip
    report = run(cfg)
    return {f.code + (":" + str(f.detail.get("via")) if f.code == "LISTENER_TLS" else ""): f
            for f in report.findings}  # fmt: skip


def test_check_tls_reflector_names_the_certificate_problem(
    tls_scp: int, pki: dict[str, Path]
) -> None:
    """check --tls --reflector: the certificate the reflector saw, verified here."""
    with reflector() as r:
        good = _check(tls_scp, r.url, TlsSettings(ca=str(pki["ca"]), name="pc.example"))
        unknown = _check(tls_scp, r.url, TlsSettings(ca=str(pki["other"]), name="pc.example"))
        wrong = _check(tls_scp, r.url, TlsSettings(ca=str(pki["ca"]), name="pacs.example"))
    f = good["LISTENER_TLS:reflector"]
    assert f.severity is Severity.INFO and f.detail["verified"] is True, f.summary
    f = unknown["LISTENER_TLS:reflector"]
    assert f.severity is Severity.FAIL and f.detail["problem"] == TlsProblem.UNKNOWN_CA
    f = wrong["LISTENER_TLS:reflector"]
    assert f.severity is Severity.FAIL and f.detail["problem"] == TlsProblem.WRONG_NAME


# --- hostile TLS receivers -----------------------------------------------------------------------


def _server_hello() -> bytes:
    """A TLS 1.2 ServerHello (RFC 5246 7.4.1.3) with renegotiation_info (RFC 5746), cipher
    ECDHE-RSA-AES128-GCM-SHA256: what OpenSSL accepts before it reads the Certificate."""
    body = struct.pack(">H", 0x0303) + os.urandom(32) + b"\x00" + struct.pack(">H", 0xC02F)
    body += b"\x00" + struct.pack(">H", 5) + b"\xff\x01\x00\x01\x00"
    msg = b"\x02" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x03" + struct.pack(">H", len(msg)) + msg


class _Hostile:
    """A TLS receiver on loopback that reads the ClientHello and then misbehaves."""

    def __init__(self, how: str) -> None:
        self.how = how
        self.connections = 0
        self.sent = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(30)
            try:
                conn.recv(4096)  # the ClientHello
                if self.how == "garbage":
                    conn.sendall(b"\x16\x03\x03\x00\x20" + os.urandom(32) * 64)
                elif self.how == "endless-certificate":
                    conn.sendall(_server_hello())
                    # a Certificate message announcing 94 KiB (under OpenSSL's 100 KiB), in
                    # 16 KiB records, never ending: only our byte cap stops the reading
                    cert = b"\x0b" + (94 << 10).to_bytes(3, "big")
                    chunk = b"\x16\x03\x03" + struct.pack(">H", 16384)
                    conn.sendall(chunk + cert + os.urandom(16380))
                    while not self.stop.is_set():
                        conn.sendall(chunk + os.urandom(16384))
                        self.sent += 16384
                elif self.how == "silent":
                    self.stop.wait(30)
            except OSError:
                return

    def __enter__(self) -> _Hostile:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.sock.close()
        self.thread.join(5)


@contextmanager
def _hostile(how: str) -> Iterator[_Hostile]:
    with _Hostile(how) as h:
        yield h


@pytest.mark.parametrize("how", ["garbage", "endless-certificate", "silent"])
def test_a_hostile_tls_receiver_is_cut_at_the_cap_and_deadline(how: str) -> None:
    with _hostile(how) as peer, reflector() as r:
        t0 = time.monotonic()
        doc = _ask(r.url, peer.port, tls=True)
        took = time.monotonic() - t0
    res = doc["results"][0]
    assert took < TIMEOUT + 10  # bounded: the look's deadline, not the peer, ends it
    assert res["tcp"] == "open" and res["dicom"]["result"] == "not-tested", res
    t = res["tls"]
    assert (
        t["problem"] in (TlsProblem.HANDSHAKE, TlsProblem.NOT_TLS) and t["certificate_pem"] is None
    )
    assert peer.connections == 1  # the association never started after a failed look
    if how == "endless-certificate":
        assert t["detail"] == f"sent over {HANDSHAKE_BUDGET} bytes of handshake"
        assert peer.sent < 16 * HANDSHAKE_BUDGET  # it stopped reading: the peer's sendall blocked
    if how == "silent":
        assert "no TLS answer within" in t["detail"]
