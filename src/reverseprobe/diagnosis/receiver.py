"""Rules for the receiver side of a C-MOVE (pure): the status says the PACS cannot move,
the move stalled, or the receiver refused what the PACS sent (PS3.4 C.4.2, PS3.8 9.3.3.2)."""

from __future__ import annotations

from reverseprobe.diagnosis.catalogue import make
from reverseprobe.model import Finding, Severity
from reverseprobe.model.dicom import MoveResult
from reverseprobe.model.receiver import PreflightContext, ReceiverPreflight, ts_name

MOVE_NOT_SUPPORTED_CODE = 0x0122  # SOP Class not Supported (PS3.7 C.4.2 / Annex C)
STALL_MIN_S = 1.0  # silence after the last pending response that counts as a stall

RECEIVER_FIXES = (
    "dcmtk storescp: run it with +xa (accept all transfer syntaxes), or -xf with a config "
    "file listing the syntaxes and SOP classes, and for a fixed called AE title -aet with the "
    "title the PACS calls; Orthanc: add the PACS's storage AE to DicomModalities (or "
    "DicomAlwaysAllowStore true) and accept the transfer syntax (AcceptedTransferSyntaxes); "
    "pynetdicom: supported_contexts with every transfer syntax (AllStoragePresentationContexts "
    "and ALL_TRANSFER_SYNTAXES); dcm4chee: the AE's transfer capabilities and accepted calling "
    "AE titles; DicomObjects: add the syntax to the Listen's accepted transfer syntaxes"
)

PACS_SENDS_OTHER = (
    "its storage sender's proposal for this AE: Orthanc transcodes to "
    "DicomScuPreferredTransferSyntax when the receiver refuses the stored syntax (the "
    "modality's AllowTranscoding true); dcmqrscp proposes what -x= / -xy / -xv... say, and "
    "converts only with the codec; dcm4chee: the destination AE's transfer capabilities or a "
    "compression rule; e.g. uncompressed Explicit VR Little Endian, which every receiver accepts"
)


def receiver_rules(
    move: MoveResult, aet: str, port: int, pf: ReceiverPreflight | None = None
) -> list[Finding]:
    """Findings that take precedence over the delivery finding: the first one found ends it.
    `pf`: the receiver preflight of running mode, whose refusals can name the cause."""
    code = move.final_code
    if code == MOVE_NOT_SUPPORTED_CODE:
        return [
            make(
                "MOVE_NOT_SUPPORTED",
                "The PACS answered the C-MOVE with 0x0122 (SOP Class not supported): it does not "
                "do C-MOVE at the Study Root information model.",
                "Try the Patient Root information model, or C-GET (no connection back needed); "
                "ask the PACS administrator which retrieve models it serves.",
                final_code=move.final_code_hex,
            )
        ]
    stalled = move.final_code is None or move.cancelled  # no final, or only after our C-CANCEL
    if move.stall_s is not None and move.stall_s >= STALL_MIN_S and stalled:
        left = move.remaining if move.remaining is not None else "?"
        return [
            make(
                "MOVE_STALLED",
                f"The PACS stopped sending pending C-MOVE responses: {move.pending_responses} "
                f"came, then nothing for {move.stall_s:.1f} s (completed {move.completed or 0}, "
                f"failed {move.failed or 0}, remaining {left}).",
                "On the PACS, its C-STORE sub-association to the receiver is waiting: raise the "
                "receiver's or the PACS's DIMSE/network timeout only if the receiver is slow "
                "(dcmtk storescp and dcmqrscp: -td/--dimse-timeout, -ta/--acse-timeout; "
                "Orthanc: DicomScuTimeout on the sending side, DicomServerTimeout on the "
                "receiving one; pynetdicom: AE.dimse_timeout and network_timeout; dcm4chee and "
                "DicomObjects: the connection's response timeout); else ask the administrator "
                "what the storage sender is stuck on. On this side, raise move-test's --timeout "
                "(your SCU: its DIMSE timeout) to wait longer.",
                pending=move.pending_responses,
                completed=move.completed,
                failed=move.failed,
                remaining=move.remaining,
                stall_s=move.stall_s,
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
    takes = (
        f"accepts it only in {', '.join(ts_name(t) for t in ok)}"
        if ok
        else "accepts it in no syntax"
    )
    peers = sorted({a.peer for a in move.associations})
    who = sorted({f"{a.process} (PID {a.pid})" for a in move.associations if a.pid})
    status = (
        f"{move.final_code_hex} ({move.final_meaning})" if move.final_code is not None else "none"
    )
    counts = f"completed {move.completed or 0}, failed {failed}, warning {move.warning or 0}" + (
        f" of {move.expected} image(s)" if move.expected else ""
    )
    refused_names = ", ".join(ts_name(t) for t in tss[:7])
    some = "some of " if move.completed else ""
    also = f" (and {len(by_class) - 1} more SOP class(es))" if len(by_class) > 1 else ""
    summary = (
        f"The PACS reached your receiver ({move.connections} connection(s) from "
        f"{', '.join(peers) or 'the PACS'} to {', '.join(who) or 'the program'} on port "
        f"{move.port}), but {some}the images were refused: the move failed (final status "
        f"{status}; "
        f"{counts}), and your receiver refuses "
        + (f"SOP class {sop} (a stand-in: the PACS did not name the study's SOP classes)"
           if stand_in else f"the study's SOP class {sop}")
        + f" in {refused_names}{also}; it {takes}. Measured: those refusals (the preflight's "
        f"association, PS3.8 9.3.3.2) and the PACS's counts and final status. Inferred: that "
        f"the PACS offered the images in one of the refused syntaxes"
        + (" and that the study's SOP class is refused alike" if stand_in else "")
        + " (it did not say which syntax it holds, and your receiver's answer to it is not "
        "visible from here: the receiver's log shows it)."
    )  # fmt: skip
    return make(
        "MOVE_STORE_REJECTED",
        summary,
        "Either accept it in the receiver (" + RECEIVER_FIXES + "), or have the PACS send "
        "another transfer syntax (" + PACS_SENDS_OTHER + ").",
        sop_class=sop,
        refused_transfer_syntaxes=tss[:16],
        accepted_transfer_syntaxes=list(ok),
        contexts=[f"{c.abstract_syntax} in {c.transfer_syntax} ({c.result})" for c in refused[:8]],
        final_code=move.final_code_hex,
        completed=move.completed,
        failed=failed,
        warning=move.warning,
        measured=["preflight refusals", "PACS counts and final status", "connections"],
        inferred="the PACS offered a refused transfer syntax",
        evidence="preflight-stand-in" if stand_in else "preflight",
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
        what.append("contexts refused: " + "; ".join(bad_cx[:4]))
    if statuses:
        what.append("C-STORE statuses " + ", ".join(f"0x{s:04X}" for s in statuses))
    if rejected_assoc:
        what.append(f"{len(rejected_assoc)} association(s) rejected")
    summary = "The PACS reached the receiver, but the images were refused: " + "; ".join(what)
    if move.receiver_mode == "running":
        peers = sorted({a.peer for a in move.associations})
        who = sorted({f"{a.process} (PID {a.pid})" for a in move.associations if a.pid})
        summary = (
            f"The PACS ({', '.join(peers)}) connected {len(move.associations)} time(s) to "
            f"{', '.join(who) or 'your receiver'} on port {move.port} and reports {failed} "
            f"sub-operation(s) failed, none completed. Measured: the connections (the "
            f"connection table) and the PACS's counts. Inferred: that the receiver refused the "
            f"images (a PACS fails the sub-operations it could not store), or that the PACS "
            f"could not convert them to the transfer syntax the receiver chose (its log says "
            f"so)"
        )
        first = pf.attempt("contexts") if pf is not None else None
        if pf is not None and first is not None and first.state == "accepted" and not pf.refused:
            summary += (
                "; the preflight found no refused context, so the refusal came later: the "
                "storage sender's AE title or address, or the C-STORE itself (the receiver's "
                "log says which)"
            )
        if any("orthanc" in (a.process or "").lower() for a in move.associations):
            summary += (
                ". Orthanc accepts the association of a sender it does not know, then refuses "
                "its C-STORE and aborts when DicomAlwaysAllowStore is false (its log: "
                '"Rejected Store request from remote DICOM modality"): add the PACS\'s storage '
                "AE title and address to its DicomModalities"
            )
    return make(
        "MOVE_STORE_REJECTED",
        summary + ".",
        "Either accept them in the receiver (" + RECEIVER_FIXES + "), or have the PACS send "
        "another transfer syntax (" + PACS_SENDS_OTHER + ").",
        contexts=bad_cx[:8],
        statuses=statuses,
        failed=failed,
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
                    f"The receiver on {where} rejects associations called {pf.called_aet!r} "
                    f"({r.reason_str}): the PACS's C-STORE sub-associations call exactly that.",
                    f"Set the receiver's AE title to {pf.called_aet!r} (dcmtk storescp: -aet "
                    f"{pf.called_aet}; Orthanc: DicomAet), or register its real title at the PACS.",
                    called_aet=pf.called_aet,
                    reject=f"{r.result_str}/{r.source_str}/{r.reason_str}",
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
                f"The receiver on {where} rejected the {which} association as transient "
                f"({rj.reason_str}): it takes fewer associations at once than a PACS may open"
                + (f"; {_hit_text(move)}." if hit and move is not None else "."),
                "Raise the receiver's association limit (pynetdicom: AE.maximum_associations; "
                "dcmtk storescp: --fork, or one instance per PACS; Orthanc: it takes many, "
                "DicomThreadsCount sets its threads; dcm4chee: the network connection's "
                "association limits in its device configuration; DicomObjects: the Listen's "
                "MaxAssociations), or have the PACS open one association at a time.",
                severity=Severity.FAIL if hit else Severity.WARN,
                rejected=[t.purpose for t in busy],
                reject=f"{rj.result_str}/{rj.source_str}/{rj.reason_str}",
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
    parts: list[str] = []
    if will:
        lines = [f"{c.abstract_syntax} in {ts_name(c.transfer_syntax)} ({c.result})" for c in will]
        parts.append(
            f"The receiver on {where} refuses {len(will)} of the presentation context(s) the "
            f"PACS will propose (from {pf.contexts_from}): "
            + "; ".join(lines[:4])
            + (f"; and {len(lines) - 4} more" if len(lines) > 4 else "")
            + ". Images of these are refused when the PACS sends them."
        )
    if may:
        parts.append(_may_text(pf, may, where, move))
    if pf.untested:
        parts.append(
            f"{pf.untested} pair(s) past the 128-context limit of one association were not "
            f"tested (SOP classes {', '.join(pf.untested_sop_classes[:4])})."
        )
    return make(
        "LISTENER_REJECTS_CONTEXT",
        " ".join(parts),
        "Either accept them in the receiver (" + RECEIVER_FIXES + "), or have the PACS "
        "send another transfer syntax (" + PACS_SENDS_OTHER + ").",
        severity=Severity.FAIL if will else Severity.WARN,
        contexts=[
            {
                "sop_class": c.abstract_syntax,
                "transfer_syntax": c.transfer_syntax,
                "result": c.result,
                "expected": c.expected,
            }
            for c in pf.refused[:32]
        ],
        untested=pf.untested,
    )


def _may_text(
    pf: ReceiverPreflight, may: list[PreflightContext], where: str, move: MoveResult | None
) -> str:
    by_class: dict[str, list[str]] = {}
    for c in may:
        by_class.setdefault(c.abstract_syntax, []).append(c.transfer_syntax)
    said = []
    for sop, tss in list(by_class.items())[:3]:
        ok = pf.accepted_for(sop)
        takes = "only in " + ", ".join(ts_name(t) for t in ok) if ok else "in no syntax proposed"
        said.append(
            f"it accepts SOP class {sop} {takes}, and refuses it in "
            + ", ".join(ts_name(t) for t in tss)
        )
    more = f"; and {len(by_class) - 3} more SOP class(es)" if len(by_class) > 3 else ""
    text = (
        f"The receiver on {where} refuses compressed transfer syntaxes the PACS may send: "
        + "; ".join(said)
        + more
        + ". The PACS did not say in which syntax it holds these images (no Available "
        "Transfer Syntax UID in its C-FIND): archives mostly hold JPEG, JPEG-LS or JPEG 2000 "
        "and many send them as stored, so they would be refused; a PACS that converts to "
        "uncompressed gets through."
    )
    if move is not None and move.status.value == "ok":
        text += (
            " This study arrived, so the PACS sent it in a syntax the receiver takes; a study "
            "it holds compressed may still be refused."
        )
    return text


def move_hit_limit(move: MoveResult | None) -> bool:
    """The move met the receiver's limit too: nothing completed, and the PACS failed
    sub-operations or connected and then gave up (pynetdicom as a PACS answers 0xA801 when
    its sub-association is rejected)."""
    if move is None or move.completed or move.final_code in (0x0000, None):
        return False
    return bool(move.failed) or bool(move.connections)


def _hit_text(move: MoveResult) -> str:
    if move.failed:
        return f"the move's {move.failed} failed sub-operation(s) met the same limit"
    return (
        f"the move met the same limit: the PACS connected {move.connections} time(s), stored "
        f"nothing and answered {move.final_code_hex} ({move.final_meaning})"
    )


BUSY_EXPLAINS = ("MOVE_INCOMPLETE", "MOVE_STORE_REJECTED", "MOVE_DESTINATION_UNKNOWN")


def pacs_cannot_convert(move: MoveResult) -> str | None:
    """Our receiver accepted every context the PACS proposed, the PACS proposed only
    uncompressed syntaxes, and its sub-operations failed anyway: it holds the images in a
    syntax it did not offer and cannot convert (dcmqrscp without -xy). The cause, or None."""
    if move.receiver_mode != "own" or not move.failed or not move.associations:
        return None
    cxs = [c for a in move.associations for c in a.contexts if _storage(c.abstract_syntax)]
    if not cxs or any(c.result != "accepted" for c in cxs):
        return None
    offered = {ts for c in cxs for ts in c.transfer_syntaxes}
    if not offered or not offered <= UNCOMPRESSED_TS:
        return None
    return (
        f"The PACS proposed only uncompressed transfer syntaxes, which move-test's receiver "
        f"accepted, and still failed {move.failed} sub-operation(s): it cannot send the study in "
        f"the syntax it stores (compressed) and cannot convert it. On dcmqrscp run it with -xy "
        f"(or the option proposing the stored syntax); on another PACS, configure its storage "
        f"sender to offer the stored transfer syntax (JPEG, JPEG-LS, JPEG 2000) for this AE."
    )


def _storage(uid: str) -> bool:
    return uid.startswith("1.2.840.10008.5.1.4.1.1")  # PS3.4 B.5: the Storage SOP classes
