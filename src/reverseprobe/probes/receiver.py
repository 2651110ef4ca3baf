"""Receiver preflight: associations to the user's own receiver (the Move Destination) that
propose what the PACS will send, before any image is moved.

Each (SOP class, transfer syntax) pair goes in its own presentation context, so the receiver's
answer to each is its own (PS3.8 9.3.2.2; results 9.3.3.2: 3 abstract syntax not supported,
4 transfer syntaxes not supported). Verification is proposed too, so an association that refuses
every storage context still comes up and says so per context. Then: the same with a called AE
title nobody configures (does the receiver check it?), and a second and a third association
while the first is open (PS3.8 9.3.4: rejected-transient, local limit exceeded). Everything
runs on guarded sockets (dicom/guard.py) within one Deadline; nothing is stored."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reverseprobe.deadline import Deadline
from reverseprobe.dicom.qr import AssocOutcome, Target, associate, close
from reverseprobe.model import Status
from reverseprobe.model.receiver import AssociationTry, PreflightContext, ReceiverPreflight

VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
# A PACS that converts can always fall back to these two (PS3.5 10.1, A.1, A.2).
UNCOMPRESSED = (EXPLICIT_LE, IMPLICIT_LE)
# What archives commonly hold and send as stored when nobody says (PS3.5 A.4-A.8, A.5 deflate),
# in the order they are proposed: each in its own context, so each gets its own answer.
COMPRESSED = (
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline (Process 1)
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless, First-Order Prediction (SV1)
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless Only
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.5",  # RLE Lossless
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
)
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
MAX_CONTEXTS = 127  # 128 presentation context IDs (odd 1..255, PS3.8 9.3.2.2) less Verification
WRONG_AET = "RPROBE-NOSUCH"  # a called AE title no receiver is configured for
CONCURRENT_WAIT_S = 3.0  # a receiver that serves one association at a time leaves it unanswered
FIND_BUDGET_S = 10.0
FIND_CAP = 500  # IMAGE-level matches read for the contexts
RESULT_WORDS = {
    0: "accepted",
    1: "user-rejection",
    2: "no-reason",
    3: "abstract-syntax-not-supported",
    4: "transfer-syntaxes-not-supported",
}
AVAILABLE_TS = 0x00083002  # Available Transfer Syntax UID (PS3.4 C.6.1.1.5, IMAGE level)


def contexts_for(
    pairs: Sequence[tuple[str, str]], sop_classes: Sequence[str], source: str
) -> tuple[list[tuple[str, str, str]], str]:
    """The (SOP class, transfer syntax, expected) triples to propose, most certain first: the
    given pairs ("will"); for a SOP class named without a transfer syntax (a C-FIND that did
    not say), the two uncompressed syntaxes ("will": any converting PACS can send them) and
    then the compressed ones archives hold ("may": the PACS may send the images as stored).
    No pair at all: CT and Secondary Capture so. Not capped: preflight() keeps the first 127."""
    full = [(a, t) for a, t in pairs if t]
    classes = [a for a, t in pairs if not t] + list(sop_classes)
    if full or classes:
        src = source if full or pairs else "c-find"
    else:
        classes, src = [CT_IMAGE, SECONDARY_CAPTURE], "default"
    named = {a.strip() for a, _ in full}
    guess = [c for c in dict.fromkeys(c.strip() for c in classes) if c not in named]
    will = _unique(full + [(c, ts) for c in guess for ts in UNCOMPRESSED])
    # Compressed ones by rank across the classes: past the cap, the rarest syntaxes of the
    # last classes are the ones not tested.
    may = [(c, ts) for ts in COMPRESSED for c in guess if (c, ts) not in set(will)]
    return [(a, t, "will") for a, t in will] + [(a, t, "may") for a, t in _unique(may)], src


def _unique(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys((a.strip(), t.strip()) for a, t in pairs))


def image_contexts(target: Target, study_uid: str, deadline: Deadline) -> list[tuple[str, str]]:
    """IMAGE-level C-FIND (PS3.4 C.6.2) of the study asking SOPClassUID and Available Transfer
    Syntax UID (0008,3002): what the PACS holds, hence what it will propose. The transfer
    syntax is "" where the PACS does not say (the attribute is optional; many leave it out)."""
    from reverseprobe.dicom.find import _run_find
    from reverseprobe.dicom.qr import QR_FIND, accepted, study_query

    dl = deadline.child(min(FIND_BUDGET_S, deadline.remaining()))
    assoc, _ = associate(target, [QR_FIND], dl)
    if assoc is None:
        return []
    rows: list[tuple[str, str]] = []
    try:
        if not accepted(assoc, QR_FIND):
            return []
        q = study_query(study_uid, "IMAGE")
        q.SeriesInstanceUID = ""
        q.SOPInstanceUID = ""
        q.SOPClassUID = ""
        q.AvailableTransferSyntaxUID = ""

        def parse(ident: Any) -> tuple[str, str] | None:
            sop = str(getattr(ident, "SOPClassUID", "") or "")
            ts = str(getattr(ident, "AvailableTransferSyntaxUID", "") or "")
            return (sop, ts if _uid(ts) else "") if _uid(sop) else None

        _run_find(assoc, q, dl, rows, cap=FIND_CAP, parse=parse)
    finally:
        close(assoc, dl)
    return _unique(rows)


def receiver_host(port: int) -> str:
    """Where the user's receiver listens: its bound address, loopback for a wildcard bind."""
    from reverseprobe.probes.listeners import listening_sockets

    try:
        socks = listening_sockets(port)[0]
    except Exception:  # noqa: BLE001 - unreadable socket table: try loopback
        socks = []
    for s in socks:
        if s.address not in ("0.0.0.0", "::", "*", ""):
            return str(s.address).strip("[]")
    return "127.0.0.1"


def _uid(s: str) -> bool:
    return 0 < len(s) <= 64 and all(ch.isdigit() or ch == "." for ch in s)


def preflight(  # noqa: PLR0913 - the preflight's target, contexts and budgets
    host: str,
    port: int,
    called_aet: str,
    calling_aet: str,
    pairs: Sequence[tuple[str, ...]],
    *,
    deadline: Deadline,
    source: str = "default",
) -> ReceiverPreflight:
    """The contexts association, the called-AE check and the concurrency check, in order.
    `pairs`: (SOP class, transfer syntax) or (..., expected) as contexts_for() gives them;
    past MAX_CONTEXTS they are counted as not tested, never as passed."""
    from pynetdicom import build_context  # the package first: see listeners' import thread

    wanted = [(str(p[0]), str(p[1]), str(p[2]) if len(p) > 2 else "will") for p in pairs]
    triples, rest = wanted[:MAX_CONTEXTS], wanted[MAX_CONTEXTS:]
    untested = (len(rest), tuple(dict.fromkeys(a for a, _, _ in rest)))
    proposed = [build_context(VERIFICATION, [IMPLICIT_LE])]
    proposed += [build_context(a, [t]) for a, t, _ in triples]
    tries: list[AssociationTry] = []
    contexts: list[PreflightContext] = []
    target = Target(host, port, called_aet, calling_aet)
    first, out = associate(target, proposed, deadline)
    tries.append(_try("contexts", called_aet, out))
    held: list[Any] = []
    try:
        if first is None:
            contexts = [PreflightContext(a, t, "not-answered", source, e) for a, t, e in triples]
            return _result(target, contexts, tries, source, untested)
        held.append(first)
        contexts = _answers(first, triples, source)
        for n, purpose in enumerate(("second", "third")):
            if deadline.remaining() < 0.5:
                break
            # The second stays open while the third is tried: its guard must outlast that.
            wait = deadline.child(CONCURRENT_WAIT_S * (2 - n) + 1.0 * (1 - n))
            other, o = associate(target, [VERIFICATION], wait)
            tries.append(_try(purpose, called_aet, o))
            if other is None:
                break
            held.append(other)
    finally:
        for a in reversed(held):
            close(a, deadline)
    if called_aet != WRONG_AET and deadline.remaining() >= 0.5:
        wrong, o = associate(
            Target(host, port, WRONG_AET, calling_aet),
            [VERIFICATION],
            deadline.child(CONCURRENT_WAIT_S),
        )
        tries.append(_try("wrong-called-aet", WRONG_AET, o))
        close(wrong, deadline)
    return _result(target, contexts, tries, source, untested)


def _answers(
    assoc: Any, triples: Sequence[tuple[str, str, str]], source: str
) -> list[PreflightContext]:
    """Match the A-ASSOCIATE-AC's results back to the pairs by context ID: the requestor
    numbers its contexts 1, 3, 5, ... in proposal order (PS3.8 9.3.2.2), Verification first;
    a rejected context's AC item need not repeat its transfer syntax."""
    got: dict[int, str] = {}
    for cx in list(assoc.accepted_contexts) + list(assoc.rejected_contexts):
        if cx.context_id is not None:
            got[int(cx.context_id)] = RESULT_WORDS.get(cx.result, "no-reason")
    return [
        PreflightContext(a, t, got.get(3 + 2 * i, "not-answered"), source, e)
        for i, (a, t, e) in enumerate(triples)
    ]


def _try(purpose: str, called: str, out: AssocOutcome) -> AssociationTry:
    return AssociationTry(purpose, called, out.state.value, out.reject, out.detail)


def _result(
    target: Target,
    contexts: list[PreflightContext],
    tries: list[AssociationTry],
    source: str,
    untested: tuple[int, tuple[str, ...]] = (0, ()),
) -> ReceiverPreflight:
    first = tries[0]
    refused = [c for c in contexts if c.result not in ("accepted", "not-answered")]
    will = [c for c in refused if c.expected == "will"]
    busy = any(t.busy for t in tries)
    if first.state != "accepted":
        status, reason = Status.FAIL, f"association {first.state}: {first.detail or ''}".strip()
    elif will:
        status, reason = Status.FAIL, f"{len(refused)} of {len(contexts)} context(s) refused"
    elif refused:  # measured, and measured well: the rules weigh it (LISTENER_REJECTS_CONTEXT)
        status, reason = (
            Status.OK,
            f"{len(refused)} of {len(contexts)} context(s) refused, all of them compressed "
            f"syntaxes the PACS may send",
        )
    elif busy:  # measured, and measured well: the rules weigh it (LISTENER_BUSY)
        status, reason = Status.OK, "a concurrent association was rejected (transient)"
    else:
        status, reason = Status.OK, None
    return ReceiverPreflight(
        status=status,
        reason=reason,
        host=target.host,
        port=target.port,
        called_aet=target.called_aet,
        calling_aet=target.calling_aet,
        contexts=tuple(contexts),
        tries=tuple(tries),
        contexts_from=source,
        untested=untested[0],
        untested_sop_classes=untested[1][:16],
    )
