"""Result types of the NAT-layer probes (issue 13): is this PC a container or VM behind its
host's NAT, is the port published to a container on this PC, and the hops toward the outside.
Data only, so that diagnosis/ reads them without the probes' I/O."""

from __future__ import annotations

from dataclasses import dataclass

from reverseprobe.model import ProbeResult


@dataclass(frozen=True)
class Evidence:
    """One signal and what it points to (`kind`: docker, podman, wsl2, virtualbox, vmware,
    kubernetes, container-proxy, dnat); `nat`: it shows a NAT by the host (True), direct
    networking (False), or says nothing about NAT (None)."""

    signal: str  # e.g. "/.dockerenv", "default route", "kernel release"
    kind: str
    value: str
    nat: bool | None = None


@dataclass(frozen=True, kw_only=True)
class VirtualResult(ProbeResult):
    """`verdict`: "virtual-nat" (a container/VM behind its host's NAT), "virtual-direct" (a
    container/VM without a NAT of its own: host networking, bridged adapter), "none" (no signal),
    "could-not-tell" (signals conflict). None: not checked."""

    verdict: str | None = None
    kind: str | None = None  # the one platform the evidence names, where it names one
    address: str | None = None  # this PC's address inside the virtual network
    gateway: str | None = None  # the host side of the virtual network
    evidence: tuple[Evidence, ...] = ()
    # The receiver on this PC runs in a container (the other way round): the address the
    # port is sent on to, and the evidence (docker-proxy owning it, a DNAT rule).
    container_address: str | None = None
    container_port: int | None = None
    container_evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True)
class PathHop:
    ttl: int
    address: str | None  # None: no answer at this TTL
    klass: str | None  # addresses.AddressClass value
    reached: bool = False  # the destination itself answered (ICMP port unreachable)
    rtt_ms: float | None = None


@dataclass(frozen=True, kw_only=True)
class PathResult(ProbeResult):
    """The hops toward `target` with TTL-limited UDP (RFC 792 Time Exceeded, RFC 1812 4.3.2)."""

    target: str | None = None
    method: str | None = None  # "udp-recverr" (Linux IP_RECVERR, no privileges)
    hops: tuple[PathHop, ...] = ()
    reached: bool = False

    @property
    def private_before_public(self) -> tuple[str, ...]:
        """The private/shared hops before the first public one (each one answered)."""
        out: list[str] = []
        for h in self.hops:
            if h.klass == "public" or h.reached:
                break
            if h.address and h.klass in ("private", "shared"):
                out.append(h.address)
        return tuple(out)

    @property
    def shared_hops(self) -> tuple[str, ...]:
        return tuple(h.address for h in self.hops if h.address and h.klass == "shared")
