"""Rules for the network between the PACS and this PC: public address, NAT, router, firewall,
inbound echo-back. (Filled in by the router/public-address and echo-back issues.)"""

from __future__ import annotations

from collections.abc import Mapping

from reverseprobe.config import CheckConfig
from reverseprobe.model import Finding, ProbeResult


def rules(probes: Mapping[str, ProbeResult], cfg: CheckConfig) -> list[Finding]:
    del probes, cfg
    return []
