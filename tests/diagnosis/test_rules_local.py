"""Rules over hand-built probe results: no network."""

from __future__ import annotations

from reverseprobe.addresses import AddressClass, classify
from reverseprobe.config import CheckConfig
from reverseprobe.diagnosis import local
from reverseprobe.diagnosis.entry import check_entry as pacs_entry
from reverseprobe.dicom.echo import DicomResult, EchoResult, Rejection
from reverseprobe.dicom.tcp import TcpState
from reverseprobe.exitcodes import ExitStatus, exit_status
from reverseprobe.model import Severity, Status
from reverseprobe.probes.interfaces import Interface, InterfaceAddress, InterfacesResult
from reverseprobe.probes.listeners import ListenersResult, ListeningSocket, overlapping

DCMTK = ("1.2.276.0.7230010.3.0.3.6.7", "OFFIS_DCMTK_367")


def sock(
    addr: str = "0.0.0.0",
    pid: int | None = 100,
    proc: str | None = "storescp",
    family: str = "ipv4",
) -> ListeningSocket:
    return ListeningSocket(address=addr, port=11112, family=family, pid=pid, process=proc)


def accepted(host: str = "127.0.0.1") -> EchoResult:
    return EchoResult(
        host=host,
        port=11112,
        tcp=TcpState.OPEN,
        result=DicomResult.ACCEPTED,
        called_aet="MYSCU",
        calling_aet="REVERSEPROBE",
        echo_status=0,
        implementation_class_uid=DCMTK[0],
        implementation_version_name=DCMTK[1],
    )


def lst(*socks: ListeningSocket, echoes: tuple[EchoResult, ...] = ()) -> ListenersResult:
    return ListenersResult(status=Status.OK, port=11112, sockets=socks, echoes=echoes)


def codes(findings: list) -> list[str]:  # type: ignore[type-arg]
    return sorted(f.code for f in findings)


CFG = CheckConfig(aet="MYSCU")


def test_one_dicom_listener_is_ok_with_fingerprint() -> None:
    f = local.listener_rules(lst(sock(), echoes=(accepted(),)), CFG)
    assert codes(f) == ["LISTENER_OK"]
    assert f[0].severity is Severity.PASS
    assert f[0].detail["implementation_version_name"] == "OFFIS_DCMTK_367"
    assert "storescp (PID 100)" in f[0].summary


def test_nothing_listening_is_info_or_fail_when_required() -> None:
    f = local.listener_rules(lst(), CFG)
    assert codes(f) == ["LISTENER_NONE"] and f[0].severity is Severity.INFO
    f = local.listener_rules(lst(), CheckConfig(require_listener=True))
    assert f[0].severity is Severity.FAIL
    assert exit_status(f) is ExitStatus.FAIL


def test_two_processes_is_multiple_and_not_ok() -> None:
    f = local.listener_rules(
        lst(sock(pid=1, proc="storescp"), sock(pid=2, proc="orthanc"), echoes=(accepted(),)), CFG
    )
    assert "LISTENER_MULTIPLE" in codes(f)
    assert "LISTENER_OK" not in codes(f)
    assert "orthanc (PID 2)" in f[0].summary and "storescp (PID 1)" in f[0].summary


def test_dual_stack_one_program_is_not_multiple() -> None:
    assert not overlapping([sock("0.0.0.0"), sock("::", family="ipv6")])
    assert overlapping([sock("0.0.0.0"), sock("192.168.2.2")])  # wildcard + specific
    assert overlapping([sock("0.0.0.0"), sock("0.0.0.0")])  # SO_REUSEPORT twins
    assert not overlapping([sock("127.0.0.1"), sock("192.168.2.2")])


def test_loopback_only() -> None:
    f = local.listener_rules(lst(sock("127.0.0.1"), echoes=(accepted(),)), CFG)
    assert codes(f) == ["LISTENER_LOOPBACK_ONLY"]
    assert "0.0.0.0" in f[0].fix


def test_not_dicom_and_silent() -> None:
    for result in (DicomResult.NOT_DICOM, DicomResult.NO_ANSWER):
        e = EchoResult(
            host="127.0.0.1",
            port=11112,
            tcp=TcpState.OPEN,
            result=result,
            called_aet="MYSCU",
            calling_aet="X",
            detail="answered with data",
        )
        f = local.listener_rules(lst(sock(proc="nginx"), echoes=(e,)), CFG)
        assert codes(f) == ["LISTENER_NOT_DICOM"]


def test_rejection_is_decoded() -> None:
    rej = Rejection(1, 1, 7, "Rejected Permanent", "Service User", "Called AE title not recognised")
    e = EchoResult(
        host="127.0.0.1",
        port=11112,
        tcp=TcpState.OPEN,
        result=DicomResult.REJECTED,
        called_aet="MYSCU",
        calling_aet="X",
        reject=rej,
    )
    f = local.listener_rules(lst(sock(), echoes=(e,)), CFG)
    assert codes(f) == ["LISTENER_REJECTS_AET"]
    assert "reason 7" in f[0].summary and "'MYSCU'" in f[0].fix
    assert f[0].detail["reject"]["reason"] == 7


def test_unexpected_process() -> None:
    cfg = CheckConfig(aet="MYSCU", expect_process="Horos.exe")
    f = local.listener_rules(lst(sock(proc="storescp"), echoes=(accepted(),)), cfg)
    assert codes(f) == ["LISTENER_UNEXPECTED_PROCESS"]
    f = local.listener_rules(lst(sock(proc="horos"), echoes=(accepted(),)), cfg)
    assert codes(f) == ["LISTENER_OK"]


def test_privileged_port() -> None:
    assert codes(local.port_rules(104)) == ["PORT_PRIVILEGED"]
    assert "11112" in local.port_rules(104)[0].fix
    assert local.port_rules(11112) == []


def ifs(route_if: str | None, tunnel: str | None) -> InterfacesResult:
    return InterfacesResult(
        status=Status.OK,
        interfaces=(
            Interface(
                "eth0",
                True,
                None,
                (InterfaceAddress("192.168.2.2", "ipv4", None, AddressClass.PRIVATE),),
            ),
            Interface(
                "tun0",
                True,
                tunnel,
                (InterfaceAddress("10.8.0.2", "ipv4", None, AddressClass.PRIVATE),),
            ),
        ),
        source_address="10.8.0.2" if route_if == "tun0" else "192.168.2.2",
        source_interface=route_if,
        route_via_tunnel=route_if if tunnel and route_if == "tun0" else None,
    )


def test_route_via_vpn() -> None:
    f = local.route_rules(ifs("tun0", "tun/tap"))
    assert codes(f) == ["ROUTE_VIA_VPN"] and f[0].severity is Severity.WARN
    assert local.route_rules(ifs("eth0", "tun/tap")) == []


def test_pacs_entry_uses_the_lan_address() -> None:
    e = pacs_entry({"interfaces": ifs("eth0", None)}, CFG)
    assert (e.aet, e.host, e.port) == ("MYSCU", "192.168.2.2", 11112)


def test_rules_ignore_probes_that_did_not_run() -> None:
    f = local.rules({"listeners": ListenersResult(status=Status.TIMEOUT, port=11112)}, CFG)
    assert not any(x.code.startswith("LISTENER") for x in f)


def test_address_classes() -> None:
    assert classify("100.64.1.1") is AddressClass.SHARED
    assert classify("192.168.1.1") is AddressClass.PRIVATE
    assert classify("8.8.8.8") is AddressClass.PUBLIC
    assert classify("169.254.1.1") is AddressClass.LINK_LOCAL
    assert classify("fd00::1") is AddressClass.ULA
    assert classify("2a00:1450::1") is AddressClass.GLOBAL_V6
    assert classify("127.0.0.1") is AddressClass.LOOPBACK
    assert classify("nonsense") is AddressClass.INVALID
    assert classify("192.0.2.1") is AddressClass.RESERVED
