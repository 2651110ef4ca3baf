"""check's rules for the router's UPnP port mapping (UPnP IGD WANIPConnection
GetSpecificPortMappingEntry): no IGD, an IGD that is broken or hostile (issue 16), the mapping
missing, held by another host, or in place. Pure: the router probe's result in, findings out."""

from __future__ import annotations

from typing import Any

from reverseprobe.config import CheckConfig
from reverseprobe.diagnosis.catalogue import make
from reverseprobe.diagnosis.nat import PublicView
from reverseprobe.model import Finding, Severity
from reverseprobe.model.check import RouterResult


def upnp_rules(
    rt: RouterResult, view: PublicView, cfg: CheckConfig, local: set[str]
) -> list[Finding]:
    port = cfg.port
    lan = rt.lan_address or view.lan_address or "this PC"
    gw = f"http://{rt.gateway}/" if rt.gateway else "the router's admin page"
    by_hand: dict[str, Any] = {
        "port": port,
        "lan": lan,
        "admin": gw,
    }  # the fixes' "forward ... by hand in"
    if not rt.igd_found or (rt.upnp_error and not rt.mapping_checked):
        sev = Severity.WARN if view.behind_nat else Severity.INFO
        natpmp = ""
        if rt.natpmp_result == 0:
            natpmp = (
                f" NAT-PMP answered (external address {rt.natpmp_external_ip}): "
                f"`reverseprobe forward --natpmp --port {port}` can open the port."
            )
        asked = f"{rt.gateway} and the multicast group" if rt.gateway else "the multicast group"
        fault = getattr(rt, "upnp_fault", None)
        found: dict[str, Any] = {"location": rt.igd_location, "error": rt.upnp_error}
        if not rt.igd_found:  # (the probe sets a fault only where an IGD answered)
            variant, values = "no_igd", {"asked": asked}
        elif fault in ("garbage", "timeout"):
            # it is there and broken (or hostile): not "no UPnP" (issue 16)
            sev = Severity.WARN
            variant, values = str(fault), found
        else:
            variant, values = "unusable", found
        return [
            make(
                "UPNP_UNAVAILABLE",
                variant=variant,
                severity=sev,
                detail={"gateway": rt.gateway, "natpmp_result": rt.natpmp_result},
                natpmp=natpmp,
                **values,
                **by_hand,
            )
        ]
    if not rt.mapping_checked or view.local:
        return []
    m = rt.mapping
    double = (
        " The router sits behind another NAT (see NAT_DOUBLE): this mapping alone does not "
        "make the PC reachable."
        if view.double_nat
        else ""
    )
    if m is None:
        return [
            make(
                "UPNP_MAPPING_MISSING",
                variant="none",
                detail={"port": port},
                double=double,
                **by_hand,
            )
        ]
    mapping = {
        "internal_client": m.internal_client,
        "internal_port": m.internal_port,
        "description": m.description,
        "enabled": m.enabled,
        "lease": m.lease,
    }
    ours = m.internal_client in local or m.internal_client == rt.lan_address
    if not ours:
        return [
            make(
                "UPNP_MAPPING_OTHER_HOST",
                detail={"port": port, "mapping": mapping},
                client=m.internal_client,
                internal_port=m.internal_port,
                description=m.description,
                **by_hand,
            )
        ]
    if m.internal_port != port or not m.enabled:
        return [
            make(
                "UPNP_MAPPING_MISSING",
                variant="other_port" if m.internal_port != port else "disabled",
                detail={"port": port, "mapping": mapping},
                internal_port=m.internal_port,
                double=double,
                **by_hand,
            )
        ]
    return [
        make(
            "UPNP_MAPPING_OK",
            variant="lease" if m.lease else "permanent",
            severity=Severity.INFO if view.double_nat else None,
            detail={"port": port, "mapping": mapping},
            port=port,
            client=m.internal_client,
            description=m.description,
            double=double,
            lease=m.lease,
        )
    ]
