"""The move-test rules, pure: hand-built probe results -> findings, fixes and the PACS entry."""

from __future__ import annotations

from typing import Any

import pytest

from reverseprobe.config import MoveTestConfig
from reverseprobe.diagnosis.catalogue import CATALOGUE
from reverseprobe.diagnosis.move import rules
from reverseprobe.diagnosis.pacs import pacs_entry
from reverseprobe.dicom.echo import Rejection
from reverseprobe.dicom.find import FindResult
from reverseprobe.dicom.get import GetResult
from reverseprobe.dicom.move import MoveResult
from reverseprobe.dicom.qr import (
    AssocState,
    EchoProbeResult,
    NoResponse,
    StatusWord,
    status_meaning,
    status_word,
)
from reverseprobe.dicom.timeline import EventKind, Timeline, TimelineEvent
from reverseprobe.model import Finding, ProbeResult, Severity, Status
from reverseprobe.model.dicom import DicomResult, InboundAssociation, PacsTcp
from reverseprobe.probes.listeners import ListeningSocket
from reverseprobe.probes.pacs_address import AddressView, behind_nat
from reverseprobe.render.timeline import describe

CFG = MoveTestConfig(pacs_host="203.0.113.10", pacs_port=104, pacs_aet="ARCHIVE", aet="MYSCU")
NAT = AddressView(lan="192.168.2.2", toward_pacs="192.168.2.2", pacs_ip="203.0.113.10",
                  public="198.51.100.7")  # fmt: skip
ECHO_OK = EchoProbeResult(status=Status.OK, tcp=PacsTcp.OPEN, result=DicomResult.ACCEPTED)
FIND_OK = FindResult(status=Status.OK, association=AssocState.ACCEPTED, studies=1,
                     study_uid="1.2.3", instances=3)  # fmt: skip
SKIP = ProbeResult(status=Status.SKIPPED, reason="not tested")


def move(**kw: Any) -> MoveResult:
    base: dict[str, Any] = {
        "status": Status.FAIL,
        "study_uid": "1.2.3",
        "destination": "MYSCU",
        "port": 11112,
        "association": AssocState.ACCEPTED,
        "expected": 3,
        "grace_s": 5.0,
    }
    if "final_code" in kw and kw["final_code"] is not None:
        code = kw["final_code"]
        base.update(
            final_status=status_word(code),
            final_code_hex=f"0x{code:04X}",
            final_meaning=status_meaning(code),
        )
    base.update(kw)
    return MoveResult(**base)


def inbound(n: int = 1, *, stores: int = 3, called: str = "MYSCU") -> InboundAssociation:
    return InboundAssociation(number=n, peer="203.0.113.10", peer_port=40000, connected_t=0.1,
                              called_aet=called, calling_aet="ARCHIVE", accepted=True,
                              stores=stores)  # fmt: skip


def run(
    *,
    echo: ProbeResult = ECHO_OK,
    find: ProbeResult = FIND_OK,
    mv: ProbeResult = SKIP,
    get: ProbeResult = SKIP,
    view: AddressView = NAT,
    cfg: MoveTestConfig = CFG,
) -> dict[str, Finding]:
    probes = {"echo": echo, "find": find, "move": mv, "get": get}
    found = rules(probes, cfg, pacs_entry(cfg, view), view)
    assert len({f.code for f in found}) == len(found), [f.code for f in found]
    for f in found:
        assert f.code in CATALOGUE
        if f.severity in (Severity.FAIL, Severity.WARN):
            assert f.fix, f.code  # every problem says what to change
    return {f.code: f for f in found}


# --- the PACS entry ---------------------------------------------------------------------------


def test_entry_behind_nat_is_the_public_address() -> None:
    e = pacs_entry(CFG, NAT)
    assert (e.aet, e.host, e.port) == ("MYSCU", "198.51.100.7", 11112)
    assert "forward TCP 11112 to 192.168.2.2:11112" in e.note
    assert e.note.endswith(
        "Your SCU's own settings: Move Destination exactly 'MYSCU' (the title in the PACS "
        "entry), its Storage SCP listening on port 11112 on all interfaces, and nothing else "
        "listening on port 11112."
    )
    assert behind_nat(NAT)


def test_entry_for_a_pacs_on_the_lan_is_the_lan_address() -> None:
    view = AddressView(lan="192.168.2.2", toward_pacs="192.168.2.2", pacs_ip="192.168.2.50",
                       public_note="not needed")  # fmt: skip
    e = pacs_entry(CFG, view)
    assert e.host == "192.168.2.2" and "private network" in e.note


def test_entry_uses_the_address_toward_the_pacs_not_the_default_route() -> None:
    view = AddressView(lan="192.168.2.2", toward_pacs="10.8.0.5", pacs_ip="10.1.1.1")  # VPN
    assert pacs_entry(CFG, view).host == "10.8.0.5"


def test_entry_with_a_public_address_on_the_pc() -> None:
    view = AddressView(lan="198.51.100.9", toward_pacs="198.51.100.9", pacs_ip="203.0.113.10",
                       public="198.51.100.9")  # fmt: skip
    e = pacs_entry(CFG, view)
    assert e.host == "198.51.100.9" and "no NAT" in e.note
    assert not behind_nat(view)


def test_entry_says_when_the_public_address_was_not_measured() -> None:
    view = AddressView(lan="192.168.2.2", toward_pacs="192.168.2.2", pacs_ip="203.0.113.10",
                       public_note="not measured: --no-public-ip")  # fmt: skip
    e = pacs_entry(CFG, view)
    assert e.host == "192.168.2.2"
    assert "--no-public-ip" in e.note and "public address" in e.note


# --- the PACS ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tcp,needle",
    [("refused", "Nothing listens"), ("timeout", "firewall"), ("unreachable", "route")],
)
def test_unreachable(tcp: str, needle: str) -> None:
    echo = EchoProbeResult(
        status=Status.FAIL, tcp=PacsTcp(tcp), result=DicomResult.NOT_TESTED, detail="x"
    )
    f = run(echo=echo, find=SKIP)["PACS_UNREACHABLE"]
    assert needle in f.fix and "203.0.113.10:104" in f.summary


def test_not_dicom_is_unreachable() -> None:
    echo = EchoProbeResult(
        status=Status.FAIL, tcp=PacsTcp.OPEN, result=DicomResult.NOT_DICOM, detail="HTTP"
    )
    assert "PACS_UNREACHABLE" in run(echo=echo, find=SKIP)


def _rej(result: int, source: int, reason: int) -> Rejection:
    return Rejection(result, source, reason, "rejected-permanent", "service user", "why")


@pytest.mark.parametrize(
    "rej,needles",
    [
        (_rej(1, 1, 7), ("'ARCHIVE' is not it", "dcmqrscp", "'MYSCU', address 198.51.100.7")),
        (_rej(1, 1, 3), ("register AE title 'MYSCU', address 198.51.100.7, port 11112",)),
        (_rej(1, 1, 1), ("allow AE title 'MYSCU'",)),
        (_rej(2, 3, 2), ("busy",)),
    ],
)
def test_rejection_decoded(rej: Rejection, needles: tuple[str, ...]) -> None:
    echo = EchoProbeResult(
        status=Status.FAIL, tcp=PacsTcp.OPEN, result=DicomResult.REJECTED, reject=rej
    )
    f = run(echo=echo, find=SKIP)["PACS_REJECTED_ASSOCIATION"]
    for n in needles:
        assert n in f.fix
    assert f.detail["reject"] == {"result": rej.result, "source": rej.source, "reason": rej.reason}


def test_find_aborted_means_the_calling_ae_is_unknown() -> None:
    find = FindResult(status=Status.FAIL, association=AssocState.ABORTED)
    f = run(find=find)["PACS_ABORTED"]
    assert "'MYSCU'" in f.summary and "198.51.100.7" in f.fix and "NAT" in f.fix


def test_one_pacs_aborted_finding_for_find_and_move() -> None:
    find = FindResult(status=Status.FAIL, association=AssocState.ABORTED)
    mv = move(association=AssocState.ABORTED)
    assert list(run(find=find, mv=mv)) == ["PACS_ABORTED"]


@pytest.mark.parametrize(
    "find,needle",
    [
        (FindResult(status=Status.OK, association=AssocState.ACCEPTED), "returned no study"),
        (FindResult(status=Status.OK, association=AssocState.ACCEPTED, requested_study="9.9"),
         "9.9 is not on the PACS"),
        (FindResult(status=Status.FAIL, association=AssocState.ACCEPTED, reason="0xC000",
                    final_code=0xC000),
         "failed"),
        (FindResult(status=Status.FAIL, association=AssocState.CONTEXT_REJECTED), "refused"),
    ],
)  # fmt: skip
def test_nothing_to_move(find: FindResult, needle: str) -> None:
    f = run(find=find)["MOVE_NOTHING_TO_MOVE"]
    assert needle in f.summary and "--study" in f.fix
    assert f.severity is Severity.WARN


# --- the move -----------------------------------------------------------------------------------


def test_destination_unknown_names_the_entry() -> None:
    f = run(mv=move(final_code=0xA801, completed=0, failed=0))["MOVE_DESTINATION_UNKNOWN"]
    assert "add AE title 'MYSCU', address 198.51.100.7, port 11112" in f.fix


@pytest.mark.parametrize(
    "kw,needle",
    [
        ({"final_code": 0xA702, "failed": 3, "completed": 0}, "0xA702"),  # dcmqrscp
        ({"final_code": 0xC000}, "0xC000"),  # Orthanc
        ({"final_code": 0x0000, "completed": 0}, "in the background"),  # async Orthanc
        ({"no_response": NoResponse.TIMEOUT}, "DIMSE timeout"),
    ],
)
def test_no_connect_back(kw: dict[str, Any], needle: str) -> None:
    f = run(mv=move(**kw))["MOVE_NO_CONNECT_BACK"]
    assert needle in f.summary
    assert "address 198.51.100.7, port 11112" in f.fix
    assert "forward TCP port 11112 to 192.168.2.2:11112" in f.fix
    if kw.get("failed"):
        # The PACS's own failed count says it knew the AE and tried (issue 12): no "lacks it"
        assert "knows 'MYSCU' and tried 3" in f.fix and "lacks" not in f.fix
        assert f.detail["evidence"]
    else:
        assert "0xC000" in f.fix  # why the status alone does not say "unknown"


def test_no_connect_back_suggests_cget_when_the_pacs_has_it() -> None:
    get = GetResult(status=Status.OK, supported=True, association=AssocState.ACCEPTED)
    found = run(mv=move(final_code=0xC000), get=get)
    assert "C-GET" in found["MOVE_NO_CONNECT_BACK"].fix
    assert "CGET_AVAILABLE" in found


def test_no_nat_hint_on_a_lan() -> None:
    view = AddressView(lan="192.168.2.2", toward_pacs="192.168.2.2", pacs_ip="192.168.2.50")
    f = run(mv=move(final_code=0xC000), view=view)["MOVE_NO_CONNECT_BACK"]
    assert "NAT" not in f.fix and "address 192.168.2.2, port 11112" in f.fix


def test_delivered_elsewhere() -> None:
    f = run(mv=move(final_code=0, completed=3, failed=0))["MOVE_DELIVERED_ELSEWHERE"]
    assert "3 image(s)" in f.summary and "another" in f.fix


def test_partly_delivered_elsewhere() -> None:
    mv = move(final_code=0, completed=4, failed=0, received=2, connections=1,
              associations=(inbound(stores=2),))  # fmt: skip
    f = run(mv=mv)["MOVE_DELIVERED_ELSEWHERE"]
    assert "2 of the 4" in f.summary


def test_ok() -> None:
    mv = move(status=Status.OK, final_code=0, completed=3, failed=0, received=3, connections=1,
              associations=(inbound(),))  # fmt: skip
    found = run(mv=mv)
    assert list(found) == ["MOVE_OK"]
    assert "203.0.113.10 calling 'ARCHIVE'" in found["MOVE_OK"].summary


def test_ok_needs_every_image() -> None:
    mv = move(final_code=0, received=2, connections=1, associations=(inbound(stores=2),))
    found = run(mv=mv)  # no counts in the final response; C-FIND said 3
    assert "MOVE_OK" not in found
    assert "2 of 3" in found["MOVE_INCOMPLETE"].summary


def test_failed_sub_operations_after_connecting_back() -> None:
    mv = move(final_code=0xB000, completed=2, failed=1, received=2, connections=1,
              associations=(inbound(stores=2),))  # fmt: skip
    f = run(mv=mv)["MOVE_INCOMPLETE"]
    assert "1 sub-operation(s) failed" in f.summary and f.severity is Severity.FAIL


def test_final_before_images_and_called_aet_mismatch() -> None:
    mv = move(final_code=0, completed=0, received=3, received_after_final=3, connections=1,
              associations=(inbound(called="OLDNAME"),))  # fmt: skip
    found = run(mv=mv)
    assert found["MOVE_FINAL_BEFORE_IMAGES"].severity is Severity.WARN
    assert "SynchronousCMove" in found["MOVE_FINAL_BEFORE_IMAGES"].fix
    assert "'OLDNAME'" in found["MOVE_CALLED_AET_MISMATCH"].summary
    assert "MOVE_OK" in found  # they did arrive, here


def test_port_busy_names_the_program() -> None:
    sock = ListeningSocket(address="0.0.0.0", port=11112, family="ipv4", pid=4321,
                           process="storescp")  # fmt: skip
    mv = move(port_busy=(sock,), association=None)
    f = run(mv=mv)["MOVE_PORT_BUSY"]
    assert "storescp (PID 4321) on 0.0.0.0:11112" in f.summary
    assert "Stop storescp (PID 4321)" in f.fix


def test_port_busy_without_visible_owner() -> None:
    f = run(mv=move(port_busy=(), port_error="EADDRINUSE", association=None))["MOVE_PORT_BUSY"]
    assert "another program" in f.summary


def test_move_aborted_by_the_pacs() -> None:
    assert "PACS_ABORTED" in run(mv=move(no_response=NoResponse.ABORTED))


def test_move_context_refused() -> None:
    f = run(mv=move(association=AssocState.CONTEXT_REJECTED))["PACS_REJECTED_ASSOCIATION"]
    assert "C-MOVE" in f.summary


def test_cget_available_reports_a_real_cget() -> None:
    get = GetResult(status=Status.OK, supported=True, association=AssocState.ACCEPTED,
                    tried=True, final_code=0, received=3)  # fmt: skip
    f = run(get=get)["CGET_AVAILABLE"]
    assert "delivered 3 image(s) (0x0000)" in f.summary and f.severity is Severity.INFO


def test_skipped_steps_say_nothing() -> None:
    assert run(find=SKIP) == {}


# --- statuses and the timeline -----------------------------------------------------------------


@pytest.mark.parametrize(
    "code,word",
    [
        (0x0000, StatusWord.SUCCESS), (0xFF00, StatusWord.PENDING), (0xFF01, StatusWord.PENDING),
        (0xFE00, StatusWord.CANCEL), (0xB000, StatusWord.WARNING), (0xA801, StatusWord.FAILURE),
        (0xA702, StatusWord.FAILURE), (0xC000, StatusWord.FAILURE), (0x0122, StatusWord.FAILURE),
    ],
)  # fmt: skip
def test_status_words(code: int, word: StatusWord) -> None:
    assert status_word(code) is word
    assert status_meaning(code)


def test_timeline_is_bounded_and_ordered() -> None:
    tl = Timeline(t0=0.0, max_events=10)
    for i in range(25):
        tl.add(EventKind.C_STORE, t=float(25 - i), association=1, bytes=1, status=0)
    ev = tl.events()
    assert len(ev) == 10 and tl.dropped == 15
    assert [e.t for e in ev] == sorted(e.t for e in ev)


@pytest.mark.parametrize("kind", list(EventKind))
def test_every_event_kind_is_described(kind: EventKind) -> None:
    text = describe(TimelineEvent(1.0, kind, "1.2.3.4:5", 1, {"code": 0, "completed": 1}))
    assert text and text != kind.value
