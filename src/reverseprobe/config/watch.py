"""argparse + environment -> WatchConfig (issue 14)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from reverseprobe.config import BadInput, WatchConfig
from reverseprobe.config.environ import probe_targets
from reverseprobe.config.validate import parse_host_port, parse_port


def watch_config(args: argparse.Namespace, environ: Mapping[str, str]) -> WatchConfig:
    host, mport = "127.0.0.1", 0
    if args.metrics is not None:
        value = str(args.metrics)
        if value.isdigit():
            mport = parse_port(value, what="--metrics port")
        else:
            host, mport = parse_host_port(value, what="--metrics HOST:PORT")
    if args.interval < 1:
        raise BadInput(f"invalid --interval {args.interval:g}: at least 1 second")
    return WatchConfig(
        **probe_targets(args, environ),
        interval=args.interval,
        count=args.count,
        exit_on_change=args.exit_on_change,
        json=args.json,
        metrics_host=host,
        metrics_port=mport,
        timeout=args.timeout,
    )
