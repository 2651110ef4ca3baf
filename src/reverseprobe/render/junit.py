"""The checklist as JUnit XML, for CI (Jenkins `junit`, GitLab `artifacts:reports:junit`).

One <testsuite> per target (this PC's `check`, then one per PACS), one <testcase> per check:
each probe of the run (check: listeners, interfaces, public_ip, ...; move-test: echo, find,
move, get). A finding marks the probe that measured it: `fail` findings (and `warn` with
--strict) make a <failure>, a probe that timed out or broke an <error>, a probe that was skipped
without finding anything <skipped>. The layout is the Ant JUnit task's, which Jenkins and GitLab
read: <testsuites> of <testsuite> with properties, testcases, system-out and system-err. Built
with xml.etree.ElementTree; text a peer sent is stripped of characters XML 1.0 cannot carry.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reverseprobe.diagnosis.catalogue import CATALOGUE, Section
from reverseprobe.model import Finding, ProbeResult, Severity, Status, sort_findings
from reverseprobe.render.families import family_labels
from reverseprobe.textsafe import printable, xml_safe

if TYPE_CHECKING:
    from reverseprobe.model.checklist import ChecklistResult, TargetRun

# Which probe measured the findings of each section (check) or code (move-test).
_CHECK_SECTION_PROBE = {
    Section.LISTENER: "listeners",
    Section.PORT: "inbound",
    Section.INTERFACES: "interfaces",
    Section.PUBLIC: "public_ip",
    Section.ROUTER: "router",
    Section.FIREWALL: "firewall",
    Section.INBOUND: "inbound",
}
_MOVE_STEPS = ("echo", "find", "move")
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class Case:
    """One <testcase>: a probe (or the run itself) and the findings it measured."""

    name: str
    probe: ProbeResult | None
    findings: tuple[Finding, ...]


def render_junit(result: ChecklistResult) -> str:
    root = ET.Element("testsuites", name=_x(f"reverseprobe checklist: {result.site.name}"))
    totals = [0, 0, 0]
    host = result.hostname
    stamp = result.started.strftime("%Y-%m-%dT%H:%M:%S")  # Ant: ISO 8601 without a zone
    for i, run in enumerate(result.runs):
        suite = _suite(result, run, i, host, stamp)
        root.append(suite)
        for k, attr in enumerate(("tests", "failures", "errors")):
            totals[k] += int(suite.get(attr, "0"))
    root.set("tests", str(totals[0]))
    root.set("failures", str(totals[1]))
    root.set("errors", str(totals[2]))
    root.set("time", _time(result.elapsed_s))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def cases(run: TargetRun) -> list[Case]:
    """The test cases of one run, each with the findings attributed to it."""
    if run.report is None:
        return [Case(run.command, run.result, run.findings)]
    probes = dict(run.result.probes)
    owned: dict[str, list[Finding]] = {name: [] for name in probes}
    for f in run.findings:
        owned.setdefault(_owner(f, run.command, probes), []).append(f)
    return [Case(name, probes.get(name), tuple(fs)) for name, fs in owned.items()]


def _owner(f: Finding, command: str, probes: dict[str, ProbeResult]) -> str:
    entry = CATALOGUE.get(f.code)
    if entry is None:
        return "findings"
    if command == "check":
        return _CHECK_SECTION_PROBE.get(entry.section, "findings")
    if f.code == "CGET_AVAILABLE":
        return "get"
    if entry.section is Section.MOVE:
        return "move"
    # PACS_UNREACHABLE / _REJECTED_ / _ABORTED: the first DIMSE step that did not succeed.
    for step in _MOVE_STEPS:
        p = probes.get(step)
        if p is not None and p.status is not Status.OK:
            return step
    return "echo"


def _suite(
    result: ChecklistResult, run: TargetRun, index: int, host: str, stamp: str
) -> ET.Element:
    site = result.site
    name = "this PC (check)" if run.pacs is None else f"PACS {run.target} (move-test)"
    suite = ET.Element("testsuite", name=_x(name), id=str(index), package="reverseprobe.checklist")
    suite.set("timestamp", stamp)
    suite.set("hostname", _x(host))
    props = ET.SubElement(suite, "properties")
    values = {"site": site.name, "aet": site.aet, "port": str(site.port), "command": run.command}
    if run.pacs is not None:
        p = run.pacs
        values.update({"pacs.host": p.host, "pacs.port": str(p.port), "pacs.aet": p.aet})
    entry = result.entry(run)
    values["pacs_entry"] = f"{entry.aet} {entry.host or '(unknown)'} {entry.port}"
    for k, v in values.items():
        ET.SubElement(props, "property", name=k, value=_x(v))
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    classname = f"reverseprobe.checklist.{_slug(run.target)}"
    labels = family_labels(run.findings)
    for case in cases(run):
        kind = _testcase(suite, classname, case, strict=result.strict, labels=labels)
        counts["tests"] += 1
        if kind:
            counts[kind] += 1
    for attr, n in counts.items():
        suite.set(attr, str(n))
    suite.set("time", _time(run.result.elapsed_s or 0.0))
    ET.SubElement(suite, "system-out").text = _x(
        "\n".join(_finding_text(f, labels) for f in sort_findings(list(run.findings)))
    )
    ET.SubElement(suite, "system-err").text = ""
    return suite


def _testcase(
    suite: ET.Element,
    classname: str,
    case: Case,
    *,
    strict: bool,
    labels: Mapping[int, str] | None = None,
) -> str | None:
    """Append the <testcase>; returns the counter it adds to (failures/errors/skipped)."""
    probe = case.probe
    el = ET.SubElement(suite, "testcase", name=_x(case.name), classname=_x(classname))
    el.set("time", _time(probe.elapsed_s if probe and probe.elapsed_s else 0.0))
    bad = {Severity.FAIL, Severity.WARN} if strict else {Severity.FAIL}
    failed = [f for f in case.findings if f.severity in bad]
    status = probe.status if probe else None
    outcome: str | None = None
    shown: Sequence[Finding] = ()
    broken = bool(case.findings) and _incomplete(case.findings)
    if failed and not broken:
        fail = ET.SubElement(el, "failure", type=failed[0].code)
        fail.set(
            "message",
            _x("; ".join(f"{_code(f, labels)}: {printable(f.summary)}" for f in failed)),
        )
        fail.text = _x("\n\n".join(_finding_text(f, labels) for f in failed))
        outcome, shown = "failures", failed
    elif broken:
        err = ET.SubElement(el, "error", type="CHECKLIST_INCOMPLETE")
        err.set("message", _x(probe.reason if probe and probe.reason else case.findings[0].summary))
        err.text = _x("\n\n".join(_finding_text(f, labels) for f in case.findings))
        outcome, shown = "errors", case.findings
    elif status in (Status.TIMEOUT, Status.ERROR):
        assert probe is not None
        err = ET.SubElement(el, "error", type=f"probe-{status.value}")
        err.set("message", _x(probe.reason or f"the probe ended with {status.value}"))
        err.text = _x("\n\n".join(_finding_text(f, labels) for f in case.findings))
        outcome, shown = "errors", case.findings
    elif status is Status.SKIPPED and not case.findings:
        assert probe is not None
        ET.SubElement(el, "skipped", message=_x(probe.reason or "not run"))
        outcome = "skipped"
    notes = [_finding_text(f, labels) for f in case.findings if f not in shown]
    if probe is not None and probe.reason and outcome is None:
        notes.append(f"probe {status.value if status else '?'}: {probe.reason}")
    if notes:
        ET.SubElement(el, "system-out").text = _x("\n".join(notes))
    return outcome


def _incomplete(findings: Sequence[Finding]) -> bool:
    """A run that broke is an <error> (not a <failure>): nothing was measured."""
    return all(f.code == "CHECKLIST_INCOMPLETE" for f in findings)


def _code(f: Finding, labels: Mapping[int, str] | None) -> str:
    """The code, with its address family where the run reports it per family
    (render/families.py: the IPv4 mapping and the IPv6 pinhole read apart)."""
    label = (labels or {}).get(id(f))
    return f"{f.code} ({label})" if label else f.code


def _finding_text(f: Finding, labels: Mapping[int, str] | None = None) -> str:
    text = f"[{f.severity.value.upper()}] {_code(f, labels)}: {printable(f.summary)}"
    fix = f"\n  fix: {printable(f.fix)}" if f.fix and f.severity is not Severity.PASS else ""
    return text + fix


def _slug(name: str) -> str:
    """A classname part: CI tools split classnames on dots into packages."""
    return re.sub(r"[^\w-]+", "_", name).strip("_") or "target"


def _time(seconds: float) -> str:
    return f"{max(0.0, seconds):.3f}"


def _x(text: str) -> str:
    """Text for XML: controls a peer sent shown as escapes (textsafe), the rest XML 1.0 cannot
    carry (2.2 Char: surrogates, U+FFFE/FFFF) replaced."""
    return _NOT_XML.sub("\ufffd", xml_safe(text))
