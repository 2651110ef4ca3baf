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
from typing import Any

from reverseprobe import config as c
from reverseprobe.diagnosis import forward as advice
from reverseprobe.environment import Environment
from reverseprobe.model import Finding, ProbeResult, Report, Status
from reverseprobe.model.forward import PinholeResult
from reverseprobe.portmap.outcome import Action, MappingResult, Request, RouterResult
from reverseprobe.portmap.state import NonceStore, state_dir
from reverseprobe.probes.firewall import Runner
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
        report = pinhole_only_report(
            cfg, req, gateway, six, deadline=deadline, env=env, told=told, t0=t0
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
        inbound, more = _verify(cfg, req, mapping, deadline)
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


def _verify(
    cfg: c.ForwardConfig, req: Request, mapping: MappingResult, deadline: Deadline
) -> tuple[ProbeResult | None, list[Finding]]:
    """--verify: the echo-back probe of `check` (probes/inbound.py) through the new mapping."""
    from reverseprobe.diagnosis.catalogue import make

    def untested(why: str) -> tuple[ProbeResult | None, list[Finding]]:
        return None, [make("INBOUND_NOT_TESTED", variant="forward:skipped", reason=why)]

    if not mapping.done or mapping.status is not Status.OK:
        return untested("no mapping is in place")
    if not cfg.reflector:
        return untested("no reflector (--reflector URL or REVERSEPROBE_REFLECTOR)")
    if mapping.public_port != req.port:
        return untested(
            f"the external port {mapping.public_port} differs from the internal port {req.port}, "
            "and the echo-back probe dials the port it listens on"
        )
    try:
        from reverseprobe.diagnosis.inbound import rules
        from reverseprobe.probes.inbound import probe_inbound
    except ImportError:
        return untested("the echo-back probe is not available in this build")
    ccfg = c.CheckConfig(
        port=req.port,
        aet=cfg.aet,
        reflector=cfg.reflector,
        upnp=False,
        public_ip=False,
        timeout=cfg.timeout,
    )
    result = probe_inbound(ccfg, deadline)
    return result, rules({"inbound": result}, ccfg)


# --- --firewall: this PC's own firewall (issue 14) ---------------------------------------------

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
        inbound, more = _verify_direct(cfg, deadline)
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


def _verify_direct(
    cfg: c.ForwardConfig, deadline: Deadline
) -> tuple[ProbeResult | None, list[Finding]]:
    """--verify with --firewall alone: the dial-back to the port as it is (no mapping made)."""
    req = make_request(cfg)
    done = MappingResult(
        status=Status.OK,
        action=Action.UNCHANGED,
        external_port=cfg.port,
        internal_port=cfg.port,
    )
    return _verify(cfg, req, done, deadline)


# --- the IPv6 pinhole (issue 15) ---------------------------------------------------------------


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
) -> Report:
    """--family 6: the IPv6 pinhole alone (the IGD is still found over IPv4 where UPnP is
    asked, since SSDP found it there); no IPv4 mapping is touched."""
    location = None
    if cfg.mode is not c.ForwardMode.NATPMP and cfg.action is c.ForwardAction.ADD and six[0]:
        from reverseprobe.portmap.errors import UpnpError
        from reverseprobe.portmap.igd import find_igd

        budget = plan(cfg, deadline.remaining() + MARGIN_S).budget("discover")
        try:
            igd = find_igd(gateway, deadline, discover_timeout=budget)
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


run_forward = run  # the name the tests use
