"""Exit codes (docs/reference.md "Exit codes"), mapped from findings by one pure function."""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reverseprobe.model import Finding


class ExitStatus(IntEnum):
    OK = 0
    FAIL = 1
    USAGE = 2
    INTERRUPTED = 130


def exit_status(findings: Iterable[Finding], *, strict: bool = False) -> ExitStatus:
    """0 without a `fail` finding (and, with strict, without a `warn`); 1 otherwise."""
    from reverseprobe.model import Severity

    worst = {f.severity for f in findings}
    if Severity.FAIL in worst or (strict and Severity.WARN in worst):
        return ExitStatus.FAIL
    return ExitStatus.OK


class CommandFailed(Exception):
    """A command could not do its job for a reason that is not the user's input (a port it
    cannot listen on, a report file it cannot write): exit 1, str() is the one line shown."""
