"""The checklist's orchestration and outputs, with hand-built check/move-test reports."""

from __future__ import annotations

import io
import itertools
import json
import os
import threading
import time
from pathlib import Path

import pytest

from checklist_support import (
    MOVE_PROBES,
    every_code_result,
    fake_runs,
    pacs,
    probes,
    report,
    sample_result,
    site,
)
from conftest import TESTS
from reverseprobe.cli import main
from reverseprobe.commands import checklist as cl
from reverseprobe.config import BadInput, CheckConfig, MoveTestConfig, ReportFormat
from reverseprobe.environment import Environment
from reverseprobe.model import Report, Severity, Status
from reverseprobe.runner import Deadline

SITE_TOML = """\
[site]
name = "Loopback"
aet = "MYSCU"
port = {port}
upnp = false
public_ip = false
"""


def env() -> Environment:
    return Environment(
        stdout=io.StringIO(),
        stderr=io.StringIO(),
        environ={},
        stdout_isatty=False,
        stderr_isatty=False,
    )


def test_every_finding_names_its_target() -> None:
    r = sample_result()
    d = r.report().to_dict()
    assert d["command"] == "checklist" and d["schema"] == 1 and d["verdict"] == "fail"
    targets = {f["target"] for f in d["findings"]}
    assert targets == {"site", "main archive", "teleradiology", "good one", "broken"}
    assert set(d["probes"]) == {
        "check",
        "move-test:main archive",
        "move-test:teleradiology",
        "move-test:good one",
        "move-test:broken",
    }
    assert d["probes"]["move-test:main archive"]["probes"]["move"]["status"] == "fail"
    assert d["probes"]["move-test:broken"]["status"] == "error"
    assert d["pacs_entry"] == {
        "aet": "MYSCU",
        "host": "198.51.100.7",
        "port": 11112,
        "note": "the public address: this PC is behind NAT",
    }
    assert [p["name"] for p in d["pacs"]] == ["main archive", "teleradiology", "good one", "broken"]


def test_a_run_that_breaks_is_incomplete_not_pass() -> None:
    r = sample_result()
    broken = r.runs[-1]
    assert broken.result.status is Status.ERROR
    assert [f.code for f in broken.findings] == ["CHECKLIST_INCOMPLETE"]
    assert broken.findings[0].severity is Severity.FAIL
    assert "RuntimeError" in (broken.result.reason or "")


def test_runs_are_sequential_and_share_the_deadline() -> None:
    active: list[int] = []
    overlap = []
    timeouts: list[float] = []
    ends: list[float] = []  # when each run's own timeout would end

    def check(cfg: CheckConfig, deadline: Deadline) -> Report:
        timeouts.append(cfg.timeout)
        ends.append(time.monotonic() + cfg.timeout)
        return report("check", [], probes(["listeners"]))

    def move(cfg: MoveTestConfig) -> Report:
        if active:
            overlap.append(cfg.pacs_host)
        active.append(1)
        timeouts.append(cfg.timeout)
        ends.append(time.monotonic() + cfg.timeout)
        time.sleep(0.05)
        active.pop()
        return report("move-test", [], probes(MOVE_PROBES))

    s = site(pacs("a", "10.0.0.1"), pacs("b", "10.0.0.2"), pacs("c", "10.0.0.3"))
    t0 = time.monotonic()
    r = cl.run_site(s, timeout=40, check=check, move_test=move)
    assert not overlap
    assert len(timeouts) == 4
    assert timeouts[0] <= 8.0  # check's default
    # each run's own timeout ends within the checklist's, less what rendering keeps back
    assert all(end <= t0 + 40 - cl.RENDER_RESERVE_S + 0.01 for end in ends), (ends, t0)
    assert timeouts[1] < 40 / 3  # a fair share: three PACS still to go
    assert [x.result.status for x in r.runs] == [Status.OK] * 4


def test_deadline_used_up_marks_the_rest_not_run() -> None:
    def check(cfg: CheckConfig, deadline: Deadline) -> Report:
        return report("check", [], probes(["listeners"]))

    def slow(cfg: MoveTestConfig) -> Report:  # overruns its share, within the slack
        time.sleep(2.6)
        return report("move-test", [], probes(MOVE_PROBES))

    s = site(pacs("a", "10.0.0.1"), pacs("b", "10.0.0.2"))
    r = cl.run_site(s, timeout=3.0, check=check, move_test=slow)
    b = r.runs[2]
    assert b.result.status is Status.SKIPPED
    assert b.findings[0].code == "CHECKLIST_INCOMPLETE" and "--timeout" in b.findings[0].summary


def test_a_hanging_move_test_is_abandoned_within_its_slack() -> None:
    release = threading.Event()

    def check(cfg: CheckConfig, deadline: Deadline) -> Report:
        return report("check", [], probes(["listeners"]))

    def hang(cfg: MoveTestConfig) -> Report:
        release.wait(60)
        return report("move-test", [], probes(MOVE_PROBES))

    s = site(pacs("a", "10.0.0.1"), pacs("b", "10.0.0.2"))
    t0 = time.monotonic()
    try:
        r = cl.run_site(s, timeout=2.0, check=check, move_test=hang)
    finally:
        release.set()
    assert time.monotonic() - t0 < 2.0 + cl.SLACK_S + 2.0
    assert r.runs[1].result.status is Status.TIMEOUT
    assert r.runs[2].result.status is Status.SKIPPED  # the port may still be held
    assert "still held port" in (r.runs[2].result.reason or "")


@pytest.mark.parametrize(
    ("formats", "outputs", "out_dir", "json_out", "want"),
    [
        ([], [], None, False, (("text",), ("-",))),
        ([], [], None, True, (("json",), ("-",))),
        (["html"], [], None, False, (("html",), ("-",))),
        (["json", "junit"], ["a.json", "-"], None, False, (("json", "junit"), ("a.json", "-"))),
        (
            [],
            [],
            "out",
            False,
            (cl.FORMATS, tuple(f"out/{cl.FILE_NAMES[f]}" for f in ReportFormat)),
        ),
        (["junit"], [], "out", True, (("junit",), ("out/report.xml",))),
    ],
)
def test_plan_outputs(formats, outputs, out_dir, json_out, want) -> None:  # type: ignore[no-untyped-def]
    fmts, paths, _ = cl.plan_outputs(formats, outputs, out_dir, json_out=json_out)
    assert (fmts, tuple(str(p) for p in paths)) == want


@pytest.mark.parametrize(
    ("formats", "outputs", "out_dir", "json_out", "msg"),
    [
        (["json", "html"], [], None, False, "only one report can go to stdout"),
        (["json", "html"], ["a"], None, False, "1 --output for 2 --format"),
        (["json"], ["a"], "d", False, "not both"),
        (["json", "json"], ["a", "b"], None, False, "twice"),
        (["html"], [], None, True, "--json prints JSON on stdout"),
        (["json", "html"], ["-", "-"], None, False, "only one --output may be '-'"),
        (["pdf"], [], None, False, "invalid --format 'pdf'"),
    ],
)
def test_plan_outputs_errors(formats, outputs, out_dir, json_out, msg) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BadInput, match=msg):
        cl.plan_outputs(formats, outputs, out_dir, json_out=json_out)


def test_write_reports_to_files_and_stdout(tmp_path: Path) -> None:
    r = sample_result()
    e = env()
    paths = [tmp_path / "x" / "r.xml", Path("-")]
    written = cl.write_reports(r, ["junit", "json"], paths, env=e)
    assert written == [paths[0]]
    assert paths[0].read_text().startswith("<?xml")
    assert json.loads(e.stdout.getvalue())["command"] == "checklist"  # type: ignore[attr-defined]
    assert not list(paths[0].parent.glob(".r.xml.*"))  # no temporary file left behind


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cli_check_only_site_writes_every_report(tmp_path: Path) -> None:
    """The real `check` on loopback (no UPnP, no public-IP services: nothing leaves the host)."""
    site_file = tmp_path / "site.toml"
    site_file.write_text(SITE_TOML.format(port=_free_port()))
    e = env()
    code = main(
        ["checklist", str(site_file), "--output-dir", str(tmp_path / "out"), "--timeout", "20"], e
    )
    assert code == 0, e.stderr.getvalue()  # type: ignore[attr-defined]
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["report.html", "report.json", "report.txt", "report.xml"]
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert doc["verdict"] == "pass" and doc["command"] == "checklist"
    assert "LISTENER_NONE" in [f["code"] for f in doc["findings"]]
    assert {f["severity"] for f in doc["findings"]} <= {"info", "pass"}
    assert {f["target"] for f in doc["findings"]} == {"site"}
    out = e.stdout.getvalue()  # type: ignore[attr-defined]
    assert "reverseprobe checklist" in out and "Verdict: PASS" in out
    import xmlschema

    xmlschema.XMLSchema(TESTS / "data" / "junit.xsd").validate(str(tmp_path / "out" / "report.xml"))
    assert '<svg class="path"' in (tmp_path / "out" / "report.html").read_text()


def test_cli_json_on_stdout_only(tmp_path: Path) -> None:
    site_file = tmp_path / "site.toml"
    site_file.write_text(SITE_TOML.format(port=_free_port()) + "require_listener = true\n")
    e = env()
    code = main(["checklist", str(site_file), "--json", "--timeout", "20"], e)
    assert code == 1
    doc = json.loads(e.stdout.getvalue())  # type: ignore[attr-defined]
    assert doc["verdict"] == "fail"
    assert [f["code"] for f in doc["findings"] if f["severity"] == "fail"] == ["LISTENER_NONE"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[site]\naet = "A"\nbogus = 1\n', ':3: key "bogus" in [site]: unknown key'),
        ('[site]\naet = "A"\nport = 0\n', ':3: key "port" in [site]: invalid port 0'),
    ],
)
def test_cli_bad_site_file_exits_2_with_one_line(tmp_path: Path, text: str, needle: str) -> None:
    site_file = tmp_path / "site.toml"
    site_file.write_text(text)
    e = env()
    assert main(["checklist", str(site_file)], e) == 2
    err = e.stderr.getvalue()  # type: ignore[attr-defined]
    assert err.count("\n") == 1 and needle in err and str(site_file) in err
    assert e.stdout.getvalue() == ""  # type: ignore[attr-defined]


def test_cli_bad_output_combination_exits_2(tmp_path: Path) -> None:
    site_file = tmp_path / "site.toml"
    site_file.write_text(SITE_TOML.format(port=_free_port()))
    e = env()
    assert main(["checklist", str(site_file), "--format", "json", "--format", "html"], e) == 2
    assert "--output" in e.stderr.getvalue()  # type: ignore[attr-defined]


def test_strict_turns_warnings_into_exit_1() -> None:
    _, move = fake_runs([], {})
    s = site()

    def warn_check(cfg: CheckConfig, deadline: Deadline) -> Report:
        from checklist_support import f

        return report("check", [f("UPNP_MAPPING_MISSING")], probes(["router"]))

    r = cl.run_site(s, timeout=10, check=warn_check, move_test=move)
    from reverseprobe.exitcodes import exit_status

    assert exit_status(r.findings) == 0
    assert exit_status(r.findings, strict=True) == 1
    assert (
        cl.run_site(s, timeout=10, strict=True, check=warn_check).report().verdict is Severity.FAIL
    )


def test_text_report_lists_each_pacs_with_path_and_entry() -> None:
    from reverseprobe.render.checklist_text import render_checklist_text

    text = render_checklist_text(sample_result(), color=False, width=200)  # one line a path
    for needle in (
        "This PC (reverseprobe check)",
        "PACS 'main archive'",
        "MOVE_DESTINATION_UNKNOWN",
        "Path:  [PASS] PACS  ->  [PASS] Internet / WAN  ->  [WARN] Router (NAT)",  # good one
        "Entry for the PACS administrator: AE title MYSCU, host 198.51.100.7, port 11112",
        "Verdict: FAIL",
    ):
        assert needle in text, needle
    assert "[FAIL] PACS  ->" in text  # main archive: the PACS hop fails


def test_ctrl_c_reaches_the_running_move_test_so_it_cleans_up() -> None:
    import os
    import signal
    import socket

    cleaned = threading.Event()
    started = threading.Event()

    def check(cfg: CheckConfig, deadline: Deadline) -> Report:
        return report("check", [], probes(["listeners"]))

    def move(cfg: MoveTestConfig) -> Report:
        srv = socket.create_server(("127.0.0.1", 0))
        try:
            started.set()
            end = time.monotonic() + 30
            while time.monotonic() < end:  # a move-test waiting for images
                time.sleep(0.01)
            return report("move-test", [], probes(MOVE_PROBES))
        finally:
            srv.close()
            cleaned.set()

    def ctrl_c() -> None:
        started.wait(10)
        os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does

    threading.Thread(target=ctrl_c, daemon=True).start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        cl.run_site(site(pacs("a", "10.0.0.1")), timeout=60, check=check, move_test=move)
    assert cleaned.wait(5)
    assert time.monotonic() - t0 < 20  # not after the move-test's own 30 s


def _text_80(verbose: bool = False) -> list[str]:
    from reverseprobe.render.checklist_text import render_checklist_text

    out: list[str] = []
    for result in (sample_result(), every_code_result()):
        out += render_checklist_text(result, color=False, width=80, verbose=verbose).splitlines()
    return out


def test_checklist_text_holds_at_80_columns_with_wrapped_lines_indented() -> None:
    lines = _text_80(verbose=True)
    for line in lines:
        # over 80 only for one unbreakable token (a URL, a long host name)
        assert len(line) <= 80 or len(max(line.split(), key=len)) > 60, line
        assert line == line.rstrip(), repr(line)  # no padding to the width
    # every line of the report starts at a known column: a wrapped line never at column 0
    tops = ("reverseprobe checklist", "This PC", "PACS ", "Summary", "Verdict:", "20")
    for prev, line in itertools.pairwise(lines):
        if line and not line.startswith(" "):
            assert line.startswith(tops), (prev, line)
    text = "\n".join(lines)
    assert "\n         LISTENER_LOOPBACK_ONLY" in text  # the verdict's continuation, indented
    assert "\n      fix: " in text
    assert "\n           " in text  # a wrapped fix continues under its text, not under "fix:"
    assert "Path:\n  [FAIL] PACS\n  -> " in text  # too long for one line: one hop a line


def test_checklist_text_probe_lines_only_with_verbose() -> None:
    assert not any(line.lstrip().startswith("probes:") for line in _text_80())
    assert any(line.lstrip().startswith("probes:") for line in _text_80(verbose=True))


def test_checklist_text_default_width_is_80_when_not_a_tty(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    import shutil

    monkeypatch.setattr(
        shutil, "get_terminal_size", lambda fallback=(80, 24): os.terminal_size(fallback)
    )
    text = cl.render(every_code_result(), "text")
    assert max(len(line) for line in text.splitlines()) <= 80
