"""`reverseprobe check`: every probe concurrently under one deadline -> Report."""

from __future__ import annotations

import time
from collections.abc import Callable

from reverseprobe.config import CheckConfig
from reverseprobe.model import ProbeResult, Report
from reverseprobe.runner import Deadline, Listener, Probe, run_probes

PROBE_NAMES = ("listeners", "interfaces", "public_ip", "router", "firewall", "inbound")


def build_probes(cfg: CheckConfig) -> dict[str, Probe]:
    from reverseprobe.probes.interfaces import probe_interfaces
    from reverseprobe.probes.listeners import probe_listeners

    probes: dict[str, Probe] = {
        "listeners": lambda d: probe_listeners(cfg.port, cfg.called_aet, d),
        "interfaces": probe_interfaces,
    }
    for name, factory in _network_probes().items():
        probes[name] = factory(cfg)
    return probes


def _network_probes() -> dict[str, Callable[[CheckConfig], Probe]]:
    """The network half (public address, router, firewall, inbound): each module's
    `check_probe(cfg)` returns the probe callable for `run_probes`. One line per module."""
    from reverseprobe.probes import firewall, inbound, public_ip, router

    factories: dict[str, Callable[[CheckConfig], Probe]] = {}
    factories["public_ip"] = public_ip.check_probe
    factories["router"] = router.check_probe
    factories["firewall"] = firewall.check_probe
    factories["inbound"] = inbound.check_probe
    return factories


def run_check(
    cfg: CheckConfig, *, on_update: Listener | None = None, deadline: Deadline | None = None
) -> Report:
    from reverseprobe.diagnosis import check_findings
    from reverseprobe.diagnosis.entry import check_entry

    t0 = time.monotonic()
    deadline = deadline or Deadline.after(cfg.timeout)
    results: dict[str, ProbeResult] = run_probes(build_probes(cfg), deadline, on_update=on_update)
    findings = check_findings(results, cfg)
    return Report(
        command="check",
        probes=results,
        findings=findings,
        pacs_entry=check_entry(results, cfg),
        elapsed_s=time.monotonic() - t0,
        strict=cfg.strict,
    )
