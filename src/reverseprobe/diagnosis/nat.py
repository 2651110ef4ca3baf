"""The public address and NAT (pure): what the probes together say this PC's public address is,
whether one NAT or two sit in between, and check's findings about them.

The public address is voted from the public-IP services and the reflector's observed address
(`probes["inbound"].observed_ip`); the router's own external address (UPnP, NAT-PMP) is the
public one only without a second NAT, so it is compared, and used alone only when nothing else
answered. Double NAT (cause 9, `double_nat`, one place for `check` and `forward`): the router's
external address is empty, private, shared (RFC 6598 100.64/10, carrier-grade NAT) or not the
public address; a public one that differs from what the outside sees is another NAT, a
multi-WAN or a VPN path (miniupnp#298, #900).

Addresses are compared per family (issue 15): a dual-stack line has a NATed IPv4 address and a
routed global IPv6 one (no NAT66, RFC 7157), so an IPv4 answer never contradicts an IPv6 one,
and the router's (IPv4) external address is compared with the IPv4 public address only.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reverseprobe.addresses import AddressClass, classify, is_behind_nat_address
from reverseprobe.config import CheckConfig
from reverseprobe.diagnosis.catalogue import DYNAMIC_NOTE, make
from reverseprobe.model import Finding, ProbeResult, Status
from reverseprobe.model.check import InterfacesResult, PublicIpResult, RouterResult

_NOT_PUBLIC = (
    AddressClass.PRIVATE,
    AddressClass.SHARED,
    AddressClass.LOOPBACK,
    AddressClass.LINK_LOCAL,
    AddressClass.RESERVED,
)


def double_nat(external: str | None, *, public: str | None = None) -> str | None:
    """Why another NAT sits beyond the router, else None.

    `external`: the router's external address; "" when the router says it has none (miniupnpd
    says Connected with no address when its WAN address is private or shared), None when it
    was not read. `public`: the public address an outside source saw, where one did."""
    if external is None:
        return None
    if external == "":
        return (
            "the router reports no external address while this network reaches the internet: "
            "another NAT sits between it and the internet"
            if public
            else "the router reports no external address (another NAT in front of it, or no "
            "internet connection)"
        )
    k = classify(external)
    if k is AddressClass.SHARED:
        return (
            f"the router's external address {external} is in 100.64.0.0/10, the shared space "
            "of carrier-grade NAT (RFC 6598): the ISP translates it again"
        )
    if k in _NOT_PUBLIC:
        return (
            f"the router's external address {external} is {k.value}, not a public address: "
            "another router NATs it again"
        )
    if public is not None and external != public:
        return (
            f"the router's external address {external} is not the public address {public}: "
            "another NAT (or a multi-WAN/VPN path) is in between"
        )
    return None


def family_of(address: str) -> str | None:
    """ "ipv4" or "ipv6" (an IPv4-mapped IPv6 address is IPv4), None when not an address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return "ipv6"
    return "ipv4"


def _plain(address: str) -> str:
    """An IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4 peer) as IPv4."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return address


@dataclass(frozen=True)
class FamilyView:
    """The public address of one address family: NAT is an IPv4 matter, IPv6 is routed."""

    family: str  # ipv4 | ipv6
    address: str | None
    answers: tuple[tuple[str, str], ...]
    consistent: bool | None
    local: bool | None  # the address is on this PC (the usual IPv6 case: no NAT66)


def _vote(answers: Sequence[tuple[str, str]]) -> str | None:
    if not answers:
        return None
    counts = Counter(a for _s, a in answers)
    best = max(counts.values())
    return next(a for _s, a in answers if counts[a] == best)


@dataclass(frozen=True)
class PublicView:
    """What the probes together say about this PC's public address."""

    address: str | None  # the address a PACS outside must dial (None: not known)
    answers: tuple[tuple[str, str], ...]  # (source, address) of every source that named one
    consistent: bool | None  # None: fewer than two answers
    checked: bool  # some source was asked (not every one skipped)
    lan_address: str | None
    local: bool | None  # the public address is on this PC
    behind_nat: bool | None
    double_nat: str | None  # why the router's external address shows a second NAT
    router_external: str | None  # UPnP (or NAT-PMP) external address; "" = none
    gateway: str | None
    family: str | None = None  # the family of `address` (IPv4 where both are known)
    families: tuple[FamilyView, ...] = ()  # every family some source named an address of

    def of(self, family: str) -> FamilyView | None:
        return next((f for f in self.families if f.family == family), None)


def _reflector_inside(probes: Mapping[str, ProbeResult]) -> bool:
    from reverseprobe.diagnosis.inbound import reflector_inside

    return reflector_inside(probes) is not None


def _ok(p: ProbeResult | None) -> bool:
    return p is not None and p.status is Status.OK


def public_view(probes: Mapping[str, ProbeResult]) -> PublicView:
    pub = probes.get("public_ip")
    ifs = probes.get("interfaces")
    rt = probes.get("router")
    inbound = probes.get("inbound")
    answers: list[tuple[str, str]] = []
    if isinstance(pub, PublicIpResult):
        answers += [(a.source, a.address) for a in pub.answers if a.address]
        v6 = pub.of("ipv6")  # asked over IPv6 too: the routed address beside the NATed one
        answers += [(a.source, a.address) for a in (v6.answers if v6 else ()) if a.address]
    observed = getattr(inbound, "observed_ip", None) if inbound is not None else None
    if observed is not None and _reflector_inside(probes):
        observed = None  # an inside reflector saw a LAN address: no public-address source
    if isinstance(observed, str) and classify(observed) is not AddressClass.INVALID:
        answers.append(("reflector", observed))
    answers = [(s, _plain(a)) for s, a in answers]
    checked = (pub is not None and pub.status is not Status.SKIPPED) or observed is not None
    router = rt if isinstance(rt, RouterResult) and _ok(rt) else None
    ext = _router_external(router)
    by_family: dict[str, list[tuple[str, str]]] = {}
    for s_, a in answers:
        by_family.setdefault(family_of(a) or "ipv4", []).append((s_, a))
    from_outside = bool(answers)
    if not answers and ext and classify(ext) is AddressClass.PUBLIC:
        answers.append(("router", ext))
        by_family["ipv4"] = [("router", ext)]
        checked = True
    # The main family is IPv4 where known: the router's NAT, the forwarding and most PACS
    # entries are IPv4; the IPv6 address is offered beside it (PacsEntry.alternatives).
    family = "ipv4" if "ipv4" in by_family else ("ipv6" if "ipv6" in by_family else None)
    address = _vote(by_family[family]) if family else None
    per_family_consistent = [
        len({a for _s, a in fa}) == 1 for fa in by_family.values() if len(fa) >= 2
    ]
    consistent = all(per_family_consistent) if per_family_consistent else None
    lan = ifs.lan_address if isinstance(ifs, InterfacesResult) and _ok(ifs) else None
    local_addrs = (
        {a.address for i in ifs.interfaces for a in i.addresses}
        if isinstance(ifs, InterfacesResult) and _ok(ifs)
        else set()
    )
    local: bool | None = None
    behind: bool | None = None
    if address is not None and local_addrs:
        local = address in local_addrs
        behind = not local
    elif lan is not None and is_behind_nat_address(lan):
        behind = True
    # the router's external address is IPv4: compare it with the IPv4 public address only
    outside = _vote(by_family.get("ipv4", ())) if from_outside else None
    double = double_nat(ext, public=outside) if router is not None else None
    if double:
        behind = True
    families = tuple(
        FamilyView(
            family=fam,
            address=_vote(fa),
            answers=tuple(fa),
            consistent=(len({a for _s, a in fa}) == 1) if len(fa) >= 2 else None,
            local=(_vote(fa) in local_addrs) if local_addrs else None,
        )
        for fam, fa in sorted(by_family.items())
    )
    return PublicView(
        address=address,
        answers=tuple(answers),
        consistent=consistent,
        checked=checked,
        lan_address=lan,
        local=local,
        behind_nat=behind,
        double_nat=double,
        router_external=ext,
        gateway=router.gateway if router else None,
        family=family,
        families=families,
    )


def _router_external(router: RouterResult | None) -> str | None:
    if router is None:
        return None
    if router.external_ip is not None and router.igd_found:
        return router.external_ip
    if router.natpmp_external_ip:
        return router.natpmp_external_ip
    if router.natpmp_result == 3:  # RFC 6886 3.5 "Network Failure": no usable WAN address
        return ""
    return None


def public_rules(probes: Mapping[str, ProbeResult], view: PublicView) -> list[Finding]:
    pub = probes.get("public_ip")
    if view.address is None:
        if not view.checked:
            return []  # --no-public-ip: the probe says "skipped", the PACS entry says why
        errors = {a.source: a.error for a in pub.answers} if isinstance(pub, PublicIpResult) else {}
        gw = view.gateway or "your router"
        reason = pub.reason if isinstance(pub, PublicIpResult) else None
        return [
            make(
                "PUBLIC_IP_UNKNOWN",
                detail={"errors": errors},
                variant="reason" if reason else None,
                gateway=gw,
                reason=reason,
            )
        ]
    if view.consistent is False:
        # per family: an IPv4 and an IPv6 answer of a dual-stack line do not disagree
        bad = [a for f in view.families if f.consistent is False for a in f.answers]
        listing = ", ".join(f"{s} says {a}" for s, a in bad or view.answers)
        return [
            make(
                "PUBLIC_IP_INCONSISTENT",
                detail={"answers": [{"source": s, "address": a} for s, a in bad or view.answers]},
                listing=listing,
                address=view.address,
            )
        ]
    return []


def _dynamic_note(public: str) -> str:
    return DYNAMIC_NOTE.format(public=public)


def ipv6_way_in(view: PublicView, port: int) -> str:
    """What IPv6 adds beside a NATed IPv4 address: no NAT, so only the firewalls decide."""
    v6 = view.of("ipv6")
    if view.family != "ipv4" or v6 is None or v6.address is None:
        return ""
    own = "this PC's own global address" if v6.local else "the IPv6 address outside sources see"
    return (
        f" Over IPv6 the PACS can dial {v6.address} ({own}): IPv6 has no NAT, so no port "
        f"forwarding is needed there, only the router's IPv6 firewall (and this PC's) must "
        f"allow inbound TCP {port}."
    )


def nat_rules(view: PublicView, cfg: CheckConfig) -> list[Finding]:
    port, lan, public = cfg.port, view.lan_address, view.address
    v6 = view.of("ipv6")
    v6_detail: dict[str, Any] = (
        {"ipv6_address": v6.address} if v6 is not None and v6.address else {}
    )
    v6_note = ipv6_way_in(view, port)
    lan_s = lan or "this PC's LAN address"
    gw = f"http://{view.gateway}/" if view.gateway else "the router's admin page"
    if view.double_nat:
        return [
            make(
                "NAT_DOUBLE",
                variant="router",
                detail={
                    "router_external": view.router_external,
                    "public_address": public,
                    "lan_address": lan,
                    **v6_detail,
                },
                why=view.double_nat,
                port=port,
                v6_note=v6_note,
                lan=lan_s,
            )
        ]
    if view.local:
        return [
            make(
                "NAT_NONE",
                detail={"public_address": public},
                public=public,
                dynamic=public or "it",
            )
        ]
    if view.behind_nat and public:
        return [
            make(
                "NAT_DETECTED",
                variant="public",
                detail={"public_address": public, "lan_address": lan, **v6_detail},
                lan=lan_s,
                public=public,
                port=port,
                v6_note=v6_note,
                admin=gw,
            )
        ]
    if view.behind_nat:
        return [
            make(
                "NAT_DETECTED",
                variant="private_only",
                detail={"lan_address": lan},
                lan=lan_s,
                port=port,
                admin=gw,
            )
        ]
    return []
