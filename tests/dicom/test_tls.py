"""DICOM TLS (PS3.15 B.1, issue 15): a dcmtk TLS storescp, a plain receiver, and the names
check and move-test give them. Loopback only, with --no-upnp --no-public-ip."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, free_port, wait_listening
from peers.tls_certs import make_ca, make_server
from reverseprobe.dicom.receiver import Receiver
from reverseprobe.dicom.timeline import Timeline
from reverseprobe.dicom.tls import certificate_names, first_bytes_kind, problem_of
from reverseprobe.model.dicom import EventKind
from reverseprobe.model.tls import TlsProblem

pytestmark = pytest.mark.skipif(
    not shutil.which("openssl") or not os.path.exists("/usr/bin/storescp"),
    reason="needs openssl and dcmtk",
)
SRC = str(REPO / "src")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pki")
    ca = make_ca(d, "TestCA")
    other = make_ca(d, "OtherCA")
    good, good_key = make_server(d, "TestCA", "good", "DNS:localhost,IP:127.0.0.1")
    wrong, wrong_key = make_server(d, "TestCA", "wrong", "DNS:pacs.example")
    return {
        "ca": ca,
        "other": other,
        "good": good,
        "good_key": good_key,
        "wrong": wrong,
        "wrong_key": wrong_key,
    }


def _storescp(port: int, *tls: str) -> Iterator[int]:
    proc = subprocess.Popen(
        ["/usr/bin/storescp", *tls, "-aet", "ANY-SCP", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(port)
        yield port
    finally:
        proc.kill()
        proc.wait(10)


@pytest.fixture()
def tls_scp(pki: dict[str, Path]) -> Iterator[int]:
    yield from _storescp(free_port(), "+tls", str(pki["good_key"]), str(pki["good"]), "-ic")


@pytest.fixture()
def wrong_name_scp(pki: dict[str, Path]) -> Iterator[int]:
    yield from _storescp(free_port(), "+tls", str(pki["wrong_key"]), str(pki["wrong"]), "-ic")


def check(port: int, *extra: str) -> dict[str, dict[str, Any]]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "reverseprobe",
            "check",
            "--no-upnp",
            "--no-public-ip",
            "--port",
            str(port),
            "--json",
            *extra,
        ],
        env={**os.environ, "PYTHONPATH": SRC},
        capture_output=True,
        check=False,
        text=True,
        timeout=90,
    )
    assert "Traceback" not in out.stderr
    return {f["code"]: f for f in json.loads(out.stdout)["findings"]}


def test_plain_check_names_a_tls_listener(tls_scp: int) -> None:
    found = check(tls_scp)
    assert "LISTENER_NOT_DICOM" not in found
    f = found["LISTENER_TLS"]
    assert f["severity"] == "info"
    assert f["detail"]["subject"] == "good" and f["detail"]["issuer"] == "TestCA"
    assert str(f["detail"]["tls_version"]).startswith("TLSv1.")


def test_tls_check_with_the_right_ca_passes(tls_scp: int, pki: dict[str, Path]) -> None:
    found = check(tls_scp, "--tls", "--tls-ca", str(pki["ca"]))
    assert found["LISTENER_OK"]["severity"] == "pass"
    assert "LISTENER_TLS" not in found


def test_tls_check_with_another_ca_names_unknown_ca(tls_scp: int, pki: dict[str, Path]) -> None:
    f = check(tls_scp, "--tls", "--tls-ca", str(pki["other"]))["LISTENER_TLS"]
    assert f["severity"] == "fail" and f["detail"]["problem"] == TlsProblem.UNKNOWN_CA


def test_tls_check_of_a_certificate_for_another_name(
    wrong_name_scp: int, pki: dict[str, Path]
) -> None:
    f = check(wrong_name_scp, "--tls", "--tls-ca", str(pki["ca"]))["LISTENER_TLS"]
    assert f["severity"] == "fail" and f["detail"]["problem"] == TlsProblem.WRONG_NAME


def test_tls_check_against_a_plain_receiver_is_not_tls() -> None:
    found = next(iter([check(p, "--tls") for p in _storescp(free_port())]))
    assert "LISTENER_OK" not in found
    assert "LISTENER_TLS" not in found or found["LISTENER_TLS"]["severity"] == "fail"


def test_tls_file_option_without_tls_is_bad_input(pki: dict[str, Path]) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "reverseprobe",
            "check",
            "--no-upnp",
            "--no-public-ip",
            "--tls-ca",
            str(pki["ca"]),
        ],
        env={**os.environ, "PYTHONPATH": SRC},
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "--tls-ca" in out.stderr and "Traceback" not in out.stderr


def test_clienthello_at_the_plain_receiver_is_a_tls_cut() -> None:
    """What a PACS configured for TLS does to move-test's plain receiver: a ClientHello."""
    port = free_port()
    tl = Timeline()
    with Receiver("MOVESCU", port, tl, host="127.0.0.1"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            pytest.raises((ssl.SSLError, OSError)),
        ):
            ctx.wrap_socket(raw).close()
        end = time.monotonic() + 10
        while time.monotonic() < end and not any(e.event is EventKind.CUT_OFF for e in tl.events()):
            time.sleep(0.05)
    cuts = [e for e in tl.events() if e.event is EventKind.CUT_OFF]
    assert cuts and cuts[0].detail["why"] == "tls"
    assert "TLS ClientHello from 127.0.0.1" in cuts[0].detail["reason"]


def test_first_bytes_and_verify_codes() -> None:
    assert first_bytes_kind(b"\x16\x03\x01\x02") == "tls-hello"
    assert first_bytes_kind(b"\x15\x03\x03") == "tls-alert"
    assert first_bytes_kind(b"\x01\x00\x00\x00") == "dicom"
    assert first_bytes_kind(b"HTTP/1.1") is None
    exc = ssl.SSLCertVerificationError("x")
    exc.verify_code, exc.verify_message = 10, "certificate has expired"
    assert problem_of(exc) == (TlsProblem.EXPIRED, "certificate has expired")
    assert certificate_names(b"\x30\x05junk") == (None, None, None)
