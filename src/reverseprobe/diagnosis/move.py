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
from reverseprobe.diagnosis.words import move as words
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
        """The entry the PACS needs ({entry_fix} of several codes), with the forwarding behind
        NAT and C-GET where the PACS offers it."""
        fix = words.ENTRY_FIX.format(register=register(self.cfg, self.entry))
        if behind_nat(self.view):
            toward = self.view.toward_pacs or self.view.lan
            fix += words.ENTRY_FIX_NAT.format(port=self.cfg.port, toward=toward)
        if self.cget:
            fix += words.ENTRY_FIX_CGET
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
        return [make("LISTENER_NONE", variant="running", severity=Severity.FAIL, port=cfg.port)]
    if move.association is AssocState.REJECTED and move.reject is not None:
        return [rejected(move.reject, cfg, entry, "C-MOVE")]
    if move.association is AssocState.ABORTED:
        return [aborted(cfg, entry, "the C-MOVE association")]
    if move.association is AssocState.CONTEXT_REJECTED:
        return [
            make(
                "PACS_REJECTED_ASSOCIATION",
                variant="move_context",
                pacs=pacs_name(cfg),
                aet=cfg.aet,
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
                detail={"called": called},
                called=", ".join(map(repr, called)),
                aet=cfg.aet,
            )
        )
    if move.received_after_final:
        out.append(
            make(
                "MOVE_FINAL_BEFORE_IMAGES",
                detail={"late": move.received_after_final},
                late=move.received_after_final,
                final_code=move.final_code_hex,
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
    return [
        make(
            "MOVE_TLS_MISMATCH",
            variant=direction,
            detail={"direction": direction, "connections": len(cuts), "reason": reason},
            peer=peer,
            port=cfg.port,
            reason=reason,
            aet=cfg.aet,
            tls_port=TLS_DICOM_PORT,
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
    named: dict[str, Any] = (
        {"process": first.process, "pid": first.pid} if first and first.pid else {}
    )
    return make(
        "MOVE_PORT_BUSY",
        variant="holder" if named else None,
        detail={
            "sockets": [{"address": s.address, "pid": s.pid, "process": s.process} for s in socks],
            "error": move.port_error,
        },
        port=port,
        holders=holders,
        aet=cfg.aet,
        **named,
    )


def _delivery(move: MoveResult, ctx: _Ctx) -> Finding:  # noqa: PLR0911, PLR0912 - one branch per cause's signature; to split
    """The one finding that says whether the images arrived, and if not, where it broke."""
    cfg, port = ctx.cfg, ctx.cfg.port
    code, word = move.final_code, move.final_status
    status = f"{move.final_code_hex}, {move.final_meaning}" if code is not None else "none"
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
            detail=detail,
            aet=cfg.aet,
            final_code=move.final_code_hex,
            register=register(cfg, ctx.entry),
        )
    done = word in (StatusWord.SUCCESS, StatusWord.WARNING)
    out_of_time = move.cancelled or move.no_response is NoResponse.TIMEOUT
    if received == 0 and conns == 0:
        completed = move.completed or 0
        if done and completed > 0:
            return make(
                "MOVE_DELIVERED_ELSEWHERE",
                variant="none_arrived",
                detail=detail,
                completed=completed,
                status=status,
                port=port,
                grace=move.grace_s,
                aet=cfg.aet,
                entry_fix=ctx.entry_fix(),
            )
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
                variant="move",
                detail={"wrong": ["address or port"], "expected": must, **detail},
                aet=cfg.aet,
                failed=move.failed,
                port=port,
                must=must,
            )
        return _no_connect_back(move, ctx, status, detail, out_of_time=out_of_time)
    if move.receiver_mode == "running":
        return _observed(move, ctx, status, detail)
    failed = (move.failed or 0) + move.store_failures
    want = move.completed or move.expected
    if delivered(word=word, received=received, failed=failed, want=want):
        via = ", ".join(sorted({f"{a.peer} calling {a.calling_aet!r}" for a in move.associations}))
        senders = sorted({a.calling_aet for a in move.associations if a.calling_aet})
        return make(
            "MOVE_OK",
            variant="own" if cfg.pacs_aet in senders else "own:not_qr",
            detail={"storage_sender": senders, **detail},
            received=received,
            port=port,
            via=via,
            status=status,
            pacs_aet=cfg.pacs_aet,
        )
    if received and move.completed and received < move.completed:
        return make(
            "MOVE_DELIVERED_ELSEWHERE",
            variant="partial",
            detail=detail,
            received=received,
            completed=move.completed,
            port=port,
            entry_fix=ctx.entry_fix(),
        )
    why: list[str] = []
    if failed:
        why.append(words.WHY_FAILED.format(failed=failed))
    if move.no_response:
        why.append(words.WHY_NO_RESPONSE.format(no_response=NO_RESPONSE_TEXT[move.no_response]))
    elif not done:
        why.append(words.WHY_FINAL.format(status=status))
    if want and received < want:
        why.append(words.WHY_MISSING.format(received=received, want=want))
    variant = "own"
    if pacs_cannot_convert(move):
        why.append(words.WHY_CANNOT_CONVERT)
        variant = "own:cannot_convert"
        detail["cause"] = "pacs-cannot-convert"
    if out_of_time:
        why.append(words.WHY_TIMEOUT.format(timeout=cfg.timeout))
        variant = "own:timeout"
    return make(
        "MOVE_INCOMPLETE",
        variant=variant,
        detail=detail,
        port=port,
        connections=conns,
        why="; ".join(why) or words.WHY_NONE,
        failed=move.failed,
    )


def _no_connect_back(
    move: MoveResult, ctx: _Ctx, status: str, detail: dict[str, Any], *, out_of_time: bool
) -> Finding:
    """MOVE_NO_CONNECT_BACK: nothing reached us; how the move ended, and what the PACS's
    counts and the way in say about where it broke (PS3.4 C.4.2.1.4 sub-operation counts)."""
    cfg, way, word = ctx.cfg, ctx.way, move.final_status
    if move.no_response:
        ended = "no_response"
    elif word is StatusWord.SUCCESS:
        ended = "success"
    else:
        ended = "failed"
    observed = ""
    if move.receiver_mode == "running":
        note = f"; {move.observer_note}" if move.observer_note else ""
        observed = words.OBSERVED.format(note=note)
    closed = ""
    if way.state in ("closed", "elsewhere") and not out_of_time:
        closed = words.WAY_CLOSED.format(evidence=way.evidence)
        detail["evidence"] = f"{way.evidence} before the move" + (
            f"; the PACS reports {move.failed} failed" if move.failed else ""
        )
    if move.failed and "evidence" in detail:
        known = "tried:closed"
    elif move.failed:
        # Its own counts say it knew the AE title and tried: the entry's address is wrong
        # or the way in is closed, not a missing entry.
        known = "tried"
        detail["evidence"] = "the PACS's failed count > 0 and no connection arrived"
    elif "evidence" in detail:
        known = "closed"
    else:
        known = "unknown"
    return make(
        "MOVE_NO_CONNECT_BACK",
        variant=f"{ended}:{known}",
        detail=detail,
        no_response=NO_RESPONSE_TEXT[move.no_response] if move.no_response else "",
        status=status,
        port=cfg.port,
        grace=move.grace_s,
        observed=observed,
        background=words.BACKGROUND if word is StatusWord.SUCCESS else "",
        closed=closed,
        aet=cfg.aet,
        failed=move.failed,
        entry_fix=ctx.entry_fix(),
        out_of_time=words.OUT_OF_TIME.format(timeout=cfg.timeout) if out_of_time else "",
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
            variant="running",
            detail={"storage_sender": peers, **detail},
            completed=move.completed,
            status=status,
            peers=", ".join(peers),
            owners=", ".join(owners) or "your receiver",
            port=port,
            pacs_aet=cfg.pacs_aet,
        )
    why = []
    if move.failed:
        why.append(words.WHY_FAILED.format(failed=move.failed))
    if move.no_response:
        why.append(words.WHY_NO_RESPONSE.format(no_response=NO_RESPONSE_TEXT[move.no_response]))
    if move.observer_note:
        why.append(words.WHY_OBSERVER.format(note=move.observer_note))
    return make(
        "MOVE_INCOMPLETE",
        variant="running:why" if why else "running",
        detail=detail,
        port=port,
        connections=move.connections,
        status=status,
        why="; ".join(why),
    )


def _cget(get: ProbeResult) -> Finding:
    assert isinstance(get, GetResult)
    final = f"0x{get.final_code:04X}" if get.final_code is not None else "no final status"
    return make(
        "CGET_AVAILABLE",
        variant="tried" if get.tried else "accepted",
        detail={"received": get.received, "tried": get.tried},
        received=get.received,
        final=final,
    )
