from __future__ import annotations

import threading
import time

from reverseprobe.commands.check import build_probes
from reverseprobe.config import CheckConfig
from reverseprobe.model import ProbeResult, Status
from reverseprobe.probes import listeners
from reverseprobe.runner import MARGIN_S, Deadline, run_probes


def test_hanging_probe_becomes_timeout_and_runner_returns_by_deadline() -> None:
    release = threading.Event()

    def hang(d: Deadline) -> ProbeResult:
        release.wait(30)
        return ProbeResult(status=Status.OK)

    def quick(d: Deadline) -> ProbeResult:
        return ProbeResult(status=Status.OK)

    t0 = time.monotonic()
    try:
        res = run_probes({"hang": hang, "quick": quick}, Deadline.after(0.5))
    finally:
        release.set()
    assert time.monotonic() - t0 < 5  # returned, not joined the hung thread
    assert res["hang"].status is Status.TIMEOUT
    assert "deadline" in (res["hang"].reason or "")
    assert res["quick"].status is Status.OK
    assert list(res) == ["hang", "quick"]


def test_raising_probe_becomes_error_result() -> None:
    def boom(d: Deadline) -> ProbeResult:
        raise RuntimeError("router sent garbage")

    res = run_probes({"boom": boom}, Deadline.after(2))
    assert res["boom"].status is Status.ERROR
    assert "router sent garbage" in (res["boom"].reason or "")


def test_updates_report_start_and_end() -> None:
    seen: list[tuple[str, Status | None]] = []
    run_probes(
        {"a": lambda d: ProbeResult(status=Status.SKIPPED, reason="x")},
        Deadline.after(2),
        on_update=lambda n, s: seen.append((n, s)),
    )
    assert seen == [("a", None), ("a", Status.SKIPPED)]


def test_probes_get_the_deadline_less_the_margin() -> None:
    got: list[float] = []

    def p(d: Deadline) -> ProbeResult:
        got.append(d.remaining())
        return ProbeResult(status=Status.OK)

    run_probes({"p": p}, Deadline.after(3))
    assert 0 < got[0] <= 3 - MARGIN_S + 0.01


def test_deadline_share_is_bounded() -> None:
    d = Deadline.after(1.0)
    assert d.share(10) <= 1.0
    assert d.share(0.2) <= 0.2
    assert d.share(10, reserve=5) == 0.05  # never zero: zero means "block forever" to some APIs
    assert d.child(100).at <= d.at


def test_listener_echo_budget_fits_the_default_deadline() -> None:
    """Every per-probe sub-timeout fits inside the check deadline (tailscale's netcheck rule)."""
    cfg = CheckConfig()
    assert cfg.timeout - MARGIN_S > listeners.ECHO_BUDGET_S
    assert set(build_probes(cfg)) >= {"listeners", "interfaces"}


def test_a_call_interrupted_before_its_thread_starts_never_runs() -> None:
    """The Ctrl-C window of checklist_run: the interrupt lands while the call is starting."""
    from reverseprobe.concurrent import Call

    ran = threading.Event()
    call: Call[None] = Call(ran.set, name="t", autostart=False)
    assert call.interrupt(1.0) is True  # nothing runs, nothing to wait for
    call.begin()
    assert call.wait(5.0)
    assert isinstance(call.outcome(), KeyboardInterrupt) and not ran.is_set()


def test_interrupt_reaches_a_running_call_so_its_finally_runs() -> None:
    from reverseprobe.concurrent import start

    inside, cleaned = threading.Event(), threading.Event()

    def work() -> None:
        inside.set()
        try:
            end = time.monotonic() + 30
            while time.monotonic() < end:
                time.sleep(0.01)
        finally:
            cleaned.set()

    call = start(work, name="t")
    assert inside.wait(10)
    assert call.interrupt(10.0) and cleaned.is_set()
    assert isinstance(call.outcome(), KeyboardInterrupt)
