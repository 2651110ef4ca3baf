"""The inbound rules, pure: hand-built probe results -> findings."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reverseprobe.config import CheckConfig
from reverseprobe.diagnosis import check_findings
from reverseprobe.diagnosis.inbound import Verdict, compare, isp_blocked, judge, rules
from reverseprobe.dicom.echo import DicomResult
from reverseprobe.dicom.tcp import TcpState
from reverseprobe.model import ProbeResult, Severity, Status
from reverseprobe.model.inbound import PortProbe, Reject
from reverseprobe.probes.inbound import (
    ControlOutcome,
    ControlResult,
    Fingerprint,
    InboundMode,
    InboundResult,
)

CFG = CheckConfig(port=11112, aet="MYSCU", reflector="https://r.example/")
PYN = ("1.2.826.0.1.3680043.9.3811.3.0.4", "PYNETDICOM_304")
DCMTK = ("1.2.276.0.7230010.3.0.3.6.7", "OFFIS_DCMTK_367")


def port_probe(port: int = 11112, tcp: TcpState = TcpState.OPEN, **kw: Any) -> PortProbe:
    kw.setdefault("dicom", DicomResult.ACCEPTED if tcp is TcpState.OPEN else DicomResult.NOT_TESTED)
    if kw["dicom"] is DicomResult.ACCEPTED:
        kw.setdefault("implementation_class_uid", PYN[0])
        kw.setdefault("implementation_version_name", PYN[1])
    return PortProbe(port=port, tcp=tcp, **kw)


def result(main: PortProbe | None = None, **kw: Any) -> InboundResult:
    main = main or port_probe(kw.get("port", 11112))
    kw.setdefault("port", main.port)
    kw.setdefault("mode", InboundMode.TEMPORARY_LISTENER)
    kw.setdefault("nonce", "RPABCDEFGHIJKLMN")
    kw.setdefault("nonce_seen", True)
    kw.setdefault("remote_fingerprint", Fingerprint.of_probe(main))
    return InboundResult(
        status=Status.OK,
        reflector="https://r.example/",
        observed_ip="198.51.100.7",
        results=(main,),
        **kw,
    )


def codes(r: ProbeResult, cfg: CheckConfig = CFG) -> list[tuple[str, Severity]]:
    return [(f.code, f.severity) for f in rules({"inbound": r}, cfg)]


def fp(ids: tuple[str, str] | None, res: DicomResult = DicomResult.ACCEPTED) -> Fingerprint:
    return Fingerprint(res, *(ids or (None, None)))


def test_no_reflector_is_not_tested_info() -> None:
    r = InboundResult(status=Status.SKIPPED, port=11112, reason="no reflector configured")
    ((f),) = rules({"inbound": r}, CFG)
    assert (f.code, f.severity) == ("INBOUND_NOT_TESTED", Severity.INFO)
    assert "no reflector configured" in f.summary and "--reflector" in f.fix


def test_runner_timeout_is_not_tested_warn() -> None:
    r = ProbeResult(status=Status.TIMEOUT, reason="did not finish within the 8.0 s deadline")
    assert codes(r) == [("INBOUND_NOT_TESTED", Severity.WARN)]


def test_unreachable_reflector() -> None:
    r = InboundResult(
        status=Status.ERROR, port=11112, reason="connection refused", reflector_error="unreachable"
    )
    assert codes(r) == [("REFLECTOR_UNREACHABLE", Severity.WARN)]


@pytest.mark.parametrize(
    ("status", "hint"), [(401, "bearer token"), (403, "--allow-ports"), (429, "wait")]
)
def test_reflector_refusals_say_what_to_do(status: int, hint: str) -> None:
    r = InboundResult(
        status=Status.ERROR,
        port=11112,
        reason=f"HTTP {status}",
        reflector_error="refused",
        http_status=status,
    )
    ((f),) = rules({"inbound": r}, CFG)
    assert (f.code, f.severity) == ("INBOUND_NOT_TESTED", Severity.WARN)
    assert hint in f.fix


def test_nonce_seen_is_ok_pass() -> None:
    r = result()
    assert judge(r) is Verdict.OK
    ((f),) = rules({"inbound": r}, CFG)
    assert (f.code, f.severity) == ("INBOUND_OK", Severity.PASS)
    assert f.detail["evidence"] == "nonce"
    assert "198.51.100.7:11112" in f.summary


def test_open_but_nonce_not_seen_is_another_host() -> None:
    dcmtk: dict[str, Any] = dict(
        zip(("implementation_class_uid", "implementation_version_name"), DCMTK, strict=True)
    )
    r = result(port_probe(**dcmtk), nonce_seen=False)
    assert judge(r) is Verdict.OTHER_HOST
    ((f),) = rules({"inbound": r}, CFG)
    assert (f.code, f.severity) == ("INBOUND_OTHER_HOST", Severity.FAIL)
    assert "OFFIS_DCMTK_367" in f.summary and "--force" in f.fix


def test_refused() -> None:
    r = result(port_probe(tcp=TcpState.REFUSED), nonce_seen=False)
    assert codes(r) == [("INBOUND_REFUSED", Severity.FAIL)]
    ((f),) = rules({"inbound": r}, CFG)
    assert "forward" in f.fix.lower() and f.detail["tcp"] == "refused"


@pytest.mark.parametrize("tcp", [TcpState.TIMEOUT, TcpState.UNREACHABLE])
def test_timeout_and_unreachable_are_filtered(tcp: TcpState) -> None:
    r = result(port_probe(tcp=tcp), nonce_seen=False)
    ((f),) = rules({"inbound": r}, CFG)
    assert (f.code, f.severity) == ("INBOUND_TIMEOUT", Severity.FAIL)
    assert "firewall" in f.summary and "ISP" not in f.summary  # port >= 1024


def test_not_held_port_answered_by_something_is_another_host() -> None:
    r = result(mode=InboundMode.NOT_HELD, nonce=None, nonce_seen=None)
    assert codes(r) == [("INBOUND_OTHER_HOST", Severity.FAIL)]


def test_existing_listener_same_fingerprint_is_ok() -> None:
    r = result(mode=InboundMode.EXISTING_LISTENER, nonce=None, nonce_seen=None,
               local_fingerprints=(fp(PYN),))  # fmt: skip
    ((f),) = rules({"inbound": r}, CFG)
    assert (f.code, f.severity) == ("INBOUND_OK", Severity.PASS)
    assert f.detail["evidence"] == "fingerprint"


def test_existing_listener_other_implementation_is_another_host() -> None:
    r = result(mode=InboundMode.EXISTING_LISTENER, nonce=None, nonce_seen=None,
               local_fingerprints=(fp(DCMTK),))  # fmt: skip
    ((f),) = rules({"inbound": r}, CFG)
    assert f.code == "INBOUND_OTHER_HOST"
    assert "OFFIS_DCMTK_367" in f.summary  # what this PC's listener says


def test_existing_listener_unconfirmed_is_info_not_pass() -> None:
    r = result(mode=InboundMode.EXISTING_LISTENER, nonce=None, nonce_seen=None)
    ((f),) = rules({"inbound": r}, CFG)
    assert (f.code, f.severity) == ("INBOUND_OK", Severity.INFO)
    assert "stop the receiver" in f.fix


@pytest.mark.parametrize(
    ("local", "remote", "want"),
    [
        ((fp(PYN),), fp(PYN), Verdict.OK),
        ((fp(DCMTK),), fp(PYN), Verdict.OTHER_HOST),
        ((fp(None, DicomResult.NOT_DICOM),), fp(None, DicomResult.NOT_DICOM), Verdict.OK),
        ((fp(None, DicomResult.NOT_DICOM),), fp(PYN), Verdict.OTHER_HOST),
        ((fp(PYN),), fp(None, DicomResult.NO_ANSWER), Verdict.OTHER_HOST),
        ((fp(PYN),), fp(None, DicomResult.REJECTED), Verdict.OK_UNCONFIRMED),
        ((fp(PYN),), fp(None, DicomResult.NOT_TESTED), Verdict.OK_UNCONFIRMED),
        ((), fp(PYN), Verdict.OK_UNCONFIRMED),
        ((fp(PYN), fp(DCMTK)), fp(DCMTK), Verdict.OK),
    ],
)
def test_compare(local: tuple[Fingerprint, ...], remote: Fingerprint, want: Verdict) -> None:
    assert compare(local, remote) is want


def low(tcp: TcpState, control: ControlResult | None, cfg: CheckConfig | None = None) -> list[Any]:
    r = result(port_probe(104, tcp=tcp), nonce_seen=False, control=control)
    return rules({"inbound": r}, cfg or CheckConfig(port=104, reflector="https://r.example/"))


REACHED = ControlResult(
    ControlOutcome.REACHED, port=40000, lan_address="192.168.2.2", nonce_seen=True,
    mapping_removed=True,
)  # fmt: skip


def test_isp_block_measured() -> None:
    out = low(TcpState.TIMEOUT, REACHED)
    assert [f.code for f in out] == ["PORT_ISP_BLOCKED"]  # not also a router/firewall finding
    assert "11112" in out[0].fix and "40000" in out[0].summary and "timed out" in out[0].summary
    assert out[0].detail["isp_block"] == "measured" and out[0].detail["tcp"] == "timeout"


def test_refused_low_port_is_isp_only_when_the_router_maps_it_here() -> None:
    assert [f.code for f in low(TcpState.REFUSED, REACHED)] == ["INBOUND_REFUSED"]
    mapped = ControlResult(**{**REACHED.__dict__, "low_port_mapping": "192.168.2.2:104"})
    (f,) = low(TcpState.REFUSED, mapped)
    assert f.code == "PORT_ISP_BLOCKED" and "was refused" in f.summary
    elsewhere = ControlResult(**{**REACHED.__dict__, "low_port_mapping": "192.168.2.3:104"})
    assert isp_blocked(result(port_probe(104, tcp=TcpState.REFUSED), control=elsewhere)) is False


@pytest.mark.parametrize(
    ("control", "cfg_upnp", "says"),
    [
        (None, False, "UPnP is off"),
        (ControlResult(ControlOutcome.NOT_TESTED, reason="no UPnP router answered"), True,
         "no UPnP router answered"),
        (ControlResult(ControlOutcome.NOT_REACHED, port=40000), True,
         "did not get through either"),
    ],
)  # fmt: skip
def test_isp_block_untold_says_why(
    control: ControlResult | None, cfg_upnp: bool, says: str
) -> None:
    cfg = CheckConfig(port=104, reflector="https://r.example/", upnp=cfg_upnp)
    out = low(TcpState.TIMEOUT, control, cfg)
    assert [f.code for f in out] == ["INBOUND_TIMEOUT"]
    assert out[0].detail["isp_block"].startswith("could not tell")
    assert says in out[0].detail["isp_block"]
    assert "ISP blocks port 104" in out[0].summary


def test_the_result_serializes_to_json_through_check_findings() -> None:
    r = result(control=REACHED, local_fingerprints=(fp(PYN),))
    doc = json.loads(json.dumps(r.to_dict()))
    assert doc["mode"] == "temporary-listener" and doc["results"][0]["tcp"] == "open"
    assert doc["control"]["outcome"] == "reached"
    found = check_findings({"inbound": r}, CFG)
    assert "INBOUND_OK" in [f.code for f in found]


def test_reject_details_survive() -> None:
    main = port_probe(dicom=DicomResult.REJECTED, reject=Reject(1, 1, 7, "x"))
    assert Fingerprint.of_probe(main).reject_reason == 7
