"""argparse + environment -> CheckConfig."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from reverseprobe.config import ENV_SYSROOT, VIRTUAL_ENV_MARKERS, BadInput, CheckConfig
from reverseprobe.config.environ import probe_targets
from reverseprobe.config.recorded import recorded_contexts
from reverseprobe.config.tls import tls_settings


def check_config(args: argparse.Namespace, environ: Mapping[str, str]) -> CheckConfig:
    return CheckConfig(
        **probe_targets(args, environ),
        expect_process=args.expect_process,
        require_listener=args.require_listener,
        strict=args.strict,
        timeout=args.timeout,
        pacs_entry=getattr(args, "pacs_entry", None),
        sysroot=environ.get(ENV_SYSROOT) or None,
        virtual_env=_virtual_env(environ),
        tls=tls_settings(args),
        pacs=_check_pacs(args),
        pacs_aet=getattr(args, "pacs_aet", None),
        contexts=tuple(getattr(args, "contexts", None) or ()),
        recorded_contexts=recorded_contexts(args),
    )


def _virtual_env(environ: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((k, environ[k]) for k in VIRTUAL_ENV_MARKERS if environ.get(k))


def _check_pacs(args: argparse.Namespace) -> tuple[str, int] | None:
    """check's --pacs for the receiver preflight; it goes with --pacs-aet."""
    pacs: tuple[str, int] | None = getattr(args, "pacs", None)
    pacs_aet = getattr(args, "pacs_aet", None)
    if (pacs is None) != (pacs_aet is None):
        given, missing = ("--pacs", "--pacs-aet") if pacs else ("--pacs-aet", "--pacs")
        raise BadInput(f"invalid {given}: it needs {missing} too (the receiver preflight)")
    return pacs
