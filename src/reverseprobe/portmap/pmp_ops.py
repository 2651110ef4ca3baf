"""`forward` over PCP (RFC 6887) with a fall back to NAT-PMP (RFC 6886).

Both protocols only ever map ports to the asking PC, so another host's mapping is never at
risk here; neither can read a mapping back or list the router's table, so the router's answer
is all we know (said so in the result). Measured with miniupnpd 2.3.1: a PCP mapping is renewed
or deleted only with its nonce (another nonce gets NOT_AUTHORIZED, and a NAT-PMP delete leaves
it in place), hence the nonce store; PCP lifetimes are clamped to 120-86400 s; behind a carrier
NAT PCP answers NO_RESOURCES where NAT-PMP says NETWORK_FAILURE, so a refusal is followed by a
NAT-PMP external-address request, which tells double NAT apart.
"""

from __future__ import annotations

import socket
from dataclasses import replace

from reverseprobe.addresses import classify
from reverseprobe.deadline import Deadline
from reverseprobe.model import Status
from reverseprobe.portmap import natpmp
from reverseprobe.portmap.natpmp import AddressResult, Mapping, NoAnswer
from reverseprobe.portmap.outcome import Action, MappingResult, PortmapRouterResult, Request, Via
from reverseprobe.portmap.state import NonceStore, key
from reverseprobe.portmap.wire import Method, NatPmpResult, PcpResult

PERMANENT_ASK = 7 * 24 * 3600  # neither protocol has permanent mappings: ask long, report granted
ASK_BUDGET_S = 2.0  # one request with its retransmissions at 250, 500, 1000 ms
_VIA = {Method.PCP: Via.PCP, Method.NATPMP: Via.NATPMP}


def _client(gateway: str) -> str | None:
    from reverseprobe.routes import route_source

    return route_source(gateway, socket.AF_INET)


def _router(  # noqa: PLR0913 - keyword-only fields of the result it builds
    gateway: str,
    client: str | None,
    via: Via | None,
    tried: list[str],
    *,
    address: AddressResult | None = None,
    external: str | None = None,
) -> PortmapRouterResult:
    ext = external or (address.address if address is not None else None)
    found = via is not None or (address is not None and address.result is not None)
    return PortmapRouterResult(
        status=Status.OK if found else Status.FAIL,
        reason=None if found else f"neither PCP nor NAT-PMP answered at {gateway}:5351",
        via=via or (Via.NATPMP if found else None),
        gateway=gateway,
        lan_address=client,
        external_ip=ext,
        external_ip_class=classify(ext).value if ext else None,
        connection_status=(
            address.meaning if address is not None and address.result not in (0, None) else None
        ),
        tried=tuple(tried),
    )


def _base(req: Request, client: str | None) -> MappingResult:
    return MappingResult(
        status=Status.OK,
        action=Action.NOT_TRIED,
        external_port=req.external_port,
        internal_port=req.port,
        internal_client=client,
        description=None,  # NAT-PMP and PCP carry no description
        lease_requested=req.lease,
    )


def _ask(  # noqa: PLR0913 - keyword-only fields of one RFC 6886/6887 request
    gateway: str,
    req: Request,
    method: Method,
    *,
    lifetime: int,
    nonce: bytes | None,
    d: Deadline,
) -> Mapping:
    return natpmp.map_port(
        gateway,
        req.port,
        external_port=req.external_port,
        lifetime=lifetime,
        protocol=req.protocol,
        method=method,
        nonce=nonce,
        timeout=d.share(ASK_BUDGET_S, reserve=0.1),
    )


def add(
    gateway: str, req: Request, store: NonceStore | None, deadline: Deadline
) -> tuple[PortmapRouterResult, MappingResult]:
    """PCP MAP (with the stored nonce: a renewal), else NAT-PMP; report what was granted."""
    client = _client(gateway)
    base = _base(req, client)
    tried: list[str] = []
    if req.dry_run:
        addr = natpmp.external_address(gateway, deadline.share(ASK_BUDGET_S))
        tried.append(f"natpmp: {addr.meaning}")
        via = Via.NATPMP if addr.result is not None else None
        router = _router(gateway, client, via, tried, address=addr)
        if via is None:
            return router, replace(base, status=Status.FAIL, reason=router.reason)
        return router, replace(base, action=Action.WOULD_ADD, via=via)
    lifetime = req.lease or PERMANENT_ASK
    k = key(gateway, client or "", req.protocol, req.port)
    stored = store.get(k) if store is not None else None
    got: Mapping | None = None
    for method in (Method.PCP, Method.NATPMP):
        try:
            m = _ask(gateway, req, method, lifetime=lifetime, nonce=stored, d=deadline)
        except NoAnswer as exc:
            tried.append(f"{method.value}: {exc}")
            continue
        tried.append(f"{method.value}: {m.meaning}")
        if method is Method.PCP and m.result == PcpResult.UNSUPP_VERSION:
            continue
        got = m
        break
    if got is None:
        return _router(gateway, client, None, tried), replace(
            base, status=Status.FAIL, reason="; ".join(tried)
        )
    via = _VIA[got.method]
    base = replace(base, via=via, internal_client=got.client_address)
    if not got.ok:
        addr = natpmp.external_address(gateway, deadline.share(ASK_BUDGET_S))
        return _router(gateway, got.client_address, via, tried, address=addr), replace(
            base,
            status=Status.FAIL,
            action=Action.REFUSED,
            reason=f"{got.method.value} result {got.result}: {got.meaning}",
            error_code=got.result,
            error_name=_result_name(got),
            error_meaning=got.meaning,
            error_fix=got.fix,
        )
    note = None
    pcp = got.method is Method.PCP and got.nonce is not None
    if pcp and store is not None and got.nonce is not None and not store.put(k, got.nonce):
        note = f"could not save the PCP nonce in {store.path}: a later run cannot renew it"
    external = got.external_address
    after: AddressResult | None = None
    if external is None:
        after = natpmp.external_address(gateway, deadline.share(ASK_BUDGET_S))
    renewal = got.method is Method.PCP and stored is not None
    return _router(
        gateway, got.client_address, via, tried, address=after, external=external
    ), replace(
        base,
        action=Action.RENEWED if renewal else Action.ADDED,
        lease_granted=got.lifetime,
        assigned_external_port=got.external_port,
        verified=None,  # the router's answer states the mapping; it cannot be read back
        note=note
        or (
            "asked again with the PCP nonce of an earlier run"
            if renewal
            else "NAT-PMP cannot tell a new mapping from a renewed one"
            if got.method is Method.NATPMP
            else None
        ),
    )


def _result_name(m: Mapping) -> str:
    enum = PcpResult if m.method is Method.PCP else NatPmpResult
    try:
        return enum(m.result).name
    except ValueError:
        return str(m.result)


def remove(
    gateway: str, req: Request, store: NonceStore | None, deadline: Deadline
) -> tuple[PortmapRouterResult, MappingResult]:
    """PCP delete with the stored nonce; NAT-PMP delete otherwise (it cannot remove a PCP
    mapping whose nonce is lost, and says success either way)."""
    client = _client(gateway)
    base = _base(req, client)
    k = key(gateway, client or "", req.protocol, req.port)
    stored = store.get(k) if store is not None else None
    tried: list[str] = []
    if req.dry_run:
        return _router(gateway, client, None, ["not asked: --dry-run"]), replace(
            base, action=Action.WOULD_REMOVE, status=Status.OK
        )
    method = Method.PCP if stored is not None else Method.NATPMP
    mapping = Mapping(
        method=method,
        gateway=gateway,
        client_address=client or "",
        protocol=req.protocol,
        internal_port=req.port,
        external_port=req.external_port,
        lifetime=0,
        result=0,
        meaning="",
        nonce=stored,
    )
    try:
        gone = natpmp.unmap(mapping, timeout=deadline.share(ASK_BUDGET_S))
    except NoAnswer as exc:
        tried.append(f"{method.value}: {exc}")
        return _router(gateway, client, None, tried), replace(
            base, status=Status.FAIL, action=Action.FAILED, reason=str(exc)
        )
    tried.append(f"{method.value}: {gone.meaning}")
    via = _VIA[method]
    if not gone.ok:
        return _router(gateway, client, via, tried), replace(
            base,
            via=via,
            status=Status.FAIL,
            action=Action.REFUSED,
            reason=gone.meaning,
            error_code=gone.result,
            error_name=_result_name(gone),
            error_meaning=gone.meaning,
            error_fix=gone.fix,
        )
    if stored is not None and store is not None:
        store.drop(k)
    note = (
        "with the PCP nonce of the run that made it"
        if stored is not None
        else "NAT-PMP says success whether or not a mapping existed, and cannot remove a PCP "
        "mapping whose nonce is lost: check with --list (UPnP) if the router speaks UPnP"
    )
    return _router(gateway, client, via, tried), replace(
        base, via=via, action=Action.REMOVED, verified=None, note=note
    )
