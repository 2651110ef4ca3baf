"""rules/network.py and rules/entry.py on hand-built probe results (no network)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from reverseprobe.addresses import classify
from reverseprobe.config import CheckConfig
from reverseprobe.diagnosis import check_findings
from reverseprobe.diagnosis.entry import check_entry as pacs_entry
from reverseprobe.diagnosis.nat import public_view
from reverseprobe.diagnosis.network import rules
from reverseprobe.model import Finding, ProbeResult, Severity, Status
from reverseprobe.portmap.igd import PortMapping
from reverseprobe.probes.firewall import FirewallResult
from reverseprobe.probes.fwparse.model import Reading, Verdict
from reverseprobe.probes.interfaces import Interface, InterfaceAddress, InterfacesResult
from reverseprobe.probes.public_ip import PublicIpResult, SourceAnswer
from reverseprobe.probes.router import RouterResult

CFG = CheckConfig(port=11112, aet="MYSCU")
LAN = "192.168.2.2"
PUBLIC = "100.128.0.2"


def ifs(*addrs: str, lan: str | None = LAN) -> InterfacesResult:
    return InterfacesResult(
        status=Status.OK,
        interfaces=(
            Interface(
                name="eth0",
                up=True,
                tunnel=None,
                addresses=tuple(InterfaceAddress(a, "ipv4", None, classify(a)) for a in addrs),
            ),
        ),
        default_gateway="192.168.2.1",
        default_interface="eth0",
        source_address=lan,
        source_interface="eth0",
    )


def pub(*addresses: str | None, status: Status = Status.OK) -> PublicIpResult:
    answers = tuple(
        SourceAnswer(f"https://ip{i}.example/", a, None if a else "timed out", 10.0)
        for i, a in enumerate(addresses)
    )
    got = [a for a in addresses if a]
    return PublicIpResult(
        status=status if got or status is not Status.OK else Status.FAIL,
        reason=None if got else "no public-IP service answered",
        address=got[0] if got else None,
        answers=answers,
        consistent=(len(set(got)) == 1) if len(got) > 1 else None,
    )


def mapping(client: str = LAN, iport: int = 11112, enabled: bool = True) -> PortMapping:
    return PortMapping(11112, "TCP", client, iport, "reverseprobe", enabled, 3600)


def router(
    *,
    external: str | None = PUBLIC,
    igd: bool = True,
    mp: PortMapping | None = None,
    checked: bool = True,
    natpmp: tuple[str | None, int | None] = (None, None),
    error: str | None = None,
) -> RouterResult:
    return RouterResult(
        status=Status.OK,
        port=11112,
        gateway="192.168.2.1",
        lan_address=LAN if igd else None,
        igd_location="http://192.168.2.1:5000/rootDesc.xml" if igd else None,
        connection_status="Connected" if igd else None,
        external_ip=external if igd else None,
        mapping=mp,
        mapping_checked=checked and igd,
        upnp_error=error,
        natpmp_external_ip=natpmp[0],
        natpmp_result=natpmp[1],
    )


@dataclass(frozen=True, kw_only=True)
class FakeInbound(ProbeResult):
    observed_ip: str | None = None


def codes(findings: list[Finding]) -> dict[str, Severity]:
    return {f.code: f.severity for f in findings}


def run(**probes: ProbeResult) -> list[Finding]:
    return rules(probes, CFG)


# --- public address and NAT ---------------------------------------------------------------


def test_behind_nat_with_a_mapping_to_this_pc() -> None:
    found = run(interfaces=ifs(LAN), public_ip=pub(PUBLIC, PUBLIC), router=router(mp=mapping()))
    assert codes(found) == {"NAT_DETECTED": Severity.INFO, "UPNP_MAPPING_OK": Severity.PASS}
    nat = next(f for f in found if f.code == "NAT_DETECTED")
    assert PUBLIC in nat.summary and LAN in nat.summary
    assert "forward TCP 11112" in nat.fix and "reverseprobe forward --upnp" in nat.fix
    assert "dynamic" in nat.fix


def test_no_nat_when_the_public_address_is_local() -> None:
    found = run(interfaces=ifs("198.51.100.7", lan="198.51.100.7"), public_ip=pub("198.51.100.7"))
    assert codes(found) == {"NAT_NONE": Severity.INFO}


def test_public_ip_unknown_and_not_checked() -> None:
    assert "PUBLIC_IP_UNKNOWN" in codes(run(interfaces=ifs(LAN), public_ip=pub(None, None)))
    f = next(f for f in run(public_ip=pub(None)) if f.code == "PUBLIC_IP_UNKNOWN")
    assert f.severity is Severity.WARN and "https://ip0.example/" in f.detail["errors"]
    skipped = PublicIpResult(status=Status.SKIPPED, reason="not checked: --no-public-ip")
    assert "PUBLIC_IP_UNKNOWN" not in codes(run(interfaces=ifs(LAN), public_ip=skipped))


def test_private_lan_and_unknown_public_address_is_still_nat() -> None:
    found = codes(run(interfaces=ifs(LAN), public_ip=pub(None)))
    assert found["NAT_DETECTED"] is Severity.INFO and found["PUBLIC_IP_UNKNOWN"] is Severity.WARN


def test_inconsistent_sources_include_the_reflector() -> None:
    found = run(
        interfaces=ifs(LAN),
        public_ip=pub(PUBLIC),
        inbound=FakeInbound(status=Status.OK, observed_ip="203.0.113.50"),
    )
    f = next(f for f in found if f.code == "PUBLIC_IP_INCONSISTENT")
    assert "reflector says 203.0.113.50" in f.summary
    # two services agree, the reflector disagrees: the vote goes to the majority
    view = public_view(
        {
            "public_ip": pub(PUBLIC, PUBLIC),
            "inbound": FakeInbound(status=Status.OK, observed_ip="203.0.113.50"),
        }
    )
    assert view.address == PUBLIC and view.consistent is False


def test_reflector_alone_gives_the_public_address() -> None:
    skipped = PublicIpResult(status=Status.SKIPPED, reason="--no-public-ip")
    view = public_view(
        {
            "interfaces": ifs(LAN),
            "public_ip": skipped,
            "inbound": FakeInbound(status=Status.OK, observed_ip=PUBLIC),
        }
    )
    assert view.address == PUBLIC and view.behind_nat and view.checked


@pytest.mark.parametrize(
    ("external", "why"),
    [
        ("", "no external address"),
        ("100.64.0.2", "100.64.0.0/10"),
        ("10.0.0.2", "private"),
        ("93.184.216.34", "not the public address"),
    ],
)
def test_double_nat(external: str, why: str) -> None:
    found = run(
        interfaces=ifs(LAN), public_ip=pub(PUBLIC), router=router(external=external, mp=mapping())
    )
    c = codes(found)
    assert c["NAT_DOUBLE"] is Severity.FAIL and "NAT_DETECTED" not in c
    assert c["UPNP_MAPPING_OK"] is Severity.INFO  # the mapping is there, but cannot help
    f = next(f for f in found if f.code == "NAT_DOUBLE")
    assert why in f.summary and "ISP" in f.fix


def test_router_external_alone_when_services_are_skipped() -> None:
    skipped = PublicIpResult(status=Status.SKIPPED, reason="--no-public-ip")
    view = public_view({"interfaces": ifs(LAN), "public_ip": skipped, "router": router()})
    assert view.address == PUBLIC and view.answers == (("router", PUBLIC),)
    cg = public_view(
        {"interfaces": ifs(LAN), "public_ip": skipped, "router": router(external="100.64.0.2")}
    )
    assert cg.address is None and cg.double_nat and cg.behind_nat


def test_natpmp_external_address_counts_when_upnp_is_absent() -> None:
    rt = router(igd=False, natpmp=("100.64.0.2", 0))
    c = codes(run(interfaces=ifs(LAN), public_ip=pub(PUBLIC), router=rt))
    assert c["NAT_DOUBLE"] is Severity.FAIL
    assert c["UPNP_UNAVAILABLE"] is Severity.WARN
    rt3 = router(igd=False, natpmp=(None, 3))  # RFC 6886 "Network Failure"
    assert "NAT_DOUBLE" in codes(run(interfaces=ifs(LAN), public_ip=pub(PUBLIC), router=rt3))


# --- UPnP ---------------------------------------------------------------------------------


def test_upnp_unavailable_is_info_without_nat_and_warn_behind_it() -> None:
    local = run(interfaces=ifs("198.51.100.7", lan="198.51.100.7"), public_ip=pub("198.51.100.7"),
                router=router(igd=False))  # fmt: skip
    assert codes(local)["UPNP_UNAVAILABLE"] is Severity.INFO
    nat = run(
        interfaces=ifs(LAN), public_ip=pub(PUBLIC), router=router(igd=False, natpmp=(PUBLIC, 0))
    )
    f = next(f for f in nat if f.code == "UPNP_UNAVAILABLE")
    assert f.severity is Severity.WARN
    assert "forward --natpmp" in f.summary and f"{LAN}:11112" in f.fix


def test_mapping_missing_other_host_wrong_port_disabled() -> None:
    base = {"interfaces": ifs(LAN), "public_ip": pub(PUBLIC)}
    missing = next(f for f in rules({**base, "router": router(mp=None)}, CFG))
    assert missing.code == "NAT_DETECTED"
    c = codes(rules({**base, "router": router(mp=None)}, CFG))
    assert c["UPNP_MAPPING_MISSING"] is Severity.WARN
    other = [f for f in rules({**base, "router": router(mp=mapping("192.168.2.3"))}, CFG)]
    f = next(f for f in other if f.code == "UPNP_MAPPING_OTHER_HOST")
    assert f.severity is Severity.FAIL and "192.168.2.3:11112" in f.summary
    assert f.detail["mapping"]["internal_client"] == "192.168.2.3"
    wrong = rules({**base, "router": router(mp=mapping(iport=11113))}, CFG)
    f = next(f for f in wrong if f.code == "UPNP_MAPPING_MISSING")
    assert "port 11113, not 11112" in f.summary
    off = rules({**base, "router": router(mp=mapping(enabled=False))}, CFG)
    assert "disabled" in next(f for f in off if f.code == "UPNP_MAPPING_MISSING").summary


def test_mapping_not_read_claims_nothing() -> None:
    rt = router(mp=None, checked=False, error="GetSpecificPortMappingEntry: timeout")
    c = codes(run(interfaces=ifs(LAN), public_ip=pub(PUBLIC), router=rt))
    assert "UPNP_MAPPING_MISSING" not in c and "UPNP_MAPPING_OK" not in c
    assert c["UPNP_UNAVAILABLE"] is Severity.WARN


def test_skipped_or_timed_out_router_claims_nothing() -> None:
    for st in (Status.SKIPPED, Status.TIMEOUT):
        rt = RouterResult(status=st, port=11112)
        c = codes(run(interfaces=ifs(LAN), public_ip=pub(PUBLIC), router=rt))
        assert not any(k.startswith("UPNP") for k in c)


# --- firewall -----------------------------------------------------------------------------


def fw(
    verdict: Verdict | None, reading: Reading | None, managers: tuple[str, ...] = ()
) -> FirewallResult:
    return FirewallResult(
        status=Status.OK,
        port=11112,
        platform="linux",
        interface="eth0",
        readings=(reading,) if reading else (),
        verdict=verdict,
        deciding=reading,
        managers=managers,
    )


def test_firewall_blocks_names_the_rule_and_the_command() -> None:
    r = Reading(
        "nftables", True, Verdict.BLOCKED, "tcp dport 11112 drop (handle 4)", "inet filter input"
    )
    f = next(iter(run(firewall=fw(Verdict.BLOCKED, r))))
    assert f.code == "FIREWALL_BLOCKS" and f.severity is Severity.FAIL
    assert "tcp dport 11112 drop" in f.summary
    assert "nft insert rule inet filter input tcp dport 11112 accept" in f.fix


def test_firewall_complete_default_drop_blocks() -> None:
    """A complete reading whose verdict is the default (ufw's deny (incoming), a chain's policy
    drop) is a fail: nothing else could let the connection in."""
    d = Reading("ufw", True, Verdict.DEFAULT_DROP, note="default incoming policy: deny")
    f = next(iter(run(firewall=fw(Verdict.DEFAULT_DROP, d, ("ufw",)))))
    assert f.code == "FIREWALL_BLOCKS" and f.severity is Severity.FAIL
    assert "sudo ufw allow 11112/tcp" in f.fix and "forward --firewall" in f.fix
    n = Reading("nftables", True, Verdict.DEFAULT_DROP, None, "inet filter input")
    partial = replace(fw(Verdict.DEFAULT_DROP, n), unread=("ufw: permission denied",))
    assert next(iter(run(firewall=partial))).code == "FIREWALL_BLOCKS"  # the kernel's own drop


def test_firewall_may_block_partial_default_drop_and_conditional() -> None:
    d = Reading("ufw", True, Verdict.DEFAULT_DROP, note="default incoming policy: deny")
    partial = replace(fw(Verdict.DEFAULT_DROP, d, ("ufw",)), unread=("nftables: not permitted",))
    f = next(iter(run(firewall=partial)))
    assert f.code == "FIREWALL_MAY_BLOCK" and "nftables: not permitted" in f.summary
    m = Reading("macos", True, Verdict.DEFAULT_DROP, where="application firewall")
    assert next(
        iter(run(firewall=replace(fw(Verdict.DEFAULT_DROP, m), platform="darwin")))
    ).code == (
        "FIREWALL_MAY_BLOCK"
    )  # the listener's program is not known: per-program rules cannot be matched
    c = Reading("iptables", True, Verdict.CONDITIONAL, where="filter INPUT",
                note="TCP 11112 is accepted only when: -s 10.0.0.0/8")  # fmt: skip
    f = next(iter(run(firewall=fw(Verdict.CONDITIONAL, c))))
    assert f.code == "FIREWALL_MAY_BLOCK" and "10.0.0.0/8" in f.summary


@pytest.mark.parametrize("verdict", [Verdict.ALLOWED, Verdict.OPEN, Verdict.UNKNOWN, None])
def test_firewall_claims_nothing_otherwise(verdict: Verdict | None) -> None:
    r = Reading("nftables", True, verdict) if verdict else None
    assert run(firewall=fw(verdict, r)) == []
    unread = FirewallResult(status=Status.ERROR, reason="nft: Operation not permitted", port=1,
                            platform="linux")  # fmt: skip
    assert run(firewall=unread) == []


# --- the PACS entry -----------------------------------------------------------------------


def test_entry_names_the_public_address_behind_nat() -> None:
    e = pacs_entry({"interfaces": ifs(LAN), "public_ip": pub(PUBLIC)}, CFG)
    assert (e.aet, e.host, e.port) == ("MYSCU", PUBLIC, 11112)
    assert "forward TCP 11112 to 192.168.2.2:11112" in e.note
    assert "dynamic public address" in e.note and LAN in e.note


def test_entry_without_nat_unknown_and_not_checked() -> None:
    local = pacs_entry({"interfaces": ifs("198.51.100.7", lan="198.51.100.7"),
                        "public_ip": pub("198.51.100.7")}, CFG)  # fmt: skip
    assert local.host == "198.51.100.7"
    unknown = pacs_entry({"interfaces": ifs(LAN), "public_ip": pub(None)}, CFG)
    assert unknown.host is None and "unknown" in unknown.note
    skipped = PublicIpResult(status=Status.SKIPPED, reason="--no-public-ip")
    e = pacs_entry({"interfaces": ifs(LAN), "public_ip": skipped}, CFG)
    assert e.host == LAN and "--no-public-ip" in e.note
    assert pacs_entry({}, CFG).host is None


def test_entry_double_nat_and_inconsistent() -> None:
    e = pacs_entry(
        {"interfaces": ifs(LAN), "public_ip": pub(PUBLIC, "203.0.113.5", PUBLIC),
         "router": router(external="100.64.0.2")},
        CFG,
    )  # fmt: skip
    assert e.host == PUBLIC and "double NAT" in e.note and "disagree" in e.note


def test_all_rules_together_through_the_registry() -> None:
    probes = {"interfaces": ifs(LAN), "public_ip": pub(PUBLIC), "router": router(mp=None)}
    found = codes(check_findings(probes, CFG))
    assert {"NAT_DETECTED", "UPNP_MAPPING_MISSING"} <= set(found)
