"""Concurrent probes under one global deadline; a probe that fails or hangs becomes a result.

Threads cannot be killed, so every blocking call inside a probe carries its own timeout taken
from the Deadline it is given. The runner itself never waits past the deadline: a probe still
running then is reported as `timeout` and its daemon thread is abandoned.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from reverseprobe.model import ProbeResult, Status

# Time kept back from every probe's share so results can be collected and rendered in time.
MARGIN_S = 0.25


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


Probe = Callable[[Deadline], ProbeResult]
Listener = Callable[[str, Status | None], None]  # (probe name, status or None when started)


def process_age() -> float:
    """Seconds since this process started (0 where the OS will not say)."""
    try:
        import psutil

        return max(0.0, time.time() - float(psutil.Process().create_time()))
    except Exception:  # noqa: BLE001 - no process table: count from now
        return 0.0


def run_probes(
    probes: Mapping[str, Probe],
    deadline: Deadline,
    *,
    on_update: Listener | None = None,
) -> dict[str, ProbeResult]:
    """Run every probe concurrently; return one result per probe by the deadline."""
    results: dict[str, ProbeResult] = {}
    lock = threading.Lock()
    done = threading.Condition(lock)
    inner = Deadline(deadline.at - MARGIN_S)

    def _run(name: str, probe: Probe) -> None:
        t0 = time.monotonic()
        try:
            result = probe(inner)
        except Exception as exc:  # noqa: BLE001 - a probe that fails becomes a result
            result = ProbeResult(status=Status.ERROR, reason=f"{type(exc).__name__}: {exc}")
        if result.elapsed_s is None:
            result = _with_elapsed(result, time.monotonic() - t0)
        with done:
            results.setdefault(name, result)
            done.notify_all()
        if on_update:
            on_update(name, result.status)

    started = time.monotonic()
    for name, probe in probes.items():
        if on_update:
            on_update(name, None)
        threading.Thread(target=_run, args=(name, probe), name=f"probe-{name}", daemon=True).start()

    with done:
        while len(results) < len(probes):
            left = deadline.remaining()
            if left <= 0:
                break
            done.wait(timeout=left)
        for name in probes:
            if name not in results:
                elapsed = time.monotonic() - started
                results[name] = ProbeResult(
                    status=Status.TIMEOUT,
                    reason=f"did not finish within the {elapsed:.1f} s deadline",
                    elapsed_s=elapsed,
                )
                if on_update:
                    on_update(name, Status.TIMEOUT)
        return {name: results[name] for name in probes}


def _with_elapsed(result: ProbeResult, elapsed: float) -> ProbeResult:
    import dataclasses

    return dataclasses.replace(result, elapsed_s=round(elapsed, 4))
