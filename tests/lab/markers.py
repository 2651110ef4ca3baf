"""Whether the lab can run here, and the pytest skip markers built on that answer."""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

from .host import NETNS_PREFIX, host_run

_F = TypeVar("_F", bound=Callable[..., Any])


@functools.cache
def lab_available() -> str | None:
    """None when namespaces can be built here, else why not (for skip reasons)."""
    if not sys.platform.startswith("linux"):
        return f"network namespaces need Linux, this is {sys.platform}"
    if os.geteuid() != 0:
        return "the network lab needs root (ip netns, nftables)"
    for tool in ("ip", "nft", "ss"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    probe = f"{NETNS_PREFIX}{os.getpid()}-{secrets.token_hex(2)}-probe"
    try:
        host_run(["ip", "netns", "add", probe])
    except (OSError, subprocess.SubprocessError) as exc:
        return f"cannot create a network namespace: {exc}"
    try:
        host_run(["ip", "netns", "exec", probe, "nft", "list", "ruleset"])
    except (OSError, subprocess.SubprocessError) as exc:
        return f"nftables does not work in a network namespace: {exc}"
    finally:
        host_run(["ip", "netns", "del", probe], check=False)
    return None


def missing_tools(*names: str) -> list[str]:
    """The names among `names` that are not on PATH."""
    return [n for n in names if shutil.which(n) is None]


try:
    import pytest
except ImportError:  # the lab is usable as a plain library too
    pytest = None  # type: ignore[assignment]


class Marker(Protocol):
    """A pytest mark used as a decorator (typed so decorated tests stay typed)."""

    def __call__(self, func: _F, /) -> _F: ...


def _identity(func: _F) -> _F:
    return func


def _skip_unless(reason: str | None) -> Marker:
    if pytest is None:
        return _identity
    return cast(Marker, pytest.mark.skipif(reason is not None, reason=reason or ""))


requires_lab = _skip_unless(
    None if lab_available() is None else f"network lab unavailable: {lab_available()}"
)


def requires_tools(*names: str) -> Marker:
    """A skip marker for tests that need these programs (e.g. "miniupnpd", "upnpc")."""
    missing = missing_tools(*names)
    return _skip_unless(f"not installed: {', '.join(missing)}" if missing else None)
