"""What every part of the lab shares: repository paths, its errors, commands run in the host's
own namespace (only `ip netns` bookkeeping), and the environment of a child process."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # tests/lab/host.py -> <repo>
SRC = REPO / "src"
NETNS_PREFIX = "rpl"
POLL = 0.02  # seconds between readiness polls


class LabError(RuntimeError):
    """The lab could not be built or a lab process misbehaved."""


class LabCommandError(subprocess.CalledProcessError):
    """A command in a namespace failed; unlike CalledProcessError, str() shows its output."""

    def __str__(self) -> str:
        return (
            f"{super().__str__()}\n--- stdout ---\n{tail(self.stdout)}\n"
            f"--- stderr ---\n{tail(self.stderr)}"
        )


def tail(text: str | bytes | None, lines: int = 40) -> str:
    """The last `lines` lines of a log or of captured output, for error messages."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return "\n".join((text or "").splitlines()[-lines:])


def host_run(argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command in the host's namespace (only `ip netns` bookkeeping uses this)."""
    res = subprocess.run(
        list(argv),
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    if check and res.returncode != 0:
        raise LabCommandError(res.returncode, list(argv), res.stdout, res.stderr)
    return res


def child_env(extra: Mapping[str, str] | None, *, python: bool = False) -> dict[str, str]:
    """os.environ plus `extra`; with `python`, <repo>/src first on PYTHONPATH."""
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    if python:
        paths = [str(SRC), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.update(extra or {})
    return env
