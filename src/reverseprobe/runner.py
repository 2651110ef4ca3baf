"""Runs a plan of probes concurrently under one global deadline; a probe that fails or hangs
becomes a result.

Threads cannot be killed, so every blocking call inside a probe carries its own timeout taken
from the Deadline it is given. The runner itself never waits past the deadline: a probe still
running then is reported as `timeout` and its daemon thread is abandoned (concurrent.gather).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping

from reverseprobe.concurrent import gather
from reverseprobe.deadline import Deadline
from reverseprobe.model import ProbeResult, Status

__all__ = ["MARGIN_S", "Deadline", "Listener", "Probe", "process_age", "run_probes"]

# Time kept back from every probe's share so results can be collected and rendered in time.
MARGIN_S = 0.25

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
    inner = deadline.less(MARGIN_S)
    started = time.monotonic()

    def timed(probe: Probe) -> Callable[[], ProbeResult]:
        def run() -> ProbeResult:
            t0 = time.monotonic()
            result = probe(inner)
            if result.elapsed_s is None:
                result = dataclasses.replace(result, elapsed_s=round(time.monotonic() - t0, 4))
            return result

        return run

    def as_result(value: ProbeResult | BaseException) -> ProbeResult:
        if isinstance(value, BaseException):  # a probe that fails becomes a result
            return ProbeResult(status=Status.ERROR, reason=f"{type(value).__name__}: {value}")
        return value

    def done(name: str, value: ProbeResult | BaseException) -> None:
        if on_update:
            on_update(name, as_result(value).status)

    if on_update:
        for name in probes:
            on_update(name, None)
    got = gather(
        {name: timed(probe) for name, probe in probes.items()},
        deadline,
        name="probe",
        on_done=done,
    )
    results: dict[str, ProbeResult] = {}
    for name in probes:
        if name in got:
            results[name] = as_result(got[name])
            continue
        elapsed = time.monotonic() - started
        results[name] = ProbeResult(
            status=Status.TIMEOUT,
            reason=f"did not finish within the {elapsed:.1f} s deadline",
            elapsed_s=elapsed,
        )
        if on_update:
            on_update(name, Status.TIMEOUT)
    return results
