"""Result types of the local and network probes of `check` (listeners, interfaces, public
address, router): data only, so that diagnosis/ reads them without the probes' I/O."""

from __future__ import annotations

from dataclasses import dataclass

from reverseprobe.addresses import AddressClass
from reverseprobe.model import ProbeResult, Status
from reverseprobe.model.dicom import EchoResult
from reverseprobe.model.forward import PortMapping


@dataclass(frozen=True)
class ListeningSocket:
    address: str
    port: int
    family: str  # ipv4 | ipv6
    pid: int | None
    process: str | None  # None: not visible without elevated rights
    # IPV6_V6ONLY of an IPv6 socket (RFC 3493 5.3): True takes IPv6 only, False IPv4 too
    # (IPv4-mapped); None: IPv4 socket, or another process's socket we cannot read.
    v6only: bool | None = None

    @property
    def wildcard(self) -> bool:
        return self.address in ("0.0.0.0", "::")

    @property
    def loopback(self) -> bool:
        return self.address.startswith("127.") or self.address == "::1"


@dataclass(frozen=True, kw_only=True)
class ListenersResult(ProbeResult):
    port: int
    sockets: tuple[ListeningSocket, ...] = ()
    echoes: tuple[EchoResult, ...] = ()
    pids_visible: bool = True
    # /proc/sys/net/ipv6/bindv6only: the IPV6_V6ONLY a socket gets unless it sets its own
    # (Linux; None elsewhere or unreadable)
    bindv6only: bool | None = None


def overlapping(sockets: tuple[ListeningSocket, ...] | list[ListeningSocket]) -> bool:
    """Two programs, or two sockets of one family that can take the same connection
    (SO_REUSEPORT twins; 0.0.0.0 beside a specific address). A program's IPv4 socket beside
    its own IPv6 socket is normal dual-stack, not "listening twice"."""
    if len({s.pid for s in sockets}) > 1:
        return True
    for i, a in enumerate(sockets):
        for b in sockets[i + 1 :]:
            if a.family == b.family and (a.address == b.address or a.wildcard or b.wildcard):
                return True
    return False


@dataclass(frozen=True)
class InterfaceAddress:
    address: str
    family: str  # ipv4 | ipv6
    netmask: str | None
    klass: AddressClass


@dataclass(frozen=True)
class Interface:
    name: str
    up: bool | None
    tunnel: str | None  # why we think it is a tunnel, or None
    addresses: tuple[InterfaceAddress, ...]


@dataclass(frozen=True, kw_only=True)
class InterfacesResult(ProbeResult):
    interfaces: tuple[Interface, ...] = ()
    default_gateway: str | None = None
    default_interface: str | None = None
    source_address: str | None = None  # toward the default route (IPv4)
    source_interface: str | None = None
    source_address_v6: str | None = None
    route_via_tunnel: str | None = None  # the tunnel interface carrying the default route

    def interface(self, name: str | None) -> Interface | None:
        return next((i for i in self.interfaces if i.name == name), None)

    @property
    def lan_address(self) -> str | None:
        return self.source_address


@dataclass(frozen=True)
class SourceAnswer:
    """What one source said: an address, or why it did not give one."""

    source: str
    address: str | None
    error: str | None
    elapsed_ms: float


@dataclass(frozen=True, kw_only=True)
class PublicIpFamily:
    """The services' vote over one address family (issue 15): a dual-stack line has a NATed
    IPv4 address and a routed IPv6 one, and a PACS may be given either."""

    family: str  # ipv4 | ipv6
    status: Status  # ok: some service answered over this family; fail: none did
    address: str | None = None
    answers: tuple[SourceAnswer, ...] = ()
    consistent: bool | None = None
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class PublicIpResult(ProbeResult):
    address: str | None = None  # the vote's winner; None: nobody answered (or not checked)
    answers: tuple[SourceAnswer, ...] = ()
    consistent: bool | None = None  # None: fewer than two answers to compare
    # per family, IPv4 first; the fields above are the IPv4 family's (and the status is its)
    families: tuple[PublicIpFamily, ...] = ()

    def of(self, family: str) -> PublicIpFamily | None:
        return next((f for f in self.families if f.family == family), None)


@dataclass(frozen=True, kw_only=True)
class RouterResult(ProbeResult):
    port: int
    gateway: str | None = None
    lan_address: str | None = None  # our address toward the IGD (what a mapping must name)
    igd_location: str | None = None  # None: no IGD answered (see upnp_error)
    igd_server: str | None = None  # the SSDP SERVER header: the router's make
    connection_status: str | None = None  # GetStatusInfo: Connected, Disconnected...
    external_ip: str | None = None  # GetExternalIPAddress ("" = the router has none)
    mapping: PortMapping | None = None  # for TCP `port`
    mapping_checked: bool = False
    upnp_error: str | None = None  # why the IGD could not be used
    # How an IGD that answered SSDP then failed: "garbage" (it sent something that is no valid
    # UPnP answer: too long, not XML, a value out of range), "timeout" (it stopped answering)
    # or "error" (a UPnP error, a refused connection).
    # None: it worked, or no IGD answered at all. Not the same as "no UPnP here".
    upnp_fault: str | None = None
    natpmp_external_ip: str | None = None
    natpmp_result: int | None = None  # RFC 6886 result code; None: no answer / not asked
    natpmp_error: str | None = None

    @property
    def igd_found(self) -> bool:
        return self.igd_location is not None
