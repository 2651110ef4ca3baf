"""--contexts-from FILE: the presentation contexts a PACS proposed in a recorded move-test
--json run (PS3.8 9.3.2.2), for the receiver preflight of check and move-test."""

from __future__ import annotations

import argparse

from reverseprobe.config import BadInput
from reverseprobe.config.validate import UID_PATTERN

MAX_RECORDED_BYTES = 8 * 1024 * 1024  # a move-test --json report; thousands of associations
VERIFICATION_UID = "1.2.840.10008.1.1"


def recorded_contexts(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    """--contexts-from's pairs, () without it."""
    path = getattr(args, "contexts_from", None)
    return read_recorded_contexts(path) if path else ()


def read_recorded_contexts(path: str) -> tuple[tuple[str, str], ...]:
    """The (SOP class, transfer syntax) pairs a PACS proposed on the C-STORE sub-associations
    recorded in a move-test --json report (probes.move.associations[].contexts[], PS3.8
    9.3.2.2): what the same PACS will propose again, when its C-FIND does not say."""
    import json

    from reverseprobe.userfile import read_regular_file

    what = "--contexts-from"
    raw = read_regular_file(path, MAX_RECORDED_BYTES, what=what)
    bad = f"invalid {what} {path!r}"
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadInput(f"{bad}: not JSON (expected a move-test --json report)") from None
    probes = doc.get("probes") if isinstance(doc, dict) else None
    move = probes.get("move") if isinstance(probes, dict) else None
    if not isinstance(move, dict):
        raise BadInput(f"{bad}: no probes.move (expected a move-test --json report)")
    assocs = move.get("associations")
    if not isinstance(assocs, list):
        raise BadInput(f"{bad}: probes.move.associations is not a list")
    pairs: list[tuple[str, str]] = []
    for a in assocs:
        cxs = a.get("contexts") if isinstance(a, dict) else None
        if not isinstance(cxs, list):
            raise BadInput(f"{bad}: an association without a contexts list")
        for cx in cxs:
            pairs.extend(_recorded_pairs(cx, bad))
    sent = _sent_pairs(move.get("timeline"))
    pairs = list(dict.fromkeys(sent + pairs))  # what was sent first: the preflight caps at 127
    if not pairs:
        raise BadInput(
            f"{bad}: no storage context recorded (run move-test --receiver own --json first)"
        )
    return tuple(pairs)


def _sent_pairs(timeline: object) -> list[tuple[str, str]]:
    """(SOP class, transfer syntax) of the C-STOREs the timeline recorded (a PACS such as
    dcmqrscp proposes every storage SOP class it knows; these are what it used)."""
    out: list[tuple[str, str]] = []
    for e in timeline if isinstance(timeline, list) else ():
        d = e.get("detail") if isinstance(e, dict) and e.get("event") == "c-store" else None
        sop = d.get("sop_class") if isinstance(d, dict) else None
        ts = d.get("transfer_syntax") if isinstance(d, dict) else None
        if all(isinstance(u, str) and len(u) <= 64 and UID_PATTERN.fullmatch(u) for u in (sop, ts)):
            out.append((str(sop), str(ts)))
    return out


def _recorded_pairs(cx: object, bad: str) -> list[tuple[str, str]]:
    """One recorded context's pairs; Verification is not what the PACS sends images as."""
    sop = cx.get("abstract_syntax") if isinstance(cx, dict) else None
    tss = cx.get("transfer_syntaxes") if isinstance(cx, dict) else None
    if not isinstance(sop, str) or not isinstance(tss, list):
        raise BadInput(f"{bad}: a context without abstract_syntax and transfer_syntaxes")
    for uid in (sop, *tss):
        if not isinstance(uid, str) or len(uid) > 64 or not UID_PATTERN.fullmatch(uid):
            raise BadInput(f"{bad}: {str(uid)[:70]!r} is not a UID")
    return [] if sop == VERIFICATION_UID else [(sop, ts) for ts in tss]
