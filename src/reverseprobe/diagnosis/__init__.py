"""Pure rules: a check's probe results -> findings from the catalogue (findings.py).

One module per area; each exposes `rules(probes, cfg) -> list[Finding]`. Tested with hand-built
probe results, no network.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from reverseprobe.config import CheckConfig
from reverseprobe.model import Finding, ProbeResult

Rule = Callable[[Mapping[str, ProbeResult], CheckConfig], list[Finding]]


def check_rules() -> list[Rule]:
    from reverseprobe.diagnosis import inbound, local, network, pacs_entry_check, virtual

    rules: list[Rule] = [local.rules, network.rules, inbound.rules]
    rules += [virtual.rules, pacs_entry_check.rules]  # NAT layers (issue 13)
    return rules


def check_findings(probes: Mapping[str, ProbeResult], cfg: CheckConfig) -> list[Finding]:
    out: list[Finding] = []
    for rule in check_rules():
        out.extend(rule(probes, cfg))
    return out
