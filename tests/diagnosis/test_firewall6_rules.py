"""Issue 15: the host firewall's findings per address family (diagnosis/network.py
firewall_rules), and the one story of an IPv6 dial-back that timed out: the host's ip6 rules
when they drop the port, else the router's IPv6 forward policy (diagnosis/inbound.py
ipv6_timeout_cause, diagnosis/story.py). Hand-built probe results, no network."""

from __future__ import annotations

import dataclasses

from test_rules_local import accepted, lst, sock
from test_rules_network import LAN, ifs
from test_story import CFG, inbound

from reverseprobe.addresses import classify
from reverseprobe.diagnosis import check_findings
from reverseprobe.diagnosis.network import firewall_rules
from reverseprobe.diagnosis.story import resolve
from reverseprobe.model import Finding, ProbeResult, Severity, Status
from reverseprobe.model.dicom import TcpState
from reverseprobe.model.firewall import FamilyVerdict, FirewallResult, Reading, Verdict
from reverseprobe.probes.interfaces import InterfaceAddress

V = Verdict
PC6 = "2a0c:0:0:1::2"
ACCEPT4 = Reading("nftables", True, V.ALLOWED, "tcp dport 11112 accept", "ip v4f input")
DROP6 = Reading("nftables", True, V.BLOCKED, "tcp dport 11112 drop", "ip6 v6f input", family="ipv6")
INET_DROP = Reading("nftables", True, V.BLOCKED, "tcp dport 11112 drop", "inet f input")


def fw(v4: Reading, v6: Reading | None) -> FirewallResult:
    fams = [FamilyVerdict("ipv4", v4.verdict, v4, (v4,))]
    if v6 is not None:
        fams.append(FamilyVerdict("ipv6", v6.verdict, v6, (v6,)))
    return FirewallResult(
        status=Status.OK,
        port=11112,
        platform="linux",
        readings=(v4,),
        verdict=v4.verdict,
        deciding=v4,
        families=tuple(fams),
    )


def dual_ifs() -> ProbeResult:
    """test_rules_network's LAN PC with a routed global IPv6 address beside it."""
    base = ifs(LAN)
    i = base.interfaces[0]
    v6 = InterfaceAddress(PC6, "ipv6", "64", classify(PC6))
    return dataclasses.replace(
        base, interfaces=(dataclasses.replace(i, addresses=(*i.addresses, v6)),)
    )


def probes(
    firewall: FirewallResult, dial: TcpState | None, observed: str
) -> dict[str, ProbeResult]:
    out: dict[str, ProbeResult] = {"interfaces": dual_ifs(), "firewall": firewall}
    out["listeners"] = lst(sock("::"), echoes=(accepted(),))
    if dial is not None:
        out["inbound"] = inbound(dial, listener="ok", observed=observed)
    return out


def codes(fs: list[Finding]) -> dict[str, Severity]:
    return {f.code: f.severity for f in fs}


def test_ipv6_drop_with_an_ipv6_dial_back_fails_naming_ipv6() -> None:
    p = probes(fw(ACCEPT4, DROP6), TcpState.TIMEOUT, PC6)
    (f,) = firewall_rules(fw(ACCEPT4, DROP6), p)
    assert f.code == "FIREWALL_BLOCKS" and f.severity is Severity.FAIL
    assert f.summary.startswith("Over IPv6,") and "ip6 v6f input" in f.summary
    assert "Over IPv4 it lets the connection in" in f.summary
    assert f.detail["family"] == "ipv6" and f.detail["families"] == ["ipv6"]
    assert "nft insert rule ip6 v6f input tcp dport 11112 accept" in f.fix


def test_ipv6_drop_without_measurement_is_a_warning() -> None:
    """The PACS may use IPv4, which is open: the IPv6 block is named, as a warning."""
    p = probes(fw(ACCEPT4, DROP6), None, PC6)
    (f,) = firewall_rules(fw(ACCEPT4, DROP6), p)
    assert f.code == "FIREWALL_BLOCKS" and f.severity is Severity.WARN
    assert f.detail["family"] == "ipv6"


def test_ipv6_drop_is_no_finding_when_ipv6_is_no_way_in() -> None:
    p: dict[str, ProbeResult] = {"interfaces": ifs(LAN)}  # no global IPv6 address
    assert firewall_rules(fw(ACCEPT4, DROP6), p) == []


def test_ipv4_drop_with_an_ipv6_dial_back_that_got_in_is_a_warning() -> None:
    drop4 = Reading(
        "iptables", True, V.BLOCKED, "-A INPUT -p tcp --dport 11112 -j DROP", "filter INPUT"
    )
    open6 = Reading("ip6tables", True, V.OPEN, family="ipv6")
    p = probes(fw(drop4, open6), TcpState.OPEN, PC6)
    (f,) = firewall_rules(fw(drop4, open6), p)
    assert f.severity is Severity.WARN and f.summary.startswith("Over IPv4,")
    assert "sudo iptables -I INPUT" in f.fix


def test_one_rule_for_both_families_is_one_finding() -> None:
    p = probes(fw(INET_DROP, Reading(**{**INET_DROP.__dict__, "family": "ipv6"})), None, PC6)
    out = firewall_rules(p["firewall"], p)  # type: ignore[arg-type]
    assert [f.code for f in out] == ["FIREWALL_BLOCKS"]
    assert out[0].severity is Severity.FAIL and not out[0].summary.startswith("Over")
    assert out[0].detail["families"] == ["ipv4", "ipv6"]


def test_ip6tables_fix_names_ip6tables() -> None:
    drop6 = Reading("ip6tables", True, V.DEFAULT_DROP, None, "filter INPUT", family="ipv6")
    p = probes(fw(ACCEPT4, drop6), TcpState.TIMEOUT, PC6)
    (f,) = firewall_rules(fw(ACCEPT4, drop6), p)
    assert f.severity is Severity.FAIL
    assert "sudo ip6tables -I INPUT -p tcp --dport 11112 -j ACCEPT" in f.fix


# --- one story: the host's ip6 rules or the router's IPv6 policy, never both -----------------


def story(p: dict[str, ProbeResult]) -> list[Finding]:
    return resolve(check_findings(p, CFG), p, CFG)


def test_ipv6_timeout_with_host_ip6_drop_is_the_host_firewall() -> None:
    out = story(probes(fw(ACCEPT4, DROP6), TcpState.TIMEOUT, PC6))
    c = codes(out)
    assert c["FIREWALL_BLOCKS"] is Severity.FAIL
    t = next(f for f in out if f.code == "INBOUND_TIMEOUT")
    assert t.detail.get("caused_by") == "FIREWALL_BLOCKS" and t.severity is Severity.INFO
    assert t.detail.get("likely") != "router-ipv6-policy"
    assert "router's IPv6 forward policy" not in t.summary
    assert "this PC's own IPv6 rules" in t.summary


def test_ipv6_timeout_with_host_ip6_open_is_the_router_policy() -> None:
    open6 = Reading("nftables", True, V.OPEN, family="ipv6")
    out = story(probes(fw(ACCEPT4, open6), TcpState.TIMEOUT, PC6))
    assert "FIREWALL_BLOCKS" not in codes(out)
    t = next(f for f in out if f.code == "INBOUND_TIMEOUT")
    assert t.severity is Severity.FAIL and t.detail.get("likely") == "router-ipv6-policy"
    assert not t.detail.get("caused_by")


def test_ipv4_timeout_is_not_blamed_on_an_ipv6_only_block() -> None:
    out = story(probes(fw(ACCEPT4, DROP6), TcpState.TIMEOUT, "203.0.113.5"))
    assert codes(out)["FIREWALL_BLOCKS"] is Severity.WARN
    t = next(f for f in out if f.code == "INBOUND_TIMEOUT")
    assert t.severity is Severity.FAIL and t.detail.get("caused_by") != "FIREWALL_BLOCKS"
