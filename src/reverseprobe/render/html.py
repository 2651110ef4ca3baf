"""The checklist as one self-contained, printable HTML file (Jinja2 templates, autoescaped).

Everything is inline (CSS, SVG; no script, font or image is fetched) and a Content-Security-Policy
of `default-src 'none'` makes the browser refuse any fetch a future edit might add, so the report
opens the same from an e-mail, a USB stick or an air-gapped ward PC. For each PACS it draws the
path of the C-MOVE's reverse connection (PACS -> internet -> router -> this PC -> listener), each
hop coloured by its worst finding (render/path.py), and it spells out the PACS administrator's
entry in the syntax of common PACS.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reverseprobe import __version__
from reverseprobe.diagnosis.catalogue import CATALOGUE, Section
from reverseprobe.diagnosis.path import run_hops
from reverseprobe.diagnosis.story import verdict_note
from reverseprobe.model import Finding, PacsEntry, Report, Severity, sort_findings
from reverseprobe.model.check import InterfacesResult, PublicIpResult
from reverseprobe.model.dicom import FindResult, MoveResult
from reverseprobe.model.path import HopState
from reverseprobe.render.families import alternative_lines, family_labels, which_family
from reverseprobe.render.summary import target_severity
from reverseprobe.render.timeline import timeline_lines
from reverseprobe.textsafe import printable

if TYPE_CHECKING:
    from reverseprobe.model.checklist import ChecklistResult, TargetRun

SEVERITY_WORD = {
    Severity.FAIL: "fail",
    Severity.WARN: "warning",
    Severity.INFO: "info",
    Severity.PASS: "pass",
}
SYMBOL = {Severity.FAIL: "✗", Severity.WARN: "!", Severity.INFO: "i", Severity.PASS: "✓"}

# The path picture: five boxes left to right, in SVG user units.
BOX_W, BOX_H, GAP, PAD_X, BOX_Y = 142, 58, 34, 8, 34
MAX_CODES = 4


@dataclass(frozen=True)
class HopBox:
    x: int
    label: str
    css: str  # fail | warn | info | pass | none
    symbol: str
    codes: tuple[str, ...]
    more: int  # codes not shown


@dataclass(frozen=True)
class PathPicture:
    title: str
    boxes: tuple[HopBox, ...]
    width: int
    height: int
    box_w: int = BOX_W
    box_h: int = BOX_H
    box_y: int = BOX_Y


@dataclass(frozen=True)
class Snippet:
    product: str
    where: str
    text: str


def path_picture(states: Sequence[HopState], title: str) -> PathPicture:
    """The view model of one path (pure: positions and colours, no markup)."""
    boxes = []
    for i, h in enumerate(states):
        sev = h.severity
        codes = tuple(dict.fromkeys(h.codes))
        boxes.append(
            HopBox(
                x=PAD_X + i * (BOX_W + GAP),
                label=h.label,
                css=sev.value if sev else "none",
                symbol=SYMBOL[sev] if sev else "?",
                codes=codes[:MAX_CODES],
                more=max(0, len(codes) - MAX_CODES),
            )
        )
    width = 2 * PAD_X + len(boxes) * BOX_W + (len(boxes) - 1) * GAP
    lines = max((len(b.codes) + (1 if b.more else 0) for b in boxes), default=0)
    height = BOX_Y + BOX_H + 10 + 13 * max(1, lines)
    return PathPicture(title=title, boxes=tuple(boxes), width=width, height=height)


def admin_snippets(entry: PacsEntry) -> list[Snippet]:
    """The entry in the configuration syntax of common PACS (see docs/findings.md)."""
    host = entry.host or "ADDRESS-OF-THIS-PC"
    key = re.sub(r"[^a-z0-9]+", "-", entry.aet.lower()).strip("-") or "workstation"
    orthanc = f"{json.dumps(key)} : {json.dumps([entry.aet, host, entry.port])}"
    return [
        Snippet(
            "Orthanc",
            'orthanc.json, inside "DicomModalities" (then restart Orthanc)',
            f'"DicomModalities" : {{\n  {orthanc}\n}}',
        ),
        Snippet(
            "dcmqrscp (DCMTK)",
            "dcmqrscp.cfg, between HostTable BEGIN and HostTable END",
            f"{key} = ({entry.aet}, {host}, {entry.port})",
        ),
        Snippet(
            "dcm4chee",
            "web UI: AE list (arc-light 5: Configuration > AE list; 2.x: AE Management) > new AE",
            f"AE Title: {entry.aet}    Hostname: {host}    Port: {entry.port}    TLS: none",
        ),
        Snippet(
            "Conquest",
            "acrnema.map (AE, IP, port, compression), then reload the map or restart",
            f"{entry.aet:<16} {host:<16} {entry.port:<6} un",
        ),
    ]


def _findings_view(findings: Sequence[Finding]) -> list[dict[str, Any]]:
    out = []
    labels = family_labels(findings)
    for f in sort_findings(list(findings)):
        entry = CATALOGUE.get(f.code)
        out.append(
            {
                "code": f.code,
                "family": labels.get(id(f), ""),
                "css": f.severity.value,
                "word": SEVERITY_WORD[f.severity],
                "symbol": SYMBOL[f.severity],
                "summary": f.summary,
                "fix": f.fix if f.severity is not Severity.PASS else "",
                "section": entry.section.value if entry else "Other",
                "anchor": f.code.lower().replace("_", "-"),
            }
        )
    return out


def _section_order(view: list[dict[str, Any]]) -> list[dict[str, Any]]:
    order = [s.value for s in Section]
    return sorted(view, key=lambda v: order.index(v["section"]) if v["section"] in order else 99)


def _run_view(result: ChecklistResult, run: TargetRun, index: int) -> dict[str, Any]:
    findings = list(run.findings)
    v = target_severity(findings, run.result.status, strict=result.strict)
    is_site = run.pacs is None
    title = "This PC" if is_site else f"PACS “{run.target}”"
    entry = result.entry(run)
    return {
        "title": title,
        "target": run.target,
        "command": run.command,
        "pacs": run.pacs,
        "verdict": v.value if v else "none",
        "status": run.result.status.value,
        "reason": run.result.reason,
        "elapsed": f"{run.result.elapsed_s or 0.0:.1f}",
        "findings": _findings_view(findings),
        "fails": sum(1 for f in findings if f.severity is Severity.FAIL),
        "warns": sum(1 for f in findings if f.severity is Severity.WARN),
        "probes": [
            {"name": n, "status": p.status.value, "reason": p.reason or ""}
            for n, p in run.result.probes.items()
        ],
        "path": path_picture(
            run_hops(result, run),
            f"Path of the C-MOVE connection from {title} to this PC's listener",
        ),
        "entry": entry,
        "alternatives": alternative_lines(entry),
        "which_family": which_family(entry),
        "snippets": admin_snippets(entry),
        "evidence": None if is_site else move_evidence(result, run),
        "id": "site"
        if is_site
        else f"pacs{index}-" + re.sub(r"[^a-z0-9]+", "-", run.target.lower()),
    }


def workstation(result: ChecklistResult) -> dict[str, Any]:
    """This PC as the PACS administrator asks about it: name, addresses, and the address and
    calling AE title its associations arrive with (the public address behind NAT)."""
    site = result.site_run.report
    ifaces = site.probes.get("interfaces") if site else None
    pub = site.probes.get("public_ip") if site else None
    addresses: list[str] = []
    lan = None
    if isinstance(ifaces, InterfacesResult):
        lan = ifaces.source_address
        for i in ifaces.interfaces:
            addresses += [f"{i.name} {a.address}" for a in i.addresses]
    public = pub.address if isinstance(pub, PublicIpResult) else None
    seen = public or lan
    how = (
        "the public address the IP services saw (behind NAT the PACS sees this, not the LAN one)"
        if public
        else "this PC's source address toward the default route (public address not measured)"
        if lan
        else "not measured"
    )
    return {
        "hostname": result.hostname or "(unknown)",
        "addresses": addresses,
        "calling_aet": result.site.aet,
        "seen_address": seen or "(not measured)",
        "seen_how": how,
    }


def move_evidence(result: ChecklistResult, run: TargetRun) -> dict[str, Any]:
    """What move-test did with this PACS: the study it used and the C-MOVE timeline with the
    DIMSE statuses (PS3.4 C.4.2.1.5), as the administrator would read them in the PACS log."""
    rep: Report | None = run.report
    find = rep.probes.get("find") if rep else None
    move = rep.probes.get("move") if rep else None
    study = None
    if isinstance(move, MoveResult) and move.study_uid:
        study = move.study_uid
    elif isinstance(find, FindResult):
        study = find.study_uid or find.requested_study
    instances = find.instances if isinstance(find, FindResult) else None
    final = None
    if isinstance(move, MoveResult) and move.final_code is not None:
        final = f"0x{move.final_code:04X}" + (
            f" {move.final_meaning}" if move.final_meaning else ""
        )
    return {
        "study": study or (run.pacs.study if run.pacs and run.pacs.study else None),
        "instances": instances,
        "final": final,
        "counts": (
            {
                "completed": move.completed,
                "failed": move.failed,
                "warning": move.warning,
                "remaining": move.remaining,
            }
            if isinstance(move, MoveResult)
            else None
        ),
        "timeline": timeline_lines(rep) if rep else [],
    }


def appendix(findings: Sequence[Finding]) -> list[dict[str, Any]]:
    """One entry per code present, from the catalogue (docs/findings.md has the long form):
    every code in the report links here, so the report explains itself offline."""
    out = []
    for code in sorted({f.code for f in findings}):
        c = CATALOGUE.get(code)
        out.append(
            {
                "code": code,
                "anchor": "code-" + code.lower().replace("_", "-"),
                "severity": c.severity.value if c else "",
                "section": c.section.value if c else "Other",
                "meaning": c.meaning if c else "",
                "fixes": list(
                    dict.fromkeys(
                        f.fix
                        for f in findings
                        if f.code == code and f.fix and f.severity is not Severity.PASS
                    )
                ),
            }
        )
    return out


_BACKTICKS = re.compile(r"`([^`\n]+)`")


def code_spans(text: str) -> Any:
    """Escape `text`, then show its `backtick` spans (commands in fixes) as <code>."""
    from markupsafe import Markup, escape

    return Markup(_BACKTICKS.sub(r"<code>\1</code>", str(escape(printable(text)))))  # noqa: S704 - escaped first


def _shown(value: Any) -> Any:
    """Every {{ value }}: control characters a peer sent shown as escapes (autoescape then
    handles <, > and &); Markup was built by us and is left alone."""
    from markupsafe import Markup

    if isinstance(value, str) and not isinstance(value, Markup):
        return printable(value, keep_newlines=True)
    return value


def render_html(result: ChecklistResult) -> str:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("reverseprobe", "templates"),
        autoescape=select_autoescape(["html", "j2"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_shown,
    )
    env.filters["code_spans"] = code_spans
    report = result.report()
    runs = [_run_view(result, r, i) for i, r in enumerate(result.runs)]
    site_view, pacs_views = runs[0], runs[1:]
    all_findings = result.findings
    entries: dict[tuple[str, str | None, int], dict[str, Any]] = {}
    for r in pacs_views or [site_view]:
        e = r["entry"]
        group = entries.setdefault(
            (e.aet, e.host, e.port),
            {
                "entry": e,
                "snippets": r["snippets"],
                "alternatives": r["alternatives"],
                "which_family": r["which_family"],
                "runs": [],
            },
        )
        if r["pacs"] is not None:
            group["runs"].append(r)
    return env.get_template("checklist.html.j2").render(
        site=result.site,
        started=result.started.strftime("%Y-%m-%d %H:%M UTC"),
        verdict=report.verdict.value,
        strict=result.strict,
        elapsed=f"{result.elapsed_s:.1f}",
        site_run=site_view,
        pacs_runs=pacs_views,
        fails=sum(1 for f in all_findings if f.severity is Severity.FAIL),
        warns=sum(1 for f in all_findings if f.severity is Severity.WARN),
        entry=result.entry(),
        entries=list(entries.values()),
        version=__version__,
        site_picture=None if pacs_views else site_view["path"],
        verdict_note=verdict_note(all_findings),
        workstation=workstation(result),
        appendix=appendix(all_findings),
    )
