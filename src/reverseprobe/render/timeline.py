"""The C-MOVE's timeline as text lines, for the terminal report (the JSON has it structured)."""

from __future__ import annotations

from reverseprobe.dicom.move import MoveResult
from reverseprobe.dicom.timeline import EventKind, describe
from reverseprobe.model import Report


def timeline_lines(report: Report) -> list[str]:
    """One event a line; C-STOREs counted but not kept, and events dropped, said at the end."""
    move = report.probes.get("move")
    if not isinstance(move, MoveResult) or not move.timeline:
        return []
    lines = [f"{e.t:8.3f} s  {describe(e)}" for e in move.timeline]
    listed = sum(1 for e in move.timeline if e.event is EventKind.C_STORE)
    if move.received + move.store_failures > listed:
        lines.append(
            f"{'':10}  ({move.received + move.store_failures - listed} more C-STORE(s) counted, "
            f"not listed)"
        )
    if move.timeline_dropped:
        lines.append(f"{'':10}  ({move.timeline_dropped} later event(s) not kept)")
    return lines
