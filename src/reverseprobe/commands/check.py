"""`reverseprobe check`: every probe concurrently under one deadline -> Report."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from reverseprobe.config import CheckConfig
from reverseprobe.model import ProbeResult, Report, Status
from reverseprobe.runner import MARGIN_S, Deadline, Listener, Plan, Probe, Step, run_probes

if TYPE_CHECKING:
    from reverseprobe.diagnosis.story import CutShort

PROBE_NAMES: tuple[str, ...] = (
    "listeners",
    "interfaces",
    "public_ip",
    "router",
    "firewall",
    "inbound",
    "virtual",  # NAT layers (issue 13)
    "path",
)
ROUTER_RESERVE_S = 0.3  # the router probe's SSDP share keeps this back (probes/router.py)
# The router's calls that must get their nominal share before the others get any: without
# the SSDP answer, the description and GetSpecificPortMappingEntry the UPnP rules know nothing.
ROUTER_FIRST = ("ssdp", "description", "GetSpecificPortMappingEntry")


def plan(cfg: CheckConfig, time_left: float) -> Plan:
    """Every probe at once, each with the whole time less the runner's margin; the router's
    sequential calls (`parts["router"]`) share that time, the ones the rules need first."""
    t = max(0.0, time_left - MARGIN_S)
    names = PROBE_NAMES + (("receiver",) if wants_preflight(cfg) else ())
    return Plan(
        tuple(Step(name, t) for name in names),
        sequential=False,
        margin_s=MARGIN_S,
        parts={"router": router_plan(t)},
    )


def router_plan(time_left: float) -> Plan:
    """SSDP, the description and GetSpecificPortMappingEntry get their nominal budgets first
    (scaled down together only when even they do not fit); GetStatusInfo and
    GetExternalIPAddress share what is left."""
    from reverseprobe.probes.router import NOMINAL_BUDGETS_S, UPNP_CALLS

    reserve = min(ROUTER_RESERVE_S, time_left / 4)  # a short --timeout still asks the IGD
    t = max(0.0, time_left - reserve)
    first = sum(NOMINAL_BUDGETS_S[n] for n in ROUTER_FIRST)
    scale = min(1.0, t / first) if first else 0.0
    budgets = {n: NOMINAL_BUDGETS_S[n] * scale for n in ROUTER_FIRST}
    rest = [n for n in UPNP_CALLS if n not in ROUTER_FIRST]
    left = max(0.0, t - sum(budgets.values()))
    for n in rest:
        budgets[n] = min(NOMINAL_BUDGETS_S[n], left / len(rest))
    return Plan(
        tuple(Step(n, round(budgets[n], 6)) for n in UPNP_CALLS),
        sequential=True,
        margin_s=reserve,
    )


def build_probes(cfg: CheckConfig, the_plan: Plan | None = None) -> dict[str, Probe]:
    from reverseprobe.probes.interfaces import probe_interfaces
    from reverseprobe.probes.listeners import LocalOnce, probe_listeners

    # one socket scan and one plain C-ECHO of the local listener for both probes that need it
    once = LocalOnce(cfg.port, cfg.called_aet)
    # The preflight holds associations to the receiver for seconds; one that serves one at a
    # time (storescp without --fork) would leave the listeners' C-ECHO unanswered: a false
    # LISTENER_NOT_DICOM. So the preflight starts when the listeners probe has ended.
    listened = threading.Event()

    def listeners(d: Deadline) -> ProbeResult:
        try:
            return probe_listeners(cfg.port, cfg.called_aet, d, tls=cfg.tls, once=once)
        finally:
            listened.set()

    def receiver(d: Deadline) -> ProbeResult:
        listened.wait(max(0.0, d.remaining() / 3))
        return _receiver_preflight(cfg, d)

    probes: dict[str, Probe] = {
        "listeners": listeners,
        "interfaces": probe_interfaces,
    }  # fmt: skip
    for name, factory in _network_probes().items():
        probes[name] = factory(cfg)
    if "inbound" in probes:
        from reverseprobe.probes.inbound import probe_inbound

        probes["inbound"] = lambda d: probe_inbound(cfg, d, once=once)
    if wants_preflight(cfg):
        probes["receiver"] = receiver
    if the_plan is not None and "router" in the_plan.parts:
        from reverseprobe.probes import router

        calls = the_plan.parts["router"]
        probes["router"] = router.check_probe(cfg, {s.name: s.budget_s for s in calls.steps})
    return probes


def wants_preflight(cfg: CheckConfig) -> bool:
    """The receiver preflight runs when asked for: --pacs with --pacs-aet, --context, or
    --contexts-from."""
    given = cfg.contexts or cfg.recorded_contexts
    return bool(given) or (cfg.pacs is not None and cfg.pacs_aet is not None)


def _receiver_preflight(cfg: CheckConfig, deadline: Deadline) -> ProbeResult:
    """Propose to the receiver on --port what the PACS will send (probes/receiver.py): the
    --context pairs, else what the PACS's IMAGE-level C-FIND says of its smallest study."""
    from reverseprobe.dicom.find import FindResult, find_study
    from reverseprobe.dicom.qr import Target
    from reverseprobe.probes.receiver import contexts_for, image_contexts, preflight, receiver_host

    pairs: list[tuple[str, str]] = list(cfg.contexts)
    classes: tuple[str, ...] = ()
    source = "option"
    if not pairs and cfg.recorded_contexts:  # --contexts-from: what the PACS proposed before
        pairs, source = list(cfg.recorded_contexts), "recorded-move"
    if not pairs and cfg.pacs is not None and cfg.pacs_aet is not None:
        target = Target(cfg.pacs[0], cfg.pacs[1], cfg.pacs_aet, cfg.called_aet)
        find = find_study(target, deadline.child(deadline.remaining() / 3))
        if isinstance(find, FindResult) and find.study_uid:
            classes = find.sop_classes
            pairs = image_contexts(target, find.study_uid, deadline.child(deadline.remaining() / 3))
        source = "c-find"
    chosen, source = contexts_for(pairs, classes, source)
    calling = cfg.pacs_aet or "ANY-SCU"
    host = receiver_host(cfg.port)
    return preflight(host, cfg.port, cfg.called_aet, calling, chosen, deadline=deadline,
                     source=source)  # fmt: skip


def _network_probes() -> dict[str, Callable[[CheckConfig], Probe]]:
    """The network half (public address, router, firewall, inbound): each module's
    `check_probe(cfg)` returns the probe callable for `run_probes`. One line per module."""
    from reverseprobe.probes import firewall, inbound, path, public_ip, router, virtual

    factories: dict[str, Callable[[CheckConfig], Probe]] = {}
    factories["public_ip"] = public_ip.check_probe
    factories["router"] = router.check_probe
    factories["firewall"] = firewall.check_probe
    factories["inbound"] = inbound.check_probe
    factories["virtual"] = virtual.check_probe
    factories["path"] = path.check_probe
    return factories


def run(
    cfg: CheckConfig, *, on_update: Listener | None = None, deadline: Deadline | None = None
) -> Report:
    from reverseprobe.dicom.echo import preload_pynetdicom

    preload_pynetdicom()  # the listeners' C-ECHO needs it: the import overlaps the plan
    from reverseprobe.diagnosis import check_findings
    from reverseprobe.diagnosis.entry import check_entry
    from reverseprobe.diagnosis.story import resolve

    t0 = time.monotonic()
    deadline = deadline or Deadline.after(cfg.timeout)
    the_plan = plan(cfg, deadline.remaining())
    probes = build_probes(cfg, the_plan)
    results: dict[str, ProbeResult] = run_probes(probes, deadline, on_update=on_update)
    cuts = cut_short(cfg, the_plan, results)
    for name, c in cuts.items():
        results[name] = dataclasses.replace(
            results[name],
            status=Status.TIMEOUT,
            reason=f"not measured in time ({c.had_s:.1f} s; it needs about {c.need_s:.0f} s)",
        )
    found = check_findings(results, cfg)
    pf = results.get("receiver")
    if pf is not None:
        from reverseprobe.diagnosis.receiver import preflight_rules
        from reverseprobe.model.receiver import ReceiverPreflight

        if isinstance(pf, ReceiverPreflight):  # the listeners probe may have said the AET
            have = {f.code for f in found}
            found = [*found, *(f for f in preflight_rules(pf) if f.code not in have)]
    findings = resolve(found, results, cfg, cut_short=cuts)
    return Report(
        command="check",
        probes=results,
        findings=findings,
        pacs_entry=check_entry(results, cfg),
        elapsed_s=time.monotonic() - t0,
        strict=cfg.strict,
    )


def needs_s(cfg: CheckConfig) -> dict[str, float]:
    """The seconds each probe that was asked for needs to measure anything: the router's first
    calls at their nominal budgets, the inbound probe one dial-back with its HTTP slack and the
    time to stop its listener (probes/inbound.py), each plus the runner's margin."""
    from reverseprobe.probes import inbound
    from reverseprobe.probes.router import NOMINAL_BUDGETS_S

    out: dict[str, float] = {}
    if cfg.upnp:
        # "No IGD answered" is measured once SSDP has listened for ROUTER_SILENCE_S (miniupnpd
        # answers within 50-250 ms; tailscale waits 250 ms): the later calls' budgets only
        # matter when an IGD answered, and then a call that ran out says so itself.
        first = sum(NOMINAL_BUDGETS_S[n] for n in ROUTER_FIRST)
        ssdp_share = NOMINAL_BUDGETS_S["ssdp"] / first  # router_plan scales them together
        out["router"] = ROUTER_RESERVE_S + ROUTER_SILENCE_S / ssdp_share + MARGIN_S
    if cfg.reflector:
        out["inbound"] = INBOUND_DIAL_S + inbound.SLACK_S + inbound.STOP_RESERVE_S + MARGIN_S
    if cfg.public_ip:
        out["public_ip"] = PUBLIC_IP_HTTP_S + MARGIN_S
    out.update(nat_layer_needs_s(cfg))
    return out


def nat_layer_needs_s(cfg: CheckConfig) -> dict[str, float]:
    """Issue 13: the path probe needs its name lookup and its hop budget (probes/path.py; it
    runs only with a reflector or IP service to trace to), the virtual probe its `nft` read."""
    from reverseprobe.probes import path, virtual

    out = {"virtual": virtual.NFT_BUDGET_S + MARGIN_S}
    if path.target_host(cfg) is not None:
        out["path"] = path.RESOLVE_S + path.BUDGET_S + MARGIN_S
    return out


INBOUND_DIAL_S = 2.0  # one dial-back that gets an answer on a slow line
PUBLIC_IP_HTTP_S = 1.5  # one HTTPS round trip to an IP service on a slow line
ROUTER_SILENCE_S = 0.3  # SSDP silence this long means "no IGD answered", not "not asked"


def cut_short(
    cfg: CheckConfig, the_plan: Plan, results: Mapping[str, ProbeResult]
) -> dict[str, CutShort]:
    """The probes the deadline did not let measure: given less than they need, and they came
    back without the answer (the router found no IGD, the inbound probe did not finish)."""
    from reverseprobe.diagnosis.story import CutShort
    from reverseprobe.model.check import RouterResult

    out: dict[str, CutShort] = {}
    needs = needs_s(cfg)
    for name, need_total in needs.items():
        had, need = the_plan.budget(name), need_total
        r = results.get(name)
        if name == "router" and "router" in the_plan.parts:
            had = the_plan.parts["router"].budget("ssdp")  # what decides "no IGD answered"
            need = ROUTER_SILENCE_S
        if r is None or had >= need:
            continue
        if r.status is Status.TIMEOUT:
            missing = True
        elif name == "router":
            missing = not (isinstance(r, RouterResult) and r.igd_found)
        else:
            missing = r.status is not Status.OK
        if missing:
            out[name] = CutShort(had_s=round(had, 2), need_s=need_total)
    return out


run_check = run  # the name the checklist and the tests use
