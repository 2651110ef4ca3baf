"""A process the lab started in a namespace: its log, readiness by log line, and its stop."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from .host import POLL, LabError, tail


class LabProcess:
    """A process started in a namespace, in its own process group, logging to a file."""

    def __init__(self, proc: subprocess.Popen[bytes], log_path: Path, argv: Sequence[str]):
        self.proc = proc
        self.log_path = log_path
        self.argv = list(argv)

    def __repr__(self) -> str:
        return f"<LabProcess pid={self.proc.pid} {' '.join(self.argv)!r}>"

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        """None while running."""
        return self.proc.poll()

    def log(self) -> str:
        """Everything the process wrote so far (stdout and stderr)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def died(self, waiting_for: str) -> LabError:
        """The error for "exited while we waited for `waiting_for`", with the log tail."""
        return LabError(
            f"{self!r} exited with {self.proc.returncode} while waiting for {waiting_for}; "
            f"log {self.log_path}:\n{tail(self.log())}"
        )

    def wait_log(self, pattern: str, timeout: float = 10) -> re.Match[str]:
        """First match of regex `pattern` (MULTILINE) in the log.

        Raises TimeoutError (with the log tail) after `timeout`, LabError at once if the
        process exits without having logged it.
        """
        rx = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            exited = self.proc.poll() is not None
            m = rx.search(self.log())
            if m:
                return m
            if exited:
                raise self.died(f"log pattern {pattern!r}")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self!r}: no log line matching {pattern!r} within {timeout}s; "
                    f"log {self.log_path}:\n{tail(self.log())}"
                )
            time.sleep(POLL)

    def signal(self, sig: int) -> None:
        """Send `sig` to the whole process group."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 5) -> None:
        """SIGTERM the process group, SIGKILL it after `timeout`; reaps the leader."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        # The leader may be gone while other members of its group still run.
        self.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout)
