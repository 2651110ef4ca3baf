"""The receiver preflight's contexts from a recorded move (--contexts-from: an earlier
move-test --receiver own --json report), and Orthanc as the PACS holding a JPEG study."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pydicom
import pytest

from conftest import free_port, wait_listening
from dicom_fixtures import STORESCP
from receiver_support import JPEG_BASELINE, dcmqrscp, jpeg_study
from receiver_support import orthanc_pacs as _orthanc_pacs
from reverseprobe.commands.move_test import run_move_test
from reverseprobe.config import MoveTestConfig

AET = "MYSCU"
VERIFICATION = "1.2.840.10008.1.1"


def _cli(*args: str, timeout: float = 120) -> tuple[int, dict[str, object], str]:
    p = subprocess.run([sys.executable, "-m", "reverseprobe", *args], check=False,
                       capture_output=True, text=True, timeout=timeout)  # fmt: skip
    assert "Traceback" not in p.stderr, p.stderr
    return p.returncode, json.loads(p.stdout) if p.stdout.strip() else {}, p.stderr


def _check(*args: str) -> tuple[int, dict[str, object], str]:
    return _cli("check", "--no-upnp", "--no-public-ip", "--json", "--timeout", "20", *args)


@contextmanager
def _storescp(tmp: Path, port: int, *options: str) -> Iterator[None]:
    out = tmp / "storescp-out"
    out.mkdir(exist_ok=True)
    proc = subprocess.Popen([STORESCP, *options, "-od", str(out), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_listening(port)
        yield
    finally:
        proc.terminate()
        proc.wait(10)


# --- --contexts-from: bad files are one line, exit 2 -------------------------------------------


def _bad(tmp: Path, name: str, content: object) -> Path:
    p = tmp / name
    p.write_text(content if isinstance(content, str) else json.dumps(content))
    return p


def test_bad_contexts_from_files_are_exit_2(tmp_path: Path) -> None:
    cx = {"abstract_syntax": "1.2.3", "transfer_syntaxes": ["1.2.840.10008.1.2.1"]}
    cases = {
        "missing": (tmp_path / "nosuch.json", "cannot read"),
        "dir": (tmp_path, "not a regular file"),
        "text": (_bad(tmp_path, "t.json", "not json {"), "not JSON"),
        "list": (_bad(tmp_path, "l.json", [1, 2]), "no probes.move"),
        "nomove": (_bad(tmp_path, "n.json", {"probes": {"find": {}}}), "no probes.move"),
        "assocs": (_bad(tmp_path, "a.json", {"probes": {"move": {"associations": 3}}}),
                   "associations is not a list"),
        "fields": (_bad(tmp_path, "f.json", {"probes": {"move": {"associations": [
            {"contexts": [{"abstract_syntax": "1.2.3"}]}]}}}), "abstract_syntax and transfer"),
        "uid": (_bad(tmp_path, "u.json", {"probes": {"move": {"associations": [
            {"contexts": [{**cx, "abstract_syntax": "CT\x1b[2J"}]}]}}}), "is not a UID"),
        "verification-only": (_bad(tmp_path, "v.json", {"probes": {"move": {"associations": [
            {"contexts": [{**cx, "abstract_syntax": VERIFICATION}]}]}}}), "no storage context"),
    }  # fmt: skip
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(9 * 1024 * 1024)  # sparse: no disk used
    cases["big"] = (big, "more than")
    for name, (path, words) in cases.items():
        rc, _, err = _check("--port", str(free_port()), "--contexts-from", str(path))
        assert rc == 2, (name, err)
        assert words in err and str(path) in err and len(err.strip().splitlines()) == 1, (name, err)
        assert "\x1b" not in err
    rc, _, err = _cli("move-test", "--pacs", "127.0.0.1:1", "--pacs-aet", "P", "--aet", "A",
                      "--no-public-ip", "--contexts-from", str(tmp_path / "t.json"))  # fmt: skip
    assert rc == 2 and "not JSON" in err, err


# --- a recorded move from dcmqrscp, replayed to the user's receiver ---------------------------


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """move-test --receiver own --json against dcmqrscp (-xy: proposes JPEG Baseline for the
    JPEG study), saved as the user would: the file --contexts-from reads."""
    tmp = tmp_path_factory.mktemp("rec")
    port = free_port()
    with dcmqrscp(tmp, jpeg_study(2), (AET, "127.0.0.1", port), "-xy") as pacs_port:
        rc, d, err = _cli("move-test", "--pacs", f"127.0.0.1:{pacs_port}", "--pacs-aet", "DQ",
                          "--aet", AET, "--port", str(port), "--receiver", "own",
                          "--no-public-ip", "--json", "--timeout", "30")  # fmt: skip
    assert rc == 0, (err, d.get("findings"))
    path = tmp / "move.json"
    path.write_text(json.dumps(d))
    return path


def test_check_replays_the_recorded_contexts_to_storescp(tmp_path: Path, recorded: Path) -> None:
    from test_json_schema import assert_valid

    doc = json.loads(recorded.read_text())
    sop = str(jpeg_study(1)[0].SOPClassUID)
    offered = {(c["abstract_syntax"], ts) for a in doc["probes"]["move"]["associations"]
               for c in a["contexts"] for ts in c["transfer_syntaxes"]}  # fmt: skip
    assert (sop, JPEG_BASELINE) in offered
    port = free_port()
    with _storescp(tmp_path, port):  # defaults: uncompressed only
        rc, d, _ = _check("--port", str(port), "--aet", "STORESCP", "--contexts-from",
                          str(recorded))  # fmt: skip
    assert rc == 1
    assert_valid(d, "check")
    pf = d["probes"]["receiver"]  # type: ignore[index]
    assert pf["contexts_from"] == "recorded-move"
    got = {(c["abstract_syntax"], c["transfer_syntax"]): c["result"] for c in pf["contexts"]}
    assert len(got) <= 127 and set(got) <= offered
    assert next(iter(got)) == (sop, JPEG_BASELINE)  # what was sent comes first
    assert got[(sop, JPEG_BASELINE)] == "transfer-syntaxes-not-supported"
    assert all(c["source"] == "recorded-move" for c in pf["contexts"])
    f = next(f for f in d["findings"] if f["code"] == "LISTENER_REJECTS_CONTEXT")  # type: ignore[attr-defined]
    assert JPEG_BASELINE in json.dumps(f)


def test_move_test_running_preflight_uses_the_recording(tmp_path: Path, recorded: Path) -> None:
    """Running mode against storescp +xa: the recorded JPEG context is accepted; no C-FIND
    guess (dcmqrscp gives no SOPClassUID at IMAGE level) replaces it."""
    from reverseprobe.config.recorded import read_recorded_contexts

    port = free_port()
    with (
        _storescp(tmp_path, port, "+xa"),
        dcmqrscp(tmp_path, jpeg_study(2), (AET, "127.0.0.1", port), "-xy") as pacs_port,
    ):
        cfg = MoveTestConfig(pacs_host="127.0.0.1", pacs_port=pacs_port, pacs_aet="DQ", aet=AET,
                             port=port, grace=1.0, public_ip=False, timeout=30.0,
                             recorded_contexts=read_recorded_contexts(str(recorded)))  # fmt: skip
        report = run_move_test(cfg)
    d = json.loads(json.dumps(report.to_dict()))
    pf = d["probes"]["receiver"]
    assert pf["contexts_from"] == "recorded-move" and pf["status"] == "ok", pf
    assert (JPEG_BASELINE, "accepted") in {(c["transfer_syntax"], c["result"])
                                           for c in pf["contexts"]}  # fmt: skip
    assert "MOVE_OK" in {f["code"] for f in d["findings"]}


# --- Orthanc as the PACS holding the JPEG study -----------------------------------------------


def test_orthanc_pacs_jpeg_to_our_own_receiver_saved_as_sent(tmp_path: Path) -> None:
    port = free_port()
    study = jpeg_study(2)
    save = tmp_path / "save"
    save.mkdir()
    with _orthanc_pacs(tmp_path, port, study) as pacs_port:
        cfg = MoveTestConfig(pacs_host="127.0.0.1", pacs_port=pacs_port, pacs_aet="ORTHANC",
                             aet=AET, port=port, grace=1.0, public_ip=False, timeout=40.0,
                             save_dir=save, receiver="own")  # fmt: skip
        report = run_move_test(cfg)
    d = json.loads(json.dumps(report.to_dict()))
    codes = {f["code"] for f in d["findings"]}
    assert "MOVE_OK" in codes and "MOVE_INCOMPLETE" not in codes, d["findings"]
    move = d["probes"]["move"]
    assert move["received"] == 2
    saved = sorted(save.glob("*.dcm"))
    assert len(saved) == 2
    for p in saved:
        ds = pydicom.dcmread(p)
        assert ds.file_meta.TransferSyntaxUID == JPEG_BASELINE
        assert bytes(ds.PixelData) == bytes(study[0].PixelData)


def test_orthanc_pacs_jpeg_to_storescp_defaults_is_store_rejected(tmp_path: Path) -> None:
    """The user's storescp (defaults: uncompressed only) holds --port: Orthanc cannot store
    the JPEG images there; the finding names the SOP class, the transfer syntax, both fixes."""
    port = free_port()
    study = jpeg_study(2)
    sop = str(study[0].SOPClassUID)
    with _storescp(tmp_path, port), _orthanc_pacs(tmp_path, port, study) as pacs_port:
        cfg = MoveTestConfig(pacs_host="127.0.0.1", pacs_port=pacs_port, pacs_aet="ORTHANC",
                             aet=AET, port=port, grace=1.0, public_ip=False,
                             timeout=40.0)  # fmt: skip
        report = run_move_test(cfg)
    d = json.loads(json.dumps(report.to_dict()))
    codes = {f["code"] for f in d["findings"]}
    assert d["probes"]["move"]["receiver_mode"] == "running"
    assert "MOVE_OK" not in codes, d["findings"]
    assert "MOVE_STORE_REJECTED" in codes, [(f["code"], f["summary"]) for f in d["findings"]]
    f = next(f for f in d["findings"] if f["code"] == "MOVE_STORE_REJECTED")
    text = json.dumps(f)
    assert sop in text and JPEG_BASELINE in text, f
    assert "+xa" in f["fix"] and "another transfer syntax" in f["fix"], f["fix"]


def test_orthanc_pacs_jpeg_to_storescp_xa_is_move_ok(tmp_path: Path) -> None:
    """The same study to the user's storescp with +xa: the preflight's compressed contexts are
    accepted, no warning, and the move delivers."""
    port = free_port()
    with (
        _storescp(tmp_path, port, "+xa"),
        _orthanc_pacs(tmp_path, port, jpeg_study(2)) as pacs_port,
    ):
        cfg = MoveTestConfig(pacs_host="127.0.0.1", pacs_port=pacs_port, pacs_aet="ORTHANC",
                             aet=AET, port=port, grace=1.0, public_ip=False,
                             timeout=40.0)  # fmt: skip
        report = run_move_test(cfg)
    d = json.loads(json.dumps(report.to_dict()))
    codes = {f["code"] for f in d["findings"]}
    assert "MOVE_OK" in codes, d["findings"]
    assert not {"MOVE_STORE_REJECTED", "LISTENER_REJECTS_CONTEXT"} & codes, codes
    pf = d["probes"]["receiver"]
    got = {c["transfer_syntax"]: c["result"] for c in pf["contexts"]}
    assert got[JPEG_BASELINE] == "accepted" and set(got.values()) == {"accepted"}, got
    assert {c["expected"] for c in pf["contexts"]} == {"will", "may"}
