"""The program's streams and surroundings, injectable so tests run the CLI in-process."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class Environment:
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    stdout_isatty: bool | None = None
    stderr_isatty: bool | None = None

    def __post_init__(self) -> None:
        if self.stdout_isatty is None:
            self.stdout_isatty = _isatty(self.stdout)
        if self.stderr_isatty is None:
            self.stderr_isatty = _isatty(self.stderr)

    @property
    def no_color(self) -> bool:
        """https://no-color.org: any non-empty NO_COLOR disables colour."""
        return bool(self.environ.get("NO_COLOR"))

    @property
    def color(self) -> bool:
        return bool(self.stdout_isatty) and not self.no_color and self.environ.get("TERM") != "dumb"

    @property
    def live(self) -> bool:
        """A live view of the probes goes to stderr only when a person is watching."""
        return bool(self.stderr_isatty) and self.environ.get("TERM") != "dumb"


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
