"""move-test's own receiver: a JPEG Baseline study from a real PACS (dcmqrscp) is accepted as
sent and saved byte for byte, and every proposed context is recorded with its answer."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pydicom

from conftest import free_port, wait_listening
from dicom_fixtures import STORESCP
from receiver_support import JPEG_BASELINE, dcmqrscp, jpeg_study
from reverseprobe.commands.move_test import run_move_test
from reverseprobe.config import MoveTestConfig

AET = "MYSCU"


def test_own_receiver_takes_a_jpeg_study_from_dcmqrscp(tmp_path: Path) -> None:
    port = free_port()
    study = jpeg_study(2)
    save = tmp_path / "save"
    save.mkdir()
    with dcmqrscp(tmp_path, study, (AET, "127.0.0.1", port), "-xy") as pacs_port:
        cfg = MoveTestConfig(pacs_host="127.0.0.1", pacs_port=pacs_port, pacs_aet="DQ", aet=AET,
                             port=port, grace=1.0, public_ip=False, timeout=30.0,
                             save_dir=save)  # fmt: skip
        report = run_move_test(cfg)
    d = json.loads(json.dumps(report.to_dict()))
    codes = {f["code"] for f in d["findings"]}
    assert "MOVE_OK" in codes, d["findings"]
    assert "MOVE_INCOMPLETE" not in codes
    move = d["probes"]["move"]
    assert move["received"] == 2
    a = move["associations"][0]
    assert a["calling_aet"] == "DQ" and a["called_aet"] == AET
    assert a["max_pdu"] is not None
    jpeg = [c for c in a["contexts"] if JPEG_BASELINE in c["transfer_syntaxes"]]
    assert jpeg and all(c["result"] == "accepted" for c in jpeg)
    assert {c["accepted_transfer_syntax"] for c in jpeg} == {JPEG_BASELINE}
    assert a["store_statuses"] == [0]
    # --save keeps the bytes as received: still JPEG, the same fragments
    saved = sorted(save.glob("*.dcm"))
    assert len(saved) == 2
    for p in saved:
        ds = pydicom.dcmread(p)
        assert ds.file_meta.TransferSyntaxUID == JPEG_BASELINE
        assert ds.SOPInstanceUID in {s.SOPInstanceUID for s in study}
        assert bytes(ds.PixelData) == bytes(study[0].PixelData)
    # the timeline says what was proposed and accepted
    rq = [e for e in move["timeline"] if e["event"] == "a-associate-rq"]
    assert any(JPEG_BASELINE in p["transfer_syntaxes"] for p in rq[0]["detail"]["proposed"])


# --- running mode: the user's receiver (dcmtk storescp) holds --port -----------------------


def _storescp(tmp: Path, port: int, *options: str) -> subprocess.Popen[bytes]:
    out = tmp / "storescp-out"
    out.mkdir(exist_ok=True)
    proc = subprocess.Popen(
        [STORESCP, "-dhl", *options, "-od", str(out), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_listening(port)
    return proc


def _running(tmp: Path, *storescp_options: str) -> dict:  # type: ignore[type-arg]
    port = free_port()
    scp = _storescp(tmp, port, *storescp_options)
    try:
        with dcmqrscp(tmp, jpeg_study(2), (AET, "127.0.0.1", port), "-xy") as pacs_port:
            cfg = MoveTestConfig(pacs_host="127.0.0.1", pacs_port=pacs_port, pacs_aet="DQ",
                                 aet=AET, port=port, grace=1.0, public_ip=False,
                                 timeout=30.0)  # fmt: skip
            report = run_move_test(cfg)
    finally:
        scp.terminate()
        scp.wait(10)
    d: dict = json.loads(json.dumps(report.to_dict()))  # type: ignore[type-arg]
    return d


def test_running_storescp_with_xa_takes_the_jpeg_study(tmp_path: Path) -> None:
    d = _running(tmp_path, "+xa")
    codes = {f["code"] for f in d["findings"]}
    assert "MOVE_OK" in codes and "MOVE_PORT_BUSY" not in codes, d["findings"]
    move = d["probes"]["move"]
    assert move["receiver_mode"] == "running"
    assert move["completed"] == 2 and not move["failed"]
    a = move["associations"][0]
    assert a["peer"] == "127.0.0.1" and a["process"] == "storescp" and a["pid"]
    ok = next(f for f in d["findings"] if f["code"] == "MOVE_OK")
    assert ok["detail"]["storage_sender"] == ["127.0.0.1"]


def test_running_storescp_defaults_refuse_jpeg(tmp_path: Path) -> None:
    """storescp's default accepts uncompressed only: dcmqrscp connects, cannot send JPEG."""
    d = _running(tmp_path)
    codes = {f["code"] for f in d["findings"]}
    assert "MOVE_STORE_REJECTED" in codes, d["findings"]
    assert "MOVE_OK" not in codes and "MOVE_NO_CONNECT_BACK" not in codes
    f = next(f for f in d["findings"] if f["code"] == "MOVE_STORE_REJECTED")
    assert "+xa" in f["fix"] and "another transfer syntax" in f["fix"]
    assert d["probes"]["move"]["failed"] == 2


def test_receiver_own_with_the_port_taken_is_port_busy(tmp_path: Path) -> None:
    port = free_port()
    scp = _storescp(tmp_path, port)
    try:
        with dcmqrscp(tmp_path, jpeg_study(1), (AET, "127.0.0.1", port), "-xy") as pacs_port:
            cfg = MoveTestConfig(pacs_host="127.0.0.1", pacs_port=pacs_port, pacs_aet="DQ",
                                 aet=AET, port=port, grace=1.0, public_ip=False, timeout=20.0,
                                 receiver="own")  # fmt: skip
            report = run_move_test(cfg)
    finally:
        scp.terminate()
        scp.wait(10)
    assert "MOVE_PORT_BUSY" in {f.code for f in report.findings}


def test_pacs_that_cannot_convert_is_named_not_a_generic_failure(tmp_path: Path) -> None:
    """dcmqrscp without -xy proposes only uncompressed syntaxes for a JPEG study: our receiver
    accepts all of them, and dcmqrscp still fails both sub-operations (it cannot convert)."""
    port = free_port()
    with dcmqrscp(tmp_path, jpeg_study(2), (AET, "127.0.0.1", port)) as pacs_port:
        cfg = MoveTestConfig(pacs_host="127.0.0.1", pacs_port=pacs_port, pacs_aet="DQ", aet=AET,
                             port=port, grace=1.0, public_ip=False, timeout=30.0,
                             receiver="own")  # fmt: skip
        report = run_move_test(cfg)
    d = json.loads(json.dumps(report.to_dict()))
    f = next(f for f in d["findings"] if f["code"] == "MOVE_INCOMPLETE")
    assert f["detail"]["cause"] == "pacs-cannot-convert", f
    assert "-xy" in f["fix"] and "cannot send the study" in f["summary"]
    assert "MOVE_STORE_REJECTED" not in {x["code"] for x in d["findings"]}
    move = d["probes"]["move"]
    assert move["failed"] == 2 and move["received"] == 0
    offered = {
        ts for a in move["associations"] for c in a["contexts"] for ts in c["transfer_syntaxes"]
    }
    assert JPEG_BASELINE not in offered


def test_running_storescp_preflight_refuses_jpeg_before_the_move(tmp_path: Path) -> None:
    """The preflight proposes what the PACS will send (--context: the study is JPEG) to the
    user's storescp (defaults: uncompressed only): LISTENER_REJECTS_CONTEXT names it."""
    port = free_port()
    scp = _storescp(tmp_path, port)
    ct = str(jpeg_study(1)[0].SOPClassUID)
    try:
        with dcmqrscp(tmp_path, jpeg_study(2), (AET, "127.0.0.1", port), "-xy") as pacs_port:
            cfg = MoveTestConfig(pacs_host="127.0.0.1", pacs_port=pacs_port, pacs_aet="DQ",
                                 aet=AET, port=port, grace=1.0, public_ip=False, timeout=30.0,
                                 contexts=((ct, JPEG_BASELINE),))  # fmt: skip
            report = run_move_test(cfg)
    finally:
        scp.terminate()
        scp.wait(10)
    d = json.loads(json.dumps(report.to_dict()))
    from test_json_schema import assert_valid

    assert_valid(d, "move-test")  # the receiver probe follows its schema
    pf = d["probes"]["receiver"]
    assert pf["contexts_from"] == "option"
    assert pf["contexts"] == [{"abstract_syntax": ct, "transfer_syntax": JPEG_BASELINE,
                               "result": "transfer-syntaxes-not-supported",
                               "source": "option", "expected": "will"}]  # fmt: skip
    codes = [f["code"] for f in d["findings"]]
    assert "LISTENER_REJECTS_CONTEXT" in codes and "MOVE_STORE_REJECTED" in codes, codes
    assert codes.index("LISTENER_REJECTS_CONTEXT") < codes.index("MOVE_STORE_REJECTED")


# --- Orthanc as the user's receiver -------------------------------------------------------------


def _orthanc_receiver(tmp_path: Path, modalities: dict[str, tuple[str, str, int]]) -> dict:  # type: ignore[type-arg]
    """Orthanc receives on --port with DicomAlwaysAllowStore false, knowing `modalities`;
    dcmqrscp (AE DQ, on 127.0.0.1) moves an uncompressed study to it. (Measured: with the
    JPEG study and dcmqrscp -xy no C-STORE reaches Orthanc at all, dcmqrscp logs "DIMSE Failed
    to send message" for each: that is no test of Orthanc's sender check.)"""
    from dicom_fixtures import ORTHANC, make_study, orthanc_config

    port, http = free_port(), free_port()
    cfg_path = orthanc_config(tmp_path / "orx", aet=AET, port=port, http_port=http,
                              modalities=modalities)  # fmt: skip
    conf = json.loads(cfg_path.read_text())
    conf["DicomAlwaysAllowStore"] = False
    cfg_path.write_text(json.dumps(conf))
    log = open(tmp_path / "orthanc.log", "w")  # noqa: SIM115 - closed below
    orthanc = subprocess.Popen([ORTHANC, "--verbose", str(cfg_path)], stdout=log, stderr=log)
    try:
        wait_listening(port, timeout=30)
        with dcmqrscp(tmp_path, make_study(2), (AET, "127.0.0.1", port)) as pacs_port:
            mcfg = MoveTestConfig(pacs_host="127.0.0.1", pacs_port=pacs_port, pacs_aet="DQ",
                                  aet=AET, port=port, grace=1.0, public_ip=False,
                                  timeout=30.0)  # fmt: skip
            report = run_move_test(mcfg)
    finally:
        orthanc.terminate()
        orthanc.wait(20)
        log.close()
    text = (tmp_path / "orthanc.log").read_text()
    if not modalities:  # the refusal happened where the finding says: Orthanc's sender check
        assert 'Rejected Store request from remote DICOM modality with AET "DQ"' in text, text
    d: dict = json.loads(json.dumps(report.to_dict()))  # type: ignore[type-arg]
    return d


def test_running_orthanc_refuses_an_unknown_storage_sender(tmp_path: Path) -> None:
    """No DicomModalities entry for dcmqrscp (AE DQ): Orthanc refuses the storage sender."""
    d = _orthanc_receiver(tmp_path, {})
    codes = [f["code"] for f in d["findings"]]
    assert "MOVE_OK" not in codes
    f = next(f for f in d["findings"] if f["code"] == "MOVE_STORE_REJECTED")
    assert "DicomModalities" in f["fix"] and "DicomAlwaysAllowStore" in f["fix"]
    # the story: measured the connection and the counts, inferred the refusal, Orthanc's switch
    assert "Measured:" in f["summary"] and "Inferred:" in f["summary"], f["summary"]
    assert "no refused context" in f["summary"] and "DicomAlwaysAllowStore is false" in f["summary"]
    assert d["probes"]["move"]["failed"] == 2
    assert d["probes"]["move"]["receiver_mode"] == "running"
    # Orthanc accepts the association and refuses at C-STORE: the preflight, which stores
    # nothing, sees every context accepted (what it can and cannot prove)
    assert d["probes"]["receiver"]["status"] == "ok"


def test_running_orthanc_with_the_sender_in_dicom_modalities_is_move_ok(tmp_path: Path) -> None:
    """The fix the finding names, applied: dcmqrscp's storage AE (DQ, 127.0.0.1) in
    DicomModalities; the study is stored."""
    d = _orthanc_receiver(tmp_path, {"pacs": ("DQ", "127.0.0.1", 104)})
    codes = [f["code"] for f in d["findings"]]
    assert "MOVE_OK" in codes and "MOVE_STORE_REJECTED" not in codes, d["findings"]
    assert d["probes"]["move"]["completed"] == 2
