"""`forward`'s IPv6 pinhole (issue 15; UPnP IGDv2 WANIPv6FirewallControl, PCP RFC 6887):
the announcement's IPv6 part, the pinhole's findings under the mapping codes, and the PACS
entry over IPv6 (pure)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from reverseprobe.diagnosis.catalogue import make
from reverseprobe.diagnosis.forward.announce import Context
from reverseprobe.model import Finding, PacsEntry, Severity, Status
from reverseprobe.model.forward import Action, PinholeResult, Request, Via


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
