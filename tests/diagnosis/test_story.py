"""diagnosis/story.py: every probe's findings seen together tell one story (hand-built reports,
no network). The pair table: over every combination of listener, router, inbound and public
address below, no fix of one finding tells the user to do what another says is done or passed,
the forwarding advice appears once, and no fix text appears twice."""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Mapping, Sequence

import pytest
from test_rules_local import accepted, lst, sock
from test_rules_network import LAN, PUBLIC, ifs, mapping, pub, router

from finding_support import literal
from reverseprobe.addresses import classify
from reverseprobe.config import CheckConfig
from reverseprobe.diagnosis import check_findings
from reverseprobe.diagnosis.entry import check_entry
from reverseprobe.diagnosis.path import hop_states
from reverseprobe.diagnosis.story import CutShort, resolve
from reverseprobe.model import Finding, ProbeResult, Report, Severity, Status
from reverseprobe.model.dicom import DicomResult, TcpState
from reverseprobe.model.inbound import Fingerprint, InboundMode, InboundResult, PortProbe
from reverseprobe.model.path import Hop
from reverseprobe.probes.interfaces import Interface, InterfaceAddress
from reverseprobe.probes.router import RouterResult
from reverseprobe.render.terminal import verdict_line

CFG = CheckConfig(port=11112, aet="MYSCU", reflector="http://203.0.113.9:8470/")
FP = Fingerprint(DicomResult.ACCEPTED, "1.2.276.0.7230010.3.0.3.6.7", "OFFIS_DCMTK_367")
OUTSIDE = "http://198.51.100.9:8470/"

LISTENERS: Mapping[str, ProbeResult | None] = {
    "ok": lst(sock(), echoes=(accepted(),)),
    "none": lst(),
    "loopback": lst(sock("127.0.0.1"), echoes=(accepted(),)),
}
ROUTERS: Mapping[str, ProbeResult | None] = {
    "skipped": RouterResult(status=Status.SKIPPED, reason="not checked: --no-upnp", port=11112),
    "no-igd": router(igd=False),
    "mapped": router(mp=mapping()),
    "missing": router(mp=None),
    "other-host": router(mp=mapping("192.168.2.77")),
}


def inbound(
    tcp: TcpState | None, *, listener: str, observed: str = PUBLIC, url: str = OUTSIDE
) -> InboundResult:
    if tcp is None:
        return InboundResult(status=Status.SKIPPED, reason="no reflector", port=11112)
    temp = listener == "none"
    dicom = DicomResult.ACCEPTED if tcp is TcpState.OPEN else DicomResult.NOT_TESTED
    main = PortProbe(port=11112, tcp=tcp, dicom=dicom)
    if dicom is DicomResult.ACCEPTED:
        main = PortProbe(
            11112, tcp, dicom, None, FP.implementation_class_uid, FP.implementation_version_name
        )
    return InboundResult(
        status=Status.OK,
        port=11112,
        reflector=url,
        mode=InboundMode.TEMPORARY_LISTENER if temp else InboundMode.EXISTING_LISTENER,
        observed_ip=observed,
        results=(main,),
        nonce_seen=True if temp and tcp is TcpState.OPEN else (False if temp else None),
        local_fingerprints=() if temp else (FP,),
        remote_fingerprint=Fingerprint.of_probe(main) if dicom is DicomResult.ACCEPTED else None,
    )


INBOUNDS = {
    "skipped": None,
    "ok": TcpState.OPEN,
    "refused": TcpState.REFUSED,
    "timeout": TcpState.TIMEOUT,
    "inside": TcpState.OPEN,
}


def probes_for(listener: str, rt: str, inb: str, public: bool) -> dict[str, ProbeResult]:
    out: dict[str, ProbeResult] = {"interfaces": ifs(LAN)}
    lr, rr = LISTENERS[listener], ROUTERS[rt]
    assert lr is not None and rr is not None
    out["listeners"], out["router"] = lr, rr
    if inb == "inside":
        out["inbound"] = inbound(
            TcpState.OPEN, listener=listener, observed=LAN, url="http://192.168.2.1:8472/"
        )
    else:
        out["inbound"] = inbound(INBOUNDS[inb], listener=listener)
    if public:
        out["public_ip"] = pub(PUBLIC, PUBLIC)
    return out


def story(probes: Mapping[str, ProbeResult], cfg: CheckConfig = CFG) -> list[Finding]:
    return resolve(check_findings(probes, cfg), probes, cfg)


SCENARIOS = list(itertools.product(LISTENERS, ROUTERS, INBOUNDS, (False, True)))
FORWARDING = re.compile(r"forward tcp|reverseprobe forward|forwarding rule", re.IGNORECASE)
# What a pass (or a done fact) says, and the advice that would contradict it.
CONTRADICTS: Mapping[str, re.Pattern[str]] = {
    "UPNP_MAPPING_OK": FORWARDING,
    "INBOUND_OK": re.compile(FORWARDING.pattern + r"|turn on upnp", re.IGNORECASE),
    "LISTENER_OK": re.compile(r"start the (dicom )?receiver", re.IGNORECASE),
}


def _pairs() -> set[tuple[str, str]]:
    seen: set[tuple[str, str]] = set()
    for sc in SCENARIOS:
        found = {f.code for f in story(probes_for(*sc))}
        seen |= {(a, b) for a in found for b in found if a != b}
    return seen


def assert_one_story(found: Sequence[Finding]) -> None:
    """The pair rules over one report's findings (also applied to the lab's real reports,
    tests/integration/test_story_lab.py): no fix contradicts a pass, forwarding advice at most once,
    no fix repeated, a finding explained by another names one that is there."""
    passed = {f.code for f in found if f.severity is Severity.PASS}
    for b in passed & set(CONTRADICTS):
        # renewing a mapping that works (UPNP_MAPPING_OK's own fix) is upkeep, no contradiction
        for a in (f for f in found if f.code not in (b, "UPNP_MAPPING_OK")):
            assert not CONTRADICTS[b].search(a.fix), f"{a.code}'s fix contradicts {b}: {a.fix}"
    forwarding = [
        f.code for f in found if FORWARDING.search(f.fix) and f.code != "UPNP_MAPPING_OK"
    ]  # renewing a mapping that works is not the advice to make one
    assert len(forwarding) <= 1, f"forwarding advice repeated in {forwarding}"
    fixes = [f.fix for f in found if f.fix]
    assert len(fixes) == len(set(fixes))
    # a finding explained by another points at one that is in the report
    codes = {f.code for f in found}
    for f in found:
        if f.detail.get("caused_by"):
            assert f.detail["caused_by"] in codes and f.severity is Severity.INFO and not f.fix


def test_the_scenarios_cover_the_pairs_that_matter() -> None:
    pairs = _pairs()
    for pair in [
        ("LISTENER_LOOPBACK_ONLY", "INBOUND_REFUSED"),
        ("UPNP_MAPPING_OK", "NAT_DETECTED"),
        ("INBOUND_OK", "NAT_DETECTED"),
        ("LISTENER_NONE", "UPNP_MAPPING_OK"),
        ("UPNP_MAPPING_MISSING", "INBOUND_REFUSED"),
        ("REFLECTOR_INSIDE", "UPNP_MAPPING_OK"),
    ]:
        assert pair in pairs, pair
    assert len(pairs) > 60  # every co-occurring pair below is held to the rules


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: "-".join(map(str, s)))
def test_no_fix_contradicts_a_pass_and_each_fix_appears_once(
    scenario: tuple[str, str, str, bool],
) -> None:
    assert_one_story(story(probes_for(*scenario)))


def test_loopback_listener_with_a_mapping_blames_the_listener_not_the_router() -> None:
    found = story(probes_for("loopback", "mapped", "refused", True))
    by = {f.code: f for f in found}
    refused = by["INBOUND_REFUSED"]
    assert refused.detail["caused_by"] == "LISTENER_LOOPBACK_ONLY"
    assert refused.severity is Severity.INFO and refused.fix == ""
    assert by["LISTENER_LOOPBACK_ONLY"].severity is Severity.FAIL
    hops = {h.hop: h.severity for h in hop_states(found)}
    assert hops[Hop.ROUTER] is not Severity.FAIL and hops[Hop.LISTENER] is Severity.FAIL


def test_loopback_listener_without_a_measured_mapping_says_the_listener_first() -> None:
    found = story(probes_for("loopback", "no-igd", "refused", False))
    refused = next(f for f in found if f.code == "INBOUND_REFUSED")
    assert refused.severity is Severity.FAIL
    assert refused.fix.startswith("First make the receiver listen on all interfaces")


def test_nat_detected_after_a_proven_way_in_does_not_say_forward() -> None:
    for rt, inb in (("mapped", "skipped"), ("mapped", "ok"), ("no-igd", "ok")):
        nat = next(f for f in story(probes_for("ok", rt, inb, True)) if f.code == "NAT_DETECTED")
        assert PUBLIC in nat.fix and not FORWARDING.search(nat.fix), (rt, inb, nat.fix)


def test_a_missing_mapping_the_dial_back_proved_is_the_one_failing_cause() -> None:
    found = story(probes_for("ok", "missing", "refused", True))
    by = {f.code: f for f in found}
    assert by["UPNP_MAPPING_MISSING"].severity is Severity.FAIL
    assert by["INBOUND_REFUSED"].detail["caused_by"] == "UPNP_MAPPING_MISSING"
    assert [f.code for f in found if FORWARDING.search(f.fix)] == ["UPNP_MAPPING_MISSING"]
    assert "see UPNP_MAPPING_MISSING" in by["NAT_DETECTED"].fix


def test_nothing_listening_is_not_a_listener_pass() -> None:
    probes = probes_for("none", "mapped", "ok", True)
    found = story(probes)
    hops = {h.hop: h.severity for h in hop_states(found)}
    assert hops[Hop.LISTENER] is not Severity.PASS
    assert hops[Hop.ROUTER] is Severity.PASS  # the dial-back crossed it
    report = Report("check", probes, found, None, 1.0)
    line = verdict_line(report, color=False)
    assert "nothing listens: start the receiver before the move" in line


def test_an_unreachable_pacs_gets_no_green_hops() -> None:
    found = [
        literal("LISTENER_OK", "ok"),
        literal("UPNP_MAPPING_OK", "ok"),
        literal("INBOUND_OK", "ok"),
        literal("PACS_UNREACHABLE", "no route", "fix it"),
    ]
    states = hop_states(found)
    assert [h.severity for h in states if h.hop is not Hop.PACS] == [None] * 4
    assert states[0].severity is Severity.FAIL


@pytest.mark.parametrize(
    ("observed", "url", "why"),
    [
        (LAN, "http://192.168.2.1:8472/", "private"),
        ("100.64.3.4", "http://100.64.0.1:8472/", "100.64.0.0/10"),
        ("127.0.0.1", "http://127.0.0.1:8472/", "loopback"),
        (PUBLIC, "http://192.168.2.1:8472/", "subnet"),
    ],
)
def test_an_inside_reflector_proves_nothing(observed: str, url: str, why: str) -> None:
    probes = probes_for("ok", "no-igd", "skipped", False)
    probes["interfaces"] = dataclasses.replace(
        ifs(LAN),
        interfaces=(
            Interface(
                "eth0", True, None, (InterfaceAddress(LAN, "ipv4", "255.255.255.0", classify(LAN)),)
            ),
        ),
    )
    probes["inbound"] = inbound(TcpState.OPEN, listener="ok", observed=observed, url=url)
    found = story(probes)
    codes = {f.code: f for f in found}
    assert "REFLECTOR_INSIDE" in codes and why in codes["REFLECTOR_INSIDE"].summary
    assert codes["REFLECTOR_INSIDE"].severity is Severity.WARN
    assert not {"INBOUND_OK", "NAT_NONE", "NAT_DOUBLE"} & set(codes)
    assert codes["REFLECTOR_INSIDE"].detail["dial_back"][0]["code"] == "INBOUND_OK"
    entry = check_entry(probes, CFG)
    assert entry.host != observed or observed == LAN  # never the observed address as public
    assert "no problem" not in entry.note.lower()
    strict = Report("check", probes, found, entry, 1.0, strict=True)
    assert strict.verdict is Severity.FAIL  # --strict makes the warning fail


def test_a_public_address_on_this_pc_is_not_an_inside_reflector() -> None:
    probes: dict[str, ProbeResult] = {"interfaces": ifs("198.51.100.7", lan="198.51.100.7")}
    probes["inbound"] = inbound(TcpState.OPEN, listener="ok", observed="198.51.100.7")
    probes["listeners"] = LISTENERS["ok"]  # type: ignore[assignment]
    codes = {f.code for f in story(probes)}
    assert "REFLECTOR_INSIDE" not in codes and {"INBOUND_OK", "NAT_NONE"} <= codes


def test_probes_cut_short_are_not_network_facts() -> None:
    probes = probes_for("ok", "no-igd", "skipped", False)
    probes["inbound"] = ProbeResult(status=Status.TIMEOUT, reason="deadline", elapsed_s=0.7)
    cut = {"router": CutShort(0.5, 6.6), "inbound": CutShort(0.7, 4.1)}
    found = resolve(check_findings(probes, CFG), probes, CFG, cut_short=cut)
    codes = [f.code for f in found]
    assert "UPNP_UNAVAILABLE" not in codes
    assert codes.count("INBOUND_NOT_TESTED") == 1
    nt = next(f for f in found if f.code == "INBOUND_NOT_TESTED")
    assert "not measured in time (0.7 s)" in nt.summary and "--timeout 7" in nt.fix
    assert nt.severity is Severity.WARN
