"""`forward`'s findings and PACS entry for the IPv4 port mapping, from what it found and did
(pure): the router reached or not, double NAT, the mapping's outcome; where nothing could be
done, the fix is the manual procedure (diagnosis/forward/announce.py).
"""

from __future__ import annotations

from typing import Any

from reverseprobe.addresses import AddressClass
from reverseprobe.diagnosis import entry
from reverseprobe.diagnosis.catalogue import make
from reverseprobe.diagnosis.forward.announce import Context, manual_steps
from reverseprobe.diagnosis.nat import double_nat
from reverseprobe.model import Finding, PacsEntry, Severity, Status
from reverseprobe.model.forward import (
    Action,
    MappingResult,
    PortmapRouterResult,
    Via,
)

REGISTERED_DICOM_PORT = 11112  # IANA: "dicom" TCP 11112


def _lease(seconds: int | None, via: Via | None) -> str:
    if seconds is None:
        return "lease not read back"
    if seconds == 0:
        return "permanent"
    text = f"lease {seconds} s"
    if via is Via.UPNP and 604000 <= seconds <= 604800:
        text += " (about 7 days: IGDv2 routers turn a permanent mapping into 604800 s)"
    return text


def router_double_nat(router: PortmapRouterResult) -> str | None:
    """Why the router's external address shows another NAT beyond it, else None."""
    if router.status is not Status.OK or router.via is None:
        return None
    if router.external_ip is None and router.connection_status:
        if "double NAT" in router.connection_status:
            return router.connection_status
        if router.via is Via.UPNP and router.connection_status == "Connected":
            return double_nat("")
    return double_nat(router.external_ip)


def findings(
    ctx: Context, router: PortmapRouterResult, m: MappingResult, *, listing: bool
) -> list[Finding]:
    out: list[Finding] = []
    dnat = router_double_nat(router)
    if router.via is None or router.status is Status.FAIL:
        tried = "; ".join(router.tried) or "nothing answered"
        out.append(
            make(
                "UPNP_UNAVAILABLE",
                variant="forward",
                severity=Severity.FAIL,
                detail={"gateway": ctx.gateway, "tried": list(router.tried)},
                tried=tried,
                manual=manual_steps(ctx),
            )
        )
        return out
    if dnat is not None:
        out.append(
            make(
                "NAT_DOUBLE",
                variant="forward:router",
                detail={"external_ip": router.external_ip},
                why=dnat,
                manual=manual_steps(ctx, double_nat=True),
            )
        )
    if (
        ctx.public_ip
        and router.external_ip
        and ctx.public_ip != router.external_ip
        and dnat is None
    ):
        out.append(
            make(
                "NAT_DOUBLE",
                variant="forward:differs",
                detail={"external_ip": router.external_ip, "public_ip": ctx.public_ip},
                external_ip=router.external_ip,
                public_ip=ctx.public_ip,
                manual=manual_steps(ctx, double_nat=True),
            )
        )
    if listing and router.mappings is not None:
        out.append(_listing(router))
    elif listing:
        out.append(make("ROUTER_MAPPINGS", variant="not_listed", reason=m.reason or router.reason))
    out.extend(_mapping(ctx, router, m, dnat is not None))
    if ctx.external_port < 1024 and m.done:
        out.append(
            make(
                "PORT_PRIVILEGED",
                variant="forward",
                detail={"port": ctx.external_port},
                port=ctx.external_port,
                dicom_port=REGISTERED_DICOM_PORT,
            )
        )
    return out


def _listing(router: PortmapRouterResult) -> Finding:
    rows = router.mappings or ()
    lines = [
        f"{p.protocol} {p.external_port} -> {p.internal_client}:{p.internal_port} "
        f"'{p.description}' {'enabled' if p.enabled else 'disabled'}, {_lease(p.lease, Via.UPNP)}"
        for p in rows
    ]
    return make(
        "ROUTER_MAPPINGS",
        variant="listing" if rows else "listing:none",
        detail={"count": len(rows)},
        count=len(rows),
        rows="".join("\n    " + line for line in lines),
    )


def _mapping(  # noqa: PLR0911, PLR0912 - one return per mapping outcome, each a distinct finding
    ctx: Context, router: PortmapRouterResult, m: MappingResult, dnat: bool
) -> list[Finding]:
    via = (m.via or router.via or Via.UPNP).value
    ext = router.external_ip or "the router's external address"
    detail: dict[str, Any] = dict(
        action=m.action.value,
        via=via,
        external_port=m.external_port,
        internal_port=m.internal_port,
        internal_client=m.internal_client,
    )
    a = m.action
    if m.status is Status.SKIPPED and a is Action.NOT_TRIED:
        return []
    if (
        a in (Action.ADDED, Action.UNCHANGED, Action.RENEWED, Action.REPLACED)
        and m.status is Status.OK
    ):
        what = {
            Action.ADDED: "added",
            Action.UNCHANGED: "already in place, nothing changed",
            Action.RENEWED: "renewed",
            Action.REPLACED: f"replaced the mapping to {m.held_by}",
        }[a]
        port = m.public_port
        lease = _lease(m.lease_granted, m.via)
        expiry = ""
        if m.lease_granted and not ctx.keep:
            expiry = (
                f"; it expires after {m.lease_granted} s: re-run before then, or run with --keep"
            )
        out = [
            make(
                "UPNP_MAPPING_OK",
                variant="forward" if m.verified else "forward:unverified",
                detail=detail,
                external=ext,
                port=port,
                via=via,
                client=m.internal_client,
                internal_port=m.internal_port,
                done=what,
                lease=lease,
                expiry=expiry,
            )
        ]
        if m.assigned_external_port and m.assigned_external_port != m.external_port:
            out.append(
                make(
                    "FORWARD_PORT_CHANGED",
                    detail={"asked": m.external_port, "assigned": m.assigned_external_port},
                    asked=m.external_port,
                    assigned=m.assigned_external_port,
                )
            )
        return out
    if a is Action.HELD_BY_OTHER:
        who = m.before.description if m.before else ""
        return [
            make(
                "UPNP_MAPPING_OTHER_HOST",
                variant="held:named" if who else "held",
                detail={"held_by": m.held_by, **detail},
                port=m.external_port,
                held_by=m.held_by,
                description=who,
            )
        ]
    if a is Action.REMOVED:
        return [
            make(
                "UPNP_MAPPING_MISSING",
                variant="removed:note" if m.note and m.verified is None else "removed",
                severity=Severity.INFO,
                detail=detail,
                port=m.external_port,
                via=via,
                note=m.note,
            )
        ]
    if a is Action.ABSENT:
        return [
            make(
                "UPNP_MAPPING_MISSING",
                variant="absent",
                severity=Severity.INFO,
                detail=detail,
                port=m.external_port,
            )
        ]
    if a is Action.WOULD_ADD:
        return [
            make(
                "UPNP_MAPPING_MISSING",
                variant="would_add:replacing" if m.held_by else "would_add",
                severity=Severity.INFO,
                detail=detail,
                port=m.external_port,
                client=m.internal_client or ctx.lan,
                internal_port=m.internal_port,
                via=via,
                held_by=m.held_by,
            )
        ]
    if a is Action.WOULD_REMOVE:
        return [
            make(
                "UPNP_MAPPING_MISSING",
                variant="would_remove",
                severity=Severity.INFO,
                detail=detail,
                port=m.external_port,
                via=via,
            )
        ]
    if a is Action.LISTED:
        if m.before is None:
            return [
                make("UPNP_MAPPING_MISSING", variant="listed", detail=detail, port=m.external_port)
            ]
        if m.held_by:
            return [
                make(
                    "UPNP_MAPPING_OTHER_HOST",
                    variant="listed",
                    detail={"held_by": m.held_by, **detail},
                    port=m.external_port,
                    held_by=m.held_by,
                )
            ]
        return [
            make(
                "UPNP_MAPPING_OK",
                variant="listed",
                detail=detail,
                port=m.external_port,
                client=m.internal_client,
                internal_port=m.internal_port,
                lease=_lease(m.lease_granted, m.via),
            )
        ]
    # REFUSED, FAILED, NOT_TRIED, or done but not verified
    if a is Action.REFUSED and m.held_by and m.before is not None:
        return [
            make(
                "UPNP_MAPPING_OTHER_HOST",
                variant="refused",
                detail={"held_by": m.held_by, "error_code": m.error_code, **detail},
                port=m.external_port,
                held_by=m.held_by,
                error_code=m.error_code,
                error_name=m.error_name,
                manual=manual_steps(ctx, double_nat=dnat),
            )
        ]
    why = m.reason or "no answer"
    if m.error_code is not None:
        why = f"{m.error_code} {m.error_name}: {m.error_meaning}"
    doing = (
        "remove"
        if a is Action.FAILED and m.before is not None and m.verified is False
        else "forward"
    )
    return [
        make(
            "UPNP_MAPPING_MISSING",
            variant=f"failed:{doing}" + (":error_fix" if m.error_fix else ""),
            severity=Severity.FAIL,
            detail={"error_code": m.error_code, "error_name": m.error_name, **detail},
            port=m.external_port,
            client=m.internal_client or ctx.lan,
            internal_port=m.internal_port,
            via=via,
            why=why,
            manual=manual_steps(ctx, double_nat=dnat),
            error_fix=m.error_fix,
        )
    ]


def pacs_entry(ctx: Context, router: PortmapRouterResult, m: MappingResult) -> PacsEntry | None:
    """After success: AE title, the public address, the external port."""
    if not m.done or m.status is not Status.OK:
        return None
    public = ctx.public_ip or (
        router.external_ip if router.external_ip_class == AddressClass.PUBLIC.value else None
    )
    return entry.pacs_entry(
        entry.EntryFacts(
            aet=ctx.aet or "",
            port=m.public_port,
            local_port=ctx.port,
            lan=ctx.lan,
            public=public,
            public_checked=True,
            behind_nat=True,  # forward maps a port on a NAT router
            double_nat=router_double_nat(router),
        )
    )
