"""The reports say what the findings say (render/): a probe that measured a failure is not
"not measured"; the PACS entry's other-family address (PacsEntry.alternatives) is shown beside
the entry; the IPv4 mapping and the IPv6 pinhole (one code, detail.family) read apart. Real
findings from diagnosis/, hand-built probe results, no network."""

from __future__ import annotations

import dataclasses

from test_firewall6_rules import ACCEPT4, DROP6, fw, probes
from test_pinhole import CTX, PC6, _pin

from checklist_support import site
from finding_support import literal
from reverseprobe.diagnosis import forward as advice
from reverseprobe.diagnosis.entry import with_other_family
from reverseprobe.diagnosis.network import firewall_rules
from reverseprobe.model import Finding, PacsEntry, ProbeResult, Report, Severity, Status
from reverseprobe.model.checklist import ChecklistResult, RunResult, TargetRun
from reverseprobe.model.dicom import TcpState
from reverseprobe.model.firewall import Reading, Verdict
from reverseprobe.model.forward import Action
from reverseprobe.render.checklist_text import render_checklist_text
from reverseprobe.render.families import family_labels
from reverseprobe.render.html import render_html
from reverseprobe.render.junit import render_junit
from reverseprobe.render.summary import target_severity
from reverseprobe.render.terminal import render_text

ENTRY = PacsEntry("MYSCU", "100.128.0.2", 11112, "Behind NAT.")


def _report(
    findings: list[Finding],
    probes_: dict[str, ProbeResult] | None = None,
    entry: PacsEntry | None = ENTRY,
    command: str = "check",
) -> Report:
    return Report(
        command=command,
        probes=probes_ or {"listeners": ProbeResult(status=Status.OK)},
        findings=findings,
        pacs_entry=entry,
        elapsed_s=0.5,
    )


def _section(text: str, heading: str) -> list[str]:
    """The indented lines under `heading` (up to the blank line that ends the section)."""
    lines = text.splitlines()
    if heading not in lines:
        return []
    out = []
    for line in lines[lines.index(heading) + 1 :]:
        if not line.strip():
            break
        out.append(line.strip())
    return out


# 1. measured failures are measured


def test_a_probe_that_measured_refusals_is_not_listed_as_not_measured() -> None:
    rep = _report(
        [literal("LISTENER_OK", "storescp answers.")],
        {
            "listeners": ProbeResult(status=Status.OK),
            "receiver": ProbeResult(status=Status.FAIL, reason="2 of 5 context(s) refused"),
            "router": ProbeResult(status=Status.SKIPPED, reason="--no-upnp"),
            "inbound": ProbeResult(status=Status.TIMEOUT, reason="cut short at 3.0 s"),
            "firewall": ProbeResult(status=Status.ERROR, reason="nft broke"),
        },
    )
    out = render_text(rep, color=False, width=120)
    missing = _section(out, "Probes not measured")
    assert missing == [
        "router skipped: --no-upnp",
        "inbound timeout: cut short at 3.0 s",
        "firewall error: nft broke",
    ]
    assert _section(out, "Probes that measured a failure") == [
        "receiver fail: 2 of 5 context(s) refused"
    ]
    assert "listeners" not in out.split("Probes", 1)[1]  # ok: shown only with --verbose
    loud = render_text(rep, color=False, width=120, verbose=True)
    assert "Probes not measured" not in loud and "receiver fail" in _section(loud, "Probes")[1]


def test_only_measured_failures_no_not_measured_heading() -> None:
    rep = _report([], {"receiver": ProbeResult(status=Status.FAIL, reason="refused")})
    out = render_text(rep, color=False, width=120)
    assert "not measured" not in out.replace("([ ? ] = not measured)", "")


def test_a_target_word_is_none_only_when_nothing_was_measured() -> None:
    assert target_severity([], Status.FAIL) is Severity.FAIL  # measured, and it failed
    for st in (Status.SKIPPED, Status.TIMEOUT, Status.ERROR):
        assert target_severity([], st) is None
    assert target_severity([], Status.OK) is Severity.PASS


# 2. the other family's entry


def test_forward_entry_shows_the_pinhole_alternative_and_which_one_is_used() -> None:
    entry = advice.with_pinhole_entry(ENTRY, _pin())
    assert entry is not None and entry.alternatives
    out = render_text(_report([], entry=entry, command="forward"), color=False, width=100)
    block = " ".join(line.strip() for line in out.split("PACS entry", 1)[1].splitlines())
    assert f"or over IPv6: MYSCU @ [{PC6}]:11112" in block
    assert "through the pinhole" in block
    assert "given 100.128.0.2:11112 it uses IPv4" in block
    assert f"given [{PC6}]:11112 it uses IPv6" in block
    assert "tries IPv6 first" in block and "RFC 8305" in block
    assert all(len(line) <= 100 for line in out.splitlines())


def test_check_entry_alternative_says_the_rule_once() -> None:
    entry = with_other_family(ENTRY, "ipv4", ("ipv6", "2a0c::2"), 11112)
    out = render_text(_report([], entry=entry), color=False, width=200)
    assert "or over IPv6: MYSCU @ [2a0c::2]:11112" in out
    assert "no forwarding is needed" in out  # what the IPv6 way needs, from the entry's note
    assert out.count("Happy Eyeballs") == 1  # the alternative's note repeats it: said once


def test_an_entry_that_is_a_host_name_says_the_pacs_may_take_either() -> None:
    entry = dataclasses.replace(
        ENTRY, host="ws.example.org", alternatives=(("ipv6", "2a0c::2", ""),)
    )
    out = render_text(_report([], entry=entry), color=False, width=200)
    assert "ws.example.org is a host name" in out and "usually tries IPv6 first" in out


def test_no_alternative_no_extra_lines() -> None:
    out = render_text(_report([]), color=False, width=120)
    assert "or over" not in out and "Which one" not in out


# 3. one code twice: the family says which


def _mapping_findings() -> list[Finding]:
    v4 = literal("UPNP_MAPPING_OK", "The router forwards 100.128.0.2:11112 to this PC.")
    (v6,) = advice.pinhole_findings(CTX, _pin(), ipv4_done=True)
    return [v4, v6]


def test_the_ipv4_mapping_and_the_ipv6_pinhole_read_apart() -> None:
    out = render_text(_report(_mapping_findings(), command="forward"), color=False, width=120)
    assert "[PASS] UPNP_MAPPING_OK (IPv4)  The router forwards" in out
    assert "[PASS] UPNP_MAPPING_OK (IPv6)  The router's IPv6 firewall" in out


def test_a_missing_pinhole_beside_the_ipv4_mapping_names_both() -> None:
    v4 = literal("UPNP_MAPPING_OK", "The router forwards 100.128.0.2:11112 to this PC.")
    (v6,) = advice.pinhole_findings(
        CTX, _pin(status=Status.FAIL, action=Action.REFUSED, error_code=606), ipv4_done=True
    )
    assert v6.code == "UPNP_MAPPING_MISSING"
    out = render_text(_report([v4, v6], command="forward"), color=False, width=120)
    assert "UPNP_MAPPING_OK (IPv4)" in out and "UPNP_MAPPING_MISSING (IPv6)" in out


def test_an_ipv4_only_report_is_unchanged() -> None:
    v4 = literal("UPNP_MAPPING_OK", "The router forwards 100.128.0.2:11112 to this PC.")
    drop4 = Reading("nftables", True, Verdict.BLOCKED, "tcp dport 11112 drop", "ip v4f input")
    (blocks,) = firewall_rules(fw(drop4, None))
    assert blocks.detail["family"] == "ipv4"  # one family read: said in detail only
    assert family_labels([v4, blocks]) == {}
    out = render_text(_report([v4, blocks]), color=False, width=120)
    assert "(IPv4)" not in out and "(IPv6)" not in out


def test_check_firewall_finding_per_family_is_labelled() -> None:
    p = probes(fw(ACCEPT4, DROP6), None, PC6)
    (f,) = firewall_rules(fw(ACCEPT4, DROP6), p)
    assert f.detail["family"] == "ipv6"
    out = render_text(_report([f]), color=False, width=120)
    assert "FIREWALL_BLOCKS (IPv6)" in out


def test_labels_are_per_target() -> None:
    v4, v6 = _mapping_findings()
    a = dataclasses.replace(v4, target="alpha")
    b = dataclasses.replace(v6, target="beta")
    assert family_labels([a, b]) == {id(b): "IPv6"}  # alpha's mapping has no IPv6 twin


# the checklist's text and HTML say the same


def _checklist(findings: list[Finding], entry: PacsEntry) -> ChecklistResult:
    rep = _report(findings, entry=entry)
    res = RunResult(
        status=Status.OK, target="site", command="check", probes=dict(rep.probes),
        pacs_entry=entry, verdict=rep.verdict.value,
    )  # fmt: skip
    return ChecklistResult(
        site=site(), runs=(TargetRun("site", "check", res, tuple(findings), rep),), elapsed_s=1.0
    )


def test_checklist_text_and_html_show_families_and_the_alternative() -> None:
    entry = with_other_family(ENTRY, "ipv4", ("ipv6", "2a0c::2"), 11112)
    result = _checklist(_mapping_findings(), entry)
    text = render_checklist_text(result, color=False, width=200)
    assert "UPNP_MAPPING_OK (IPv4)" in text and "UPNP_MAPPING_OK (IPv6)" in text
    assert "or over IPv6: MYSCU @ [2a0c::2]:11112" in text
    html = render_html(result)
    assert html.count('<span class="family mono">(IPv6)</span>') == 1
    assert html.count('<span class="family mono">(IPv4)</span>') == 1
    assert "or over IPv6: MYSCU @ [2a0c::2]:11112" in html
    assert "given [2a0c::2]:11112 it uses IPv6" in html
    xml = render_junit(result)
    assert "[PASS] UPNP_MAPPING_OK (IPv4):" in xml and "[PASS] UPNP_MAPPING_OK (IPv6):" in xml


def test_junit_failure_message_names_the_family() -> None:
    p = probes(fw(ACCEPT4, DROP6), TcpState.TIMEOUT, PC6)
    (f,) = firewall_rules(fw(ACCEPT4, DROP6), p)
    assert f.severity is Severity.FAIL
    xml = render_junit(_checklist([f], ENTRY))
    assert 'message="FIREWALL_BLOCKS (IPv6): Over IPv6,' in xml
