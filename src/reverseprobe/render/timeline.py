"""The C-MOVE's timeline as text lines, for the terminal report (the JSON has it structured)."""

from __future__ import annotations

from reverseprobe.model import Report
from reverseprobe.model.dicom import EventKind, InboundAssociation, MoveResult, TimelineEvent

CONTEXTS_SHOWN = 4  # refused contexts listed one a line; the rest counted


def timeline_lines(report: Report) -> list[str]:
    """One event a line; C-STOREs counted but not kept, and events dropped, said at the end."""
    move = report.probes.get("move")
    if not isinstance(move, MoveResult) or not move.timeline:
        return []
    by_number = {a.number: a for a in move.associations}
    lines: list[str] = []
    for e in move.timeline:
        lines.append(f"{e.t:8.3f} s  {describe(e)}")
        if e.event in (EventKind.ACCEPTED, EventKind.REJECTED) and e.association in by_number:
            lines.extend(f"{'':10}  {x}" for x in context_lines(by_number[e.association]))
    listed = sum(1 for e in move.timeline if e.event is EventKind.C_STORE)
    if move.received + move.store_failures > listed:
        lines.append(
            f"{'':10}  ({move.received + move.store_failures - listed} more C-STORE(s) counted, "
            f"not listed)"
        )
    if move.timeline_dropped:
        lines.append(f"{'':10}  ({move.timeline_dropped} later event(s) not kept)")
    return lines


def describe(e: TimelineEvent) -> str:
    """One timeline event in words (pure; for the text report)."""
    d = e.detail
    n = f"#{e.association} " if e.association is not None else ""
    counts = ", ".join(
        f"{k} {d[k]}" for k in ("completed", "remaining", "failed", "warning") if k in d
    )
    counts = f" ({counts})" if counts else ""
    if d.get("invalid"):
        counts += " [" + "; ".join(map(str, d["invalid"])) + "]"
    code = f"0x{d['code']:04X}" if isinstance(d.get("code"), int) else "?"
    texts = {
        EventKind.LISTENING: f"listening on {d.get('address')}:{d.get('port')} as {d.get('aet')}",
        EventKind.MOVE_REQUEST: f"C-MOVE-RQ to {d.get('destination')}, study {d.get('study')}",
        EventKind.MOVE_PENDING: f"C-MOVE-RSP pending {code}{counts}",
        EventKind.MOVE_FINAL: f"C-MOVE-RSP final {code}{counts}",
        EventKind.MOVE_NO_RESPONSE: f"no final C-MOVE-RSP: {d.get('why')}",
        EventKind.MOVE_CANCEL: f"C-CANCEL sent ({d.get('why')})",
        EventKind.CONNECTION: f"{n}inbound connection from {e.peer}",
        EventKind.ASSOCIATE_RQ: f"{n}A-ASSOCIATE-RQ calling {d.get('calling_aet')!r} "
        f"called {d.get('called_aet')!r}",
        EventKind.ACCEPTED: f"{n}association accepted",
        EventKind.REJECTED: f"{n}association rejected",
        EventKind.C_STORE: f"{n}C-STORE, {d.get('bytes')} bytes, status 0x{d.get('status', 0):04X}",
        EventKind.RELEASED: f"{n}released after {d.get('stores')} C-STORE(s)",
        EventKind.ABORTED: f"{n}aborted after {d.get('stores')} C-STORE(s)",
        EventKind.CLOSED: f"{n}connection closed after {d.get('stores')} C-STORE(s)",
        EventKind.GRACE_END: f"stopped waiting: {d.get('why')} ({d.get('received')} received)",
        EventKind.STOPPED: "listener stopped",
        EventKind.CUT_OFF: f"{n}cut off {e.peer}: {d.get('reason')}",
    }
    return texts.get(e.event, e.event.value)


def context_lines(a: InboundAssociation) -> list[str]:
    """What the PACS proposed on this association and what was answered (PS3.8 9.3.2.2,
    9.3.3.2): a count, each refused context, and the syntax of the first accepted one."""
    if not a.contexts:
        return []
    ok = [c for c in a.contexts if c.result == "accepted"]
    bad = [c for c in a.contexts if c.result != "accepted"]
    pdu = f", max PDU {a.max_pdu}" if a.max_pdu is not None else ""
    out = [f"proposed {len(a.contexts)} context(s): {len(ok)} accepted, {len(bad)} refused{pdu}"]
    out += [
        f"refused {c.abstract_syntax} in {', '.join(c.transfer_syntaxes[:3])} ({c.result})"
        for c in bad[:CONTEXTS_SHOWN]
    ]
    if len(bad) > CONTEXTS_SHOWN:
        out.append(f"({len(bad) - CONTEXTS_SHOWN} more refused)")
    used = sorted({c.accepted_transfer_syntax for c in ok if c.accepted_transfer_syntax})
    if used:
        out.append("accepted in " + ", ".join(used[:3]))
    return out
