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
from reverseprobe.model import Finding, PacsEntry, Report, Severity, Status, sort_findings
from reverseprobe.render.families import alternative_lines, family_labels, which_family
from reverseprobe.render.summary import measured
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


def render_text(
    report: Report,
    *,
    color: bool,
    width: int | None = None,
    title: str = "",
    verbose: bool = False,
) -> str:
    """The whole report as a string (rich markup resolved, or plain text); the per-probe
    timing table only with `verbose` (--verbose)."""
    buf = io.StringIO()
    console = make_console(buf, color=color, width=width)
    _render(console, report, color=color, title=title, verbose=verbose)
    return buf.getvalue()


def make_console(buf: io.StringIO, *, color: bool, width: int | None = None) -> Any:
    """A rich Console writing to `buf`: colour on a TTY, plain soft-wrapped text otherwise."""
    from rich.console import Console

    if width is None:
        import shutil

        width = shutil.get_terminal_size((80, 24)).columns
    return Console(
        file=buf,
        force_terminal=color,
        no_color=not color,
        color_system="standard" if color else None,
        highlight=False,
        emoji=False,
        width=width,
        soft_wrap=False,  # wrap at the width (80 in a plain pipe), continuation indented
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


def _render(console: object, report: Report, *, color: bool, title: str, verbose: bool) -> None:
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
    labels = family_labels(report.findings)
    for section in sorted(
        by_section,
        key=lambda s: order.index(s.split(" — ")[0]) if s.split(" — ")[0] in order else 99,
    ):
        p(f"[bold underline]{escape(section)}[/bold underline]")
        for f in by_section[section]:
            head = f"  {mark(f.severity, color)} [bold]{f.code}[/bold]{family_tag(f, labels)}  "
            hanging(console, head, f.summary, 6)
            if f.fix and f.severity in (Severity.FAIL, Severity.WARN, Severity.INFO):
                hanging(console, "      [dim]fix:[/dim] ", f.fix, 11)
        p()
    _render_path(console, report, color)
    _render_probes(console, report, color, verbose=verbose)
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
        if e.note:  # wrapped under itself, as the alternatives below it
            hanging(console, "  [dim]", e.note, 2)
        render_alternatives(console, e)
        p()
    hanging(console, verdict_line(report, color=color), "", 9)  # wrapped under its words


def family_tag(f: Finding, labels: dict[int, str]) -> str:
    """ " (IPv6)" after a code whose finding is about one address family (render/families.py),
    so the IPv4 mapping and the IPv6 pinhole read apart."""
    label = labels.get(id(f))
    return f" ({escape(label)})" if label else ""


def render_alternatives(console: object, e: PacsEntry, indent: int = 2) -> None:
    """The entry's other-family addresses (PacsEntry.alternatives), one line each, and which
    one a PACS will use."""
    pad = " " * indent
    for line, note in alternative_lines(e):
        hanging(console, f"{pad}[bold]{escape(line)}[/bold]", "", indent + 2)
        if note:
            hanging(console, f"{pad}  ", note, indent + 2)
    which = which_family(e)
    if which:
        hanging(console, pad, which, indent)


def _render_path(console: object, report: Report, color: bool) -> None:
    from rich.console import Console

    assert isinstance(console, Console)
    states = hop_states(report.findings)
    parts = [f"{mark(h.severity, color)} {escape(h.label)}" for h in states]
    console.print("[bold underline]Path of the C-MOVE connection[/bold underline]")
    print_path(console, parts)
    console.print("  [dim]? = not measured[/dim]" if color else "  ([ ? ] = not measured)")
    console.print()


def hanging(console: object, head: str, text: str, indent: int) -> None:
    """`head` (markup) then `text` (from peers: escaped), wrapped at the console's width with
    the continuation lines indented by `indent` columns, so a report holds at 80 columns."""
    from rich.console import Console
    from rich.text import Text

    assert isinstance(console, Console)
    line = Text.from_markup(head + escape(text))
    lines = line.wrap(console, max(20, console.width - indent))
    if len(lines) <= 1:
        console.print(line)
        return
    for i, ln in enumerate(lines):
        ln.rstrip()  # no trailing blanks where a line was broken (nor padding to the width)
        console.print(ln if i == 0 else Text(" " * indent) + ln)


def print_path(console: object, parts: list[str]) -> None:
    """The hops on one line when they fit, else one hop a line (arrows leading)."""
    from rich.console import Console
    from rich.text import Text

    assert isinstance(console, Console)
    one = "  " + "  ->  ".join(parts)
    if Text.from_markup(one).cell_len <= console.width:
        console.print(one)
        return
    for i, part in enumerate(parts):
        console.print(("  " if i == 0 else "  -> ") + part)


def _render_probes(console: object, report: Report, color: bool, *, verbose: bool) -> None:
    """Every probe with its time with --verbose; else those not measured (skipped, cut short,
    broken: a probe cut short is never silently a pass), and apart from them those that
    measured a failure (status fail: measured, e.g. contexts the receiver refused)."""
    from rich.console import Console

    assert isinstance(console, Console)
    groups: dict[str, list[str]] = {}
    for name, pr in report.probes.items():
        st = pr.status
        if verbose:
            heading = "Probes"
        elif st is Status.OK:
            continue
        elif measured(st):
            heading = "Probes that measured a failure"
        else:
            heading = "Probes not measured"
        txt = f"{name} {st.value}"
        if verbose and pr.elapsed_s is not None:
            txt += f" ({pr.elapsed_s:.2f} s)"
        if pr.reason and (st is not Status.OK or name == "host_firewall"):  # what it ran
            txt += f": {pr.reason}"
        groups.setdefault(heading, []).append(
            f"[{_STATUS_STYLE[st]}]{escape(txt)}[/{_STATUS_STYLE[st]}]" if color else escape(txt)
        )
    for heading in ("Probes", "Probes not measured", "Probes that measured a failure"):
        if heading not in groups:
            continue
        console.print(f"[bold underline]{heading}[/bold underline]")
        for it in groups[heading]:
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
    from reverseprobe.diagnosis.story import verdict_note

    note = verdict_note(report.findings)
    if note:
        text = f"{text}; {note}"
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
