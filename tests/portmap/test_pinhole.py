"""The IPv6 pinhole (issue 15) without a network: a raw HTTP IGD on [::1] for the odd and
hostile answers a real miniupnpd does not give (no UniqueID, 703, a UniqueID of another
address), the state file of the pinholes we own, the error table, the findings and --family."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from peers.rawhttp import RawServer
from reverseprobe.cli import build_parser
from reverseprobe.config import BadInput, ForwardFamily
from reverseprobe.config.forward import forward_config
from reverseprobe.deadline import Deadline
from reverseprobe.diagnosis import forward as advice
from reverseprobe.model import Severity, Status
from reverseprobe.model.forward import Action, PinholeResult, Request, Via
from reverseprobe.portmap import pinhole_ops as ops
from reverseprobe.portmap.errors import BY_CODE, PINHOLE_BY_CODE, UpnpError, UpnpGarbage
from reverseprobe.portmap.pinhole import (
    SERVICE,
    PinholeControl,
    ipv6_url,
    pinhole_lease,
    service_control_url,
)
from reverseprobe.portmap.state import OwnedPinhole, PinholeStore, pinhole_key

PC6 = "2a0c:0:0:1::2"
ROUTER6 = "::1"


def _has_ipv6_loopback() -> bool:
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError:
        return False
    return True


needs_v6 = pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback (::1)")

DESC = f"""<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0"><device><deviceList><device><deviceList><device>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType>
<controlURL>/ctl/IPConn</controlURL></service><service><serviceType>{SERVICE}</serviceType>
<controlURL>/ctl/IP6FCtl</controlURL></service></serviceList>
</device></deviceList></device></deviceList></device></root>""".encode()

Soap = Callable[[dict[str, str]], bytes]


def http(status: str, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def answer(action: str, **out: str) -> bytes:
    args = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in out.items())
    return http(
        "200 OK",
        (
            '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/'
            f'envelope/"><s:Body><u:{action}Response xmlns:u="{SERVICE}">{args}'
            f"</u:{action}Response></s:Body></s:Envelope>"
        ).encode(),
    )


def fault(code: int, name: str) -> bytes:
    return http(
        "500 Internal Server Error",
        (
            '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>'
            "<faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>"
            '<UPnPError xmlns="urn:schemas-upnp-org:control-1-0">'
            f"<errorCode>{code}</errorCode><errorDescription>{name}</errorDescription>"
            "</UPnPError></detail></s:Fault></s:Body></s:Envelope>"
        ).encode(),
    )


class FakeFirewall(RawServer):
    """An IGD on [::1]: GET serves `desc`; POST runs `soap[action](args)` (default: a normal
    miniupnpd-like answer). Records every (action, args) it was sent."""

    def __init__(self) -> None:
        self.desc = DESC
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.soap: dict[str, Soap] = {
            "GetFirewallStatus": lambda _a: answer(
                "GetFirewallStatus", FirewallEnabled="1", InboundPinholeAllowed="1"
            ),
            "AddPinhole": lambda _a: answer("AddPinhole", UniqueID="7"),
            "CheckPinholeWorking": lambda _a: fault(709, "NoPacketSent"),
            "DeletePinhole": lambda _a: answer("DeletePinhole"),
        }
        super().__init__(self._dispatch, host="::1")
        self.location = f"{self.url}rootDesc.xml"

    def _dispatch(self, conn: socket.socket, req: bytes) -> None:
        head, _, body = req.partition(b"\r\n\r\n")
        m = re.search(rb"(?i)content-length:\s*(\d+)", head)
        while m and len(body) < int(m.group(1)):
            chunk = conn.recv(4096)
            if not chunk:
                break
            body += chunk
        if req.startswith(b"GET"):
            conn.sendall(http("200 OK", self.desc))
            return
        action = head.split(b"#", 1)[1].split(b'"', 1)[0].decode()
        args = {k.decode(): v.decode() for k, v in re.findall(rb"<(\w+)>([^<]*)</\1>", body)}
        self.calls.append((action, args))
        conn.sendall(self.soap[action](args))

    def actions(self) -> list[str]:
        return [a for a, _ in self.calls]


@pytest.fixture
def fw() -> Iterator[FakeFirewall]:
    srv = FakeFirewall()
    try:
        yield srv
    finally:
        srv.stop()


def req(**kw: object) -> Request:
    base: dict[str, object] = {"port": 11112, "external_port": 11112, "lease": 3600}
    base.update(kw)
    description = "reverseprobe test"
    return Request(description=description, **base)  # type: ignore[arg-type]


def store(tmp_path: Path) -> PinholeStore:
    return PinholeStore(tmp_path / "state")


def open_it(fw: FakeFirewall, st: PinholeStore | None, **kw: object) -> PinholeResult:
    return ops.open_upnp(
        req(**kw), location=fw.location, router6=ROUTER6, client6=PC6, store=st,
        deadline=Deadline.after(10),
    )  # fmt: skip


def remove_it(st: PinholeStore, **kw: object) -> PinholeResult:
    return ops.remove_upnp(
        req(**kw), router6=ROUTER6, client6=PC6, store=st, deadline=Deadline.after(10)
    )


# --- UPnP WANIPv6FirewallControl against the raw peer -------------------------------------


@needs_v6
def test_added_read_back_recorded_then_removed_by_its_unique_id(fw: FakeFirewall, tmp_path):
    st = store(tmp_path)
    r = open_it(fw, st)
    assert (r.status, r.action, r.unique_id, r.verified, r.recorded) == (
        Status.OK, Action.ADDED, 7, True, True)  # fmt: skip
    add = dict(fw.calls)["AddPinhole"]
    assert add == {"RemoteHost": "", "RemotePort": "0", "InternalClient": PC6,
                   "InternalPort": "11112", "Protocol": "6", "LeaseTime": "3600"}  # fmt: skip
    assert r.service_url == f"http://[::1]:{fw.port}/ctl/IP6FCtl"
    owned = st.get_pinhole(pinhole_key(ROUTER6, PC6, "TCP", 11112, "upnp"))
    assert owned is not None and owned.unique_id == 7
    # a later run (a new store object: from the file) renews the same UniqueID
    r2 = open_it(fw, store(tmp_path))
    assert r2.action is Action.RENEWED
    fw.calls.clear()
    held = {"7"}

    def check(a: dict[str, str]) -> bytes:
        if a["UniqueID"] in held:
            return answer("CheckPinholeWorking", IsWorking="1")
        return fault(704, "NoSuchEntry")

    def delete(a: dict[str, str]) -> bytes:
        held.discard(a["UniqueID"])
        return answer("DeletePinhole")

    fw.soap.update(CheckPinholeWorking=check, DeletePinhole=delete)
    gone = remove_it(store(tmp_path))
    assert (gone.action, gone.status, gone.verified) == (Action.REMOVED, Status.OK, True)
    assert ("DeletePinhole", {"UniqueID": "7"}) in fw.calls
    assert store(tmp_path).get_pinhole(pinhole_key(ROUTER6, PC6, "TCP", 11112, "upnp")) is None


@needs_v6
def test_a_permanent_or_long_lease_is_asked_as_the_longest_a_pinhole_has(fw, tmp_path):
    r = open_it(fw, store(tmp_path), lease=0)
    assert dict(fw.calls)["AddPinhole"]["LeaseTime"] == "86400"
    assert r.lease_granted == 86400 and "86400" in (r.note or "")


@needs_v6
@pytest.mark.parametrize(
    ("body", "words"),
    [
        (answer("AddPinhole"), "no UniqueID"),
        (answer("AddPinhole", UniqueID="99999"), "out of range"),
        (answer("AddPinhole", UniqueID="7; rm -rf"), "not a number"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "not XML"),
    ],
)
def test_an_answer_without_a_usable_unique_id_is_garbage_and_nothing_is_recorded(
    fw: FakeFirewall, tmp_path: Path, body: bytes, words: str
) -> None:
    fw.soap["AddPinhole"] = lambda _a: body
    st = store(tmp_path)
    r = open_it(fw, st)
    assert r.status is Status.FAIL and r.action is Action.FAILED
    assert words in (r.reason or "") and "garbage" in (r.reason or "")
    assert r.recorded is None and not (tmp_path / "state" / "pinholes.json").exists()
    assert "CheckPinholeWorking" not in fw.actions()


@needs_v6
def test_703_inbound_pinhole_not_allowed_is_not_offered_not_a_failure(fw, tmp_path):
    fw.soap["AddPinhole"] = lambda _a: fault(703, "InboundPinholeNotAllowed")
    r = open_it(fw, store(tmp_path))
    assert (r.status, r.offered, r.error_code, r.error_name) == (
        Status.SKIPPED, False, 703, "InboundPinholeNotAllowed")  # fmt: skip
    ctx = advice.Context(aet="MYSCU", port=11112, external_port=11112, gateway="192.168.2.1",
                         lan="192.168.2.2")  # fmt: skip
    (f,) = advice.pinhole_findings(ctx, r, ipv4_done=True)
    assert (f.code, f.severity) == ("UPNP_MAPPING_MISSING", Severity.INFO)
    assert "IPv4 part is not affected" in f.summary and "http://192.168.2.1/" in f.fix
    (alone,) = advice.pinhole_findings(ctx, r, ipv4_done=False, alone=True)
    assert alone.severity is Severity.FAIL


@needs_v6
def test_inbound_pinhole_allowed_0_is_said_and_nothing_is_asked(fw, tmp_path):
    fw.soap["GetFirewallStatus"] = lambda _a: answer(
        "GetFirewallStatus", FirewallEnabled="1", InboundPinholeAllowed="0"
    )
    r = open_it(fw, store(tmp_path))
    assert (r.status, r.offered, r.inbound_allowed) == (Status.SKIPPED, False, False)
    assert "InboundPinholeAllowed=0" in (r.reason or "")
    assert fw.actions() == ["GetFirewallStatus"]


@needs_v6
def test_a_description_without_the_service_is_not_offered(fw, tmp_path):
    fw.desc = DESC.replace(SERVICE.encode(), b"urn:schemas-upnp-org:service:Other:1")
    r = open_it(fw, store(tmp_path))
    assert r.offered is False and "WANIPv6FirewallControl" in (r.reason or "")
    assert fw.calls == []


@needs_v6
def test_a_firewall_status_that_is_no_boolean_is_garbage(fw, tmp_path):
    fw.soap["GetFirewallStatus"] = lambda _a: answer(
        "GetFirewallStatus", FirewallEnabled="maybe", InboundPinholeAllowed="1"
    )
    r = open_it(fw, store(tmp_path))
    assert r.status is Status.FAIL and "FirewallEnabled" in (r.reason or "")


@needs_v6
def test_remove_leaves_a_unique_id_that_is_now_another_addresss(fw, tmp_path):
    st = store(tmp_path)
    k = pinhole_key(ROUTER6, PC6, "TCP", 11112, "upnp")
    url = f"http://[::1]:{fw.port}/ctl/IP6FCtl"
    st.put_pinhole(k, OwnedPinhole("upnp", ROUTER6, PC6, "TCP", 11112, unique_id=3,
                                   service_url=url))  # fmt: skip
    fw.soap["CheckPinholeWorking"] = lambda _a: fault(606, "Action not authorized")
    r = remove_it(store(tmp_path))
    assert r.action is Action.HELD_BY_OTHER and r.status is Status.FAIL
    assert "DeletePinhole" not in fw.actions()
    assert store(tmp_path).get_pinhole(k) is None  # forgotten: never ours again


@needs_v6
def test_remove_of_an_expired_pinhole_is_absent_and_sends_no_delete(fw, tmp_path):
    st = store(tmp_path)
    k = pinhole_key(ROUTER6, PC6, "TCP", 11112, "upnp")
    url = f"http://[::1]:{fw.port}/ctl/IP6FCtl"
    st.put_pinhole(k, OwnedPinhole("upnp", ROUTER6, PC6, "TCP", 11112, unique_id=3,
                                   service_url=url))  # fmt: skip
    fw.soap["CheckPinholeWorking"] = lambda _a: fault(704, "NoSuchEntry")
    r = remove_it(st)
    assert (r.action, r.verified) == (Action.ABSENT, True)
    assert fw.actions() == ["CheckPinholeWorking"]


def test_remove_without_a_record_asks_nothing(tmp_path):
    r = remove_it(store(tmp_path))
    assert r.action is Action.ABSENT and r.status is Status.OK


@needs_v6
def test_control_errors_carry_the_pinhole_services_meaning(fw):
    ctl = PinholeControl(f"http://[::1]:{fw.port}/ctl/IP6FCtl", timeout=3)
    fw.soap["CheckPinholeWorking"] = lambda _a: fault(708, "WildCardNotPermittedInSrcIP")
    with pytest.raises(UpnpError) as e:
        ctl.exists(1)
    assert e.value.name == "WildCardNotPermittedInSrcIP"
    fw.soap["CheckPinholeWorking"] = lambda _a: answer("CheckPinholeWorking", IsWorking="x")
    with pytest.raises(UpnpGarbage):
        ctl.exists(1)


# --- pure parts --------------------------------------------------------------------------


def test_error_codes_are_those_of_wanipv6firewallcontrol_v1():
    names = {c: PINHOLE_BY_CODE[c].name for c in range(701, 710)}
    assert names == {
        701: "PinholeSpaceExhausted", 702: "FirewallDisabled", 703: "InboundPinholeNotAllowed",
        704: "NoSuchEntry", 705: "ProtocolNotSupported",
        706: "InternalPortWildcardingNotAllowed", 707: "ProtocolWildcardingNotAllowed",
        708: "WildCardNotPermittedInSrcIP", 709: "NoPacketSent",
    }  # fmt: skip
    assert BY_CODE[708].name == "InvalidLayer2Address"  # WANIPConnection's 708 is untouched


def test_service_url_must_be_on_the_igd_itself():
    loc = "http://[2a0c:0:0:1::1]:5000/rootDesc.xml"
    assert service_control_url(DESC, loc, SERVICE) == "http://[2a0c:0:0:1::1]:5000/ctl/IP6FCtl"
    evil = DESC.replace(b"/ctl/IP6FCtl", b"http://203.0.113.9/ctl")
    with pytest.raises(UpnpGarbage):
        service_control_url(evil, loc, SERVICE)
    assert service_control_url(DESC, loc, "urn:x:service:None:1") is None


def test_ipv6_url_keeps_port_and_path_and_escapes_a_zone():
    assert ipv6_url("http://192.168.2.1:5000/ctl/IP6FCtl", "2a0c::1") == (
        "http://[2a0c::1]:5000/ctl/IP6FCtl"
    )
    assert ipv6_url("http://192.168.2.1:5000/c", "fe80::1%eth0") == "http://[fe80::1%25eth0]:5000/c"


@pytest.mark.parametrize(("asked", "sent"), [(0, 86400), (60, 60), (86400, 86400), (604800, 86400)])
def test_pinhole_lease(asked: int, sent: int) -> None:
    assert pinhole_lease(asked) == sent


def test_the_store_ignores_records_that_are_not_well_formed(tmp_path):
    d = tmp_path / "state"
    d.mkdir()
    (d / "pinholes.json").write_text(
        '{"a": {"via": "upnp", "router": "r", "client": "c", "protocol": "TCP",'
        ' "internal_port": 11112, "unique_id": "7; evil"},'
        ' "b": {"via": "pcp", "router": "r", "client": "c", "protocol": "TCP",'
        ' "internal_port": 11112, "nonce": "zz"}, "c": [1]}'
    )
    st = PinholeStore(d)
    assert st.get_pinhole("a") is None and st.get_pinhole("b") is None
    assert st.get_pinhole("c") is None
    nonce = bytes(range(12))
    assert st.put_pinhole("k", OwnedPinhole("pcp", "r", "c", "TCP", 104, nonce=nonce))
    again = PinholeStore(d).get_pinhole("k")
    assert again is not None and again.nonce == nonce and again.internal_port == 104
    assert PinholeStore(d).drop_pinhole("k") and PinholeStore(d).get_pinhole("k") is None


def _pin(**kw: object) -> PinholeResult:
    base: dict[str, object] = {
        "status": Status.OK, "action": Action.ADDED, "via": Via.UPNP, "internal_client": PC6,
        "internal_port": 11112, "unique_id": 7, "verified": True, "offered": True,
    }  # fmt: skip
    base.update(kw)
    return PinholeResult(**base)  # type: ignore[arg-type]


CTX = advice.Context(aet="MYSCU", port=11112, external_port=11112, gateway="192.168.2.1",
                     lan="192.168.2.2")  # fmt: skip


@pytest.mark.parametrize(
    ("pin", "ipv4_done", "alone", "want"),
    [
        (_pin(), True, False, ("UPNP_MAPPING_OK", Severity.PASS)),
        (_pin(status=Status.FAIL, action=Action.REFUSED, error_code=606), True, False,
         ("UPNP_MAPPING_MISSING", Severity.WARN)),
        (_pin(status=Status.FAIL, action=Action.REFUSED), False, False,
         ("UPNP_MAPPING_MISSING", Severity.FAIL)),
        (_pin(status=Status.SKIPPED, action=Action.NOT_TRIED, offered=None, internal_client=None,
              reason="this PC has no global IPv6 address"), True, False, None),
        (_pin(status=Status.SKIPPED, action=Action.NOT_TRIED, offered=None,
              reason="this PC has no global IPv6 address"), False, True,
         ("UPNP_MAPPING_MISSING", Severity.FAIL)),
        (_pin(action=Action.REMOVED), True, False, ("UPNP_MAPPING_MISSING", Severity.INFO)),
    ],
)  # fmt: skip
def test_pinhole_findings(pin, ipv4_done, alone, want) -> None:
    got = advice.pinhole_findings(CTX, pin, ipv4_done=ipv4_done, alone=alone)
    if want is None:
        assert got == []
        return
    (f,) = got
    assert (f.code, f.severity) == want and f.detail["family"] == 6


def test_the_pacs_entry_gets_the_ipv6_alternative_only_once_the_pinhole_is_open():
    from reverseprobe.model import PacsEntry

    e = PacsEntry(aet="MYSCU", host="100.128.0.2", port=11112)
    got = advice.with_pinhole_entry(e, _pin())
    assert got is not None and got.alternatives == (("ipv6", PC6, got.alternatives[0][2]),)
    assert advice.with_pinhole_entry(e, _pin(status=Status.FAIL)) == e
    alone = advice.pinhole_entry(CTX, _pin())
    assert alone is not None and (alone.host, alone.port) == (PC6, 11112)


def _cfg(*argv: str):
    args = build_parser().parse_args(["forward", *argv])
    return forward_config(args, {})


def test_family_option() -> None:
    assert _cfg().family is ForwardFamily.BOTH
    assert _cfg("--family", "6").family is ForwardFamily.V6
    assert _cfg("--family", "4").family is ForwardFamily.V4
    with pytest.raises(BadInput, match="--family 6"):
        _cfg("--family", "6", "--list")
    with pytest.raises(BadInput, match="--from"):
        _cfg("--family", "6", "--from", "203.0.113.5")


def test_keep_opens_no_pinhole_and_says_so(tmp_path: Path) -> None:
    from reverseprobe.commands.forward_pinhole import pinhole_pass
    from reverseprobe.environment import Environment

    cfg = _cfg("--keep")
    env = Environment(environ={"REVERSEPROBE_STATE_DIR": str(tmp_path)})
    r = pinhole_pass(cfg, req(), None, (PC6, ROUTER6), deadline=Deadline.after(5), env=env)
    assert (r.action, r.status, r.offered) == (Action.NOT_TRIED, Status.SKIPPED, None)
    assert "--keep" in (r.reason or "")
    (f,) = advice.pinhole_findings(CTX, r, ipv4_done=True)
    assert (f.code, f.severity) == ("UPNP_MAPPING_MISSING", Severity.INFO)
    assert not (tmp_path / "pinholes.json").exists()


@needs_v6
def test_a_pinhole_the_router_cannot_show_after_adding_it_is_a_failure(fw, tmp_path):
    fw.soap["CheckPinholeWorking"] = lambda _a: fault(704, "NoSuchEntry")
    r = open_it(fw, store(tmp_path))
    assert (r.status, r.verified, r.unique_id) == (Status.FAIL, False, 7)
    assert "reading it back shows no such pinhole" in (r.reason or "")


@needs_v6
def test_a_silent_firewall_service_ends_within_the_deadline(fw, tmp_path):
    import threading
    import time

    release = threading.Event()
    fw.soap["GetFirewallStatus"] = lambda _a: (release.wait(30), b"")[1]
    t0 = time.monotonic()
    try:
        r = ops.open_upnp(
            req(), location=fw.location, router6=ROUTER6, client6=PC6, store=store(tmp_path),
            deadline=Deadline.after(2.0),
        )  # fmt: skip
    finally:
        release.set()
    assert time.monotonic() - t0 < 2.0 + 3.0  # the deadline plus a generous margin
    assert r.status is Status.TIMEOUT and "GetFirewallStatus" in (r.reason or "")
