"""`reverseprobe checklist SITE.toml`: `check` once, `move-test` for each PACS, then reports.

Everything runs under one deadline (--timeout), one run after another (checklist_run.py). A run
that cannot start in time, or that breaks, becomes a CHECKLIST_INCOMPLETE finding for its target:
a checklist never passes what it did not test. This module reads the configuration, and writes
each report format to its file or to stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reverseprobe import config as c
from reverseprobe.commands.checklist_run import (
    RENDER_RESERVE_S,
    SLACK_S,
    CheckRunner,
    MoveRunner,
    run_site,
)
from reverseprobe.environment import Environment
from reverseprobe.exitcodes import ExitStatus, exit_status
from reverseprobe.model.checklist import ChecklistResult, RunResult, TargetRun
from reverseprobe.sitefile import SITE_TARGET, Site, load_site

__all__ = [
    "FILE_NAMES",
    "FORMATS",
    "RENDER_RESERVE_S",
    "SLACK_S",
    "CheckRunner",
    "ChecklistResult",
    "MoveRunner",
    "RunResult",
    "SiteChecklistConfig",
    "TargetRun",
    "checklist_config",
    "plan_outputs",
    "render",
    "run_checklist",
    "run_site",
    "write_reports",
]

FORMATS = ("text", "json", "junit", "html")
FILE_NAMES = {
    "text": "report.txt",
    "json": "report.json",
    "junit": "report.xml",
    "html": "report.html",
}


@dataclass(frozen=True, kw_only=True)
class SiteChecklistConfig(c.ChecklistConfig):
    """ChecklistConfig with its site file already read (so bad input exits 2 early)."""

    site: Site


# -- configuration --------------------------------------------------------------------


def checklist_config(args: argparse.Namespace, env: Environment) -> SiteChecklistConfig:
    """Read the site file and pair each --format with where it goes."""
    site = load_site(Path(args.site))
    if site.reflector is None and env.environ.get(c.ENV_REFLECTOR):
        url = c.parse_url(env.environ[c.ENV_REFLECTOR], what=c.ENV_REFLECTOR)
        site = dataclasses.replace(site, reflector=url)
    if site.ip_services is None:
        items = c.split_env_list(env.environ.get(c.ENV_IP_SERVICES))
        if items:
            urls = tuple(c.parse_url(u, what=f"URL in {c.ENV_IP_SERVICES}") for u in items)
            site = dataclasses.replace(site, ip_services=urls)
    formats, outputs, out_dir = plan_outputs(
        args.formats or [], args.outputs or [], args.output_dir, json_out=args.json
    )
    return SiteChecklistConfig(
        site_file=Path(args.site),
        formats=formats,
        outputs=outputs,
        output_dir=out_dir,
        strict=args.strict,
        timeout=args.timeout,
        site=site,
    )


def plan_outputs(
    formats: Sequence[str], outputs: Sequence[str], output_dir: str | None, *, json_out: bool
) -> tuple[tuple[str, ...], tuple[Path, ...], Path | None]:
    """--format F (repeatable) with --output FILE per format ('-' = stdout), or --output-dir
    (every format, or those given, as report.*). Nothing else: the formats go to stdout."""
    for f in formats:
        if f not in FORMATS:
            raise c.BadInput(f"invalid --format {f!r}: choose from {', '.join(FORMATS)}")
    if len(set(formats)) != len(formats):
        raise c.BadInput(f"--format given twice for the same format: {', '.join(formats)}")
    if outputs:
        if output_dir is not None:
            raise c.BadInput("give either --output FILE (per --format) or --output-dir, not both")
        if len(outputs) != len(formats):
            raise c.BadInput(
                f"{len(outputs)} --output for {len(formats)} --format: give one --output per "
                "--format, in the same order"
            )
        paths = tuple(Path(o) for o in outputs)
        if sum(1 for p in paths if str(p) == "-") > 1:
            raise c.BadInput("only one --output may be '-' (stdout)")
    elif output_dir is not None:
        d = Path(output_dir)
        if d.exists() and not d.is_dir():
            raise c.BadInput(f"invalid --output-dir {output_dir!r}: not a directory")
        formats = list(formats) or list(FORMATS)
        return tuple(formats), tuple(d / FILE_NAMES[f] for f in formats), d
    else:
        formats = list(formats) or ["json" if json_out else "text"]
        if len(formats) > 1:
            raise c.BadInput(
                "several --format need --output FILE for each, or --output-dir DIR "
                "(only one report can go to stdout)"
            )
        paths = (Path("-"),)
    to_stdout = [f for f, p in zip(formats, paths, strict=True) if str(p) == "-"]
    if json_out and to_stdout and to_stdout != ["json"]:
        raise c.BadInput(f"--json prints JSON on stdout: write --format {to_stdout[0]} to a file")
    return tuple(formats), paths, None


# -- the command ----------------------------------------------------------------------


def run_checklist(
    cfg: c.ChecklistConfig, *, env: Environment, json_out: bool = False
) -> ExitStatus:
    """Run the site's checklist, write every report asked for; exit code: docs/reference.md."""
    try:
        site = cfg.site if isinstance(cfg, SiteChecklistConfig) else load_site(cfg.site_file)
        formats, outputs = cfg.formats, cfg.outputs
        if not outputs:
            formats, outputs, _ = plan_outputs(
                list(cfg.formats),
                [],
                str(cfg.output_dir) if cfg.output_dir else None,
                json_out=json_out,
            )
    except c.BadInput as exc:
        print(f"reverseprobe: error: {exc}", file=env.stderr)
        return ExitStatus.USAGE
    names = ["check", *(p.name for p in site.pacs)]
    if env.live and not json_out:
        from reverseprobe.render.terminal import LiveView

        with LiveView(env.stderr, names, color=not env.no_color) as view:
            result = run_site(
                site,
                timeout=cfg.timeout,
                strict=cfg.strict,
                progress=lambda t, s: view.update(_label(t), s),
            )
    else:
        result = run_site(site, timeout=cfg.timeout, strict=cfg.strict)
    try:
        written = write_reports(result, formats, outputs, env=env)
    except OSError as exc:
        print(f"reverseprobe: error: cannot write the report: {exc}", file=env.stderr)
        return ExitStatus.USAGE
    if not any(str(p) == "-" for p in outputs):
        from reverseprobe.render.json import render_json

        if json_out:
            env.stdout.write(render_json(result.report()))
        else:
            env.stdout.write(render(result, "text", color=env.color))
    env.stdout.flush()
    for path in written:
        print(f"wrote {path}", file=env.stderr)
    return exit_status(result.findings, strict=cfg.strict)


def _label(target: str) -> str:
    return "check" if target == SITE_TARGET else target


def render(result: ChecklistResult, fmt: str, *, color: bool = False) -> str:
    if fmt == "json":
        from reverseprobe.render.json import render_json

        return render_json(result.report())
    if fmt == "junit":
        from reverseprobe.render.junit import render_junit

        return render_junit(result)
    if fmt == "html":
        from reverseprobe.render.html import render_html

        return render_html(result)
    from reverseprobe.render.checklist_text import render_checklist_text

    return render_checklist_text(result, color=color)


def write_reports(
    result: ChecklistResult, formats: Sequence[str], outputs: Sequence[Path], *, env: Environment
) -> list[Path]:
    """Each format to its file (atomically: never a half-written report) or to stdout."""
    written = []
    for fmt, path in zip(formats, outputs, strict=True):
        if str(path) == "-":
            env.stdout.write(render(result, fmt, color=env.color and fmt == "text"))
            continue
        _write_atomic(path, render(result, fmt))
        written.append(path)
    return written


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
