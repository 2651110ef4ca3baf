"""forward's IPv6 pinhole (issue 15): UPnP WANIPv6FirewallControl or PCP (RFC 6887) opens
the port to this PC's global IPv6 address; with --family both after the IPv4 mapping, with
--family 6 alone."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from reverseprobe import config as c
from reverseprobe.diagnosis import forward as advice
from reverseprobe.environment import Environment
from reverseprobe.model import Report
from reverseprobe.model.forward import PinholeResult
from reverseprobe.portmap.outcome import Action, Request
from reverseprobe.portmap.state import state_dir
from reverseprobe.runner import Deadline


def ipv6_side(cfg: c.ForwardConfig) -> tuple[str | None, str | None]:
    """(this PC's global IPv6 address, the router's IPv6 address); both None with --family 4
    or --list, and the first None where this PC has no global IPv6 address."""
    if cfg.family is c.ForwardFamily.V4 or cfg.action is c.ForwardAction.LIST:
        return None, None
    from reverseprobe.portmap.pinhole import default_gateway6, global_source6

    router6 = default_gateway6()
    return global_source6(router6), router6


def pinhole_pass(  # noqa: PLR0913 - the config, request, IGD, addresses, deadline and env
    cfg: c.ForwardConfig,
    req: Request,
    igd_location: str | None,
    six: tuple[str | None, str | None],
    *,
    deadline: Deadline,
    env: Environment,
) -> PinholeResult:
    """Open (or --remove) the IPv6 pinhole for req.port: UPnP WANIPv6FirewallControl with
    --upnp, PCP with --natpmp, UPnP then PCP with --auto (portmap/pinhole_ops.py)."""
    from reverseprobe.portmap import pinhole_ops as ops
    from reverseprobe.portmap.state import PinholeStore

    client6, router6 = six
    t0 = time.monotonic()
    if client6 is None:
        return ops.not_tried(req, None, router6, "this PC has no global IPv6 address")
    if router6 is None:
        return ops.not_tried(req, client6, None, "this PC has no IPv6 default route")
    if cfg.keep:  # --keep renews and finally removes the IPv4 mapping only: open nothing else
        why = "--keep holds only the IPv4 mapping; open the pinhole with --family 6 (no --keep)"
        return ops.not_tried(req, client6, router6, why)
    store = PinholeStore(state_dir(env.environ))
    remove = cfg.action is c.ForwardAction.REMOVE
    kw = {"router6": router6, "client6": client6, "store": store, "deadline": deadline}
    result: PinholeResult | None = None
    if cfg.mode in (c.ForwardMode.UPNP, c.ForwardMode.AUTO):
        if remove:
            result = ops.remove_upnp(req, **kw)  # type: ignore[arg-type]
        elif igd_location:
            result = ops.open_upnp(req, location=igd_location, **kw)  # type: ignore[arg-type]
        else:
            result = ops.not_tried(req, client6, router6, "no UPnP IGD answered to ask")
    auto_next = result is None or result.offered is not True or result.action is Action.ABSENT
    if cfg.mode is c.ForwardMode.NATPMP or (cfg.mode is c.ForwardMode.AUTO and auto_next):
        pcp = (ops.remove_pcp if remove else ops.open_pcp)(req, **kw)  # type: ignore[arg-type]
        if result is None or pcp.offered is not False:
            result = pcp
        else:  # neither offers one: say both
            result = replace(result, reason=f"{result.reason}; PCP: {pcp.reason}")
    if result is None:  # not reached: every mode asks one protocol above
        result = ops.not_tried(req, client6, router6, f"no pinhole protocol for {cfg.mode}")
    return replace(result, elapsed_s=round(time.monotonic() - t0, 4))


def pinhole_only_report(  # noqa: PLR0913 - the pieces run() already holds
    cfg: c.ForwardConfig,
    req: Request,
    gateway: str | None,
    six: tuple[str | None, str | None],
    *,
    deadline: Deadline,
    env: Environment,
    told: dict[str, Any] | None,
    t0: float,
    discover_s: float,
) -> Report:
    """--family 6: the IPv6 pinhole alone (the IGD is still found over IPv4 where UPnP is
    asked, since SSDP found it there); no IPv4 mapping is touched."""
    location = None
    if cfg.mode is not c.ForwardMode.NATPMP and cfg.action is c.ForwardAction.ADD and six[0]:
        from reverseprobe.portmap.errors import UpnpError
        from reverseprobe.portmap.igd import find_igd

        try:
            igd = find_igd(gateway, deadline, discover_timeout=discover_s)
        except UpnpError:
            igd = None
        location = igd.location if igd is not None else None
    pinhole = pinhole_pass(cfg, req, location, six, deadline=deadline, env=env)
    ctx = advice.Context(
        aet=cfg.aet, port=cfg.port, external_port=cfg.port, gateway=gateway, lan=six[0]
    )
    return Report(
        command="forward",
        probes={"pinhole": pinhole},
        findings=advice.pinhole_findings(ctx, pinhole, ipv4_done=False, alone=True),
        pacs_entry=advice.pinhole_entry(ctx, pinhole),
        elapsed_s=time.monotonic() - t0,
        extra={"announcement": told} if told else {},
    )
