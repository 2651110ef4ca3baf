"""Rules for move-test (pure): what echo, find, move and get saw -> findings with fixes.

Status codes alone cannot name the cause (docs/reference.md: dcmqrscp says 0xA702 for an unreachable
destination, Orthanc 0xC000 for an unknown one too); the diagnosis rests on what our own
listener saw: a connection or not, from where, calling which AE title, and when.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reverseprobe.config import CheckConfig, MoveTestConfig
from reverseprobe.diagnosis.catalogue import make
from reverseprobe.diagnosis.inbound import Verdict, judge, reflector_inside
from reverseprobe.diagnosis.inbound import rules as inbound_rules
from reverseprobe.diagnosis.pacs import (
    aborted,
    echo_rules,
    find_rules,
    pacs_name,
    protocol_error,
    register,
    rejected,
)
from reverseprobe.diagnosis.receiver import (
    BUSY_EXPLAINS,
    pacs_cannot_convert,
    preflight_rules,
    receiver_rules,
)
from reverseprobe.model import Finding, PacsEntry, ProbeResult, Severity, Status
from reverseprobe.model.check import ListeningSocket
from reverseprobe.model.dicom import (
    NO_RESPONSE_TEXT,
    AssocState,
    DicomStatus,
    EchoProbeResult,
    EventKind,
    FindResult,
    GetResult,
    MoveResult,
    NoResponse,
    StatusWord,
)
from reverseprobe.model.inbound import InboundResult
from reverseprobe.model.move import AddressView, behind_nat
from reverseprobe.model.receiver import ReceiverPreflight
from reverseprobe.model.tls import TLS_DICOM_PORT


def delivered(*, word: StatusWord | None, received: int, failed: int, want: int | None) -> bool:
    """The one definition of a C-MOVE that worked: a success or warning final status (PS3.4
    C.4.2.1.4), at least one image in, none failed, and at least as many as the PACS counted."""
    ok_word = word in (StatusWord.SUCCESS, StatusWord.WARNING)
    return ok_word and received > 0 and not failed and (not want or received >= want)


def rules(
    probes: Mapping[str, ProbeResult],
    cfg: MoveTestConfig,
    entry: PacsEntry,
    view: AddressView | None = None,
) -> list[Finding]:
    view = view or AddressView()
    echo = _typed(probes.get("echo"), EchoProbeResult)
    find = _typed(probes.get("find"), FindResult)
    move = _typed(probes.get("move"), MoveResult)
    get = _typed(probes.get("get"), GetResult)
    out: list[Finding] = []
    way = way_in(probes)
    if "inbound" in probes:
        out.extend(_inbound_findings(probes, cfg))
    if echo is not None:
        out.extend(echo_rules(echo, cfg, entry))
    if find is not None:
        out.extend(find_rules(find, cfg, entry))
    pf = probes.get("receiver")
    if isinstance(pf, ReceiverPreflight):
        out.extend(preflight_rules(pf, move if isinstance(move, MoveResult) else None))
    if move is not None:
        pre = pf if isinstance(pf, ReceiverPreflight) else None
        out.extend(_move_rules(move, get, cfg, entry, view, way=way, pf=pre))
        if any(f.code == "MOVE_STORE_REJECTED" and f.detail.get("evidence") for f in out):
            # The preflight's "may be refused" happened: the store rejection tells it once.
            out = [
                f
                for f in out
                if not (f.code == "LISTENER_REJECTS_CONTEXT" and f.severity is Severity.WARN)
            ]
    if isinstance(get, GetResult) and get.supported:
        out.append(_cget(get))
    if any(f.code == "LISTENER_BUSY" and f.severity is Severity.FAIL for f in out):
        # The receiver's association limit is the cause: one finding, at it.
        out = [f for f in out if f.code not in BUSY_EXPLAINS]
    return _dedupe(out)


def inbound_config(cfg: MoveTestConfig) -> CheckConfig:
    """The inbound probe's and its rules' view of move-test's options: the same port, AE
    title and reflector; no router is asked (move-test never talks UPnP)."""
    return CheckConfig(port=cfg.port, aet=cfg.aet, reflector=cfg.reflector, upnp=False,
                       public_ip=cfg.public_ip, ip_services=cfg.ip_services,
                       strict=cfg.strict, timeout=cfg.timeout)  # fmt: skip


@dataclass(frozen=True)
class WayIn:
    """What the reflector's dial-back of --port says about the way in, measured before the
    move: open | closed | elsewhere | None (not measured, or a reflector inside proves
    nothing), and the evidence in words."""

    state: str | None = None
    evidence: str = ""
    seen_as: str | None = None  # this PC's address as the reflector (outside) saw it


def way_in(probes: Mapping[str, ProbeResult]) -> WayIn:  # noqa: PLR0911 - one return per way-in verdict (open, closed, inside, not tested)
    r = probes.get("inbound")
    if not isinstance(r, InboundResult) or r.status is not Status.OK:
        return WayIn()
    inside = reflector_inside(probes)
    if inside is not None:
        return WayIn(None, f"the reflector is inside this network ({inside}): proves nothing")
    v = judge(r)
    port = r.port
    if v in (Verdict.OK, Verdict.OK_UNCONFIRMED):
        return WayIn(
            "open", f"the reflector's dial-back reached port {port} on this PC", r.observed_ip
        )
    if v is Verdict.REFUSED:
        return WayIn("closed", f"the reflector's dial-back of port {port} was refused")
    if v is Verdict.TIMEOUT:
        return WayIn("closed", f"the reflector's dial-back of port {port} timed out (filtered)")
    if v is Verdict.OTHER_HOST:
        return WayIn("elsewhere", f"the reflector's dial-back of port {port} reached another host")
    return WayIn()


def _inbound_findings(probes: Mapping[str, ProbeResult], cfg: MoveTestConfig) -> list[Finding]:
    """The inbound probe's own findings (the way in: INBOUND_*); a reflector inside the
    network gets REFLECTOR_INSIDE instead of its dial-back codes (diagnosis/story.py)."""
    from reverseprobe.diagnosis.story import _inside_reflector

    found = inbound_rules({"inbound": probes["inbound"]}, inbound_config(cfg))
    return _inside_reflector(found, probes)


def _typed(p: ProbeResult | None, cls: type[ProbeResult]) -> ProbeResult | None:
    """Only results of the expected type: skipped and failed steps are plain ProbeResults."""
    return p if isinstance(p, cls) else None


def _dedupe(findings: list[Finding]) -> list[Finding]:
    """One finding per PACS_* code: the first (earliest step) explains it best."""
    seen: set[str] = set()
    out = []
    for f in findings:
        if f.code.startswith("PACS_") and f.code in seen:
            continue
        seen.add(f.code)
        out.append(f)
    return out


# --- move -----------------------------------------------------------------------------------


def _who(s: ListeningSocket) -> str:
    who = f"{s.process} (PID {s.pid})" if s.pid is not None else "a program (PID not visible)"
    return f"{who} on {s.address}:{s.port}"


@dataclass(frozen=True)
class _Ctx:
    """What every move rule needs besides the move result."""

    cfg: MoveTestConfig
    entry: PacsEntry
    view: AddressView
    cget: bool  # the PACS accepts C-GET
    way: WayIn = WayIn()  # the way in, from the reflector (before the move)

    def entry_fix(self) -> str:
        port = self.cfg.port
        entry = register(self.cfg, self.entry)
        fix = f"At the PACS, the entry for the Move Destination must be {entry}."
        if behind_nat(self.view):
            fix += (
                f" This PC is behind NAT: the router must forward TCP port {port} to "
                f"{self.view.toward_pacs or self.view.lan}:{port} "
                f"(`reverseprobe forward --upnp --port {port}`)."
            )
        if self.cget:
            fix += " Or retrieve with C-GET, which this PACS accepts: it needs no connection back."
        return fix


def _move_rules(  # noqa: PLR0911, PLR0913 - one return per move outcome, in the order they decide
    move: ProbeResult,
    get: ProbeResult | None,
    cfg: MoveTestConfig,
    entry: PacsEntry,
    view: AddressView,
    *,
    way: WayIn | None = None,
    pf: ReceiverPreflight | None = None,
) -> list[Finding]:
    assert isinstance(move, MoveResult)
    if move.port_busy is not None:
        return [_port_busy(move, cfg)]
    if move.receiver_mode == "running" and move.association is None:
        return [
            make(
                "LISTENER_NONE",
                f"Nothing listens on port {cfg.port}: start the receiver before the move "
                f"(--receiver running asks to test the receiver already running).",
                f"Start your DICOM receiver on port {cfg.port}, or use --receiver own.",
                severity=Severity.FAIL,
            )
        ]
    if move.association is AssocState.REJECTED and move.reject is not None:
        return [rejected(move.reject, cfg, entry, "C-MOVE")]
    if move.association is AssocState.ABORTED:
        return [aborted(cfg, entry, "the C-MOVE association")]
    if move.association is AssocState.CONTEXT_REJECTED:
        return [
            make(
                "PACS_REJECTED_ASSOCIATION",
                f"The PACS {pacs_name(cfg)} accepted the association but refused the Study Root "
                f"C-MOVE presentation context.",
                f"Ask the administrator to allow C-MOVE (retrieve) for {cfg.aet!r}.",
            )
        ]
    if move.association is not AssocState.ACCEPTED:
        return []
    if move.no_response is NoResponse.ABORTED and move.received == 0:
        return [aborted(cfg, entry, "the C-MOVE")]
    if move.no_response is NoResponse.GARBAGE and move.received == 0:
        return [protocol_error(cfg, "C-MOVE", move.reason)]
    ctx = _Ctx(cfg, entry, view, isinstance(get, GetResult) and bool(get.supported), way or WayIn())
    out: list[Finding] = []
    assocs = move.associations
    called = sorted({a.called_aet for a in assocs if a.called_aet and a.called_aet != cfg.aet})
    if called:
        out.append(
            make(
                "MOVE_CALLED_AET_MISMATCH",
                f"The PACS connected back but called AE title {', '.join(map(repr, called))}, "
                f"not the Move Destination {cfg.aet!r}.",
                f"In the PACS's entry for {cfg.aet!r} set the AE title to exactly {cfg.aet!r}; "
                f"a receiver that checks the called AE title will refuse these connections.",
                called=called,
            )
        )
    if move.received_after_final:
        out.append(
            make(
                "MOVE_FINAL_BEFORE_IMAGES",
                f"{move.received_after_final} image(s) arrived after the PACS's final C-MOVE "
                f"response ({move.final_code_hex}): a client that stops listening at the final "
                f"response loses them.",
                "Keep your SCU's Storage SCP running all the time, not only while a C-MOVE is "
                'in progress; the PACS is faulty (Orthanc: set "SynchronousCMove": true).',
                late=move.received_after_final,
            )
        )
    mismatch = tls_mismatch_rules(move, cfg)
    if mismatch:
        out.extend(mismatch)
        return out
    first = receiver_rules(move, cfg.aet, cfg.port, pf)
    out.extend(first or [_delivery(move, ctx)])
    return out


def tls_mismatch_rules(move: MoveResult, cfg: MoveTestConfig) -> list[Finding]:
    """MOVE_TLS_MISMATCH: the receiver's guard saw a TLS ClientHello where a plain
    A-ASSOCIATE-RQ was due, or the reverse (PS3.15 B.1); the timeline's cut-off events say so."""
    cuts = [
        ev
        for ev in move.timeline
        if ev.event is EventKind.CUT_OFF and ev.detail.get("why") == "tls"
    ]
    if not cuts:
        return []
    reason = str(cuts[0].detail.get("reason", ""))
    peer = cuts[0].peer or "the PACS"
    direction = _tls_direction(reason)
    aet = repr(cfg.aet)
    if direction == "plain-at-tls":
        summary = (
            f"The PACS ({peer}) opened its C-STORE sub-association with plain DICOM, but the "
            f"receiver on port {cfg.port} expects DICOM over TLS: {reason}."
        )
        fix = (
            f'Either turn TLS on for {aet} in the PACS (PS3.15 B.1; Orthanc: "UseDicomTls": '
            f"true in its DicomModalities entry, with DicomTlsCertificate/DicomTlsPrivateKey "
            f"and the CA of the receiver's certificate in DicomTlsTrustedCertificates; dcmtk: "
            f"+tls; pynetdicom: an ssl_context), or run the receiver without TLS "
            f"(move-test without --tls)."
        )
    elif direction == "handshake":
        summary = (
            f"The PACS ({peer}) and the receiver on port {cfg.port} both speak DICOM over TLS, "
            f"but the handshake failed: {reason}."
        )
        fix = (
            "Give each side the CA that signed the other's certificate (move-test --tls-ca: the "
            "PACS's CA; Orthanc: DicomTlsTrustedCertificates), and check that neither "
            "certificate has expired."
        )
    else:
        summary = (
            f"The PACS ({peer}) opened its C-STORE sub-association with TLS, but the receiver "
            f"on port {cfg.port} speaks plain DICOM: {reason}."
        )
        fix = (
            f'Either turn TLS off for {aet} in the PACS (Orthanc: "UseDicomTls": false in '
            f"its DicomModalities entry), or run the receiver with TLS (move-test --tls "
            f"--tls-cert CERT --tls-key KEY; dcmtk storescp +tls KEY CERT; pynetdicom: "
            f"ssl_context; port {TLS_DICOM_PORT} by convention) and give the PACS the CA that "
            f"signed its certificate."
        )
    return [
        make(
            "MOVE_TLS_MISMATCH",
            summary,
            fix,
            direction=direction,
            connections=len(cuts),
            reason=reason,
        )
    ]


def _tls_direction(reason: str) -> str:
    """Which side expected what, from the guard's words (dicom/guard.py, accept_tls)."""
    if "plain DICOM" in reason:
        return "plain-at-tls"
    if "handshake" in reason:
        return "handshake"
    return "tls-at-plain"


def _port_busy(move: MoveResult, cfg: MoveTestConfig) -> Finding:
    port = cfg.port
    socks = move.port_busy or ()
    holders = "; ".join(_who(s) for s in socks) or "another program"
    first = socks[0] if socks else None
    stop = f"Stop {first.process} (PID {first.pid})" if first and first.pid else "Stop it"
    return make(
        "MOVE_PORT_BUSY",
        f"Port {port} is already taken by {holders}: move-test cannot listen there, and the "
        f"PACS's images would go to that program.",
        f"{stop} while you test, or pass a free --port (and register that port at the PACS). "
        f"If that program is your DICOM receiver, test it with `reverseprobe check --port "
        f"{port} --aet {cfg.aet}` instead. Exactly one program may listen on port {port}.",
        sockets=[{"address": s.address, "pid": s.pid, "process": s.process} for s in socks],
        error=move.port_error,
    )


def _delivery(move: MoveResult, ctx: _Ctx) -> Finding:  # noqa: PLR0911, PLR0912, PLR0915 - one branch per cause's signature; to split
    """The one finding that says whether the images arrived, and if not, where it broke."""
    cfg, port = ctx.cfg, ctx.cfg.port
    code, word = move.final_code, move.final_status
    status = f"{move.final_code_hex}, {move.final_meaning}" if code is not None else "none"
    after = f"during the move and {move.grace_s:g} s after it"
    received, conns = move.received, move.connections
    detail: dict[str, Any] = {
        "final_code": move.final_code_hex,
        "completed": move.completed,
        "failed": move.failed,
        "received": received,
        "connections": conns,
        "peers": sorted({a.peer for a in move.associations}),
    }
    way = ctx.way
    if way.evidence:
        detail["way_in"] = way.state
    attempts = (move.completed or 0) + (move.failed or 0) + (move.warning or 0)
    unknown = code == DicomStatus.MOVE_DESTINATION_UNKNOWN or (
        code == DicomStatus.UNABLE_TO_PROCESS and attempts == 0 and way.state == "open"
    )  # Orthanc says 0xC000 for an unknown AE: with the way in open and no attempt, it is that
    if unknown and received == 0 and conns == 0:
        detail["evidence"] = f"final status {move.final_code_hex} with zero sub-operations" + (
            f"; {way.evidence}" if way.evidence else ""
        )
        return make(
            "MOVE_DESTINATION_UNKNOWN",
            f"The PACS does not know the Move Destination {cfg.aet!r} (status "
            f"{move.final_code_hex}, no sub-operation attempted).",
            f"Ask the PACS administrator to add {register(cfg, ctx.entry)}.",
            **detail,
        )
    done = word in (StatusWord.SUCCESS, StatusWord.WARNING)
    out_of_time = move.cancelled or move.no_response is NoResponse.TIMEOUT
    if received == 0 and conns == 0:
        completed = move.completed or 0
        if done and completed > 0:
            return make(
                "MOVE_DELIVERED_ELSEWHERE",
                f"The PACS reports {completed} image(s) sent ({status}), but no connection "
                f"reached port {port} on this PC {after}: they went to another receiver.",
                f"The PACS's entry for {cfg.aet!r} points to another machine or port, or the "
                f"router forwards port {port} to another PC. {ctx.entry_fix()}",
                **detail,
            )
        if move.no_response:
            summary = f"The C-MOVE got no final response ({NO_RESPONSE_TEXT[move.no_response]})"
        elif word is StatusWord.SUCCESS:
            summary = f"The PACS reported success ({status}) without sub-operations,"
        else:
            summary = f"The C-MOVE failed ({status})"
        summary += f" and no connection reached port {port} on this PC {after}."
        if move.receiver_mode == "running":
            summary += (
                " (Observed from the connection table every 20 ms: an association shorter "
                "than that can be missed; your receiver's log is the proof"
                + (f"; {move.observer_note}" if move.observer_note else "")
                + ".)"
            )
        if word is StatusWord.SUCCESS:
            summary += " (A PACS that moves in the background reports success before it tries.)"
        if move.failed and way.state == "open":
            # The way in is open (the reflector got through) and the PACS tried: its entry
            # points elsewhere. PACS_ENTRY_WRONG, shared with the NAT-layers rules.
            must = register(cfg, ctx.entry)
            if way.seen_as:  # the reflector's view from outside is the address that works
                must = f"AE title {cfg.aet!r}, address {way.seen_as}, port {port}"
            detail["evidence"] = (
                f"{way.evidence} before the move; the PACS reports {move.failed} failed "
                f"sub-operation(s) and no connection arrived"
            )
            return make(
                "PACS_ENTRY_WRONG",
                f"The PACS knows {cfg.aet!r} and tried {move.failed} sub-operation(s), but it "
                f"dials somewhere that is not this PC: the way in to port {port} is open (the "
                f"reflector got through) and no connection from the PACS arrived. Its entry's "
                f"address or port is wrong.",
                f"In the PACS's AE table the entry for {cfg.aet!r} must be {must}.",
                wrong=["address or port"],
                expected=must,
                **detail,
            )
        if way.state in ("closed", "elsewhere") and not out_of_time:
            summary += f" The way in is closed: {way.evidence} (see the inbound finding)."
            detail["evidence"] = f"{way.evidence} before the move" + (
                f"; the PACS reports {move.failed} failed" if move.failed else ""
            )
        if move.failed and "evidence" in detail:
            fix = (
                f"The PACS knows {cfg.aet!r} and tried {move.failed} sub-operation(s), but the "
                f"way in to port {port} is closed: open it as the inbound finding says. "
                f"{ctx.entry_fix()}"
            )
        elif move.failed:
            # Its own counts say it knew the AE title and tried: the entry's address is wrong
            # or the way in is closed, not a missing entry (PS3.4 C.4.2.1.4 sub-op counts).
            fix = (
                f"The PACS knows {cfg.aet!r} and tried {move.failed} sub-operation(s) (its own "
                f"failed count), but it dials an address that does not reach port {port} on "
                f"this PC, or the way in (router, firewall) is closed. {ctx.entry_fix()}"
            )
            detail["evidence"] = "the PACS's failed count > 0 and no connection arrived"
        elif "evidence" in detail:
            fix = (
                f"The way in to port {port} is closed: open it first, as the inbound finding "
                f"says; then, if the move still fails, the PACS lacks the entry or it points "
                f"elsewhere. {ctx.entry_fix()}"
            )
        else:
            fix = (
                f"The PACS lacks the entry for {cfg.aet!r} (some PACS say 0xC000, not 0xA801) "
                f"or its entry points to an address that does not reach this PC. "
                f"{ctx.entry_fix()}"
            )
        if out_of_time:
            fix += (
                f" move-test's --timeout ({cfg.timeout:g} s) ended the wait: a PACS that waits "
                f"out its own connect timeout answers later; rerun with a longer --timeout to "
                f"see its final status."
            )
        return make("MOVE_NO_CONNECT_BACK", summary, fix, **detail)
    if move.receiver_mode == "running":
        return _observed(move, ctx, status, detail)
    failed = (move.failed or 0) + move.store_failures
    want = move.completed or move.expected
    if delivered(word=word, received=received, failed=failed, want=want):
        via = ", ".join(sorted({f"{a.peer} calling {a.calling_aet!r}" for a in move.associations}))
        senders = sorted({a.calling_aet for a in move.associations if a.calling_aet})
        return make(
            "MOVE_OK",
            f"All {received} image(s) arrived on port {port} (from {via}); final status {status}. "
            f"The storage sender your receiver must allow is {via}"
            + (f" (not the Q/R AE title {cfg.pacs_aet!r})" if cfg.pacs_aet not in senders else "")
            + ".",
            storage_sender=senders,
            **detail,
        )
    if received and move.completed and received < move.completed:
        return make(
            "MOVE_DELIVERED_ELSEWHERE",
            f"Only {received} of the {move.completed} image(s) the PACS reports sent arrived on "
            f"port {port}: the rest went to another receiver.",
            f"Another program or PC shares the destination (two listeners on port {port}, or a "
            f"router forwarding to several PCs). {ctx.entry_fix()}",
            **detail,
        )
    why: list[str] = []
    if failed:
        why.append(f"{failed} sub-operation(s) failed")
    if move.no_response:
        why.append(f"no final response ({NO_RESPONSE_TEXT[move.no_response]})")
    elif not done:
        why.append(f"final status ({status})")
    if want and received < want:
        why.append(f"{received} of {want} image(s) arrived")
    fix = (
        "Ask the PACS administrator what the PACS logged for these sub-operations; the timeline "
        "shows which association ended how."
    )
    cause = pacs_cannot_convert(move)
    if cause is not None:
        why.append("the PACS cannot send the study's transfer syntax")
        fix = cause
        detail["cause"] = "pacs-cannot-convert"
    if out_of_time:
        why.append(f"move-test's --timeout ({cfg.timeout:g} s) ran out first")
        fix = (
            "Rerun with a longer --timeout, or test with a smaller study (--study UID); the "
            "connection back works."
        )
    return make(
        "MOVE_INCOMPLETE",
        f"The PACS connected back to port {port} ({conns} connection(s)) but the move was "
        f"incomplete: {'; '.join(why) or 'images missing'}.",
        fix,
        **detail,
    )


def _observed(move: MoveResult, ctx: _Ctx, status: str, detail: dict[str, Any]) -> Finding:
    """Running mode: the user's receiver took the connections; the PACS's counts tell the rest."""
    cfg, port = ctx.cfg, ctx.cfg.port
    peers = sorted({a.peer for a in move.associations})
    owners = sorted({f"{a.process} (PID {a.pid})" for a in move.associations if a.pid})
    detail.update(observed_peers=peers, receiver=owners, observer_note=move.observer_note)
    if move.status.value == "ok":
        return make(
            "MOVE_OK",
            f"The PACS reports all {move.completed} sub-operation(s) completed ({status}) and "
            f"connected from {', '.join(peers)} to {', '.join(owners) or 'your receiver'} on "
            f"port {port}. The storage sender your receiver must allow connects from "
            f"{', '.join(peers)} (its calling AE title is often not {cfg.pacs_aet!r}: see the "
            f"receiver's log).",
            storage_sender=peers,
            **detail,
        )
    why = []
    if move.failed:
        why.append(f"{move.failed} sub-operation(s) failed")
    if move.no_response:
        why.append(f"no final response ({NO_RESPONSE_TEXT[move.no_response]})")
    if move.observer_note:
        why.append(f"connections may be missing: {move.observer_note}")
    return make(
        "MOVE_INCOMPLETE",
        f"The PACS connected to your receiver on port {port} "
        f"({move.connections} connection(s)) but the move was incomplete ({status}"
        f"{'; ' + '; '.join(why) if why else ''}).",
        "Look in your receiver's log for these associations (the timeline gives their times "
        "and source addresses); ask the PACS administrator what it logged for them. A receiver "
        "that refuses the images says why there: the transfer syntax (archives mostly store "
        "JPEG, JPEG-LS or JPEG 2000: dcmtk storescp needs +xa, Orthanc its accepted transfer "
        "syntaxes), the SOP class, or the storage sender's AE title or address (Orthanc: "
        "DicomAlwaysAllowStore / DicomModalities). To measure it: stop your receiver and run "
        "move-test --receiver own --json > move.json once (its receiver records every context "
        "the PACS proposes), then --contexts-from move.json preflights your receiver with "
        "exactly those.",
        **detail,
    )


def _cget(get: ProbeResult) -> Finding:
    assert isinstance(get, GetResult)
    if get.tried:
        st = f"0x{get.final_code:04X}" if get.final_code is not None else "no final status"
        measured = f"A C-GET of the study delivered {get.received} image(s) ({st})."
    else:
        measured = (
            "It accepted the Study Root C-GET presentation context; --try-cget retrieves the "
            "study to prove it."
        )
    return make(
        "CGET_AVAILABLE",
        f"The PACS offers C-GET, which needs no connection back to this PC. {measured}",
        "If your viewer or SCU supports C-GET, use it for this PACS: it avoids NAT, port "
        "forwarding and firewall problems altogether.",
        received=get.received,
        tried=get.tried,
    )
