"""The home router: its UPnP IGD (status, external address, the mapping for the port) and its
NAT-PMP external address (RFC 6886 3.2), asked concurrently under one deadline.

Discovery is `portmap.ssdp` (tailscale's way: unicast to the gateway and multicast from one
socket, first IGD answer wins), then miniupnpc through `portmap.igd` for GetStatusInfo,
GetExternalIPAddress and GetSpecificPortMappingEntry (UPnP IGD WANIPConnection:1/2). A field
left None was not read; `mapping_checked` says whether `mapping` None means "no mapping".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reverseprobe.addresses import AddressClass, classify
from reverseprobe.config import CheckConfig
from reverseprobe.model import Status
from reverseprobe.model.check import RouterResult as RouterResult
from reverseprobe.portmap.igd import PortMapping
from reverseprobe.runner import Deadline, Probe

DISCOVER_BUDGET_S = 2.0  # SSDP: miniupnpd answers in ~50-250 ms; silence costs all of it
CALL_BUDGET_S = 2.0  # one SOAP call
NATPMP_BUDGET_S = 2.0  # RFC 6886 retries at 250, 500, 1000 ms


@dataclass
class _Upnp:
    location: str | None = None
    server: str | None = None
    lan_address: str | None = None
    status: str | None = None
    external_ip: str | None = None
    mapping: PortMapping | None = None
    mapping_checked: bool = False
    error: str | None = None
    fault: str | None = None

    def failed(self, what: str, exc: Exception) -> str:
        """Note how a call failed (garbage outranks a timeout); the message for `error`."""
        from reverseprobe.portmap.errors import UpnpGarbage, UpnpTimeout

        if isinstance(exc, UpnpGarbage):
            self.fault = "garbage"
        elif isinstance(exc, UpnpTimeout) and self.fault in (None, "error"):
            self.fault = "timeout"
        elif self.fault is None:
            self.fault = "error"
        describe = getattr(exc, "describe", None)
        text = describe() if callable(describe) else str(exc)
        return f"{what}: {text}" if what else str(text)


# The IGD calls in the order they run, one after another; the plan (commands/check.py) gives
# each its budget. GetSpecificPortMappingEntry runs first after the description: the UPnP
# rules need it most, so a slow router spends the time on it, not on status or address.
UPNP_CALLS = (
    "ssdp",
    "description",
    "GetSpecificPortMappingEntry",
    "GetStatusInfo",
    "GetExternalIPAddress",
)
NOMINAL_BUDGETS_S = {
    name: DISCOVER_BUDGET_S if name == "ssdp" else CALL_BUDGET_S for name in UPNP_CALLS
}


def _ask_upnp(
    gateway: str | None, port: int, deadline: Deadline, budgets: Mapping[str, float] | None = None
) -> _Upnp:
    from reverseprobe.portmap.errors import UpnpError
    from reverseprobe.portmap.igd import connect_igd
    from reverseprobe.portmap.ssdp import discover_igd

    budget = {**NOMINAL_BUDGETS_S, **(budgets or {})}
    out = _Upnp()
    resp = discover_igd(gateway, deadline.share(budget["ssdp"], reserve=0.3))
    if resp is None:
        return out
    out.location, out.server = resp.location, resp.server
    try:
        igd = connect_igd(resp.location, budget["description"], deadline=deadline, ssdp=resp)
    except UpnpError as exc:
        out.error = out.failed("", exc)
        return out
    out.lan_address = igd.lan_address or None

    def timeout(name: str) -> float:
        """The plan's share is the least a call gets; time the earlier calls did not use
        (a router answers in milliseconds) goes to it too, up to its nominal budget."""
        later = UPNP_CALLS[UPNP_CALLS.index(name) + 1 :]
        free = deadline.remaining() - sum(budget[n] for n in later)
        return max(budget[name], min(NOMINAL_BUDGETS_S[name], free))

    errors = []
    mapping_failed = False
    try:
        igd.timeout = timeout("GetSpecificPortMappingEntry")
        out.mapping = igd.get_mapping(port, "TCP")
    except UpnpError as exc:
        mapping_failed = True
        errors.append(out.failed("GetSpecificPortMappingEntry", exc))
    others = 0
    try:
        igd.timeout = timeout("GetStatusInfo")
        out.status = igd.status()[0]
    except UpnpError as exc:
        others += 1
        errors.append(out.failed("GetStatusInfo", exc))
    try:
        igd.timeout = timeout("GetExternalIPAddress")
        ext = igd.external_ip()
        out.external_ip = ext if ext is not None else ""
    except UpnpError as exc:
        others += 1
        errors.append(out.failed("GetExternalIPAddress", exc))
    if not mapping_failed:
        # miniupnpc answers None both for "no such entry" and for a failed call: a None is
        # "no mapping" only from an IGD that has answered a SOAP call properly
        out.mapping_checked = out.mapping is not None or others < 2
        if not out.mapping_checked:
            errors.append("GetSpecificPortMappingEntry: no usable answer (mapping not known)")
    out.error = "; ".join(errors) or None
    return out


def probe_router(
    port: int,
    deadline: Deadline,
    *,
    gateway: str | None = None,
    natpmp: bool = True,
    budgets: Mapping[str, float] | None = None,
) -> RouterResult:
    """Ask the IGD and NAT-PMP at once; report what answered by the deadline."""
    from reverseprobe.portmap.natpmp import external_address
    from reverseprobe.probes.interfaces import default_gateway

    gw = gateway or default_gateway()[0]
    box: dict[str, Any] = {}
    done = threading.Condition()

    def run(name: str, fn: Any) -> None:
        try:
            value = fn()
        except Exception as exc:  # noqa: BLE001 - reported, never raised
            value = exc
        with done:
            box[name] = value
            done.notify_all()

    jobs: dict[str, Any] = {"upnp": lambda: _ask_upnp(gw, port, deadline, budgets)}
    if natpmp and gw and classify(gw) in (AddressClass.PRIVATE, AddressClass.SHARED):
        # Ends a little before the deadline, so its own "no answer" is what gets reported.
        jobs["natpmp"] = lambda: external_address(gw, deadline.share(NATPMP_BUDGET_S, reserve=0.2))
    for name, fn in jobs.items():
        threading.Thread(target=run, args=(name, fn), name=f"router-{name}", daemon=True).start()
    t0 = time.monotonic()
    with done:
        while len(box) < len(jobs) and not deadline.expired:
            done.wait(deadline.remaining())
        got = dict(box)
    up = got.get("upnp")
    nat = got.get("natpmp")
    reasons = []
    if not isinstance(up, _Upnp):
        reasons.append(
            f"UPnP: {up}"
            if up is not None
            else f"UPnP: no result by the deadline ({time.monotonic() - t0:.1f} s)"
        )
        up = _Upnp(error=reasons[-1])
    nat_ip = nat_res = nat_err = None
    if "natpmp" not in jobs:
        nat_err = "not asked: no private default gateway" if natpmp else "not asked"
    elif nat is None:
        nat_err = f"no NAT-PMP answer from {gw} by the deadline"
    elif isinstance(nat, Exception):
        nat_err = f"{type(nat).__name__}: {nat}"
    else:
        nat_ip, nat_res = nat.address, nat.result
        nat_err = None if nat.ok else nat.meaning
    if gw is None:
        reasons.append("no default gateway (only multicast discovery)")
    return RouterResult(
        status=Status.OK,
        reason="; ".join(reasons) or None,
        port=port,
        gateway=gw,
        lan_address=up.lan_address,
        igd_location=up.location,
        igd_server=up.server,
        connection_status=up.status,
        external_ip=up.external_ip,
        mapping=up.mapping,
        mapping_checked=up.mapping_checked,
        upnp_error=up.error,
        upnp_fault=up.fault,
        natpmp_external_ip=nat_ip,
        natpmp_result=nat_res,
        natpmp_error=nat_err,
    )


def check_probe(cfg: CheckConfig, budgets: Mapping[str, float] | None = None) -> Probe:
    """The `router` probe of `check`: skipped with --no-upnp; `budgets` per UPNP_CALLS."""
    if not cfg.upnp:
        return lambda _d: RouterResult(
            status=Status.SKIPPED, reason="not checked: --no-upnp", port=cfg.port
        )
    return lambda d: probe_router(cfg.port, d, budgets=budgets)
