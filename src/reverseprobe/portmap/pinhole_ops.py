"""`forward`'s IPv6 pinhole: open it beside the IPv4 mapping, read it back, remove exactly ours.

Safe means what it means for the IPv4 mapping (upnp_ops): a pinhole is only ever for this PC's
own address (the router checks that too), a re-run renews the pinhole it made instead of adding
another, and `--remove` removes only a pinhole recorded in the state file as made by us (UPnP by
its UniqueID, PCP by its nonce), after the router confirms the UniqueID still is this PC's
(CheckPinholeWorking answers 606 for another address's pinhole). A router without a pinhole
service, or one that says InboundPinholeAllowed=0 (or 703), is `offered=False`: reported, never
a failure of the IPv4 part.
"""

from __future__ import annotations

from dataclasses import replace

from reverseprobe.deadline import Deadline
from reverseprobe.model import Status
from reverseprobe.model.forward import Action, PinholeResult, Request, Via
from reverseprobe.portmap import natpmp
from reverseprobe.portmap.errors import UpnpError, UpnpTimeout
from reverseprobe.portmap.pinhole import PinholeControl, find_service, ipv6_url, pinhole_lease
from reverseprobe.portmap.state import OwnedPinhole, PinholeStore, pinhole_key
from reverseprobe.portmap.wire import Method, PcpResult

CALL_S = 3.0  # one SOAP exchange or one PCP request with its retransmissions
_NOT_ALLOWED = (702, 703)  # FirewallDisabled, InboundPinholeNotAllowed
_NOT_AUTHORIZED = 606


def _base(req: Request, client: str | None, router: str | None, via: Via | None) -> PinholeResult:
    return PinholeResult(
        status=Status.SKIPPED,
        action=Action.NOT_TRIED,
        via=via,
        protocol=req.protocol,
        internal_client=client,
        internal_port=req.port,
        router=router,
        lease_requested=req.lease,
    )


def not_tried(req: Request, client: str | None, router: str | None, why: str) -> PinholeResult:
    """No pinhole asked for (no global IPv6 address, no IPv6 route, --family 4 ...)."""
    return replace(_base(req, client, router, None), reason=why)


def _error(base: PinholeResult, exc: UpnpError, what: str, **more: object) -> PinholeResult:
    timeout = isinstance(exc, UpnpTimeout)
    not_allowed = exc.code in _NOT_ALLOWED
    return replace(
        base,
        status=Status.SKIPPED if not_allowed else Status.TIMEOUT if timeout else Status.FAIL,
        action=Action.FAILED if timeout or exc.code is None else Action.REFUSED,
        offered=False if not_allowed else base.offered,
        reason=f"{what}: {exc.describe()}",
        error_code=exc.code,
        error_name=exc.name,
        error_meaning=exc.meaning,
        error_fix=exc.fix,
        **more,  # type: ignore[arg-type]
    )


def open_upnp(  # noqa: PLR0911, PLR0913 - one return per step; keyword-only facts
    req: Request,
    *,
    location: str,
    router6: str,
    client6: str,
    store: PinholeStore | None,
    deadline: Deadline,
) -> PinholeResult:
    """WANIPv6FirewallControl:1: status, AddPinhole (or UpdatePinhole of our recorded one),
    CheckPinholeWorking to read it back, then record the UniqueID."""
    base = _base(req, client6, router6, Via.UPNP)
    try:
        url = find_service(location, deadline.share(CALL_S))
    except UpnpError as exc:
        return _error(base, exc, "reading the IGD description")
    if url is None:
        return replace(
            base,
            offered=False,
            reason="the router's IGD offers no IPv6 pinhole service (WANIPv6FirewallControl)",
        )
    ctl = PinholeControl(ipv6_url(url, router6), timeout=deadline.share(CALL_S))
    base = replace(base, service_url=ctl.control_url, offered=True)
    try:
        ctl.timeout = deadline.share(CALL_S)
        st = ctl.status()
    except UpnpError as exc:
        return _error(base, exc, "GetFirewallStatus")
    base = replace(base, firewall_enabled=st.enabled, inbound_allowed=st.inbound_allowed)
    if not st.enabled:
        return replace(
            base,
            offered=False,
            reason="the router's IPv6 firewall is off (FirewallEnabled=0): nothing to open",
        )
    if not st.inbound_allowed:
        return replace(
            base,
            offered=False,
            reason="the router does not let programs open its IPv6 firewall "
            "(InboundPinholeAllowed=0)",
        )
    if req.dry_run:
        return replace(base, status=Status.OK, action=Action.WOULD_ADD)
    lease = pinhole_lease(req.lease)
    k = pinhole_key(router6, client6, req.protocol, req.port, "upnp")
    owned = store.get_pinhole(k) if store is not None else None
    action = Action.ADDED
    try:
        ctl.timeout = deadline.share(CALL_S)
        uid = ctl.add(client6, req.port, lease)
        if owned is not None and owned.unique_id == uid:
            action = Action.RENEWED  # the router extends an identical pinhole (2.4.3)
    except UpnpError as exc:
        return _error(base, exc, "AddPinhole")
    base = replace(base, unique_id=uid, lease_granted=lease, action=action)
    note = None if lease == req.lease else f"asked for {lease} s: a pinhole lasts 1-86400 s"
    recorded = None
    if store is not None:
        recorded = store.put_pinhole(
            k,
            OwnedPinhole(
                via="upnp",
                router=router6,
                client=client6,
                protocol=req.protocol,
                internal_port=req.port,
                unique_id=uid,
                service_url=ctl.control_url,
            ),
        )
    base = replace(base, recorded=recorded, note=note)
    try:
        ctl.timeout = deadline.share(CALL_S)
        there = ctl.exists(uid)
    except UpnpError as exc:
        return replace(
            base,
            status=Status.ERROR,
            reason=f"added, but reading it back failed: {exc.describe()}",
        )
    if not there:
        return replace(
            base,
            status=Status.FAIL,
            verified=False,
            reason=f"the router gave UniqueID {uid}, but reading it back shows no such pinhole",
        )
    return replace(base, status=Status.OK, verified=True)


def remove_upnp(  # noqa: PLR0911 - one return per step that can end it
    req: Request,
    *,
    router6: str,
    client6: str,
    store: PinholeStore | None,
    deadline: Deadline,
) -> PinholeResult:
    """DeletePinhole of the UniqueID we recorded, once the router confirms it is ours."""
    base = _base(req, client6, router6, Via.UPNP)
    k = pinhole_key(router6, client6, req.protocol, req.port, "upnp")
    owned = store.get_pinhole(k) if store is not None else None
    if owned is None or owned.unique_id is None or owned.service_url is None:
        return replace(
            base,
            status=Status.OK,
            action=Action.ABSENT,
            reason="no pinhole made by reverseprobe is recorded for this address and port",
        )
    uid = owned.unique_id
    base = replace(base, unique_id=uid, service_url=owned.service_url, offered=True)
    ctl = PinholeControl(owned.service_url, timeout=deadline.share(CALL_S))
    try:
        there = ctl.exists(uid)
    except UpnpError as exc:
        if exc.code == _NOT_AUTHORIZED:
            if store is not None:
                store.drop_pinhole(k)
            return replace(
                base,
                status=Status.FAIL,
                action=Action.HELD_BY_OTHER,
                reason=f"UniqueID {uid} is now another address's pinhole (the router was "
                "restarted?): not touched, and forgotten",
            )
        return _error(base, exc, "CheckPinholeWorking")
    if not there:
        if store is not None:
            store.drop_pinhole(k)
        return replace(
            base,
            status=Status.OK,
            action=Action.ABSENT,
            verified=True,
            reason=f"the router no longer holds pinhole {uid} (expired or removed)",
        )
    if req.dry_run:
        return replace(base, status=Status.OK, action=Action.WOULD_REMOVE)
    try:
        ctl.timeout = deadline.share(CALL_S)
        ctl.delete(uid)
    except UpnpError as exc:
        return _error(base, exc, "DeletePinhole")
    if store is not None:
        store.drop_pinhole(k)
    done = replace(base, status=Status.OK, action=Action.REMOVED)
    try:
        ctl.timeout = deadline.share(CALL_S)
        still = ctl.exists(uid)
    except UpnpError as exc:
        # miniupnpd 2.3.1 answers 402 (not 704) for a UniqueID it has deleted
        return replace(done, verified=None, note=f"removed; the read-back said {exc}")
    if still:
        return replace(
            done,
            status=Status.FAIL,
            action=Action.FAILED,
            verified=False,
            reason=f"the router still holds pinhole {uid}",
        )
    return replace(done, verified=True)


def open_pcp(
    req: Request,
    *,
    router6: str,
    client6: str,
    store: PinholeStore | None,
    deadline: Deadline,
) -> PinholeResult:
    """PCP MAP to the router's IPv6 address (RFC 6887 11), with our recorded nonce when we made
    it before (a renewal); the suggested external address is the internal one (8.1)."""
    base = _base(req, client6, router6, Via.PCP)
    if req.dry_run:
        return replace(base, status=Status.OK, action=Action.WOULD_ADD, note="PCP not asked")
    k = pinhole_key(router6, client6, req.protocol, req.port, "pcp")
    owned = store.get_pinhole(k) if store is not None else None
    try:
        m = natpmp.map_port(
            router6,
            req.port,
            external_port=req.port,
            lifetime=req.lease or pinhole_lease(0),
            protocol=req.protocol,
            method=Method.PCP,
            nonce=owned.nonce if owned is not None else None,
            timeout=deadline.share(CALL_S, reserve=0.1),
            external_address="",
        )
    except natpmp.NoAnswer as exc:
        return replace(base, offered=False, reason=f"no PCP answer from [{router6}]:5351: {exc}")
    if m.result == PcpResult.UNSUPP_VERSION:
        return replace(base, offered=False, reason=f"the router does not speak PCP: {m.meaning}")
    if not m.ok:
        return replace(
            base,
            status=Status.FAIL,
            action=Action.REFUSED,
            offered=True,
            reason=f"PCP result {m.result}: {m.meaning}",
            error_code=m.result,
            error_name=_pcp_name(m.result),
            error_meaning=m.meaning,
            error_fix=m.fix,
        )
    recorded = None
    if store is not None and m.nonce is not None:
        recorded = store.put_pinhole(
            k,
            OwnedPinhole(
                via="pcp",
                router=router6,
                client=m.client_address or client6,
                protocol=req.protocol,
                internal_port=req.port,
                nonce=m.nonce,
            ),
        )
    odd = m.external_address not in (None, client6) or m.external_port != req.port
    return replace(
        base,
        status=Status.OK,
        action=Action.RENEWED if owned is not None else Action.ADDED,
        offered=True,
        lease_granted=m.lifetime,
        recorded=recorded,
        verified=None,  # PCP cannot read a mapping back: the answer is all we know
        note=(
            f"the router answered external [{m.external_address}]:{m.external_port}"
            if odd
            else "PCP cannot read a pinhole back: the router's answer is the proof"
        ),
    )


def remove_pcp(
    req: Request,
    *,
    router6: str,
    client6: str,
    store: PinholeStore | None,
    deadline: Deadline,
) -> PinholeResult:
    """PCP MAP with lifetime 0 and the nonce that made the pinhole (RFC 6887 15)."""
    base = _base(req, client6, router6, Via.PCP)
    k = pinhole_key(router6, client6, req.protocol, req.port, "pcp")
    owned = store.get_pinhole(k) if store is not None else None
    if owned is None or owned.nonce is None:
        return replace(
            base,
            status=Status.OK,
            action=Action.ABSENT,
            reason="no PCP pinhole made by reverseprobe is recorded for this address and port",
        )
    if req.dry_run:
        return replace(base, status=Status.OK, action=Action.WOULD_REMOVE, offered=True)
    mapping = natpmp.Mapping(
        method=Method.PCP,
        gateway=router6,
        client_address=owned.client,
        protocol=req.protocol,
        internal_port=req.port,
        external_port=req.port,
        lifetime=0,
        result=0,
        meaning="",
        external_address=owned.client,
        nonce=owned.nonce,
    )
    try:
        gone = natpmp.unmap(mapping, timeout=deadline.share(CALL_S, reserve=0.1))
    except natpmp.NoAnswer as exc:
        return replace(base, status=Status.FAIL, action=Action.FAILED, reason=str(exc))
    if not gone.ok:
        return replace(
            base,
            status=Status.FAIL,
            action=Action.REFUSED,
            reason=f"PCP result {gone.result}: {gone.meaning}",
            error_code=gone.result,
            error_name=_pcp_name(gone.result),
            error_meaning=gone.meaning,
            error_fix=gone.fix,
        )
    if store is not None:
        store.drop_pinhole(k)
    return replace(
        base, status=Status.OK, action=Action.REMOVED, offered=True, note="with its PCP nonce"
    )


def _pcp_name(code: int) -> str:
    try:
        return PcpResult(code).name
    except ValueError:
        return str(code)
