"""Result types of `forward` (port mapping by UPnP IGD or NAT-PMP, RFC 6886)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from reverseprobe.model import ProbeResult


@dataclass(frozen=True)
class PortMapping:
    """One entry of the router's port mapping table (IGD GetSpecific/GenericPortMappingEntry)."""

    external_port: int
    protocol: str
    internal_client: str
    internal_port: int
    description: str
    enabled: bool
    lease: int  # seconds left; 0 = permanent
    remote_host: str = ""


class Via(str, Enum):
    UPNP = "upnp"
    PCP = "pcp"
    NATPMP = "natpmp"


class Action(str, Enum):
    """What happened to the mapping for the requested external port."""

    ADDED = "added"
    UNCHANGED = "unchanged"  # already in place: nothing done (idempotent re-run)
    RENEWED = "renewed"  # the same mapping asked again to reset its lease
    REPLACED = "replaced"  # --force: another mapping of the port removed first
    REMOVED = "removed"
    ABSENT = "absent"  # --remove: there was nothing to remove
    HELD_BY_OTHER = "held-by-other"  # refused to touch another host's mapping (no --force)
    REFUSED = "refused"  # the router said no
    FAILED = "failed"  # no answer, or an answer we cannot use
    WOULD_ADD = "would-add"  # --dry-run
    WOULD_REMOVE = "would-remove"
    LISTED = "listed"  # --list
    NOT_TRIED = "not-tried"  # no router to ask


@dataclass(frozen=True)
class Request:
    """What `forward` was asked to do with one port."""

    port: int  # internal port on this PC
    external_port: int
    lease: int  # seconds; 0 = permanent
    description: str
    force: bool = False
    dry_run: bool = False
    protocol: str = "TCP"
    remote_host: str = ""  # --from: the one source admitted ("" = any; UPnP NewRemoteHost)


DONE = (Action.ADDED, Action.UNCHANGED, Action.RENEWED, Action.REPLACED)


@dataclass(frozen=True, kw_only=True)
class PortmapRouterResult(ProbeResult):
    """The router as `forward` saw it (UPnP IGD, else PCP/NAT-PMP)."""

    via: Via | None = None  # the protocol that answered
    gateway: str | None = None
    lan_address: str | None = None  # this PC toward the router: what a mapping must name
    igd_location: str | None = None
    igd_server: str | None = None
    connection_status: str | None = None
    external_ip: str | None = None  # None: not read or the router has none (see status)
    external_ip_class: str | None = None  # addresses.AddressClass value
    mappings: tuple[PortMapping, ...] | None = None  # --list (UPnP); None: not listed
    tried: tuple[str, ...] = ()  # each protocol tried and how it ended, in order


@dataclass(frozen=True, kw_only=True)
class MappingResult(ProbeResult):
    """The mapping for TCP `external_port` -> `internal_client`:`internal_port`."""

    action: Action
    via: Via | None = None
    protocol: str = "TCP"
    external_port: int  # as asked
    internal_port: int
    internal_client: str | None = None
    description: str | None = None
    lease_requested: int = 0  # 0: permanent
    lease_granted: int | None = None  # what the router holds now (seconds left; 0 permanent)
    assigned_external_port: int | None = None  # what the router holds (may differ: NAT-PMP)
    verified: bool | None = None  # read back from the router and matching
    remote_host: str | None = None  # the source the router admits: "" any, None not read
    before: PortMapping | None = None  # what the router held for the port before we acted
    held_by: str | None = None  # "address:port" of the other host that holds the port
    error_code: int | None = None  # UPnP error code or PCP/NAT-PMP result code
    error_name: str | None = None
    error_meaning: str | None = None
    error_fix: str | None = None
    note: str | None = None

    @property
    def done(self) -> bool:
        return self.action in DONE

    @property
    def public_port(self) -> int:
        return self.assigned_external_port or self.external_port


@dataclass(frozen=True, kw_only=True)
class PinholeResult(ProbeResult):
    """The IPv6 pinhole for TCP `internal_port` on this PC's global IPv6 address (issue 15).

    IPv6 has no NAT: the router's IPv6 firewall admits the port or not, so a pinhole has no
    external port. status SKIPPED with `offered` False: the router has no pinhole service (or
    says InboundPinholeAllowed=0); never a failure of the IPv4 mapping."""

    action: Action
    via: Via | None = None
    protocol: str = "TCP"
    internal_client: str | None = None  # this PC's global IPv6 address
    internal_port: int
    router: str | None = None  # the router's IPv6 address we asked
    service_url: str | None = None  # the WANIPv6FirewallControl control URL (UPnP)
    offered: bool | None = None  # the router offers pinholes (None: not asked)
    firewall_enabled: bool | None = None  # GetFirewallStatus FirewallEnabled
    inbound_allowed: bool | None = None  # GetFirewallStatus InboundPinholeAllowed
    unique_id: int | None = None  # UPnP UniqueID of the pinhole
    lease_requested: int = 0
    lease_granted: int | None = None  # PCP: the lifetime granted; UPnP: the LeaseTime accepted
    verified: bool | None = None  # read back (CheckPinholeWorking); None: cannot be (PCP)
    recorded: bool | None = None  # kept in the state file so --remove can remove exactly it
    error_code: int | None = None
    error_name: str | None = None
    error_meaning: str | None = None
    error_fix: str | None = None
    note: str | None = None

    @property
    def done(self) -> bool:
        return self.action in DONE
