"""Running the checklist: `check`, then `move-test` for each PACS, one after another.

They all need the site's receive port (check's inbound probe may hold a temporary listener there,
move-test holds its Storage SCP), so they never overlap. Each gets a fair share of what is left
of the one deadline. Each runs in a daemon thread, so a run that overruns is abandoned instead of
hanging the checklist, and Ctrl-C is passed on to it so that its own cleanup runs.
"""

from __future__ import annotations

import dataclasses
import functools
import socket
import time
from collections.abc import Callable
from datetime import datetime, timezone

from reverseprobe import config as c
from reverseprobe.concurrent import Call
from reverseprobe.diagnosis.catalogue import make
from reverseprobe.model import Finding, Report, Status
from reverseprobe.model.checklist import ChecklistResult, RunResult, TargetRun
from reverseprobe.runner import Deadline
from reverseprobe.sitefile import SITE_TARGET, PacsSpec, Site

DEFAULT_MOVE_TIMEOUT = 120.0
MIN_RUN_S = 1.0  # less than this left: do not start a run, say so
SLACK_S = 3.0  # a run may overrun its own timeout by this much before it is abandoned
RENDER_RESERVE_S = 0.5  # kept back from the runs to write the reports
POLL_S = 0.25
INTERRUPT_WAIT_S = 5.0  # after Ctrl-C, how long a run may take to clean up

CheckRunner = Callable[[c.CheckConfig, Deadline], Report]
MoveRunner = Callable[[c.MoveTestConfig], Report]
Progress = Callable[[str, Status | None], None]


def run_site(  # noqa: PLR0913 - keyword-only injection points (check, move_test, progress) for tests
    site: Site,
    *,
    timeout: float,
    strict: bool = False,
    check: CheckRunner | None = None,
    move_test: MoveRunner | None = None,
    progress: Progress | None = None,
) -> ChecklistResult:
    """check, then move-test per PACS, sequentially, within `timeout` seconds."""
    t0 = time.monotonic()
    started = datetime.now(timezone.utc)
    deadline = Deadline.after(max(0.1, timeout - RENDER_RESERVE_S))
    check = check or _default_check
    runs: list[TargetRun] = []
    parts = 1 + len(site.pacs)
    budget = _share(deadline, site.check_timeout or c.DEFAULT_CHECK_TIMEOUT, parts)
    ccfg = check_config_for(site, budget, strict=strict)
    runs.append(
        _run(
            SITE_TARGET,
            "check",
            None,
            budget=budget,
            progress=progress,
            fn=lambda: check(ccfg, deadline.child(budget)),
        )
    )
    blocked: str | None = None
    for i, spec in enumerate(site.pacs):
        share = _share(deadline, spec.timeout or DEFAULT_MOVE_TIMEOUT, parts - 1 - i)
        if blocked is None and deadline.remaining() < MIN_RUN_S:
            blocked = (
                f"the --timeout of {timeout:g} s was used up before its turn; raise --timeout "
                f"(move-test needs up to {spec.timeout or DEFAULT_MOVE_TIMEOUT:g} s per PACS)"
            )
        if blocked is not None:
            runs.append(_not_run(spec, blocked, progress))
            continue
        mcfg = move_config_for(site, spec, share, strict=strict)
        runner = move_test or _default_move_test
        fn = functools.partial(runner, mcfg)
        run = _run(
            spec.name, "move-test", spec, budget=share, progress=progress, fn=fn,
            site_public=_site_public(runs[0]),
        )  # fmt: skip
        runs.append(run)
        if run.result.status is Status.TIMEOUT:
            held = spec.receive_port or site.port
            blocked = f"the move-test of {spec.name!r} still held port {held} when it was due"
    elapsed = time.monotonic() - t0
    host = socket.gethostname()
    return ChecklistResult(
        site, tuple(runs), elapsed, strict=strict, started=started, hostname=host
    )


def check_config_for(site: Site, timeout: float, *, strict: bool = False) -> c.CheckConfig:
    return c.CheckConfig(
        port=site.port,
        aet=site.aet,
        reflector=site.reflector,
        ip_services=site.ip_services,
        upnp=site.upnp,
        public_ip=site.public_ip,
        expect_process=site.expect_process,
        require_listener=site.require_listener,
        strict=strict,
        timeout=timeout,
    )


def move_config_for(
    site: Site, spec: PacsSpec, timeout: float, *, strict: bool = False
) -> c.MoveTestConfig:
    return c.MoveTestConfig(
        pacs_host=spec.host,
        pacs_port=spec.port,
        pacs_aet=spec.aet,
        aet=site.aet,
        port=spec.receive_port or site.port,  # a receive port per PACS (issue 14)
        study=spec.study,
        try_cget=spec.try_cget,
        grace=min(spec.grace, max(0.5, timeout / 4)),
        ip_services=site.ip_services,
        public_ip=site.public_ip,
        strict=strict,
        timeout=timeout,
    )


def _share(deadline: Deadline, want: float, parts_left: int) -> float:
    """At most `want`, at most a fair part of what is left, never below MIN_RUN_S."""
    fair = deadline.remaining() / max(1, parts_left)
    return max(MIN_RUN_S, min(want, fair))


def _default_check(cfg: c.CheckConfig, deadline: Deadline) -> Report:
    from reverseprobe.commands.check import run_check

    return run_check(cfg, deadline=deadline)


def _default_move_test(cfg: c.MoveTestConfig) -> Report:
    from reverseprobe.commands.move_test import run_move_test

    return run_move_test(cfg, on_update=None)


def _run(  # noqa: PLR0913 - keyword-only; the target's identity plus its budget and runner
    target: str,
    command: str,
    spec: PacsSpec | None,
    *,
    budget: float,
    progress: Progress | None,
    fn: Callable[[], Report],
    site_public: str | None = None,
) -> TargetRun:
    """Run in a daemon thread; a run that raises or overruns becomes a result, not a hang."""
    if progress:
        progress(target, None)
    t0 = time.monotonic()
    # Made before it starts, so that a Ctrl-C landing while the thread starts still finds it.
    call: Call[Report] = Call(fn, name=f"checklist-{command}", autostart=False)
    try:
        call.begin()
        end = t0 + budget + SLACK_S
        # Short waits: a Ctrl-C that another thread happened to take is seen within one.
        while not call.wait(min(POLL_S, end - time.monotonic())):
            if time.monotonic() >= end:
                break
    except KeyboardInterrupt:
        call.interrupt(INTERRUPT_WAIT_S)
        raise
    elapsed = time.monotonic() - t0
    outcome = call.outcome()
    report = outcome if isinstance(outcome, Report) else None
    if not call.done:
        why = f"{command} did not finish within {budget + SLACK_S:.1f} s"
        run = _broken(target, command, spec, status=Status.TIMEOUT, why=why, elapsed=elapsed)
    elif report is None:
        exc = outcome
        if isinstance(exc, KeyboardInterrupt):
            raise exc
        if isinstance(exc, ImportError):
            why = f"{command} is not available in this installation ({exc})"
        else:
            why = f"{command} broke: {type(exc).__name__}: {exc}"
        run = _broken(target, command, spec, status=Status.ERROR, why=why, elapsed=elapsed)
    else:
        findings = tuple(dataclasses.replace(f, target=target) for f in report.findings)
        findings += tuple(_entry_findings(spec, report, target, site_public))
        result = RunResult(
            status=Status.OK,
            elapsed_s=round(report.elapsed_s, 3),
            target=target,
            command=command,
            verdict=report.verdict.value,
            probes=dict(report.probes),
            pacs_entry=report.pacs_entry,
        )
        run = TargetRun(target, command, result, findings, report, spec)
    if progress:
        progress(target, run.result.status)
    return run


def _site_public(run: TargetRun) -> str | None:
    """The public address the site's check measured (its IP services' vote)."""
    from reverseprobe.model.check import PublicIpResult

    p = run.report.probes.get("public_ip") if run.report is not None else None
    return p.address if isinstance(p, PublicIpResult) and p.status is Status.OK else None


def _entry_findings(
    spec: PacsSpec | None, report: Report, target: str, site_public: str | None = None
) -> list[Finding]:
    """Issue 13: the PACS's `entry` from the site file against its move-test run; a public
    entry for a PACS inside the site is checked for hairpin NAT on the spot. move-test asks
    for the public address only for a PACS outside, so for one inside the site's check gives
    it (without it a public entry was PACS_ENTRY_WRONG, never NAT_HAIRPIN)."""
    if spec is None or spec.entry is None or report.command != "move-test":
        return []
    from reverseprobe.diagnosis.pacs_entry_check import move_rules

    addresses = dict(report.extra.get("addresses") or {})
    if not addresses.get("public") and site_public:
        addresses["public"] = site_public
    aet = report.pacs_entry.aet if report.pacs_entry else ""
    out = move_rules(spec.entry, report.pacs_entry, addresses, aet=aet, target=target)
    if any(f.code == "NAT_HAIRPIN" for f in out):
        from reverseprobe.probes.hairpin import probe_hairpin

        ans = probe_hairpin(spec.entry.host, spec.entry.port)
        out = move_rules(
            spec.entry, report.pacs_entry, addresses, aet=aet, hairpin=ans.hairpins, target=target
        )
        out = [
            dataclasses.replace(f, detail={**f.detail, "hairpin_how": ans.how})
            if f.code == "NAT_HAIRPIN"
            else f
            for f in out
        ]
    return out


def _broken(  # noqa: PLR0913 - keyword-only fields of the TargetRun it builds
    target: str, command: str, spec: PacsSpec | None, *, status: Status, why: str, elapsed: float
) -> TargetRun:
    what = f"PACS {target!r}" if spec else "this PC"
    finding = make(
        "CHECKLIST_INCOMPLETE",
        variant="broken",
        target=target,
        detail={"command": command, "reason": why},
        command=command,
        what=what,
        reason=why,
    )
    result = RunResult(
        status=status, reason=why, elapsed_s=round(elapsed, 3), target=target, command=command
    )
    return TargetRun(target, command, result, (finding,), None, spec)


def _not_run(spec: PacsSpec, why: str, progress: Progress | None) -> TargetRun:
    finding = make(
        "CHECKLIST_INCOMPLETE",
        variant="not_run",
        target=spec.name,
        detail={"command": "move-test", "reason": why},
        name=spec.name,
        reason=why,
    )
    result = RunResult(
        status=Status.SKIPPED, reason=why, target=spec.name, command="move-test", elapsed_s=0.0
    )
    if progress:
        progress(spec.name, Status.SKIPPED)
    return TargetRun(spec.name, "move-test", result, (finding,), None, spec)
