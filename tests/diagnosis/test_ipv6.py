"""IPv6 (issue 15): addresses compared per family, listener families, dual-stack listeners.

The pure tests rebuild the measured lab case: a dual-stack line (NATed IPv4 beside a routed
global IPv6 address), the reflector reached over IPv6. The socket tests bind on loopback only.
"""

from __future__ import annotations

import socket

import pytest

from reverseprobe.addresses import classify
from reverseprobe.config import CheckConfig
from reverseprobe.diagnosis import check_findings
from reverseprobe.diagnosis.entry import check_entry
from reverseprobe.diagnosis.nat import family_of, public_view
from reverseprobe.diagnosis.story import resolve
from reverseprobe.dicom.echo import echo
from reverseprobe.dicom.scp import VerificationScp, unmapped
from reverseprobe.model import Finding, ProbeResult, Severity, Status
from reverseprobe.model.check import ListenersResult, ListeningSocket
from reverseprobe.model.dicom import DicomResult, TcpState
from reverseprobe.model.inbound import InboundMode, InboundResult, PortProbe
from reverseprobe.probes.interfaces import Interface, InterfaceAddress, InterfacesResult
from reverseprobe.probes.listeners import listening_sockets
from reverseprobe.probes.public_ip import PublicIpResult, SourceAnswer
from reverseprobe.probes.router import RouterResult

CFG = CheckConfig(port=11112, aet="MYSCU")
LAN = "192.168.2.2"
V4_PUBLIC = "100.128.0.2"  # the lab router's WAN address: public (outside 100.64/10)
V6 = "2a0c:5a80:1::2"  # a routed global address on the PC (no NAT66)


def ifs() -> InterfacesResult:
    addrs = (
        InterfaceAddress(LAN, "ipv4", None, classify(LAN)),
        InterfaceAddress(V6, "ipv6", None, classify(V6)),
    )
    return InterfacesResult(
        status=Status.OK,
        interfaces=(Interface(name="eth0", up=True, tunnel=None, addresses=addrs),),
        default_gateway="192.168.2.1",
        default_interface="eth0",
        source_address=LAN,
        source_interface="eth0",
    )


def router(external: str = V4_PUBLIC) -> RouterResult:
    return RouterResult(
        status=Status.OK,
        port=11112,
        gateway="192.168.2.1",
        lan_address=LAN,
        igd_location="http://192.168.2.1:5000/rootDesc.xml",
        connection_status="Connected",
        external_ip=external,
        mapping=None,
        mapping_checked=False,
    )


def pub(*addresses: str) -> PublicIpResult:
    answers = tuple(
        SourceAnswer(f"https://ip{i}.test/", a, None, 5.0) for i, a in enumerate(addresses)
    )
    return PublicIpResult(status=Status.OK, address=addresses[0], answers=answers)


def inbound(tcp: TcpState, observed: str = V6) -> InboundResult:
    dicom = DicomResult.ACCEPTED if tcp is TcpState.OPEN else DicomResult.NOT_TESTED
    return InboundResult(
        status=Status.OK,
        port=11112,
        reflector="http://[2a0c:5a80:9::1]:8080",
        mode=InboundMode.EXISTING_LISTENER,
        observed_ip=observed,
        results=(PortProbe(port=11112, tcp=tcp, dicom=dicom),),
    )


def listeners(*socks: tuple[str, str], v6only: bool | None = None) -> ListenersResult:
    return ListenersResult(
        status=Status.OK,
        port=11112,
        sockets=tuple(ListeningSocket(a, 11112, f, 4242, "storescp", v6only) for a, f in socks),
        bindv6only=False,
    )


def story(**probes: ProbeResult) -> list[Finding]:
    return resolve(check_findings(probes, CFG), probes, CFG)


def by_code(findings: list[Finding]) -> dict[str, Finding]:
    return {f.code: f for f in findings}


# --- per-family comparison ------------------------------------------------------------------


def test_family_of() -> None:
    assert family_of("10.0.0.1") == "ipv4"
    assert family_of("::ffff:10.0.0.1") == "ipv4"
    assert family_of(V6) == "ipv6"
    assert family_of("nonsense") is None


def test_ipv6_reflector_answer_is_not_compared_with_the_ipv4_router_address() -> None:
    """The measured defect: NAT_DOUBLE 'the router's external address 100.128.0.2 is not the
    public address 2a0c:...' (an IPv4 address compared with an IPv6 one)."""
    probes: dict[str, ProbeResult] = {
        "interfaces": ifs(),
        "router": router(),
        "inbound": inbound(TcpState.OPEN),
    }
    view = public_view(probes)
    assert view.double_nat is None
    assert view.family == "ipv6" and view.address == V6 and view.local is True
    found = by_code(check_findings(probes, CFG))
    assert "NAT_DOUBLE" not in found


def test_dual_stack_answers_do_not_disagree_and_ipv4_leads() -> None:
    probes: dict[str, ProbeResult] = {
        "interfaces": ifs(),
        "public_ip": pub(V4_PUBLIC, V4_PUBLIC),
        "router": router(),
        "inbound": inbound(TcpState.OPEN),
    }
    view = public_view(probes)
    assert view.consistent is True and view.double_nat is None
    assert view.family == "ipv4" and view.address == V4_PUBLIC
    assert view.of("ipv6") is not None and view.of("ipv6").local is True  # type: ignore[union-attr]
    found = by_code(check_findings(probes, CFG))
    assert "PUBLIC_IP_INCONSISTENT" not in found and "NAT_DOUBLE" not in found
    nat = found["NAT_DETECTED"]
    assert V6 in nat.summary and nat.detail["ipv6_address"] == V6


def test_real_double_nat_on_ipv4_is_still_found() -> None:
    probes: dict[str, ProbeResult] = {
        "interfaces": ifs(),
        "public_ip": pub("81.2.69.160"),
        "router": router(external="81.2.69.161"),
        "inbound": inbound(TcpState.OPEN),
    }
    found = by_code(check_findings(probes, CFG))
    assert "NAT_DOUBLE" in found
    assert "81.2.69.161 is not the public address 81.2.69.160" in found["NAT_DOUBLE"].summary
    assert V6 in found["NAT_DOUBLE"].summary  # the IPv6 way in is named beside it


def test_inconsistency_within_one_family_still_found() -> None:
    probes: dict[str, ProbeResult] = {
        "interfaces": ifs(),
        "public_ip": pub(V4_PUBLIC, "81.2.69.160"),
        "inbound": inbound(TcpState.OPEN),
    }
    f = by_code(check_findings(probes, CFG))["PUBLIC_IP_INCONSISTENT"]
    assert V6 not in f.summary and "81.2.69.160" in f.summary


def test_pacs_entry_offers_both_families_and_says_which_is_used() -> None:
    probes: dict[str, ProbeResult] = {
        "interfaces": ifs(),
        "public_ip": pub(V4_PUBLIC),
        "router": router(),
        "inbound": inbound(TcpState.OPEN),
    }
    e = check_entry(probes, CFG)
    assert e.host == V4_PUBLIC
    assert [(f, h) for f, h, _n in e.alternatives] == [("ipv6", V6)]
    d = e.to_dict()
    assert d["alternatives"][0]["host"] == V6 and "IPv6 first" in d["alternatives"][0]["note"]
    assert "alternatives" not in check_entry({"interfaces": ifs()}, CFG).to_dict()


# --- listener families ----------------------------------------------------------------------


def test_ipv4_only_receiver_and_dial_back_over_ipv6_names_the_cause() -> None:
    found = by_code(
        story(
            interfaces=ifs(),
            listeners=listeners(("0.0.0.0", "ipv4")),
            inbound=inbound(TcpState.REFUSED),
        )
    )
    assert found["LISTENER_IPV4_ONLY"].severity is Severity.FAIL
    refused = found["INBOUND_REFUSED"]
    assert refused.detail["caused_by"] == "LISTENER_IPV4_ONLY"
    assert refused.severity is Severity.INFO and "IPv6" in refused.summary


def test_ipv4_only_receiver_warns_on_a_dual_stack_pc_without_a_measurement() -> None:
    found = by_code(story(interfaces=ifs(), listeners=listeners(("0.0.0.0", "ipv4"))))
    assert found["LISTENER_IPV4_ONLY"].severity is Severity.WARN


def test_ipv4_only_receiver_on_an_ipv4_only_pc_is_fine() -> None:
    found = by_code(
        story(
            listeners=listeners(("0.0.0.0", "ipv4")),
            inbound=inbound(TcpState.OPEN, observed=V4_PUBLIC),
        )
    )
    assert "LISTENER_IPV4_ONLY" not in found


@pytest.mark.parametrize(
    ("v6only", "code"), [(True, "LISTENER_IPV6_ONLY"), (False, None), (None, None)]
)
def test_wildcard_ipv6_listener_and_v6only(v6only: bool | None, code: str | None) -> None:
    found = by_code(
        story(
            interfaces=ifs(),
            listeners=listeners(("::", "ipv6"), v6only=v6only),
            inbound=inbound(TcpState.REFUSED, observed=V4_PUBLIC),
        )
    )
    fam = {c for c in found if c.startswith("LISTENER_IPV")}
    assert fam == ({code} if code else set())
    if code:
        assert found[code].severity is Severity.FAIL  # the dial-back came over IPv4
        assert found["INBOUND_REFUSED"].detail["caused_by"] == code


def test_ipv6_timeout_names_the_router_ipv6_policy() -> None:
    found = by_code(
        story(
            interfaces=ifs(),
            listeners=listeners(("::", "ipv6"), v6only=False),
            inbound=inbound(TcpState.TIMEOUT),
        )
    )
    t = found["INBOUND_TIMEOUT"]
    assert "IPv6 forward policy" in t.summary and t.detail["dial_back_family"] == "ipv6"


# --- dual-stack temporary listener (real sockets, loopback) ---------------------------------


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback")
def test_verification_scp_takes_both_families_on_one_socket() -> None:
    with VerificationScp(0) as scp:
        assert scp.host == "::"
        for host in ("127.0.0.1", "::1"):
            r = echo(host, scp.port, called_aet="ANY", calling_aet=f"FAM{len(host)}", timeout=10)
            assert r.result is DicomResult.ACCEPTED, (host, r.detail)
        seen = {a.address for a in scp.associations()}
        assert seen == {"127.0.0.1", "::1"}  # the IPv4 peer is not shown as ::ffff:127.0.0.1


def test_unmapped() -> None:
    assert unmapped("::ffff:10.1.2.3") == "10.1.2.3"
    assert unmapped("::ffff:a:b") == "::ffff:a:b"
    assert unmapped(V6) == V6


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback")
def test_listener_probe_reads_our_own_v6only() -> None:
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind(("::", 0))
        s.listen()
        port = s.getsockname()[1]
        socks, _vis = listening_sockets(port)
        assert [(x.address, x.family, x.v6only) for x in socks] == [("::", "ipv6", True)]
        assert s.fileno() >= 0  # the probe's duplicate fd was closed, not ours
    finally:
        s.close()
