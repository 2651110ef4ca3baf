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
from dataclasses import dataclass, field
from typing import Any

from reverseprobe.concurrent import gather
from reverseprobe.deadline import Deadline
from reverseprobe.model import ProbeResult, Status

__all__ = [
    "MARGIN_S",
    "Deadline",
    "Interrupted",
    "Listener",
    "Plan",
    "Probe",
    "Step",
    "StepFn",
    "process_age",
    "run_probes",
    "run_steps",
]

# Time kept back from every probe's share so results can be collected and rendered in time.
MARGIN_S = 0.25

Probe = Callable[[Deadline], ProbeResult]
Listener = Callable[[str, Status | None], None]  # (probe name, status or None when started)


StepFn = Callable[[Deadline, Mapping[str, ProbeResult]], ProbeResult]


@dataclass(frozen=True)
class Step:
    """One probe or step of a plan and the seconds it may take (its budget)."""

    name: str
    budget_s: float
    takes_rest: bool = False  # sequential: also gets what earlier steps left unused


@dataclass(frozen=True)
class Plan:
    """What a command runs and with which budgets, decided up front from the time there is
    (tailscale's makeProbePlan): pure, so tests can check every budget against the deadline.

    `sequential` steps run one after another, each after the one before; otherwise all at
    once. `parts` holds a step's own sequential calls (the router's SSDP and SOAP calls)."""

    steps: tuple[Step, ...]
    sequential: bool = False
    margin_s: float = MARGIN_S
    parts: Mapping[str, Plan] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.steps)

    def budget(self, name: str) -> float:
        for s in self.steps:
            if s.name == name:
                return s.budget_s
        raise KeyError(name)

    def total_s(self) -> float:
        """Worst case: the sum of the budgets when sequential, the largest when concurrent."""
        budgets = [s.budget_s for s in self.steps] or [0.0]
        return sum(budgets) if self.sequential else max(budgets)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a plan: what was measured so far (`results`), and the command's Report
    built from it (`report`) so that the CLI still prints it before exit 130."""

    def __init__(self, results: Mapping[str, ProbeResult], report: Any = None) -> None:
        super().__init__("interrupted")
        self.results = dict(results)
        self.report = report


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


def run_steps(
    plan: Plan,
    steps: Mapping[str, StepFn],
    deadline: Deadline,
    *,
    on_update: Listener | None = None,
) -> dict[str, ProbeResult]:
    """Run a sequential plan in the calling (main) thread, so Ctrl-C lands in each step's own
    `finally` (an association released, a listener stopped). Each step sees the results before
    it and gets its budget: at most `budget_s`, and a `takes_rest` step everything up to the
    deadline less the budgets of the steps after it. A step that raises becomes an `error`
    result; Ctrl-C raises Interrupted with the results so far (a step's partial result, when it
    attached one as `partial` to the KeyboardInterrupt, included)."""
    inner = deadline.less(plan.margin_s)
    results: dict[str, ProbeResult] = {}
    for i, step in enumerate(plan.steps):
        later = sum(s.budget_s for s in plan.steps[i + 1 :])
        if step.takes_rest:
            step_dl = Deadline(max(time.monotonic() + min(step.budget_s, 1.0), inner.at - later))
        else:
            step_dl = inner.child(step.budget_s)
        if on_update:
            on_update(step.name, None)
        t0 = time.monotonic()
        try:
            res = steps[step.name](step_dl, results)
        except KeyboardInterrupt as exc:
            partial = getattr(exc, "partial", None)
            if isinstance(partial, ProbeResult):
                results[step.name] = partial
            raise Interrupted(results) from None
        except Exception as exc:  # noqa: BLE001 - a step that fails becomes a result
            res = ProbeResult(status=Status.ERROR, reason=f"{type(exc).__name__}: {exc}")
        if res.elapsed_s is None and res.status is not Status.SKIPPED:
            res = dataclasses.replace(res, elapsed_s=round(time.monotonic() - t0, 4))
        results[step.name] = res
        if on_update:
            on_update(step.name, res.status)
    return results
