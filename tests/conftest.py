"""Shared fixtures: free ports, background programs that are always stopped, readiness waits."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src"
TESTS = REPO / "tests"


def free_port() -> int:
    """A TCP port free on this host right now (bound to 0, then released)."""
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
    """Poll until something accepts TCP on host:port (readiness, not a fixed sleep)."""
    end = time.monotonic() + timeout
    last: OSError | None = None
    while time.monotonic() < end:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError as exc:
            last = exc
            time.sleep(0.02)
    raise TimeoutError(f"nothing listened on {host}:{port} within {timeout} s ({last})")


class Procs:
    """Start programs for a test; every one is killed at teardown, pass or fail."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], name: str = "proc", **kw: Any) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}-{len(self.started)}.log", "wb")  # noqa: SIM115
        p: subprocess.Popen[bytes] = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **kw
        )
        self.started.append(p)
        return p

    def python(self, code: str, name: str = "py") -> subprocess.Popen[bytes]:
        env = dict(os.environ, PYTHONPATH=str(SRC))
        return self.start([sys.executable, "-c", code], name=name, env=env)

    def stop_all(self) -> None:
        for p in self.started:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    ps = Procs(tmp_path)
    try:
        yield ps
    finally:
        ps.stop_all()


@pytest.fixture
def port() -> int:
    return free_port()
