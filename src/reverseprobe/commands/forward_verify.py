"""forward --verify: `check`'s echo-back probe (probes/inbound.py) through the mapping just
made, or, with --firewall alone, to the port as it is."""

from __future__ import annotations

from reverseprobe import config as c
from reverseprobe.model import Finding, ProbeResult, Status
from reverseprobe.portmap.outcome import Action, MappingResult
from reverseprobe.runner import Deadline


def verify(
    cfg: c.ForwardConfig, port: int, mapping: MappingResult, deadline: Deadline
) -> tuple[ProbeResult | None, list[Finding]]:
    """--verify: the echo-back probe of `check` (probes/inbound.py) through the new mapping."""
    from reverseprobe.diagnosis.catalogue import make

    def untested(why: str) -> tuple[ProbeResult | None, list[Finding]]:
        return None, [make("INBOUND_NOT_TESTED", variant="forward:skipped", reason=why)]

    if not mapping.done or mapping.status is not Status.OK:
        return untested("no mapping is in place")
    if not cfg.reflector:
        return untested("no reflector (--reflector URL or REVERSEPROBE_REFLECTOR)")
    if mapping.public_port != port:
        return untested(
            f"the external port {mapping.public_port} differs from the internal port {port}, "
            "and the echo-back probe dials the port it listens on"
        )
    try:
        from reverseprobe.diagnosis.inbound import rules
        from reverseprobe.probes.inbound import probe_inbound
    except ImportError:
        return untested("the echo-back probe is not available in this build")
    ccfg = c.CheckConfig(
        port=port,
        aet=cfg.aet,
        reflector=cfg.reflector,
        upnp=False,
        public_ip=False,
        timeout=cfg.timeout,
    )
    result = probe_inbound(ccfg, deadline)
    return result, rules({"inbound": result}, ccfg)


def verify_direct(
    cfg: c.ForwardConfig, deadline: Deadline
) -> tuple[ProbeResult | None, list[Finding]]:
    """--verify with --firewall alone: the dial-back to the port as it is (no mapping made)."""
    done = MappingResult(
        status=Status.OK,
        action=Action.UNCHANGED,
        external_port=cfg.port,
        internal_port=cfg.port,
    )
    return verify(cfg, cfg.port, done, deadline)
