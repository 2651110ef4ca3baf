"""forward --firewall (issue 14): open (or --remove) the DICOM port in this PC's own firewall,
the one that decides (hostfw/apply.py), and read it back; alone or before the router."""

from __future__ import annotations

import time
from dataclasses import replace

from reverseprobe import config as c
from reverseprobe.commands.forward_verify import verify_direct
from reverseprobe.environment import Environment
from reverseprobe.model import Finding, ProbeResult, Report, Status
from reverseprobe.portmap.state import state_dir
from reverseprobe.probes.firewall import Runner
from reverseprobe.runner import MARGIN_S, Deadline, Listener, Plan, Step

FIREWALL_S = 6.0  # read the rules, change them, read them back


def firewall_plan(t: float) -> Plan:
    """--firewall alone: the PC's firewall only (read, change, read back), then --verify."""
    return Plan((Step("host_firewall", t, takes_rest=True),), sequential=True, margin_s=MARGIN_S)


def elevated_command(cfg: c.ForwardConfig) -> str:
    """This run's options, as the command to give with root/administrator rights."""
    parts = ["reverseprobe", "forward", "--firewall", "--port", str(cfg.port)]
    if not cfg.firewall_only:
        parts.insert(2, f"--{cfg.mode.value}")
    if cfg.action is c.ForwardAction.REMOVE:
        parts.append("--remove")
    if cfg.source:
        parts += ["--from", cfg.source]
    if cfg.permanent:
        parts.append("--permanent")
    import sys

    if sys.platform in ("win32", "cygwin"):
        return " ".join(parts) + " (in an administrator prompt)"
    return "sudo " + " ".join(parts)


def host_firewall(  # noqa: PLR0913 - keyword-only injection points (on_update, run_cmd, elevated) for tests
    cfg: c.ForwardConfig,
    env: Environment,
    deadline: Deadline,
    *,
    on_update: Listener | None = None,
    run_cmd: Runner | None = None,
    elevated: bool | None = None,
) -> tuple[dict[str, ProbeResult], list[Finding]]:
    """Open (or --remove) TCP cfg.port in the firewall that decides; with a change, read the
    firewall again so the findings say what it decides now. Without rights: exit 1 naming the
    command to run elevated (CommandFailed)."""
    from reverseprobe.diagnosis.network import firewall_rules
    from reverseprobe.exitcodes import CommandFailed
    from reverseprobe.hostfw import apply
    from reverseprobe.probes import firewall as fwprobe

    run = run_cmd or fwprobe.run_command
    if on_update:
        on_update("host_firewall", None)
    if not cfg.dry_run and not (apply.is_elevated() if elevated is None else elevated):
        raise CommandFailed(
            f"changing this PC's firewall needs root/administrator rights: run "
            f"`{elevated_command(cfg)}` (or add --dry-run to see the commands)"
        )
    t0 = time.monotonic()
    where = state_dir(env.environ)
    req = apply.Request(
        port=cfg.port,
        source=cfg.source,
        permanent=cfg.permanent,
        dry_run=cfg.dry_run,
        timeout=max(1.0, min(fwprobe.COMMAND_BUDGET_S, deadline.remaining())),
    )
    probes: dict[str, ProbeResult] = {}
    if cfg.action is c.ForwardAction.REMOVE:
        result = apply.remove_port(req, run, where)
    else:
        before = fwprobe.probe_firewall(cfg.port, deadline, run=run)
        program = before.program or fwprobe.listener_program(cfg.port)
        result = apply.open_port(req, before, run, where, program)
        probes["firewall"] = before
    result = replace(result, elevate=None, elapsed_s=round(time.monotonic() - t0, 4))
    findings: list[Finding] = []
    if result.changed or result.status is Status.FAIL:
        after = fwprobe.probe_firewall(cfg.port, deadline, run=run)
        probes["firewall"] = after
        if cfg.action is not c.ForwardAction.REMOVE:
            findings = firewall_rules(after)
    probes = {"host_firewall": result, **probes}
    if on_update:
        on_update("host_firewall", result.status)
    if result.status is Status.FAIL and not findings:
        raise CommandFailed(f"this PC's firewall: {result.reason}")
    return probes, findings


def firewall_report(
    cfg: c.ForwardConfig,
    env: Environment,
    deadline: Deadline,
    *,
    on_update: Listener | None = None,
) -> Report:
    """--firewall alone: the PC's firewall (and --verify's dial-back), no router."""
    t0 = time.monotonic()
    probes, findings = host_firewall(cfg, env, deadline, on_update=on_update)
    if cfg.verify and cfg.action is not c.ForwardAction.REMOVE:
        inbound, more = verify_direct(cfg, deadline)
        if inbound is not None:
            probes["inbound"] = inbound
        findings.extend(more)
    return Report(
        command="forward",
        probes=probes,
        findings=findings,
        pacs_entry=None,
        elapsed_s=time.monotonic() - t0,
    )
