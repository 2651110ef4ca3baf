"""Rules for the receiver side of a C-MOVE (pure): the status says the PACS cannot move,
the move stalled, or the receiver refused what the PACS sent (PS3.4 C.4.2, PS3.8 9.3.3.2)."""

from __future__ import annotations

from typing import Any

from reverseprobe.diagnosis.catalogue import make
from reverseprobe.diagnosis.words import receiver as words
from reverseprobe.diagnosis.words.receiver import PACS_SENDS_OTHER as PACS_SENDS_OTHER
from reverseprobe.diagnosis.words.receiver import RECEIVER_FIXES as RECEIVER_FIXES
from reverseprobe.model import Finding, Severity
from reverseprobe.model.dicom import MoveResult
from reverseprobe.model.receiver import PreflightContext, ReceiverPreflight, ts_name

MOVE_NOT_SUPPORTED_CODE = 0x0122  # SOP Class not Supported (PS3.7 C.4.2 / Annex C)
STALL_MIN_S = 1.0  # silence after the last pending response that counts as a stall


def receiver_rules(
    move: MoveResult, aet: str, port: int, pf: ReceiverPreflight | None = None
) -> list[Finding]:
    """Findings that take precedence over the delivery finding: the first one found ends it.
    `pf`: the receiver preflight of running mode, whose refusals can name the cause."""
    code = move.final_code
    if code == MOVE_NOT_SUPPORTED_CODE:
        return [make("MOVE_NOT_SUPPORTED", detail={"final_code": move.final_code_hex})]
    stalled = move.final_code is None or move.cancelled  # no final, or only after our C-CANCEL
    if move.stall_s is not None and move.stall_s >= STALL_MIN_S and stalled:
        left = move.remaining if move.remaining is not None else "?"
        return [
            make(
                "MOVE_STALLED",
                detail={
                    "pending": move.pending_responses,
                    "completed": move.completed,
                    "failed": move.failed,
                    "remaining": move.remaining,
                    "stall_s": move.stall_s,
                },
                pending=move.pending_responses,
                stall_s=move.stall_s,
                completed=move.completed or 0,
                failed=move.failed or 0,
                remaining=left,
            )
        ]
    refused = refused_by_preflight(move, pf) if pf is not None else None
    refused = refused or _refused(move, pf)
    if refused is not None:
        return [refused]
    return []


FAILED_WORDS = ("failure", "cancel")  # final statuses of a move that did not deliver


def refused_by_preflight(move: MoveResult, pf: ReceiverPreflight) -> Finding | None:
    """Running mode, MOVE_STORE_REJECTED from two measurements and one inference: the PACS's
    final status or failed count says the move failed after a connection from it reached the
    listener (measured), the preflight's A-ASSOCIATE-AC refused the study's SOP class in some
    transfer syntaxes (measured, PS3.8 9.3.3.2), so the PACS offered it in one of those
    (inferred: the receiver's answer to the PACS is not visible from here)."""
    word = move.final_status.value if move.final_status is not None else ""
    failed = move.failed or 0
    if move.receiver_mode != "running" or not move.connections:
        return None
    if not failed and word not in FAILED_WORDS:
        return None
    if pf.attempt("contexts") is None:
        return None
    # "default": the PACS named no SOP class (dcmqrscp's C-FIND does not); CT and Secondary
    # Capture stood in, so the class is inferred too, and said so.
    stand_in = pf.contexts_from == "default"
    refused = [c for c in pf.refused if c.result != "not-answered"]
    if not refused:
        return None
    by_class: dict[str, list[str]] = {}
    for c in refused:
        by_class.setdefault(c.abstract_syntax, []).append(c.transfer_syntax)
    sop, tss = next(iter(by_class.items()))
    ok = pf.accepted_for(sop)
    if ok:
        takes = words.TAKES_ONLY.format(syntaxes=", ".join(ts_name(t) for t in ok))
    else:
        takes = words.TAKES_NONE
    peers = sorted({a.peer for a in move.associations})
    who = sorted({f"{a.process} (PID {a.pid})" for a in move.associations if a.pid})
    status = (
        f"{move.final_code_hex} ({move.final_meaning})" if move.final_code is not None else "none"
    )
    return make(
        "MOVE_STORE_REJECTED",
        variant="preflight:stand_in" if stand_in else "preflight",
        detail={
            "sop_class": sop,
            "refused_transfer_syntaxes": tss[:16],
            "accepted_transfer_syntaxes": list(ok),
            "contexts": [
                f"{c.abstract_syntax} in {c.transfer_syntax} ({c.result})" for c in refused[:8]
            ],
            "final_code": move.final_code_hex,
            "completed": move.completed,
            "failed": failed,
            "warning": move.warning,
            "measured": ["preflight refusals", "PACS counts and final status", "connections"],
            "inferred": "the PACS offered a refused transfer syntax",
            "evidence": "preflight-stand-in" if stand_in else "preflight",
        },
        connections=move.connections,
        peers=", ".join(peers) or "the PACS",
        who=", ".join(who) or "the program",
        port=move.port,
        some="some of " if move.completed else "",
        status=status,
        completed=move.completed or 0,
        failed=failed,
        warning=move.warning or 0,
        of=words.OF_IMAGES.format(expected=move.expected) if move.expected else "",
        sop_class=sop,
        refused=", ".join(ts_name(t) for t in tss[:7]),
        also=words.ALSO.format(more=len(by_class) - 1) if len(by_class) > 1 else "",
        takes=takes,
    )


def _refused(move: MoveResult, pf: ReceiverPreflight | None = None) -> Finding | None:
    """MOVE_STORE_REJECTED: a connection from the PACS came, and the images were refused."""
    failed = (move.failed or 0) + move.store_failures
    if not move.associations or not failed:
        return None
    bad_cx = sorted(
        {
            f"{c.abstract_syntax} in {', '.join(c.transfer_syntaxes[:3])} ({c.result})"
            for a in move.associations
            for c in a.contexts
            if c.result != "accepted"
        }
    )
    statuses = sorted({s for a in move.associations for s in a.store_statuses if s != 0})
    rejected_assoc = [a for a in move.associations if a.called_aet and not a.accepted]
    if move.receiver_mode == "own" and not (bad_cx or statuses or rejected_assoc):
        return None  # our receiver took everything: the failures are the PACS's own
    if move.receiver_mode == "running" and move.completed:
        return None  # some went in: not a refusal of everything (MOVE_INCOMPLETE says it)
    what: list[str] = []
    if bad_cx:
        what.append(words.WHAT_CONTEXTS.format(contexts="; ".join(bad_cx[:4])))
    if statuses:
        what.append(words.WHAT_STATUSES.format(statuses=", ".join(f"0x{s:04X}" for s in statuses)))
    if rejected_assoc:
        what.append(words.WHAT_REJECTED.format(count=len(rejected_assoc)))
    detail = {"contexts": bad_cx[:8], "statuses": statuses, "failed": failed}
    if move.receiver_mode != "running":
        return make("MOVE_STORE_REJECTED", variant="own", detail=detail, what="; ".join(what))
    peers = sorted({a.peer for a in move.associations})
    who = sorted({f"{a.process} (PID {a.pid})" for a in move.associations if a.pid})
    first = pf.attempt("contexts") if pf is not None else None
    later = pf is not None and first is not None and first.state == "accepted" and not pf.refused
    orthanc = any("orthanc" in (a.process or "").lower() for a in move.associations)
    return make(
        "MOVE_STORE_REJECTED",
        variant="running",
        detail=detail,
        peers=", ".join(peers),
        count=len(move.associations),
        who=", ".join(who) or "your receiver",
        port=move.port,
        failed=failed,
        later=words.LATER if later else "",
        orthanc=words.ORTHANC_STORE if orthanc else "",
    )


# --- the receiver preflight (probes/receiver.py) ---------------------------------------------

UNCOMPRESSED_TS = frozenset(
    {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}  # PS3.5 A.1, A.2, A.3
)
CALLED_AET_NOT_RECOGNISED = 7  # A-ASSOCIATE-RJ source 1, reason 7 (PS3.8 9.3.4)


def preflight_rules(pf: ReceiverPreflight, move: MoveResult | None = None) -> list[Finding]:
    """LISTENER_REJECTS_AET, LISTENER_REJECTS_CONTEXT, LISTENER_BUSY from the preflight; busy
    is a fail when the move's own sub-operations failed too (the PACS met the same limit)."""
    out: list[Finding] = []
    first = pf.attempt("contexts")
    where = f"{pf.host}:{pf.port}"
    if first is not None and first.reject is not None and not first.busy:
        r = first.reject
        if r.reason == CALLED_AET_NOT_RECOGNISED and r.source == 1:
            out.append(
                make(
                    "LISTENER_REJECTS_AET",
                    variant="preflight",
                    detail={
                        "called_aet": pf.called_aet,
                        "reject": f"{r.result_str}/{r.source_str}/{r.reason_str}",
                    },
                    where=where,
                    called_aet=pf.called_aet,
                    reason_str=r.reason_str,
                )
            )
    refused = pf.refused
    if refused:
        out.append(_rejects_context(pf, move))
    busy = [t for t in pf.tries if t.busy]
    if busy:
        hit = move_hit_limit(move)
        n = {"contexts": "first", "second": "second", "third": "third"}
        which = ", ".join(n.get(t.purpose, t.purpose) for t in busy)
        rj = busy[0].reject
        assert rj is not None
        out.append(
            make(
                "LISTENER_BUSY",
                variant=_hit_variant(move) if hit else None,
                severity=Severity.FAIL if hit else Severity.WARN,
                detail={
                    "rejected": [t.purpose for t in busy],
                    "reject": f"{rj.result_str}/{rj.source_str}/{rj.reason_str}",
                },
                where=where,
                which=which,
                reason_str=rj.reason_str,
                **(_hit_values(move) if hit else {}),
            )
        )
    return out


def _rejects_context(pf: ReceiverPreflight, move: MoveResult | None) -> Finding:
    """LISTENER_REJECTS_CONTEXT: fail for a context the PACS will propose (it named it, or
    the uncompressed fallback); warn when only compressed syntaxes the PACS may send are
    refused (it did not say which it holds). A move that then delivered is said too, so the
    warning never contradicts that pass."""
    where = f"{pf.host}:{pf.port}"
    will = [c for c in pf.refused if c.expected == "will"]
    may = [c for c in pf.refused if c.expected != "will"]
    values: dict[str, Any] = {"where": where, "untested": ""}
    if will:
        lines = [
            words.CONTEXT_LINE.format(
                sop_class=c.abstract_syntax, syntax=ts_name(c.transfer_syntax), result=c.result
            )
            for c in will
        ]
        more = words.AND_MORE.format(more=len(lines) - 4) if len(lines) > 4 else ""
        values.update(count=len(will), contexts_from=pf.contexts_from)
        values["will"] = "; ".join(lines[:4]) + more
    if may:
        values.update(_may_values(pf, may, move))
    if pf.untested:
        classes = ", ".join(pf.untested_sop_classes[:4])
        values["untested"] = words.UNTESTED.format(untested=pf.untested, sop_classes=classes)
    return make(
        "LISTENER_REJECTS_CONTEXT",
        variant="will+may" if will and may else "will" if will else "may",
        severity=Severity.FAIL if will else Severity.WARN,
        detail={
            "contexts": [
                {
                    "sop_class": c.abstract_syntax,
                    "transfer_syntax": c.transfer_syntax,
                    "result": c.result,
                    "expected": c.expected,
                }
                for c in pf.refused[:32]
            ],
            "untested": pf.untested,
        },
        **values,
    )


def _may_values(
    pf: ReceiverPreflight, may: list[PreflightContext], move: MoveResult | None
) -> dict[str, str]:
    """{may} and {arrived}: per SOP class, the syntaxes it is taken in and refused in."""
    by_class: dict[str, list[str]] = {}
    for c in may:
        by_class.setdefault(c.abstract_syntax, []).append(c.transfer_syntax)
    said = []
    for sop, tss in list(by_class.items())[:3]:
        ok = pf.accepted_for(sop)
        if ok:
            takes = words.MAY_TAKES_ONLY.format(syntaxes=", ".join(ts_name(t) for t in ok))
        else:
            takes = words.MAY_TAKES_NONE
        refused = ", ".join(ts_name(t) for t in tss)
        said.append(words.MAY_CLASS.format(sop_class=sop, takes=takes, refused=refused))
    more = words.MAY_MORE.format(more=len(by_class) - 3) if len(by_class) > 3 else ""
    arrived = move is not None and move.status.value == "ok"
    return {"may": "; ".join(said) + more, "arrived": words.MAY_ARRIVED if arrived else ""}


def move_hit_limit(move: MoveResult | None) -> bool:
    """The move met the receiver's limit too: nothing completed, and the PACS failed
    sub-operations or connected and then gave up (pynetdicom as a PACS answers 0xA801 when
    its sub-association is rejected)."""
    if move is None or move.completed or move.final_code in (0x0000, None):
        return False
    return bool(move.failed) or bool(move.connections)


def _hit_variant(move: MoveResult | None) -> str:
    return "hit:failed" if move is not None and move.failed else "hit:connected"


def _hit_values(move: MoveResult | None) -> dict[str, Any]:
    """The move's side of LISTENER_BUSY's hit variants (move_hit_limit is true: a move)."""
    assert move is not None
    return {
        "failed": move.failed,
        "connections": move.connections,
        "final_code": move.final_code_hex,
        "final_meaning": move.final_meaning,
    }


BUSY_EXPLAINS = ("MOVE_INCOMPLETE", "MOVE_STORE_REJECTED", "MOVE_DESTINATION_UNKNOWN")


def pacs_cannot_convert(move: MoveResult) -> bool:
    """Our receiver accepted every context the PACS proposed, the PACS proposed only
    uncompressed syntaxes, and its sub-operations failed anyway: it holds the images in a
    syntax it did not offer and cannot convert (dcmqrscp without -xy; MOVE_INCOMPLETE's
    own:cannot_convert words say what to do)."""
    if move.receiver_mode != "own" or not move.failed or not move.associations:
        return False
    cxs = [c for a in move.associations for c in a.contexts if _storage(c.abstract_syntax)]
    if not cxs or any(c.result != "accepted" for c in cxs):
        return False
    offered = {ts for c in cxs for ts in c.transfer_syntaxes}
    return bool(offered) and offered <= UNCOMPRESSED_TS


def _storage(uid: str) -> bool:
    return uid.startswith("1.2.840.10008.5.1.4.1.1")  # PS3.4 B.5: the Storage SOP classes
