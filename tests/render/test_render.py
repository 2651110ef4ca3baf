from __future__ import annotations

import json

from conftest import REPO
from finding_support import literal
from reverseprobe.diagnosis.catalogue import CATALOGUE
from reverseprobe.diagnosis.path import hop_states
from reverseprobe.model import PacsEntry, ProbeResult, Report, Severity, Status
from reverseprobe.render.json import render_json
from reverseprobe.render.terminal import render_text


def report(*findings, strict: bool = False) -> Report:  # type: ignore[no-untyped-def]
    return Report(
        command="check",
        probes={
            "listeners": ProbeResult(status=Status.OK, elapsed_s=0.1),
            "router": ProbeResult(status=Status.SKIPPED, reason="--no-upnp"),
        },
        findings=list(findings),
        pacs_entry=PacsEntry("MYSCU", "192.168.2.2", 11112),
        elapsed_s=0.42,
        strict=strict,
    )


MULTI = literal("LISTENER_MULTIPLE", "Two programs listen.", "Stop one of them.")
PRIV = literal("PORT_PRIVILEGED", "Port 104.", "Use 11112.")
OK = literal("LISTENER_OK", "storescp answers.")


def test_plain_text_has_sections_fixes_entry_and_verdict() -> None:
    out = render_text(report(MULTI, PRIV, OK), color=False, width=120)
    assert "\x1b[" not in out
    assert "[FAIL] LISTENER_MULTIPLE" in out and "fix: Stop one of them." in out
    assert "[WARN] PORT_PRIVILEGED" in out
    assert "Listener" in out and "Port" in out
    assert "AE title  MYSCU" in out and "Host      192.168.2.2" in out
    assert "router skipped" in out and "--no-upnp" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("Verdict: FAIL") and "LISTENER_MULTIPLE" in last


def test_colour_only_when_asked() -> None:
    out = render_text(report(OK), color=True, width=120)
    assert "\x1b[" in out
    assert "✓" in out


def test_verdict_pass_warn_and_strict() -> None:
    assert render_text(report(OK), color=False).strip().endswith("s)")
    assert "Verdict: PASS" in render_text(report(OK), color=False)
    assert "Verdict: WARN" in render_text(report(PRIV), color=False)
    assert "Verdict: FAIL" in render_text(report(PRIV, strict=True), color=False)


def test_path_marks_the_hop_of_each_finding() -> None:
    states = {h.hop.value: h for h in hop_states([MULTI, PRIV])}
    assert states["listener"].severity is Severity.FAIL
    assert states["internet"].severity is Severity.WARN  # port < 1024: the ISP hop
    assert states["pacs"].severity is None  # nothing measured there: never a pass


def test_json_shape() -> None:
    doc = json.loads(render_json(report(MULTI, OK)))
    assert doc["schema"] == 1 and doc["command"] == "check" and doc["verdict"] == "fail"
    assert doc["pacs_entry"] == {"aet": "MYSCU", "host": "192.168.2.2", "port": 11112, "note": ""}
    assert doc["probes"]["router"] == {
        "status": "skipped",
        "reason": "--no-upnp",
        "elapsed_s": None,
    }
    assert [f["code"] for f in doc["findings"]] == ["LISTENER_MULTIPLE", "LISTENER_OK"]
    assert set(doc["findings"][0]) == {"code", "severity", "summary", "fix", "detail"}
    assert isinstance(doc["elapsed_s"], float)


def test_catalogue_matches_spec_severities() -> None:
    assert CATALOGUE["LISTENER_MULTIPLE"].severity is Severity.FAIL
    assert CATALOGUE["PORT_PRIVILEGED"].severity is Severity.WARN
    assert CATALOGUE["INBOUND_OK"].severity is Severity.PASS
    assert len(CATALOGUE) >= 39


def test_catalogue_covers_spec_table() -> None:
    """Every code in SPEC.md's findings table is catalogued with SPEC's default severity."""
    import re

    import pytest

    spec = REPO.parent / "shared" / "SPEC.md"
    if not spec.exists():
        pytest.skip("SPEC.md is not beside this checkout")
    rows = re.findall(r"^\| ([A-Z][A-Z0-9_]+) \| (\w+)[^|]*\| (.*) \|$", spec.read_text(), re.M)
    assert rows
    for code, sev, meaning in rows:
        # A code that an open issue asks for ("(receiver issue)") may not be built yet.
        if code not in CATALOGUE and re.search(r"issues?\)$", meaning):
            continue
        assert code in CATALOGUE, code
        assert CATALOGUE[code].severity.value == sev, code


def test_a_proven_connection_marks_the_hops_it_crossed() -> None:
    moved = {h.hop.value: h.severity for h in hop_states([literal("MOVE_OK", "2 images")])}
    assert set(moved.values()) == {Severity.PASS}
    inbound = {h.hop.value: h.severity for h in hop_states([literal("INBOUND_OK", "nonce seen")])}
    assert inbound["pacs"] is None  # the reflector is not the PACS: not measured there
    assert inbound["router"] is Severity.PASS and inbound["internet"] is Severity.PASS
    # a problem found on a crossed hop still shows
    mixed = {h.hop.value: h.severity for h in hop_states([literal("INBOUND_OK", "x"), PRIV])}
    assert mixed["internet"] is Severity.WARN


def test_timing_table_only_with_verbose() -> None:
    rep = report(MULTI, PRIV, OK)
    plain = render_text(rep, color=False, width=120)
    loud = render_text(rep, color=False, width=120, verbose=True)
    assert " s)" not in plain.split("Probes", 1)[-1].split("Verdict")[0]  # no timings
    assert "Probes not measured" in plain and "router skipped" in plain
    assert "listeners ok" not in plain
    assert (
        "Probes\n" in loud
        and "listeners ok (0.10 s)" in loud
        and "router skipped: --no-upnp" in loud
    )


def test_80_columns_wrapped_lines_indented_and_the_path_on_its_own_lines() -> None:
    long = literal(
        "LISTENER_MULTIPLE",
        "Two programs listen on the port and the one that answers may not be yours: " * 3,
        "Stop one of them; then run reverseprobe check again to see which one answers. " * 2,
    )
    out = render_text(report(long, PRIV, OK), color=False, width=80)
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    start = next(i for i, line in enumerate(lines) if "LISTENER_MULTIPLE" in line)
    assert lines[start + 1].startswith("      ") and not lines[start + 1].startswith("      fix:")
    fix = next(i for i, line in enumerate(lines) if line.startswith("      fix:"))
    assert lines[fix + 1].startswith(" " * 11)
    narrow = render_text(report(OK), color=False, width=40)
    assert "  -> " in narrow and all(len(x) <= 40 for x in narrow.splitlines() if "->" in x)
