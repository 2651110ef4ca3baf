"""`forward`'s findings and PACS entry, from what it found and did (pure).

Where nothing could be done (no IGD, double NAT, a refusal), the fix is the manual procedure:
the router's admin address (the default gateway), the forwarding rule to add, and what to
give the PACS administrator.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from reverseprobe.addresses import AddressClass
from reverseprobe.diagnosis import entry
from reverseprobe.diagnosis.catalogue import make
from reverseprobe.diagnosis.nat import double_nat
from reverseprobe.model import Finding, PacsEntry, Severity, Status
from reverseprobe.model.forward import (
    Action,
    MappingResult,
    PinholeResult,
    PortmapRouterResult,
    Request,
    Via,
)

REGISTERED_DICOM_PORT = 11112  # IANA: "dicom" TCP 11112


@dataclass(frozen=True)
class Context:
    """What the findings name: this PC, the router, the PACS entry."""

    aet: str | None
    port: int
    external_port: int
    gateway: str | None
    lan: str | None
    keep: bool = False
    public_ip: str | None = None  # from --ip-service, when asked


def announcement(  # noqa: PLR0913 - keyword-only fields of the announcement it builds
    req: Request, *, via: str, gateway: str | None, lan: str | None, keep: bool, action: str
) -> dict[str, Any]:
    """What `forward` is about to ask of the router, said before it asks (stderr, and the
    report's `announcement`): opening a port on someone's router is not done silently."""
    router = gateway or "the default gateway"
    to = f"{lan or 'this PC'}:{req.port}"
    port = f"{req.protocol} port {req.external_port}"
    source = f"only from {req.remote_host}" if req.remote_host else "from any address"
    if req.lease == 0:
        lasts = "permanently (until removed; IGDv2 routers keep it about 7 days)"
    elif keep:
        lasts = f"for {req.lease} s, renewed until Ctrl-C, which removes it"
    else:
        lasts = f"for {req.lease} s (renew with --keep; --lease 0 for permanent)"
    if action == "remove":
        text = f"will ask the router at {router} ({via}) to remove the mapping of {port}"
    else:
        text = (
            f"will ask the router at {router} ({via}) to forward {port}, reachable {source}, "
            f"to {to} {lasts}"
        )
    if req.dry_run:
        text = "dry run, nothing changes: " + text.replace("will ask", "would ask")
    return {
        "action": action,
        "dry_run": req.dry_run,
        "router": gateway,
        "via": via,
        "protocol": req.protocol,
        "external_port": req.external_port,
        "internal_client": lan,
        "internal_port": req.port,
        "remote_host": req.remote_host or None,
        "lease_s": req.lease,
        "keep": keep,
        "text": text,
    }


def manual_steps(ctx: Context, *, double_nat: bool = False) -> str:
    gw = (
        f"http://{ctx.gateway}/"
        if ctx.gateway
        else "the router's admin page (your default gateway)"
    )
    lan = ctx.lan or "this PC's LAN address"
    aet = ctx.aet or "<your AE title>"
    steps = (
        f"Manual steps: (1) open the router's admin page at {gw}; (2) add a port forwarding "
        f"rule: external port {ctx.external_port}, protocol TCP, internal address {lan}, "
        f"internal port {ctx.port}"
    )
    if lan != "this PC's LAN address":
        steps += (
            " (give this PC a fixed address or a DHCP reservation, so the rule keeps pointing here)"
        )
    if double_nat:
        steps += (
            "; (3) the router is itself behind another NAT: add the same rule on the outer "
            "router (forwarding to this router's WAN address), or ask the ISP for a public IPv4 "
            "address; behind carrier-grade NAT (100.64.0.0/10) no rule of yours can help: use "
            "C-GET where the PACS supports it, or a VPN to the PACS site"
        )
    host = ctx.public_ip or "your public address"
    return steps + (
        f"; then give the PACS administrator: AE title {aet}, host {host}, "
        f"port {ctx.external_port}."
    )


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


# --- the IPv6 pinhole (issue 15) ---------------------------------------------------------------


def with_pinhole(
    told: dict[str, Any],
    req: Request,
    family: str,
    client6: str | None,
    router6: str | None,
) -> dict[str, Any]:
    """The announcement with what `forward` asks of the router's IPv6 firewall too; with
    --family 6 only that (the IPv4 mapping is not touched)."""
    if family == "4" or client6 is None or (told.get("keep") and family != "6"):
        if family == "6":
            text = "will not change anything: this PC has no global IPv6 address"
            return {**told, "ipv4": False, "ipv6": None, "text": text}
        return {**told, "ipv6": None}
    router = f"the router at [{router6}]" if router6 else "the router"
    if told["action"] == "remove":
        six = f"remove the IPv6 pinhole reverseprobe made for [{client6}]:{req.port}"
    else:
        six = (
            f"open TCP port {req.port} in its IPv6 firewall (a pinhole) to this PC's "
            f"[{client6}], from any address"
        )
    ipv6 = {"internal_client": client6, "router": router6, "internal_port": req.port,
            "text": six}  # fmt: skip
    if family == "6":
        verb = "would" if req.dry_run else "will"
        lead = "dry run, nothing changes: " if req.dry_run else ""
        text = f"{lead}{verb} ask {router} to {six} (no IPv4 mapping: --family 6)"
        return {**told, "ipv4": False, "ipv6": ipv6, "text": text}
    return {**told, "ipv6": ipv6, "text": f"{told['text']}; and {router} to {six}"}


def _pin_detail(p: PinholeResult) -> dict[str, Any]:
    return {
        "family": 6,
        "action": p.action.value,
        "via": p.via.value if p.via else None,
        "internal_client": p.internal_client,
        "internal_port": p.internal_port,
        "unique_id": p.unique_id,
    }


def pinhole_findings(  # noqa: PLR0911 - one return per pinhole outcome
    ctx: Context, p: PinholeResult, *, ipv4_done: bool, alone: bool = False
) -> list[Finding]:
    """The pinhole's finding (detail.family 6), under the mapping codes: OK when the router's
    IPv6 firewall admits the port, else MISSING: info where the router offers no pinhole or
    the IPv4 mapping carries the way in, fail with --family 6 (the pinhole was all asked)."""
    addr = f"[{p.internal_client}]" if p.internal_client else "this PC's IPv6 address"
    admin = f"http://{ctx.gateway}/" if ctx.gateway else "your default gateway"
    d = _pin_detail(p)
    v: dict[str, Any] = {"port": p.internal_port, "addr": addr, "admin": admin, "reason": p.reason}
    a = p.action
    if a is Action.NOT_TRIED and p.offered is None:
        if not alone and p.internal_client is None:
            return []  # no global IPv6 address: nothing to open, nothing to say
        if not alone:
            return [make("UPNP_MAPPING_MISSING", variant="v6:not_asked",
                         severity=Severity.INFO, detail=d, **v)]  # fmt: skip
        return [make("UPNP_MAPPING_MISSING", variant="v6:none",
                     severity=Severity.FAIL, detail=d, **v)]  # fmt: skip
    if p.done and p.status is Status.OK:
        how = f"UPnP pinhole {p.unique_id}" if p.via is Via.UPNP else "PCP"
        back = "read back" if p.verified else "the router's answer (cannot be read back)"
        lease = f", lease {p.lease_granted} s" if p.lease_granted is not None else ""
        return [make(
            "UPNP_MAPPING_OK", variant="v6", detail=d,
            port=p.internal_port, addr=addr, how=how, action=a.value, lease=lease, back=back,
        )]  # fmt: skip
    if a in (Action.REMOVED, Action.ABSENT, Action.WOULD_ADD, Action.WOULD_REMOVE):
        sev = Severity.INFO if p.status is Status.OK else Severity.FAIL
        return [make(
            "UPNP_MAPPING_MISSING", variant="v6:" + a.value.replace("-", "_"), severity=sev,
            detail=d, unique_id=p.unique_id or "", **v,
        )]  # fmt: skip
    if p.offered is False:
        sev = Severity.FAIL if alone else Severity.INFO
        return [make(
            "UPNP_MAPPING_MISSING", variant="v6:not_offered" + (":alone" if alone else ""),
            severity=sev, detail={"offered": False, **d}, **v,
        )]  # fmt: skip
    sev = Severity.FAIL if alone or not ipv4_done else Severity.WARN
    return [make(
        "UPNP_MAPPING_MISSING", variant="v6:failed" + (":error_fix" if p.error_fix else ""),
        severity=sev, detail={"error_code": p.error_code, "error_name": p.error_name, **d},
        error_fix=p.error_fix, **v,
    )]  # fmt: skip


def with_pinhole_entry(e: PacsEntry | None, p: PinholeResult | None) -> PacsEntry | None:
    """The IPv4 entry, with the IPv6 one as its alternative where the pinhole is open."""
    if e is None or p is None or not p.done or p.status is not Status.OK or not p.internal_client:
        return e
    note = "over IPv6, through the pinhole (a PACS given a host name may try IPv6 first)"
    return replace(e, alternatives=(*e.alternatives, ("ipv6", p.internal_client, note)))


def pinhole_entry(ctx: Context, p: PinholeResult) -> PacsEntry | None:
    """--family 6: the PC's own global IPv6 address and port, once the pinhole is open."""
    if not p.done or p.status is not Status.OK or not p.internal_client:
        return None
    return PacsEntry(
        aet=ctx.aet or "",
        host=p.internal_client,
        port=p.internal_port,
        note="this PC's global IPv6 address (no NAT on IPv6); the PACS must reach it over IPv6",
    )
