"""Rules for the receiver side of a C-MOVE (pure): the status says the PACS cannot move,
the move stalled, or the receiver refused what the PACS sent (PS3.4 C.4.2, PS3.8 9.3.3.2)."""

from __future__ import annotations

from reverseprobe.diagnosis.catalogue import make
from reverseprobe.model import Finding
from reverseprobe.model.dicom import MoveResult

MOVE_NOT_SUPPORTED_CODE = 0x0122  # SOP Class not Supported (PS3.7 C.4.2 / Annex C)
STALL_MIN_S = 1.0  # silence after the last pending response that counts as a stall

RECEIVER_FIXES = (
    "dcmtk storescp: run it with +xa (accept all transfer syntaxes) and, for a fixed called "
    "AE title, -aet with the title the PACS calls; Orthanc: add the PACS's storage AE to "
    "DicomModalities (or DicomAlwaysAllowStore true) and accept the transfer syntax "
    "(AcceptedTransferSyntaxes); pynetdicom: supported_contexts with every transfer syntax "
    "(AllStoragePresentationContexts and ALL_TRANSFER_SYNTAXES); dcm4chee: the AE's transfer "
    "capabilities; DicomObjects: add the syntax to the Listen's accepted transfer syntaxes"
)


def receiver_rules(move: MoveResult, aet: str, port: int) -> list[Finding]:
    """Findings that take precedence over the delivery finding: the first one found ends it."""
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
    if move.stall_s is not None and move.stall_s >= STALL_MIN_S and move.final_code is None:
        left = move.remaining if move.remaining is not None else "?"
        return [
            make(
                "MOVE_STALLED",
                f"The PACS stopped sending pending C-MOVE responses: {move.pending_responses} "
                f"came, then nothing for {move.stall_s:.1f} s (completed {move.completed or 0}, "
                f"failed {move.failed or 0}, remaining {left}).",
                "On the PACS, its C-STORE sub-association to the receiver is waiting: raise the "
                "receiver's or the PACS's DIMSE/network timeout only if the receiver is slow; "
                "else ask the administrator what the storage sender is stuck on. On this side, "
                "raise move-test's --timeout (your SCU: its DIMSE timeout) to wait longer.",
                pending=move.pending_responses,
                completed=move.completed,
                failed=move.failed,
                remaining=move.remaining,
                stall_s=move.stall_s,
            )
        ]
    refused = _refused(move)
    if refused is not None:
        return [refused]
    return []


def _refused(move: MoveResult) -> Finding | None:
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
    if move.receiver_mode == "running":
        peers = sorted({a.peer for a in move.associations})
        who = sorted({f"{a.process} (PID {a.pid})" for a in move.associations if a.pid})
        what.append(
            f"the PACS ({', '.join(peers)}) connected {len(move.associations)} time(s) to "
            f"{', '.join(who) or 'your receiver'} and reports {failed} failed"
        )
    return make(
        "MOVE_STORE_REJECTED",
        "The PACS reached the receiver, but the images were refused: " + "; ".join(what) + ".",
        "Either accept them in the receiver (" + RECEIVER_FIXES + "), or have the PACS send "
        "another transfer syntax (its outgoing proposal for this AE: e.g. uncompressed "
        "Explicit VR Little Endian, which every receiver accepts).",
        contexts=bad_cx[:8],
        statuses=statuses,
        failed=failed,
    )
