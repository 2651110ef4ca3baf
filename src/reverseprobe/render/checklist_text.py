"""The checklist as text: this PC's findings, then each PACS with its path and its entry.

Same conventions as render/terminal.py: colours and symbols on a TTY, ASCII tags otherwise.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from rich.text import Text

from reverseprobe.diagnosis.path import run_hops
from reverseprobe.model import Severity, Status, sort_findings
from reverseprobe.render.families import family_labels
from reverseprobe.render.summary import target_severity
from reverseprobe.render.terminal import (
    family_tag,
    hanging,
    make_console,
    mark,
    print_path,
    render_alternatives,
    verdict_line,
)

if TYPE_CHECKING:
    from rich.console import Console

    from reverseprobe.model.checklist import ChecklistResult, TargetRun


def render_checklist_text(
    result: ChecklistResult, *, color: bool, width: int | None = None, verbose: bool = False
) -> str:
    """The checklist at the terminal's width (80 when not a TTY, as check's report): wrapped
    lines indented; each target's per-probe line only with `verbose` (--verbose)."""
    buf = io.StringIO()
    _render(make_console(buf, color=color, width=width), result, color, verbose)
    return buf.getvalue()


def _render(con: Console, result: ChecklistResult, color: bool, verbose: bool) -> None:
    from reverseprobe.render.terminal import escape

    s = result.site
    hanging(
        con,
        "[bold]reverseprobe checklist[/bold]: ",
        f"site {s.name!r}, AE title {s.aet}, port {s.port}, {len(s.pacs)} PACS",
        2,
    )
    con.print(f"[dim]{result.started:%Y-%m-%d %H:%M:%S} UTC[/dim]")
    con.print()
    site = result.site_run
    con.print("[bold underline]This PC (reverseprobe check)[/bold underline]")
    _run_body(con, site, color, verbose)
    for run in result.pacs_runs:
        p = run.pacs
        assert p is not None
        hanging(
            con,
            f"[bold underline]PACS {escape(p.name)!r}[/bold underline]: ",
            f"{p.aet} at {p.host}:{p.port} (reverseprobe move-test)",
            2,
        )
        _run_body(con, run, color, verbose)
        states = run_hops(result, run)
        parts = [f"{mark(h.severity, color)} {escape(h.label)}" for h in states]
        one = "  Path:  " + "  ->  ".join(parts)
        if Text.from_markup(one).cell_len <= con.width:
            con.print(one)
        else:  # the path on its own lines, one hop a line
            con.print("  Path:")
            print_path(con, parts)
        e = result.entry(run)
        hanging(
            con,
            f"  Entry for the PACS administrator: AE title [bold]{escape(e.aet)}[/bold], "
            f"host [bold]{escape(e.host or '(unknown)')}[/bold], port [bold]{e.port}[/bold]",
            "",
            4,
        )
        render_alternatives(con, e, indent=4)
        con.print()
    if not result.pacs_runs:
        e = result.entry()
        con.print(
            "[bold underline]PACS entry[/bold underline] (give this to the PACS administrator)"
        )
        hanging(con, "  ", f"AE title {e.aet}, host {e.host or '(unknown)'}, port {e.port}", 4)
        render_alternatives(con, e)
        con.print()
    con.print("[bold underline]Summary[/bold underline]")
    for run in result.runs:
        name = "this PC" if run.pacs is None else run.target
        sev = target_severity(run.findings, run.result.status, strict=result.strict)
        hanging(con, f"  {mark(sev, color)} ", name, 4)
    con.print()
    hanging(con, verdict_line(result.report(), color=color), "", 9)


def _run_body(con: Console, run: TargetRun, color: bool, verbose: bool) -> None:

    if not run.findings:
        con.print("  (no findings)")
    labels = family_labels(run.findings)
    for f in sort_findings(run.findings):
        head = f"  {mark(f.severity, color)} [bold]{f.code}[/bold]{family_tag(f, labels)}  "
        hanging(con, head, f.summary, 6)
        if f.fix and f.severity is not Severity.PASS:
            hanging(con, "      [dim]fix:[/dim] ", f.fix, 11)
    if verbose and run.result.probes:
        parts = []
        for name, pr in run.result.probes.items():
            txt = f"{name} {pr.status.value}"
            if pr.status is not Status.OK and pr.reason:
                txt += f" ({pr.reason})"
            parts.append(txt)
        hanging(con, "  [dim]probes:[/dim] ", "; ".join(parts), 4)
    con.print()
