"""`reverseprobe checklist SITE.toml`: `check` once, `move-test` for each PACS, then reports.

Everything runs under one deadline (--timeout), one run after another (checklist_run.py). A run
that cannot start in time, or that breaks, becomes a CHECKLIST_INCOMPLETE finding for its target:
a checklist never passes what it did not test. This module reads the configuration, and writes
each report format to its file or to stdout.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from reverseprobe import config as c
from reverseprobe.commands.checklist_run import (
    DEFAULT_MOVE_TIMEOUT,
    MIN_RUN_S,
    RENDER_RESERVE_S,
    SLACK_S,
    CheckRunner,
    MoveRunner,
    run_site,
)
from reverseprobe.config.checklist import checklist_config as checklist_config
from reverseprobe.config.checklist import plan_outputs as plan_outputs
from reverseprobe.environment import Environment
from reverseprobe.exitcodes import CommandFailed
from reverseprobe.model.checklist import ChecklistResult, RunResult, TargetRun
from reverseprobe.runner import Deadline, Listener, Plan, Step
from reverseprobe.sitefile import SITE_TARGET, load_site

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
    "emit",
    "plan",
    "plan_outputs",
    "render",
    "run",
    "run_site",
    "write_reports",
]


SiteChecklistConfig = c.ChecklistConfig  # the site file is read into ChecklistConfig.site
FORMATS = tuple(f.value for f in c.ReportFormat.__members__.values())
FILE_NAMES = c.FILE_NAMES


# -- the command ----------------------------------------------------------------------


def plan(cfg: c.ChecklistConfig, time_left: float) -> Plan:
    """check, then one move-test per PACS, one after another: each at most its own timeout
    and a fair part of what is left when every run before it used its whole share (the same
    rule `run_site` applies as it goes). Runs that cannot get MIN_RUN_S are not started."""
    site = cfg.site if cfg.site is not None else load_site(cfg.site_file)
    left = max(0.0, time_left - RENDER_RESERVE_S)
    wants = [("check", site.check_timeout or c.DEFAULT_CHECK_TIMEOUT)]
    wants += [(p.name, p.timeout or DEFAULT_MOVE_TIMEOUT) for p in site.pacs]
    steps = []
    for i, (name, want) in enumerate(wants):
        share = min(want, left / (len(wants) - i)) if left >= MIN_RUN_S else 0.0
        steps.append(Step(name, share))
        left -= share
    return Plan(tuple(steps), sequential=True, margin_s=RENDER_RESERVE_S)


def run(
    cfg: c.ChecklistConfig, *, on_update: Listener | None = None, deadline: Deadline | None = None
) -> ChecklistResult:
    """Run the site's checklist under --timeout; rendering and writing are the CLI's."""
    del deadline  # run_site keeps its own clock from cfg.timeout (its runs are threads)
    site = cfg.site if cfg.site is not None else load_site(cfg.site_file)
    progress = (lambda t, s: on_update(_label(t), s)) if on_update else None
    return run_site(site, timeout=cfg.timeout, strict=cfg.strict, progress=progress)


def step_names(cfg: c.ChecklistConfig) -> tuple[str, ...]:
    site = cfg.site if cfg.site is not None else load_site(cfg.site_file)
    return ("check", *(p.name for p in site.pacs))


def emit(
    result: ChecklistResult, cfg: c.ChecklistConfig, env: Environment, *, verbose: bool = False
) -> None:
    """Every report to its file (or stdout); without one for stdout, the text (or --json);
    the text's per-probe lines only with `verbose` (--verbose)."""
    written = write_reports(result, cfg.formats, cfg.outputs, env=env)
    if not any(str(p) == "-" for p in cfg.outputs):
        if cfg.json_out:
            from reverseprobe.render.json import render_json

            env.stdout.write(render_json(result.report()))
        else:
            env.stdout.write(render(result, "text", color=env.color, verbose=verbose))
    env.stdout.flush()
    for path in written:
        print(f"wrote {path}", file=env.stderr)


def _label(target: str) -> str:
    return "check" if target == SITE_TARGET else target


def render(result: ChecklistResult, fmt: str, *, color: bool = False, verbose: bool = False) -> str:
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

    return render_checklist_text(result, color=color, verbose=verbose)


def write_reports(
    result: ChecklistResult, formats: Sequence[str], outputs: Sequence[Path], *, env: Environment
) -> list[Path]:
    """Each format to its file (atomically: never a half-written report) or to stdout."""
    written = []
    for fmt, path in zip(formats, outputs, strict=True):
        if str(path) == "-":
            env.stdout.write(render(result, fmt, color=env.color and fmt == "text"))
            continue
        try:
            _write_atomic(path, render(result, fmt))
        except OSError as exc:
            raise CommandFailed(
                f"cannot write the report {str(path)!r}: {exc.strerror or exc}"
            ) from None
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
