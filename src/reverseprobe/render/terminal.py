"""The terminal report: findings grouped by section, the path, the PACS entry, a verdict.

Colours and symbols only on a TTY without NO_COLOR; otherwise plain ASCII-tagged text that
survives logs, e-mails and Windows consoles.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from reverseprobe.diagnosis.catalogue import CATALOGUE, Section
from reverseprobe.diagnosis.path import hop_states
from reverseprobe.model import Finding, Report, Severity, Status, sort_findings
from reverseprobe.textsafe import printable

_SYMBOL = {Severity.FAIL: "✗", Severity.WARN: "!", Severity.INFO: "i", Severity.PASS: "✓"}
_TAG = {Severity.FAIL: "FAIL", Severity.WARN: "WARN", Severity.INFO: "INFO", Severity.PASS: "PASS"}
_STYLE = {
    Severity.FAIL: "bold red",
    Severity.WARN: "yellow",
    Severity.INFO: "cyan",
    Severity.PASS: "green",
}
_STATUS_STYLE = {
    Status.OK: "green",
    Status.FAIL: "red",
    Status.SKIPPED: "dim",
    Status.TIMEOUT: "yellow",
    Status.ERROR: "red",
}


def render_text(report: Report, *, color: bool, width: int | None = None, title: str = "") -> str:
    """The whole report as a string (rich markup resolved, or plain text)."""
    buf = io.StringIO()
    _render(make_console(buf, color=color, width=width), report, color=color, title=title)
    return buf.getvalue()


def make_console(buf: io.StringIO, *, color: bool, width: int | None = None) -> Any:
    """A rich Console writing to `buf`: colour on a TTY, plain soft-wrapped text otherwise."""
    from rich.console import Console

    if width is None:
        import shutil

        width = shutil.get_terminal_size((100, 24)).columns
    return Console(
        file=buf,
        force_terminal=color,
        no_color=not color,
        color_system="standard" if color else None,
        highlight=False,
        emoji=False,
        width=width,
        soft_wrap=not color,  # plain text: one line per item, let the pager wrap
    )


def escape(text: str) -> str:
    """Text for a rich markup string: markup escaped, and control characters a peer sent
    (escape sequences, newlines, bidi overrides) shown as `\\xNN` (textsafe.printable)."""
    from rich.markup import escape as rich_escape

    return rich_escape(printable(text))


def mark(sev: Severity | None, color: bool) -> str:
    """A severity as a coloured symbol, or as an ASCII tag in plain text ("?": not measured)."""
    if sev is None:
        return "[dim]?[/dim]" if color else "[ ? ]"
    if color:
        return f"[{_STYLE[sev]}]{_SYMBOL[sev]}[/{_STYLE[sev]}]"
    return f"[{_TAG[sev]}]"


def _render(console: object, report: Report, *, color: bool, title: str) -> None:
    from rich.console import Console

    assert isinstance(console, Console)
    p = console.print
    p(f"[bold]reverseprobe {report.command}[/bold]{escape(title)}")
    p()
    by_section: dict[str, list[Finding]] = {}
    for f in sort_findings(report.findings):
        section = CATALOGUE[f.code].section.value if f.code in CATALOGUE else "Other"
        if f.target:
            section = f"{section} — {f.target}"
        by_section.setdefault(section, []).append(f)
    order = [s.value for s in Section]
    for section in sorted(
        by_section,
        key=lambda s: order.index(s.split(" — ")[0]) if s.split(" — ")[0] in order else 99,
    ):
        p(f"[bold underline]{escape(section)}[/bold underline]")
        for f in by_section[section]:
            p(f"  {mark(f.severity, color)} [bold]{f.code}[/bold]  {escape(f.summary)}")
            if f.fix and f.severity in (Severity.FAIL, Severity.WARN, Severity.INFO):
                p(f"      [dim]fix:[/dim] {escape(f.fix)}")
        p()
    _render_path(console, report, color)
    _render_probes(console, report, color)
    if report.command == "move-test":
        from reverseprobe.render.timeline import timeline_lines

        lines = timeline_lines(report)
        if lines:
            p("[bold underline]C-MOVE timeline[/bold underline] (seconds since start)")
            for line in lines:
                p(f"  {escape(line)}")
            p()
    if report.pacs_entry is not None:
        e = report.pacs_entry
        p("[bold underline]PACS entry[/bold underline] (give this to the PACS administrator)")
        p(f"  AE title  {escape(e.aet) if e.aet else '(your SCU AE title: pass --aet)'}")
        p(f"  Host      {escape(e.host) if e.host else '(unknown)'}")
        p(f"  Port      {e.port}")
        if e.note:
            p(f"  [dim]{escape(e.note)}[/dim]")
        p()
    p(verdict_line(report, color=color))


def _render_path(console: object, report: Report, color: bool) -> None:
    from rich.console import Console

    assert isinstance(console, Console)
    states = hop_states(report.findings)
    parts = [f"{mark(h.severity, color)} {escape(h.label)}" for h in states]
    console.print("[bold underline]Path of the C-MOVE connection[/bold underline]")
    console.print("  " + "  ->  ".join(parts))
    console.print("  [dim]? = not measured[/dim]" if color else "  ([ ? ] = not measured)")
    console.print()


def _render_probes(console: object, report: Report, color: bool) -> None:
    from rich.console import Console

    assert isinstance(console, Console)
    items = []
    for name, pr in report.probes.items():
        st = pr.status
        txt = f"{name} {st.value}"
        if pr.elapsed_s is not None:
            txt += f" ({pr.elapsed_s:.2f} s)"
        if pr.reason and (st is not Status.OK or name == "host_firewall"):  # what it ran
            txt += f": {pr.reason}"
        items.append(
            f"[{_STATUS_STYLE[st]}]{escape(txt)}[/{_STATUS_STYLE[st]}]" if color else escape(txt)
        )
    console.print("[bold underline]Probes[/bold underline]")
    for it in items:
        console.print(f"  {it}")
    console.print()


def verdict_line(report: Report, *, color: bool) -> str:
    v = report.verdict
    fails = [f.code for f in report.findings if f.severity is Severity.FAIL]
    warns = [f.code for f in report.findings if f.severity is Severity.WARN]
    if v is Severity.FAIL:
        bad = fails or warns
        text = f"FAIL: {len(bad)} problem(s) to fix: {', '.join(dict.fromkeys(bad))}"
    elif v is Severity.WARN:
        text = f"WARN: no failure found; check {', '.join(dict.fromkeys(warns))}"
    else:
        text = "PASS: no problem found in what was measured"
    text = f"Verdict: {text} ({report.elapsed_s:.1f} s)"
    return f"[{_STYLE[v]}]{escape(text)}[/{_STYLE[v]}]" if color else escape(text)


class LiveView:
    """Probe progress on stderr while they run (only when stderr is a TTY)."""

    def __init__(self, stream: object, names: Sequence[str], *, color: bool) -> None:
        from rich.console import Console
        from rich.live import Live

        # Rows appear as probes start: a probe that is not run (not built) never shows.
        self._order = list(names)
        self._state: dict[str, Status | None] = {}
        self._started: set[str] = set()
        console = Console(file=stream, no_color=not color, highlight=False)  # type: ignore[arg-type]
        self._live = Live(self._table(), console=console, refresh_per_second=12, transient=True)

    def _table(self) -> Any:
        from rich.spinner import Spinner
        from rich.table import Table

        t = Table.grid(padding=(0, 2))
        for name, st in self._state.items():
            if st is None:
                t.add_row(Spinner("dots") if name in self._started else " ", name, "…")
            else:
                t.add_row(" ", name, f"[{_STATUS_STYLE[st]}]{st.value}[/{_STATUS_STYLE[st]}]")
        return t

    def update(self, name: str, status: Status | None) -> None:
        if status is None:
            self._started.add(name)
        self._state[name] = status
        rank = {n: i for i, n in enumerate(self._order)}
        self._state = dict(sorted(self._state.items(), key=lambda kv: rank.get(kv[0], 99)))
        self._live.update(self._table())

    def __enter__(self) -> LiveView:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.__exit__(None, None, None)
