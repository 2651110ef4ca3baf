"""argparse + environment -> ChecklistConfig: the site file read, each --format paired with
where it goes."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping
from pathlib import Path

from reverseprobe.config import FILE_NAMES, BadInput, ChecklistConfig, ReportFormat
from reverseprobe.config.environ import ip_service_urls, reflector_url


def checklist_config(args: argparse.Namespace, environ: Mapping[str, str]) -> ChecklistConfig:
    """Read the site file (env fallbacks for what it leaves out) and pair each --format with
    where it goes."""
    from reverseprobe.sitefile import load_site

    site = load_site(Path(args.site))
    if site.reflector is None:
        site = dataclasses.replace(site, reflector=reflector_url(None, environ))
    if site.ip_services is None:
        site = dataclasses.replace(site, ip_services=ip_service_urls(None, environ))
    formats, outputs, out_dir = plan_outputs(
        args.formats or [], args.outputs or [], args.output_dir, json_out=args.json
    )
    return ChecklistConfig(
        site_file=Path(args.site),
        formats=formats,
        outputs=outputs,
        output_dir=out_dir,
        strict=args.strict,
        timeout=args.timeout,
        site=site,
        json_out=bool(args.json),
    )


def plan_outputs(
    formats: list[str] | tuple[str, ...],
    outputs: list[str] | tuple[str, ...],
    output_dir: str | None,
    *,
    json_out: bool,
) -> tuple[tuple[ReportFormat, ...], tuple[Path, ...], Path | None]:
    """--format F (repeatable) with --output FILE per format ('-' = stdout), or --output-dir
    (every format, or those given, as report.*). Nothing else: the formats go to stdout."""
    choices = [f.value for f in ReportFormat.__members__.values()]
    for f in formats:
        if f not in choices:
            raise BadInput(f"invalid --format {f!r}: choose from {', '.join(choices)}")
    fmts = [ReportFormat(f) for f in formats]
    if len(set(fmts)) != len(fmts):
        raise BadInput(f"--format given twice for the same format: {', '.join(formats)}")
    if outputs:
        if output_dir is not None:
            raise BadInput("give either --output FILE (per --format) or --output-dir, not both")
        if len(outputs) != len(fmts):
            raise BadInput(
                f"{len(outputs)} --output for {len(fmts)} --format: give one --output per "
                "--format, in the same order"
            )
        paths = tuple(Path(o) for o in outputs)
        if sum(1 for p in paths if str(p) == "-") > 1:
            raise BadInput("only one --output may be '-' (stdout)")
    elif output_dir is not None:
        d = Path(output_dir)
        if d.exists() and not d.is_dir():
            raise BadInput(f"invalid --output-dir {output_dir!r}: not a directory")
        fmts = fmts or [*ReportFormat.__members__.values()]
        return tuple(fmts), tuple(d / FILE_NAMES[f] for f in fmts), d
    else:
        fmts = fmts or [ReportFormat.JSON if json_out else ReportFormat.TEXT]
        if len(fmts) > 1:
            raise BadInput(
                "several --format need --output FILE for each, or --output-dir DIR "
                "(only one report can go to stdout)"
            )
        paths = (Path("-"),)
    to_stdout = [f for f, p in zip(fmts, paths, strict=True) if str(p) == "-"]
    if json_out and to_stdout and to_stdout != [ReportFormat.JSON]:
        raise BadInput(f"--json prints JSON on stdout: write --format {to_stdout[0]} to a file")
    return tuple(fmts), paths, None
