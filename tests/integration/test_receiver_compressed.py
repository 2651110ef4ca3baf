"""The receiver preflight when the PACS does not name a transfer syntax: each SOP class is also
proposed in the compressed syntaxes archives hold, one context each (PS3.8 9.3.2.2), capped at
one association's 128 contexts; a refusal of those is a warning ("may"), and in running mode it
names the cause of a failed move (MOVE_STORE_REJECTED) without contradicting a pass."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import Procs, free_port, wait_listening
from dicom_fixtures import STORESCP, make_study
from receiver_support import JPEG_BASELINE, dcmqrscp
from reverseprobe.deadline import Deadline
from reverseprobe.diagnosis.receiver import preflight_rules, refused_by_preflight
from reverseprobe.model import Severity, Status
from reverseprobe.model.dicom import MoveResult, StatusWord
from reverseprobe.model.receiver import PreflightContext, ReceiverPreflight
from reverseprobe.probes.receiver import (
    COMPRESSED,
    CT_IMAGE,
    EXPLICIT_LE,
    MAX_CONTEXTS,
    UNCOMPRESSED,
    contexts_for,
    preflight,
)

AET = "MYSCU"
SC = "1.2.840.10008.5.1.4.1.1.7"
PER_CLASS = len(UNCOMPRESSED) + len(COMPRESSED)


def _storescp(procs: Procs, port: int, *options: str) -> None:
    procs.start([STORESCP, *options, "-od", str(procs.tmp), str(port)], name="storescp")
    wait_listening(port)


# --- which contexts are proposed ---------------------------------------------------------------


def test_a_class_without_transfer_syntax_is_proposed_compressed_too() -> None:
    got, source = contexts_for([(CT_IMAGE, "")], [SC], "c-find")
    assert source == "c-find"
    assert len(got) == 2 * PER_CLASS and len(set(got)) == len(got)
    will = [(a, t) for a, t, e in got if e == "will"]
    may = [(a, t) for a, t, e in got if e == "may"]
    assert set(will) == {(c, t) for c in (CT_IMAGE, SC) for t in UNCOMPRESSED}
    assert set(may) == {(c, t) for c in (CT_IMAGE, SC) for t in COMPRESSED}
    assert [e for _, _, e in got] == ["will"] * len(will) + ["may"] * len(may)  # certain first
    assert JPEG_BASELINE in COMPRESSED and "1.2.840.10008.1.2.4.90" in COMPRESSED


def test_a_named_transfer_syntax_is_proposed_alone() -> None:
    """The PACS (or a recording, or --context) said it: no guesses for that class."""
    got, _ = contexts_for([(CT_IMAGE, JPEG_BASELINE)], [], "option")
    assert got == [(CT_IMAGE, JPEG_BASELINE, "will")]


# --- against dcmtk storescp ------------------------------------------------------------------


def test_storescp_defaults_refuse_what_the_pacs_may_send_is_a_warning(procs: Procs) -> None:
    port = free_port()
    _storescp(procs, port)
    triples, source = contexts_for([(SC, "")], [], "c-find")
    pf = preflight("127.0.0.1", port, "STORESCP", "DQ", triples, deadline=Deadline.after(20.0),
                   source=source)  # fmt: skip
    assert pf.status is Status.OK and "may send" in str(pf.reason), pf
    results = {c.transfer_syntax: c.result for c in pf.contexts}
    assert len(results) == PER_CLASS
    assert {results[t] for t in UNCOMPRESSED} == {"accepted"}
    assert {results[t] for t in COMPRESSED} == {"transfer-syntaxes-not-supported"}
    f = next(f for f in preflight_rules(pf) if f.code == "LISTENER_REJECTS_CONTEXT")
    assert f.severity is Severity.WARN, f
    assert "may send" in f.summary and "did not say" in f.summary
    assert "JPEG Baseline (1.2.840.10008.1.2.4.50)" in f.summary
    assert f"accepts SOP class {SC} only in Explicit VR Little Endian" in f.summary
    assert "+xa" in f.fix and "DicomScuPreferredTransferSyntax" in f.fix


def test_more_pairs_than_one_association_holds_are_counted_not_passed(procs: Procs) -> None:
    from pynetdicom import StoragePresentationContexts

    port = free_port()
    _storescp(procs, port, "+xa")
    classes = [str(cx.abstract_syntax) for cx in StoragePresentationContexts[:20]]
    triples, _ = contexts_for([], classes, "c-find")
    assert len(triples) == 20 * PER_CLASS > MAX_CONTEXTS
    pf = preflight("127.0.0.1", port, "STORESCP", "DQ", triples, deadline=Deadline.after(20.0),
                   source="c-find")  # fmt: skip
    assert len(pf.contexts) == MAX_CONTEXTS
    assert pf.untested == 20 * PER_CLASS - MAX_CONTEXTS
    assert pf.untested_sop_classes and set(pf.untested_sop_classes) <= set(classes)
    # every class got its uncompressed pair tested before any compressed guess
    tested = {(c.abstract_syntax, c.transfer_syntax) for c in pf.contexts}
    assert {(c, t) for c in classes for t in UNCOMPRESSED} <= tested
    assert all(c.result == "accepted" for c in pf.contexts), pf.refused


def _cli(*args: str) -> tuple[int, dict[str, object], str]:
    p = subprocess.run([sys.executable, "-m", "reverseprobe", *args], check=False,
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert "Traceback" not in p.stderr, p.stderr
    return p.returncode, json.loads(p.stdout) if p.stdout.strip() else {}, p.stderr


def test_check_with_the_pacs_warns_of_compressed_refusals(procs: Procs) -> None:
    """check --pacs: the fixture PACS's C-FIND names the SOP class, not the transfer syntax;
    storescp's defaults refuse the compressed ones: a warning, and the JSON follows its schema."""
    from dicom_fixtures import QrFixture
    from test_json_schema import assert_valid

    port = free_port()
    _storescp(procs, port)
    with QrFixture(make_study(1)) as pacs:
        _, d, _ = _cli("check", "--no-upnp", "--no-public-ip", "--json", "--timeout", "20",
                       "--port", str(port), "--aet", "STORESCP", "--pacs",
                       f"127.0.0.1:{pacs.port}", "--pacs-aet", pacs.aet)  # fmt: skip
    assert_valid(d, "check")
    pf = d["probes"]["receiver"]  # type: ignore[index]
    assert pf["status"] == "ok" and pf["contexts_from"] == "c-find", pf
    may = [c for c in pf["contexts"] if c["expected"] == "may"]
    assert may and all(c["result"] == "transfer-syntaxes-not-supported" for c in may)
    f = next(f for f in d["findings"] if f["code"] == "LISTENER_REJECTS_CONTEXT")  # type: ignore[attr-defined]
    assert f["severity"] == "warn", f


# --- running mode: the story of the move and the preflight agree ---------------------------------


def _running(tmp: Path, procs: Procs, study: list, *pacs_options: str) -> dict:  # type: ignore[type-arg]
    from reverseprobe.commands.move_test import run_move_test
    from reverseprobe.config import MoveTestConfig

    port = free_port()
    _storescp(procs, port)  # defaults: uncompressed only
    with dcmqrscp(tmp, study, (AET, "127.0.0.1", port), *pacs_options) as pacs_port:
        cfg = MoveTestConfig(pacs_host="127.0.0.1", pacs_port=pacs_port, pacs_aet="DQ", aet=AET,
                             port=port, grace=1.0, public_ip=False, timeout=30.0)  # fmt: skip
        report = run_move_test(cfg)
    d: dict = json.loads(json.dumps(report.to_dict()))  # type: ignore[type-arg]
    return d


def test_uncompressed_study_delivered_keeps_a_may_warning_that_says_so(
    tmp_path: Path, procs: Procs
) -> None:
    """dcmqrscp sends an uncompressed study to storescp's defaults: MOVE_OK; the preflight's
    compressed refusals stay a warning that says this study arrived (no contradiction)."""
    d = _running(tmp_path, procs, make_study(2))
    codes = [f["code"] for f in d["findings"]]
    assert "MOVE_OK" in codes and "MOVE_STORE_REJECTED" not in codes, d["findings"]
    f = next(f for f in d["findings"] if f["code"] == "LISTENER_REJECTS_CONTEXT")
    assert f["severity"] == "warn" and "This study arrived" in f["summary"], f


def test_jpeg_study_refused_is_one_story(tmp_path: Path, procs: Procs) -> None:
    """dcmqrscp -xy sends JPEG to storescp's defaults: MOVE_STORE_REJECTED from the preflight's
    refusals and the PACS's failed count; the preflight's warning is not said twice."""
    from receiver_support import jpeg_study

    d = _running(tmp_path, procs, jpeg_study(2), "-xy")
    codes = [f["code"] for f in d["findings"]]
    assert "MOVE_OK" not in codes and "MOVE_INCOMPLETE" not in codes, codes
    f = next(f for f in d["findings"] if f["code"] == "MOVE_STORE_REJECTED")
    # dcmqrscp's C-FIND names no SOP class: CT and Secondary Capture stand in, and it says so
    assert d["probes"]["receiver"]["contexts_from"] == "default"
    assert f["detail"]["evidence"] == "preflight-stand-in", f
    assert "a stand-in" in f["summary"]
    assert JPEG_BASELINE in f["detail"]["refused_transfer_syntaxes"]
    assert EXPLICIT_LE in f["detail"]["accepted_transfer_syntaxes"]
    assert f["detail"]["failed"] == 2
    assert "Measured:" in f["summary"] and "Inferred:" in f["summary"]
    assert "+xa" in f["fix"] and "another transfer syntax" in f["fix"]
    assert not [x for x in d["findings"]
                if x["code"] == "LISTENER_REJECTS_CONTEXT" and x["severity"] == "warn"]  # fmt: skip


# --- the rule's limits (pure) --------------------------------------------------------------------


def _pf(source: str = "c-find") -> ReceiverPreflight:
    from reverseprobe.model.receiver import AssociationTry

    cxs = (
        PreflightContext(SC, EXPLICIT_LE, "accepted", source),
        PreflightContext(SC, JPEG_BASELINE, "transfer-syntaxes-not-supported", source, "may"),
    )
    return ReceiverPreflight(status=Status.OK, host="127.0.0.1", port=104, contexts=cxs,
                             tries=(AssociationTry("contexts", AET, "accepted"),),
                             contexts_from=source)  # fmt: skip


def _move(**kw: object) -> MoveResult:
    base: dict[str, object] = {"status": Status.FAIL, "receiver_mode": "running",
                               "connections": 1, "final_status": StatusWord.FAILURE,
                               "final_code": 0xC000, "port": 104}  # fmt: skip
    base.update(kw)
    return MoveResult(**base)  # type: ignore[arg-type]


def test_the_rule_needs_a_failed_move_a_connection_and_the_study_s_classes() -> None:
    assert refused_by_preflight(_move(), _pf()) is not None
    assert refused_by_preflight(_move(connections=0), _pf()) is None  # never reached
    ok = _move(status=Status.OK, final_status=StatusWord.SUCCESS, final_code=0, completed=2)
    assert refused_by_preflight(ok, _pf()) is None
    stand_in = refused_by_preflight(_move(), _pf("default"))  # the PACS named no class
    assert stand_in is not None and stand_in.detail["evidence"] == "preflight-stand-in"
    assert "stand-in" in stand_in.summary and "Inferred:" in stand_in.summary
    assert refused_by_preflight(_move(receiver_mode="own"), _pf()) is None


def test_a_partly_delivered_move_says_some_were_refused() -> None:
    f = refused_by_preflight(_move(completed=1, failed=1, final_status=StatusWord.WARNING), _pf())
    assert f is not None and "some of the images were refused" in f.summary, f
    assert "completed 1, failed 1" in f.summary
