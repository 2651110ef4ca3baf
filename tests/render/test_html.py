"""The HTML report without a browser: self-contained, escaped, complete."""

from __future__ import annotations

import dataclasses
import json
import re
from html.parser import HTMLParser

from checklist_support import every_code_result, sample_result
from reverseprobe.model import PacsEntry
from reverseprobe.render.html import admin_snippets, render_html


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    p = _Collect()
    p.feed(html)
    return p.tags


def test_self_contained() -> None:
    html = render_html(every_code_result())
    t = tags(html)
    assert not [a for tag, a in t if tag in ("script", "link", "img", "iframe", "object", "embed")]
    assert not [a for _, a in t if "src" in a]
    hrefs = [a["href"] for _, a in t if a.get("href")]
    assert hrefs and all(h and h.startswith("#") for h in hrefs)
    assert "@import" not in html and "url(" not in html.replace("url(#", "")
    csp = [a for tag, a in t if tag == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in (csp[0]["content"] or "")


def test_every_finding_with_its_fix() -> None:
    result = every_code_result()
    html = render_html(result)
    codes = [c for tag, a in tags(html) if tag == "li" and (c := a.get("data-code")) is not None]
    assert sorted(codes) == sorted(f.code for f in result.findings)
    for f in result.findings:
        if f.severity.value != "pass":
            assert f"Fix for {f.code} (fixture)." in html


def test_one_path_picture_per_pacs_with_five_hops() -> None:
    html = render_html(sample_result())
    svgs = html.count('<svg class="path"')
    assert svgs == 4
    groups = re.findall(r'<g class="hop hop-(\w+)" data-hop="([^"]+)">', html)
    assert len(groups) == 4 * 5
    first = groups[:5]  # main archive: the PACS does not know us; the router has no mapping
    assert first == [
        ("fail", "PACS"),
        ("none", "Internet / WAN"),
        ("warn", "Router (NAT)"),
        ("none", "This PC"),
        ("pass", "Listener"),
    ]
    good = groups[10:15]  # images arrived: every hop is proven
    assert [g[0] for g in good] == ["pass", "pass", "warn", "pass", "pass"]


def test_site_without_pacs_still_draws_the_path() -> None:
    r = sample_result()
    r = dataclasses.replace(r, runs=r.runs[:1], site=dataclasses.replace(r.site, pacs=()))
    html = render_html(r)
    assert html.count('<svg class="path"') == 1
    assert "Give this to the PACS administrator" in html and "198.51.100.7" in html


def test_everything_from_the_network_or_the_file_is_escaped() -> None:
    r = sample_result()
    evil = "<script>alert(1)</script>"
    site = dataclasses.replace(r.site, name=evil)
    run = r.runs[1]
    bad = dataclasses.replace(run.findings[0], summary=f"peer said {evil}", fix=evil)
    runs = (r.runs[0], dataclasses.replace(run, findings=(bad,)), *r.runs[2:])
    html = render_html(dataclasses.replace(r, site=site, runs=runs))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_admin_entries_for_common_pacs() -> None:
    snippets = {
        s.product: s.text for s in admin_snippets(PacsEntry("MY SCU", "198.51.100.7", 11112))
    }
    orthanc = json.loads("{" + snippets["Orthanc"] + "}")
    assert orthanc == {"DicomModalities": {"my-scu": ["MY SCU", "198.51.100.7", 11112]}}
    assert snippets["dcmqrscp (DCMTK)"] == "my-scu = (MY SCU, 198.51.100.7, 11112)"
    assert snippets["Conquest"].split()[-3:] == ["198.51.100.7", "11112", "un"]
    assert "MY SCU" in snippets["dcm4chee"] and "11112" in snippets["dcm4chee"]
    unknown = admin_snippets(PacsEntry("A", None, 104))
    assert all("ADDRESS-OF-THIS-PC" in s.text for s in unknown)


def test_commands_in_fixes_are_code_and_still_escaped() -> None:
    r = sample_result()
    run = r.runs[1]
    fix = "Run `reverseprobe forward --upnp` then `<b>not bold</b>` and a lone ` tick."
    bad = dataclasses.replace(run.findings[0], fix=fix)
    runs = (r.runs[0], dataclasses.replace(run, findings=(bad,)), *r.runs[2:])
    html = render_html(dataclasses.replace(r, runs=runs))
    assert "<code>reverseprobe forward --upnp</code>" in html
    assert "<code>&lt;b&gt;not bold&lt;/b&gt;</code>" in html
    assert "<b>not bold</b>" not in html


def test_ids_are_unique_even_for_look_alike_pacs_names() -> None:
    r = every_code_result()
    a, b = r.runs[1], r.runs[2]
    runs = (
        r.runs[0],
        dataclasses.replace(a, target="main archive"),
        dataclasses.replace(b, target="main-archive"),
    )
    ids = [a["id"] for _, a in tags(render_html(dataclasses.replace(r, runs=runs))) if a.get("id")]
    assert len(ids) == len(set(ids))


def test_text_and_html_give_each_target_the_same_word_and_codes_link_to_the_appendix() -> None:
    from reverseprobe.render.checklist_text import render_checklist_text
    from reverseprobe.render.summary import target_severity

    result = sample_result()
    html = render_html(result)
    text = render_checklist_text(result, color=False, width=200)
    summary = text.split("Summary", 1)[1]
    for run in result.runs:
        sev = target_severity(run.findings, run.result.status, strict=result.strict)
        word = sev.value if sev else "none"
        tag = f"[{sev.value.upper()}]" if sev else "[ ? ]"
        name = "this PC" if run.pacs is None else run.target
        assert f"{tag} {name}" in summary
        section = html.split('<section class="target"', 1)[1]
        assert f'class="badge {word}"' in section
    hrefs = {
        h for t, a in tags(html) if t == "a" and (h := a.get("href") or "").startswith("#code-")
    }
    ids = {a["id"] for t, a in tags(html) if a.get("id")}
    assert hrefs and hrefs <= {f"#{i}" for i in ids}
    assert {f.code for f in result.findings} == {
        h[len("#code-") :].upper().replace("-", "_") for h in hrefs
    }
    assert "This workstation" in html and "Calling AE title the PACS sees" in html


def test_the_evidence_a_pacs_administrator_asks_for() -> None:
    """Per PACS: the study used, the final C-MOVE status in hex with its meaning, the counts and
    the timeline with DIMSE statuses (issue 12)."""
    from reverseprobe.model import Report, Status
    from reverseprobe.model.checklist import RunResult, TargetRun
    from reverseprobe.model.dicom import EventKind, FindResult, MoveResult, TimelineEvent
    from reverseprobe.render.html import move_evidence

    timeline = (
        TimelineEvent(0.010, EventKind.MOVE_REQUEST, None, None, {"destination": "MYSCU"}),
        TimelineEvent(0.052, EventKind.MOVE_FINAL, None, None, {"code": 0xA801}),
    )
    move = MoveResult(
        status=Status.FAIL,
        final_code=0xA801,
        final_meaning="Move Destination unknown",
        completed=0,
        failed=0,
        warning=0,
        timeline=timeline,
    )
    find = FindResult(status=Status.OK, study_uid="1.2.3.4", instances=2)
    rep = Report("move-test", {"find": find, "move": move}, [], None, 0.1)
    run = TargetRun("archive", "move-test", RunResult(status=Status.OK, target="archive",
                    command="move-test"), (), rep)  # fmt: skip
    ev = move_evidence(sample_result(), run)
    assert ev["study"] == "1.2.3.4" and ev["instances"] == 2
    assert ev["final"] == "0xA801 Move Destination unknown"
    assert ev["counts"] == {"completed": 0, "failed": 0, "warning": 0, "remaining": None}
    text = "\n".join(ev["timeline"])
    assert "C-MOVE-RQ to MYSCU" in text and "final 0xA801" in text
