"""`reverseprobe forward`: open the DICOM port on the router (UPnP IGD, else PCP/NAT-PMP), safely.

argv -> ForwardConfig -> one pass (find the router, read what it holds, act, read back) ->
Report with the `router` and `mapping` probes, findings with fixes (manual steps where nothing
could be done) and, after success, the PACS entry. `--keep` then renews the mapping until
Ctrl-C and removes it on the way out if this run created it (commands/forward_keep.py).
"""

from __future__ import annotations

import socket
import time
from dataclasses import replace

from reverseprobe import config as c
from reverseprobe.commands.forward_firewall import (
    FIREWALL_S,
    firewall_plan,
    firewall_report,
    host_firewall,
)
from reverseprobe.commands.forward_pinhole import ipv6_side, pinhole_only_report, pinhole_pass
from reverseprobe.commands.forward_verify import verify
from reverseprobe.diagnosis import forward as advice
from reverseprobe.environment import Environment
from reverseprobe.model import Finding, ProbeResult, Report, Status
from reverseprobe.portmap.outcome import Action, MappingResult, Request, RouterResult
from reverseprobe.portmap.state import NonceStore, state_dir
from reverseprobe.runner import MARGIN_S, Deadline, Listener, Plan, Step

UPNP_DISCOVER_S = 2.0
Pass = tuple[RouterResult, MappingResult]


def plan(cfg: c.ForwardConfig, time_left: float) -> Plan:
    """One pass with the router, sequential: UPnP discovery (with --auto half the time at most,
    so PCP/NAT-PMP still get their turn), then the router's calls and the optional public-IP
    and --verify probes in what is left."""
    t = max(0.0, time_left - MARGIN_S)
    if cfg.firewall_only:
        return firewall_plan(t)
    steps: list[Step] = []
    if cfg.firewall:
        steps.append(Step("host_firewall", min(FIREWALL_S, t / 3)))
    if cfg.mode in (c.ForwardMode.UPNP, c.ForwardMode.AUTO):
        cap = t / 2 if cfg.mode is c.ForwardMode.AUTO else t
        steps.append(Step("discover", min(UPNP_DISCOVER_S, cap)))
    used = sum(s.budget_s for s in steps)
    steps.append(Step("mapping", max(0.0, t - used), takes_rest=True))
    return Plan(tuple(steps), sequential=True, margin_s=MARGIN_S)


def default_description(cfg: c.ForwardConfig) -> str:
    return f"reverseprobe {cfg.aet + ' ' if cfg.aet else ''}DICOM port {cfg.port}"


def make_request(cfg: c.ForwardConfig) -> Request:
    return Request(
        port=cfg.port,
        external_port=cfg.external_port or cfg.port,
        lease=cfg.lease,
        description=cfg.description or default_description(cfg),
        force=cfg.force,
        dry_run=cfg.dry_run,
        remote_host=cfg.remote_host or "",
    )


def gateway_and_lan() -> tuple[str | None, str | None]:
    """The default gateway (the router's admin address) and our source address toward it."""
    from reverseprobe.probes.interfaces import default_gateway, route_source

    gw = default_gateway()[0]
    lan = route_source(gw, socket.AF_INET) if gw else None
    return gw, lan


def one_pass(  # noqa: PLR0913 - one pass needs the config, request, gateway, deadline and store
    cfg: c.ForwardConfig,
    req: Request,
    gateway: str | None,
    deadline: Deadline,
    store: NonceStore | None,
    *,
    action: str | None = None,
) -> Pass:
    """Find the router and do `action` (add | list | remove) once, per --upnp/--natpmp/--auto."""
    action = action or cfg.action
    tried: tuple[str, ...] = ()
    if cfg.mode in ("upnp", "auto"):
        budget = plan(cfg, deadline.remaining() + MARGIN_S).budget("discover")
        router, mapping = _upnp_pass(req, gateway, deadline, action, budget)
        if cfg.mode == "upnp" or router.via is not None:
            return router, mapping
        tried = router.tried
    if gateway is None:
        return _no_router(req, (*tried, "pcp/natpmp: no default gateway to ask"))
    if req.remote_host and action == "add":
        return _no_router(
            req, (*tried, "pcp/natpmp: not asked: they cannot restrict the source (--from)")
        )
    from reverseprobe.portmap import pmp_ops

    if action == "list":
        addr_router, _ = pmp_ops.add(gateway, replace(req, dry_run=True), store, deadline)
        return replace(addr_router, tried=(*tried, *addr_router.tried)), replace(
            _empty(req),
            status=Status.SKIPPED,
            action=Action.NOT_TRIED,
            reason="NAT-PMP and PCP cannot list a router's mappings (UPnP can: --upnp --list)",
        )
    op = pmp_ops.remove if action == "remove" else pmp_ops.add
    router, mapping = op(gateway, req, store, deadline)
    return replace(router, tried=(*tried, *router.tried)), mapping


def _empty(req: Request) -> MappingResult:
    return MappingResult(
        status=Status.SKIPPED,
        action=Action.NOT_TRIED,
        external_port=req.external_port,
        internal_port=req.port,
        description=req.description,
        lease_requested=req.lease,
    )


def _no_router(req: Request, tried: tuple[str, ...], gateway: str | None = None) -> Pass:
    router = RouterResult(status=Status.FAIL, reason="; ".join(tried), gateway=gateway, tried=tried)
    return router, replace(_empty(req), reason="no router to ask")


def _upnp_pass(
    req: Request, gateway: str | None, deadline: Deadline, action: str, budget: float
) -> Pass:
    from reverseprobe.portmap import upnp_ops
    from reverseprobe.portmap.errors import UpnpError
    from reverseprobe.portmap.igd import find_igd

    t0 = time.monotonic()
    try:
        igd = find_igd(gateway, deadline, discover_timeout=budget)
    except UpnpError as exc:
        return _no_router(req, (f"upnp: the IGD could not be read: {exc.describe()}",), gateway)
    if igd is None:
        waited = time.monotonic() - t0
        return _no_router(req, (f"upnp: no IGD answered within {waited:.1f} s",), gateway)
    if not igd.lan_address and gateway:  # miniupnpc could not tell: the route's source
        from reverseprobe.probes.interfaces import route_source

        igd.lan_address = route_source(gateway, socket.AF_INET) or ""
    router = upnp_ops.read_router(igd, gateway, listing=action == "list")
    if action == "list":
        return router, upnp_ops.status_of_port(igd, req)
    if action == "remove":
        return router, upnp_ops.remove(igd, req)
    return router, upnp_ops.add(igd, req)


def run(  # noqa: PLR0915 - one pass, then each optional step (pinhole, public IP, verify) in order
    cfg: c.ForwardConfig,
    *,
    env: Environment | None = None,
    on_update: Listener | None = None,
    deadline: Deadline | None = None,
    store: NonceStore | None = None,
) -> Report:
    env = env or Environment()
    t0 = time.monotonic()
    deadline = deadline or Deadline.after(cfg.timeout)
    if cfg.firewall_only:
        return firewall_report(cfg, env, deadline, on_update=on_update)
    fw_probes: dict[str, ProbeResult] = {}
    fw_findings: list[Finding] = []
    if cfg.firewall:
        fw_probes, fw_findings = host_firewall(cfg, env, deadline, on_update=on_update)
    store = store or NonceStore(state_dir(env.environ))
    req = make_request(cfg)
    for name in ("router", "mapping"):
        if on_update:
            on_update(name, None)
    gateway, lan = gateway_and_lan()
    six = ipv6_side(cfg)
    told = None
    if cfg.action != "list":
        via = {"upnp": "UPnP IGD", "natpmp": "PCP/NAT-PMP"}.get(cfg.mode, "UPnP, else PCP/NAT-PMP")
        told = advice.announcement(
            req, via=via, gateway=gateway, lan=lan, keep=cfg.keep, action=cfg.action.value
        )
        told = advice.with_pinhole(told, req, cfg.family.value, *six)
        print(f"reverseprobe forward: {told['text']}", file=env.stderr, flush=True)
    t_pass = time.monotonic()
    if cfg.family is c.ForwardFamily.V6:
        discover_s = plan(cfg, deadline.remaining() + MARGIN_S).budget("discover")
        report = pinhole_only_report(
            cfg,
            req,
            gateway,
            six,
            deadline=deadline,
            env=env,
            told=told,
            t0=t0,
            discover_s=discover_s,
        )
        return replace(
            report,
            probes={**report.probes, **fw_probes},
            findings=[*report.findings, *fw_findings],
        )
    router, mapping = one_pass(cfg, req, gateway, deadline, store)
    spent = round(time.monotonic() - t_pass, 4)
    router = replace(router, elapsed_s=router.elapsed_s or spent)
    mapping = replace(mapping, elapsed_s=mapping.elapsed_s or spent)
    if on_update:
        on_update("router", router.status)
        on_update("mapping", mapping.status)
    probes: dict[str, ProbeResult] = {"router": router, "mapping": mapping}
    public_ip = None
    if cfg.ip_services and mapping.done:
        from reverseprobe.probes.public_ip import probe_public_ip

        pub = probe_public_ip(cfg.ip_services, deadline)
        probes["public_ip"] = pub
        public_ip = pub.address
    ctx = advice.Context(
        aet=cfg.aet,
        port=cfg.port,
        external_port=req.external_port,
        gateway=gateway or router.gateway,
        lan=mapping.internal_client or router.lan_address or lan,
        keep=cfg.keep,
        public_ip=public_ip,
    )
    findings: list[Finding] = advice.findings(ctx, router, mapping, listing=cfg.action == "list")
    pinhole = None
    if cfg.family is c.ForwardFamily.BOTH and cfg.action != "list":
        pinhole = pinhole_pass(cfg, req, router.igd_location, six, deadline=deadline, env=env)
        probes["pinhole"] = pinhole
        findings.extend(advice.pinhole_findings(ctx, pinhole, ipv4_done=mapping.done))
    if cfg.verify:
        inbound, more = verify(cfg, req.port, mapping, deadline)
        if inbound is not None:
            probes["inbound"] = inbound
        findings.extend(more)
    probes.update(fw_probes)
    findings.extend(fw_findings)
    report = Report(
        command="forward",
        probes=probes,
        findings=findings,
        pacs_entry=advice.with_pinhole_entry(advice.pacs_entry(ctx, router, mapping), pinhole),
        elapsed_s=time.monotonic() - t0,
        extra={"announcement": told} if told else {},
    )
    if cfg.keep and mapping.done and mapping.status is Status.OK:
        from reverseprobe.commands.forward_keep import keep

        return keep(cfg, req, gateway, report, env=env, store=store, one_pass=one_pass)
    return report


run_forward = run  # the name the tests use
