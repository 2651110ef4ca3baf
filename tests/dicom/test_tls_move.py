"""move-test over DICOM TLS (PS3.15 B.1, issue 15): our receiver as a TLS server (dcmtk peers,
plain and TLS), and Orthanc 1.10 as the PACS with TLS on either side: MOVE_TLS_MISMATCH in
both directions, and the good path. Loopback only, public IP off."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, free_port
from dicom_fixtures import ORTHANC, make_study, write_study
from peers.tls_certs import make_ca, make_server
from receiver_support import orthanc_pacs
from reverseprobe.commands.move_test import run_move_test
from reverseprobe.config import MoveTestConfig
from reverseprobe.dicom.receiver import Receiver
from reverseprobe.dicom.timeline import Timeline
from reverseprobe.dicom.tls import TlsSettings, server_context
from reverseprobe.model import Severity
from reverseprobe.model.dicom import EventKind
from test_json_schema import assert_valid

pytestmark = pytest.mark.skipif(
    not shutil.which("openssl") or not os.path.exists("/usr/bin/storescu"),
    reason="needs openssl and dcmtk",
)
SRC = str(REPO / "src")
AET = "MYSCU"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pki-move")
    ca, other = make_ca(d, "TestCA"), make_ca(d, "OtherCA")
    rx, rx_key = make_server(d, "TestCA", "receiver", "DNS:localhost,IP:127.0.0.1")
    pacs, pacs_key = make_server(d, "TestCA", "pacs", "DNS:localhost,IP:127.0.0.1")
    stranger, stranger_key = make_server(d, "OtherCA", "stranger", "IP:127.0.0.1")
    return {"ca": ca, "other": other, "rx": rx, "rx_key": rx_key, "pacs": pacs,
            "pacs_key": pacs_key, "stranger": stranger, "stranger_key": stranger_key}  # fmt: skip


def _ours(pki: dict[str, Path]) -> TlsSettings:
    return TlsSettings(ca=str(pki["ca"]), cert=str(pki["rx"]), key=str(pki["rx_key"]))


def _cuts(tl: Timeline, n: int = 1, wait: float = 15.0) -> list[Any]:
    end = time.monotonic() + wait
    while time.monotonic() < end:
        cuts = [e for e in tl.events() if e.event is EventKind.CUT_OFF]
        if len(cuts) >= n:
            return cuts
        time.sleep(0.05)
    return [e for e in tl.events() if e.event is EventKind.CUT_OFF]


def _dcmtk(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60, check=False)


# --- our TLS receiver and dcmtk peers ----------------------------------------------------------


def test_a_plain_associate_rq_at_the_tls_receiver_is_a_tls_cut(pki: dict[str, Path]) -> None:
    port = free_port()
    tl = Timeline()
    with Receiver(AET, port, tl, host="127.0.0.1", ssl_context=server_context(_ours(pki))):
        _dcmtk("/usr/bin/echoscu", "-to", "5", "-aec", AET, "127.0.0.1", str(port))
        cuts = _cuts(tl)
    assert cuts and cuts[0].detail["why"] == "tls"
    assert "plain DICOM A-ASSOCIATE-RQ from 127.0.0.1" in cuts[0].detail["reason"]
    listening = next(e for e in tl.events() if e.event is EventKind.LISTENING)
    assert listening.detail["tls"] is True


def test_storescu_over_tls_stores_at_the_tls_receiver(tmp_path: Path, pki: dict[str, Path]) -> None:
    files = write_study(tmp_path, make_study(2))
    port = free_port()
    recv = Receiver(AET, port, Timeline(), host="127.0.0.1",
                    ssl_context=server_context(_ours(pki)))  # fmt: skip
    with recv:
        out = _dcmtk("/usr/bin/storescu", "+tls", str(pki["pacs_key"]), str(pki["pacs"]),
                     "+cf", str(pki["ca"]), "-aec", AET, "127.0.0.1", str(port),
                     *map(str, files))  # fmt: skip
        st = recv.stats()
    assert out.returncode == 0, out.stderr[-600:]
    assert st.received == 2 and recv.tls


def test_a_client_certificate_of_another_ca_is_refused(
    tmp_path: Path, pki: dict[str, Path]
) -> None:
    """With --tls-ca our receiver requires the PACS's certificate to be of that CA."""
    files = write_study(tmp_path, make_study(1))
    port = free_port()
    tl = Timeline()
    recv = Receiver(AET, port, tl, host="127.0.0.1", ssl_context=server_context(_ours(pki)))
    with recv:
        _dcmtk("/usr/bin/storescu", "+tls", str(pki["stranger_key"]), str(pki["stranger"]),
               "+cf", str(pki["ca"]), "-aec", AET, "127.0.0.1", str(port),
               *map(str, files))  # fmt: skip
        cuts = _cuts(tl)
        assert recv.stats().received == 0
    assert cuts and cuts[0].detail["why"] == "tls"
    assert "TLS handshake with 127.0.0.1" in cuts[0].detail["reason"]


def test_move_test_tls_without_a_certificate_is_bad_input(pki: dict[str, Path]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "reverseprobe", "move-test", "--no-public-ip", "--pacs",
         f"127.0.0.1:{free_port()}", "--pacs-aet", "PACS", "--aet", AET, "--receiver", "own",
         "--tls", "--tls-ca", str(pki["ca"])],
        env={**os.environ, "PYTHONPATH": SRC}, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert out.returncode == 2 and "--tls-cert" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


# --- Orthanc as the PACS, TLS on either side ---------------------------------------------------

needs_orthanc = pytest.mark.skipif(not os.path.exists(ORTHANC), reason="needs Orthanc")


def _orthanc_tls(pki: dict[str, Path], port: int, *, server: bool, send: bool) -> dict[str, Any]:
    """Orthanc's DICOM TLS keys: `server` its own listener (DicomTlsEnabled), `send` the
    modality entry for our AE ("UseDicomTls")."""
    return {
        "DicomTlsEnabled": server,
        "DicomTlsCertificate": str(pki["pacs"]),
        "DicomTlsPrivateKey": str(pki["pacs_key"]),
        "DicomTlsTrustedCertificates": str(pki["ca"]),
        "DicomTlsRemoteCertificateRequired": True,
        "DicomModalities": {
            "me": {"AET": AET, "Host": "127.0.0.1", "Port": port, "UseDicomTls": send}
        },
    }


def _move(pacs_port: int, port: int, tls: TlsSettings | None) -> dict[str, Any]:
    cfg = MoveTestConfig(pacs_host="127.0.0.1", pacs_port=pacs_port, pacs_aet="ORTHANC",
                         aet=AET, port=port, grace=1.0, public_ip=False, timeout=40.0,
                         receiver="own", tls=tls)  # fmt: skip
    doc: dict[str, Any] = json.loads(json.dumps(run_move_test(cfg).to_dict()))
    assert_valid(doc, "move-test")
    return doc


def _codes(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["code"]: f for f in doc["findings"]}


@needs_orthanc
def test_orthanc_sending_tls_to_the_plain_receiver_is_tls_at_plain(
    tmp_path: Path, pki: dict[str, Path]
) -> None:
    port = free_port()
    extra = _orthanc_tls(pki, port, server=False, send=True)
    with orthanc_pacs(tmp_path, port, make_study(1), extra=extra) as pacs_port:
        doc = _move(pacs_port, port, None)
    f = _codes(doc)["MOVE_TLS_MISMATCH"]
    assert f["severity"] == Severity.FAIL.value and f["detail"]["direction"] == "tls-at-plain"
    assert "UseDicomTls" in f["fix"] and doc["probes"]["move"]["received"] == 0
    assert doc["probes"]["move"]["tls"] is False


@needs_orthanc
def test_orthanc_sending_plain_to_the_tls_receiver_is_plain_at_tls(
    tmp_path: Path, pki: dict[str, Path]
) -> None:
    """move-test --tls: the association to Orthanc's TLS listener works; its modality entry
    for us has no UseDicomTls, so its C-STORE comes as a plain A-ASSOCIATE-RQ."""
    port = free_port()
    extra = _orthanc_tls(pki, port, server=True, send=False)
    with orthanc_pacs(tmp_path, port, make_study(1), extra=extra) as pacs_port:
        doc = _move(pacs_port, port, _ours(pki))
    assert doc["probes"]["echo"]["result"] == "accepted", doc["probes"]["echo"]
    f = _codes(doc)["MOVE_TLS_MISMATCH"]
    assert f["detail"]["direction"] == "plain-at-tls", f
    assert "UseDicomTls" in f["fix"] and doc["probes"]["move"]["tls"] is True


@needs_orthanc
def test_orthanc_tls_to_move_test_tls_is_move_ok(tmp_path: Path, pki: dict[str, Path]) -> None:
    port = free_port()
    extra = _orthanc_tls(pki, port, server=True, send=True)
    with orthanc_pacs(tmp_path, port, make_study(2), extra=extra) as pacs_port:
        doc = _move(pacs_port, port, _ours(pki))
        plain = _move(pacs_port, free_port(), None)  # no TLS towards a TLS-only Orthanc
    codes = _codes(doc)
    assert "MOVE_OK" in codes and "MOVE_TLS_MISMATCH" not in codes, doc["findings"]
    assert doc["probes"]["move"]["received"] == 2 and doc["probes"]["move"]["tls"] is True
    assert plain["probes"]["echo"]["result"] != "accepted"


def test_a_dripping_tls_client_is_cut_at_the_receivers_deadline(pki: dict[str, Path]) -> None:
    """A ClientHello a byte at a time: the handshake has one deadline (the receiver's PDU
    timeout), not one per byte, and the other connections do not wait for it."""
    import socket

    port = free_port()
    tl = Timeline()
    recv = Receiver(AET, port, tl, host="127.0.0.1", network_timeout=2.0,
                    ssl_context=server_context(_ours(pki)))  # fmt: skip
    with recv, socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        t0 = time.monotonic()
        s.sendall(b"\x16\x03\x01")
        closed = False
        while time.monotonic() - t0 < 20 and not closed:
            try:
                s.sendall(b"\x00")
                s.settimeout(0.3)
                closed = s.recv(64) == b""
            except TimeoutError:
                continue
            except OSError:
                closed = True
        took = time.monotonic() - t0
        cuts = _cuts(tl)
    assert closed and took < 2.0 + 8.0, took
    assert cuts and cuts[0].detail["why"] == "tls"
