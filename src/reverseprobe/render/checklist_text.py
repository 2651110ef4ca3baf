"""The checklist as text: this PC's findings, then each PACS with its path and its entry.

Same conventions as render/terminal.py: colours and symbols on a TTY, ASCII tags otherwise.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from reverseprobe.diagnosis.path import run_hops
from reverseprobe.model import Severity, Status, sort_findings
from reverseprobe.render.summary import target_severity
from reverseprobe.render.terminal import hanging, make_console, mark, verdict_line

if TYPE_CHECKING:
    from rich.console import Console

    from reverseprobe.model.checklist import ChecklistResult, TargetRun


def render_checklist_text(result: ChecklistResult, *, color: bool, width: int = 100) -> str:
    buf = io.StringIO()
    _render(make_console(buf, color=color, width=width), result, color)
    return buf.getvalue()


def _render(con: Console, result: ChecklistResult, color: bool) -> None:
    from reverseprobe.render.terminal import escape

    s = result.site
    con.print(
        f"[bold]reverseprobe checklist[/bold]: site {escape(s.name)!r}, AE title "
        f"{escape(s.aet)}, port {s.port}, {len(s.pacs)} PACS"
    )
    con.print(f"[dim]{result.started:%Y-%m-%d %H:%M:%S} UTC[/dim]")
    con.print()
    site = result.site_run
    con.print("[bold underline]This PC (reverseprobe check)[/bold underline]")
    _run_body(con, site, color)
    for run in result.pacs_runs:
        p = run.pacs
        assert p is not None
        con.print(
            f"[bold underline]PACS {escape(p.name)!r}[/bold underline]: {escape(p.aet)} at "
            f"{escape(p.host)}:{p.port} (reverseprobe move-test)"
        )
        _run_body(con, run, color)
        states = run_hops(result, run)
        con.print(
            "  Path:  " + "  ->  ".join(f"{mark(h.severity, color)} {h.label}" for h in states)
        )
        e = result.entry(run)
        con.print(
            f"  Entry for the PACS administrator: AE title [bold]{escape(e.aet)}[/bold], "
            f"host [bold]{escape(e.host or '(unknown)')}[/bold], port [bold]{e.port}[/bold]"
        )
        con.print()
    if not result.pacs_runs:
        e = result.entry()
        con.print(
            "[bold underline]PACS entry[/bold underline] (give this to the PACS administrator)"
        )
        con.print(
            f"  AE title {escape(e.aet)}, host {escape(e.host or '(unknown)')}, port {e.port}"
        )
        con.print()
    con.print("[bold underline]Summary[/bold underline]")
    for run in result.runs:
        name = "this PC" if run.pacs is None else run.target
        sev = target_severity(run.findings, run.result.status, strict=result.strict)
        con.print(f"  {mark(sev, color)} {escape(name)}")
    con.print()
    hanging(con, verdict_line(result.report(), color=color), "", 9)


def _run_body(con: Console, run: TargetRun, color: bool) -> None:
    from reverseprobe.render.terminal import escape

    if not run.findings:
        con.print("  (no findings)")
    for f in sort_findings(run.findings):
        con.print(f"  {mark(f.severity, color)} [bold]{f.code}[/bold]  {escape(f.summary)}")
        if f.fix and f.severity is not Severity.PASS:
            con.print(f"      [dim]fix:[/dim] {escape(f.fix)}")
    if run.result.probes:
        parts = []
        for name, pr in run.result.probes.items():
            txt = f"{name} {pr.status.value}"
            if pr.status is not Status.OK and pr.reason:
                txt += f" ({pr.reason})"
            parts.append(escape(txt))
        con.print(f"  [dim]probes: {'; '.join(parts)}[/dim]")
    con.print()
