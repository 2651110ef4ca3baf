"""JUnit XML: valid against the Ant/Jenkins schema, one testcase per check per target."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET

import pytest
import xmlschema

from checklist_support import every_code_result, sample_result
from conftest import TESTS
from reverseprobe.commands.checklist import ChecklistResult
from reverseprobe.render.junit import render_junit

SCHEMA = xmlschema.XMLSchema(TESTS / "data" / "junit.xsd")


def parse(result: ChecklistResult) -> ET.Element:
    xml = render_junit(result)
    SCHEMA.validate(xml)
    return ET.fromstring(xml)


def suites(root: ET.Element) -> dict[str, ET.Element]:
    return {s.get("name", ""): s for s in root.findall("testsuite")}


def outcome(case: ET.Element) -> str:
    for tag in ("failure", "error", "skipped"):
        if case.find(tag) is not None:
            return tag
    return "passed"


def test_valid_and_counts_add_up() -> None:
    for result in (sample_result(), every_code_result(), sample_result(strict=True)):
        root = parse(result)
        total = {"tests": 0, "failures": 0, "errors": 0}
        for s in root.findall("testsuite"):
            cases = s.findall("testcase")
            got = [outcome(c) for c in cases]
            assert int(s.get("tests", "-1")) == len(cases)
            assert int(s.get("failures", "-1")) == got.count("failure")
            assert int(s.get("errors", "-1")) == got.count("error")
            assert int(s.get("skipped", "-1")) == got.count("skipped")
            for k in total:
                total[k] += int(s.get(k, "0"))
        assert {k: int(root.get(k, "-1")) for k in total} == total


def test_one_suite_per_target_one_case_per_check() -> None:
    root = parse(sample_result())
    s = suites(root)
    assert list(s) == [
        "this PC (check)",
        "PACS main archive (move-test)",
        "PACS teleradiology (move-test)",
        "PACS good one (move-test)",
        "PACS broken (move-test)",
    ]
    site = {c.get("name"): outcome(c) for c in s["this PC (check)"].findall("testcase")}
    assert site == dict.fromkeys(
        ["listeners", "interfaces", "public_ip", "router", "firewall", "inbound"], "passed"
    )
    main = {c.get("name"): c for c in s["PACS main archive (move-test)"].findall("testcase")}
    assert {n: outcome(c) for n, c in main.items()} == {
        "echo": "passed",
        "find": "passed",
        "move": "failure",
        "get": "passed",
    }
    fail = main["move"].find("failure")
    assert fail is not None and fail.get("type") == "MOVE_DESTINATION_UNKNOWN"
    assert "Fix for MOVE_DESTINATION_UNKNOWN" in (fail.text or "")
    assert "CGET_AVAILABLE" in (main["get"].findtext("system-out") or "")
    tele = {
        c.get("name"): outcome(c) for c in s["PACS teleradiology (move-test)"].findall("testcase")
    }
    assert tele == {"echo": "passed", "find": "failure", "move": "skipped", "get": "skipped"}
    broken = s["PACS broken (move-test)"].findall("testcase")
    assert [(c.get("name"), outcome(c)) for c in broken] == [("move-test", "error")]
    assert broken[0].find("error").get("type") == "CHECKLIST_INCOMPLETE"  # type: ignore[union-attr]
    classnames = {c.get("classname") for c in s["PACS good one (move-test)"].iter("testcase")}
    assert classnames == {"reverseprobe.checklist.good_one"}


def test_warnings_fail_only_with_strict() -> None:
    router = "this PC (check)"
    loose = {c.get("name"): outcome(c) for c in suites(parse(sample_result()))[router]}
    strict = {c.get("name"): outcome(c) for c in suites(parse(sample_result(strict=True)))[router]}
    assert loose["router"] == "passed" and strict["router"] == "failure"


def test_every_finding_is_in_the_xml() -> None:
    result = every_code_result()
    xml = render_junit(result)
    for f in result.findings:
        assert f.code in xml


def test_probe_timeout_is_an_error() -> None:
    beta = suites(parse(every_code_result()))["PACS beta (move-test)"]
    get = next(c for c in beta.findall("testcase") if c.get("name") == "get")
    # CGET_AVAILABLE (info) sits on `get`, which timed out: an error, not a pass
    assert outcome(get) == "error"


@pytest.mark.parametrize("hostile", ["\x00\x01\x1b[31m", "\ud800", "]]>", "<x>&amp;"])
def test_hostile_text_stays_valid_xml(hostile: str) -> None:
    result = sample_result()
    run = result.runs[1]
    bad = dataclasses.replace(run.findings[0], summary=f"peer said {hostile}")
    runs = (
        result.runs[0],
        dataclasses.replace(run, findings=(bad, *run.findings[1:])),
        *result.runs[2:],
    )
    root = parse(dataclasses.replace(result, runs=runs))
    assert "peer said" in ET.tostring(root, encoding="unicode")


def test_the_schema_rejects_what_ci_would_reject() -> None:
    """A control: the schema is strict enough to catch a malformed report."""
    xml = render_junit(sample_result())
    broken = xml.replace('classname="reverseprobe.checklist.site"', "", 1)
    assert broken != xml
    assert not SCHEMA.is_valid(broken)
    renamed = xml.replace("<properties>", "<props>", 1).replace("</properties>", "</props>", 1)
    assert not SCHEMA.is_valid(renamed)
