"""The one place where a command's Config is built from argparse and the environment."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping

from reverseprobe.config import Config
from reverseprobe.config.check import check_config
from reverseprobe.config.checklist import checklist_config
from reverseprobe.config.forward import forward_config
from reverseprobe.config.move import move_test_config
from reverseprobe.config.reflector import reflector_config
from reverseprobe.config.watch import watch_config


def build_config(args: argparse.Namespace, environ: Mapping[str, str]) -> Config:
    """The frozen Config of the command `args` names; BadInput (exit 2) names a bad value."""
    builders: dict[str, Callable[[argparse.Namespace, Mapping[str, str]], Config]] = {
        "check": check_config,
        "forward": forward_config,
        "move-test": move_test_config,
        "reflector": reflector_config,
        "checklist": checklist_config,
        "watch": watch_config,
    }
    return builders[args.command](args, environ)
