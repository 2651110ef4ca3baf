"""`forward` over UPnP IGD: add, remove or list the mapping of one port, safely.

Safe means: read what the router holds first; never touch a mapping of another host (or of
another port on this PC) without --force; do nothing when the mapping is already in place
(idempotent); read the mapping back after a change and report what the router really holds,
not what we asked for (routers clamp leases and rewrite what they do not like).
"""

from __future__ import annotations

from dataclasses import replace

from reverseprobe.addresses import classify
from reverseprobe.model import Status
from reverseprobe.portmap.errors import UpnpError, UpnpTimeout
from reverseprobe.portmap.igd import Igd, PortMapping
from reverseprobe.portmap.outcome import Action, MappingResult, PortmapRouterResult, Request, Via

_PERMANENT_RETRY = 725  # OnlyPermanentLeasesSupported: retry with lease 0
_CONFLICT = 718


def read_router(
    igd: Igd, gateway: str | None, *, listing: bool = False, tried: tuple[str, ...] = ()
) -> PortmapRouterResult:
    """Status, external address (and with `listing` every mapping) of the IGD."""
    problems: list[str] = []
    status = ext = None
    mappings: tuple[PortMapping, ...] | None = None
    try:
        status = igd.status()[0]
    except UpnpError as exc:
        problems.append(f"GetStatusInfo: {exc.describe()}")
    try:
        ext = igd.external_ip()
    except UpnpError as exc:
        problems.append(f"GetExternalIPAddress: {exc.describe()}")
    if listing:
        try:
            mappings = tuple(igd.list_mappings())
        except UpnpError as exc:
            problems.append(f"GetGenericPortMappingEntry: {exc.describe()}")
    return PortmapRouterResult(
        status=Status.OK if not problems else Status.ERROR,
        reason="; ".join(problems) or None,
        via=Via.UPNP,
        gateway=gateway,
        lan_address=igd.lan_address or None,
        igd_location=igd.location,
        igd_server=igd.ssdp.server if igd.ssdp else None,
        connection_status=status,
        external_ip=ext,
        external_ip_class=classify(ext).value if ext else None,
        mappings=mappings,
        tried=(*tried, "upnp: IGD answered"),
    )


def _ours(m: PortMapping, lan: str, port: int) -> bool:
    return m.internal_client == lan and m.internal_port == port


def _held(m: PortMapping) -> str:
    return f"{m.internal_client}:{m.internal_port}"


def _base(req: Request, lan: str | None) -> MappingResult:
    """The fields every outcome for `req` shares; replace() fills in the rest."""
    return MappingResult(
        status=Status.OK,
        action=Action.NOT_TRIED,
        via=Via.UPNP,
        external_port=req.external_port,
        internal_port=req.port,
        internal_client=lan,
        description=req.description,
        lease_requested=req.lease,
    )


def _failed(
    req: Request,
    lan: str,
    exc: UpnpError,
    *,
    before: PortMapping | None = None,
    held_by: str | None = None,
) -> MappingResult:
    timeout = isinstance(exc, UpnpTimeout)
    return replace(
        _base(req, lan),
        status=Status.TIMEOUT if timeout else Status.FAIL,
        reason=exc.describe(),
        action=Action.FAILED if timeout or exc.code is None else Action.REFUSED,
        before=before,
        held_by=held_by,
        error_code=exc.code,
        error_name=exc.name,
        error_meaning=exc.meaning,
        error_fix=exc.fix,
    )


def add(igd: Igd, req: Request) -> MappingResult:  # noqa: PLR0911, PLR0912 - one return per decision (held, foreign, dry run, failed)
    """Make TCP external_port forward to this PC's port; see the module docstring."""
    lan = igd.lan_address
    base = _base(req, lan)
    try:
        before = igd.get_mapping(req.external_port, req.protocol)
    except UpnpError as exc:
        return _failed(req, lan, exc)
    action = Action.ADDED
    held_source = _source_of(igd, req) if before is not None and req.remote_host else None
    if (
        before is not None
        and _ours(before, lan, req.port)
        and before.enabled
        and (held_source is None or held_source == req.remote_host)
    ):
        # In place, and lasting at least as long as asked (permanent is 0; miniupnpd shows it
        # as a 604800 s countdown): nothing to do, and a longer lease is never shortened.
        if req.lease == 0 or before.lease == 0 or before.lease >= req.lease:
            return replace(
                base,
                status=Status.OK,
                action=Action.UNCHANGED,
                before=before,
                verified=True,
                lease_granted=before.lease,
                assigned_external_port=req.external_port,
                note="already in place: nothing changed",
            )
        action = Action.RENEWED
    elif before is not None and not _ours(before, lan, req.port):
        if not req.force:
            return replace(
                base,
                status=Status.FAIL,
                action=Action.HELD_BY_OTHER,
                before=before,
                held_by=_held(before),
                reason=f"the port is forwarded to {_held(before)}",
            )
        action = Action.REPLACED
    elif before is not None:  # ours but disabled
        action = Action.RENEWED
    if req.dry_run:
        note = f"would replace the mapping to {_held(before)}" if before else None
        return replace(
            base,
            status=Status.OK,
            action=Action.WOULD_ADD,
            before=before,
            note=note,
            held_by=_held(before) if action is Action.REPLACED and before else None,
        )
    if action is Action.REPLACED or (action is Action.RENEWED and held_source is not None):
        try:
            igd.delete_mapping(req.external_port, req.protocol)
        except UpnpError as exc:
            return _failed(req, lan, exc, before=before, held_by=_held(before) if before else None)
    lease, note = req.lease, None
    try:
        igd.add_mapping(
            req.external_port, lan, req.port, req.description, lease, req.protocol, req.remote_host
        )
    except UpnpError as exc:
        if exc.code == _PERMANENT_RETRY and lease > 0:
            lease, note = 0, "the router accepts only permanent mappings: added as permanent"
            try:
                igd.add_mapping(
                    req.external_port,
                    lan,
                    req.port,
                    req.description,
                    0,
                    req.protocol,
                    req.remote_host,
                )
            except UpnpError as exc2:
                return _failed(req, lan, exc2, before=before)
        else:
            held = None
            if exc.code == _CONFLICT:
                held = _held_now(igd, req)
            return _failed(req, lan, exc, before=before, held_by=held)
    return _read_back(igd, req, action, before, note)


def _held_now(igd: Igd, req: Request) -> str | None:
    try:
        m = igd.get_mapping(req.external_port, req.protocol)
    except UpnpError:
        return None
    return _held(m) if m is not None else None


def _read_back(
    igd: Igd, req: Request, action: Action, before: PortMapping | None, note: str | None
) -> MappingResult:
    lan = igd.lan_address
    base = replace(_base(req, lan), before=before)
    try:
        after = igd.get_mapping(req.external_port, req.protocol)
    except UpnpError as exc:
        return replace(
            base,
            status=Status.ERROR,
            action=action,
            verified=None,
            note=note,
            reason=f"added, but reading it back failed: {exc.describe()}",
        )
    if after is None or not _ours(after, lan, req.port) or not after.enabled:
        seen = "no mapping" if after is None else f"a mapping to {_held(after)}"
        if after is not None and not after.enabled:
            seen = "a disabled mapping"
        return replace(
            base,
            status=Status.FAIL,
            action=action,
            verified=False,
            note=note,
            held_by=_held(after) if after is not None and not _ours(after, lan, req.port) else None,
            reason=f"the router accepted the mapping, but reading it back shows {seen}",
        )
    done = replace(
        base,
        status=Status.OK,
        action=action,
        verified=True,
        lease_granted=after.lease,
        assigned_external_port=after.external_port,
        note=note,
    )
    return _check_source(igd, req, done) if req.remote_host else done


def _source_of(igd: Igd, req: Request) -> str | None:
    """The NewRemoteHost the router holds for the port ("" any), from the generic table
    (GetSpecificPortMappingEntry does not return it); None when it cannot be read."""
    try:
        table = igd.list_mappings()
    except UpnpError:
        return None
    for m in table:
        if m.external_port == req.external_port and m.protocol == req.protocol:
            return m.remote_host
    return None


def _check_source(igd: Igd, req: Request, done: MappingResult) -> MappingResult:
    """--from: a router built without remote-host support may accept NewRemoteHost and map
    for any source (miniupnpd without UPNP_STRICT does): read it back, and undo a mapping
    that admits more than asked, since the user asked for a restricted one."""
    held = _source_of(igd, req)
    if held == req.remote_host:
        return replace(done, remote_host=held)
    if held is None:
        why = "the router's table could not be read to confirm the source restriction"
    else:
        why = "the router ignored the source restriction and admits any source"
    undone = ""
    if done.action is Action.ADDED:
        try:
            igd.delete_mapping(req.external_port, req.protocol)
            undone = ": removed it again"
        except UpnpError as exc:
            undone = f"; removing it again failed ({exc.describe()})"
    return replace(
        done,
        status=Status.FAIL,
        action=Action.REFUSED,
        verified=False,
        remote_host=held,
        reason=f"{why} (asked: only {req.remote_host}){undone}",
    )


def remove(igd: Igd, req: Request) -> MappingResult:  # noqa: PLR0911 - one return per decision (absent, foreign, dry run, failed)
    """Delete the mapping of external_port: only one pointing to this PC unless --force."""
    lan = igd.lan_address
    base = _base(req, lan)
    try:
        before = igd.get_mapping(req.external_port, req.protocol)
    except UpnpError as exc:
        return _failed(req, lan, exc)
    if before is None:
        return replace(
            base,
            status=Status.OK,
            action=Action.ABSENT,
            verified=True,
            note="the router holds no mapping for the port",
        )
    if before.internal_client != lan and not req.force:
        return replace(
            base,
            status=Status.FAIL,
            action=Action.HELD_BY_OTHER,
            before=before,
            held_by=_held(before),
            reason=f"it points to {_held(before)}",
        )
    if req.dry_run:
        return replace(base, status=Status.OK, action=Action.WOULD_REMOVE, before=before)
    try:
        igd.delete_mapping(req.external_port, req.protocol)
        after = igd.get_mapping(req.external_port, req.protocol)
    except UpnpError as exc:
        return _failed(req, lan, exc, before=before)
    if after is not None:
        return replace(
            base,
            status=Status.FAIL,
            action=Action.FAILED,
            before=before,
            verified=False,
            held_by=_held(after),
            reason=f"the router still forwards the port to {_held(after)}",
        )
    return replace(base, status=Status.OK, action=Action.REMOVED, before=before, verified=True)


def status_of_port(igd: Igd, req: Request) -> MappingResult:
    """--list: what the router holds for the requested port (no change)."""
    lan = igd.lan_address
    try:
        m = igd.get_mapping(req.external_port, req.protocol)
    except UpnpError as exc:
        return _failed(req, lan, exc)
    return replace(
        _base(req, lan),
        status=Status.OK,
        action=Action.LISTED,
        internal_port=m.internal_port if m else req.port,
        internal_client=m.internal_client if m else None,
        description=m.description if m else None,
        lease_granted=m.lease if m else None,
        assigned_external_port=req.external_port if m else None,
        before=m,
        held_by=_held(m) if m is not None and m.internal_client != lan else None,
        verified=True,
    )
