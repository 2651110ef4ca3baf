"""What `forward` says it will ask of the router before it asks, and the manual procedure
where nothing could be done (no IGD, double NAT, a refusal): the router's admin address (the
default gateway), the forwarding rule to add, and what to give the PACS administrator (pure).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reverseprobe.model.forward import Request


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
