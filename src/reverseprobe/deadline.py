"""One absolute deadline per command; every blocking call gets a bounded share of it."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Deadline:
    """An absolute monotonic deadline; `share()` hands a bounded slice of it to one call."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def share(self, at_most: float, *, reserve: float = 0.0, floor: float = 0.05) -> float:
        """A timeout for one blocking call: at most `at_most`, never past the deadline less
        `reserve`, and never below `floor` (a zero timeout means "block" to some libraries)."""
        return max(floor, min(at_most, self.remaining() - reserve))

    @classmethod
    def for_command(cls, seconds: float, *, already: float = 0.0, reserve: float = 0.1) -> Deadline:
        """A command's deadline when `already` seconds of it went by before the clock started
        (interpreter start-up and imports), less `reserve` for rendering the report."""
        return cls(time.monotonic() + seconds - min(already, seconds / 2) - reserve)

    def child(self, seconds: float) -> Deadline:
        """A nested deadline that ends no later than this one."""
        return Deadline(min(self.at, time.monotonic() + seconds))

    def less(self, seconds: float) -> Deadline:
        """This deadline moved `seconds` earlier (a margin kept back for the caller)."""
        return Deadline(self.at - seconds)
