"""Rules for the network between the PACS and this PC: public address, NAT and double NAT, the
router's UPnP mapping, the local firewall. Pure: probe results in, findings out.

The public address is voted from the public-IP services and the reflector's observed address
(`probes["inbound"].observed_ip`); the router's own external address (UPnP, NAT-PMP) is the
public one only without a second NAT, so it is compared, and used alone only when nothing else
answered. Double NAT (cause 9): the router's external address is empty, private, shared
(RFC 6598 100.64/10, carrier-grade NAT) or not the public address.

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
from reverseprobe.diagnosis.catalogue import (
    DYNAMIC_NOTE,
    FIREWALL_MEASURED,
    FIREWALL_OTHER_OPEN,
    FIREWALL_OTHER_OPEN_RULE,
    make,
)
from reverseprobe.diagnosis.firewall_fix import allow_command
from reverseprobe.diagnosis.nat import double_nat
from reverseprobe.model import Finding, ProbeResult, Severity, Status
from reverseprobe.model.check import InterfacesResult, PublicIpResult, RouterResult
from reverseprobe.model.firewall import FamilyVerdict, FirewallResult, Reading, Verdict


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


def rules(probes: Mapping[str, ProbeResult], cfg: CheckConfig) -> list[Finding]:
    view = public_view(probes)
    out = public_rules(probes, view)
    out += nat_rules(view, cfg)
    rt = probes.get("router")
    if isinstance(rt, RouterResult) and _ok(rt):
        out += upnp_rules(rt, view, cfg, _local_addresses(probes))
    fw = probes.get("firewall")
    if isinstance(fw, FirewallResult) and _ok(fw):
        out += firewall_rules(fw, probes)
    return out


def _local_addresses(probes: Mapping[str, ProbeResult]) -> set[str]:
    ifs = probes.get("interfaces")
    if isinstance(ifs, InterfacesResult) and _ok(ifs):
        return {a.address for i in ifs.interfaces for a in i.addresses}
    return set()


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


def upnp_rules(
    rt: RouterResult, view: PublicView, cfg: CheckConfig, local: set[str]
) -> list[Finding]:
    port = cfg.port
    lan = rt.lan_address or view.lan_address or "this PC"
    gw = f"http://{rt.gateway}/" if rt.gateway else "the router's admin page"
    by_hand: dict[str, Any] = {
        "port": port,
        "lan": lan,
        "admin": gw,
    }  # the fixes' "forward ... by hand in"
    if not rt.igd_found or (rt.upnp_error and not rt.mapping_checked):
        sev = Severity.WARN if view.behind_nat else Severity.INFO
        natpmp = ""
        if rt.natpmp_result == 0:
            natpmp = (
                f" NAT-PMP answered (external address {rt.natpmp_external_ip}): "
                f"`reverseprobe forward --natpmp --port {port}` can open the port."
            )
        asked = f"{rt.gateway} and the multicast group" if rt.gateway else "the multicast group"
        fault = getattr(rt, "upnp_fault", None)
        found: dict[str, Any] = {"location": rt.igd_location, "error": rt.upnp_error}
        if not rt.igd_found:  # (the probe sets a fault only where an IGD answered)
            variant, values = "no_igd", {"asked": asked}
        elif fault in ("garbage", "timeout"):
            # it is there and broken (or hostile): not "no UPnP" (issue 16)
            sev = Severity.WARN
            variant, values = str(fault), found
        else:
            variant, values = "unusable", found
        return [
            make(
                "UPNP_UNAVAILABLE",
                variant=variant,
                severity=sev,
                detail={"gateway": rt.gateway, "natpmp_result": rt.natpmp_result},
                natpmp=natpmp,
                **values,
                **by_hand,
            )
        ]
    if not rt.mapping_checked or view.local:
        return []
    m = rt.mapping
    double = (
        " The router sits behind another NAT (see NAT_DOUBLE): this mapping alone does not "
        "make the PC reachable."
        if view.double_nat
        else ""
    )
    if m is None:
        return [
            make(
                "UPNP_MAPPING_MISSING",
                variant="none",
                detail={"port": port},
                double=double,
                **by_hand,
            )
        ]
    mapping = {
        "internal_client": m.internal_client,
        "internal_port": m.internal_port,
        "description": m.description,
        "enabled": m.enabled,
        "lease": m.lease,
    }
    ours = m.internal_client in local or m.internal_client == rt.lan_address
    if not ours:
        return [
            make(
                "UPNP_MAPPING_OTHER_HOST",
                detail={"port": port, "mapping": mapping},
                client=m.internal_client,
                internal_port=m.internal_port,
                description=m.description,
                **by_hand,
            )
        ]
    if m.internal_port != port or not m.enabled:
        return [
            make(
                "UPNP_MAPPING_MISSING",
                variant="other_port" if m.internal_port != port else "disabled",
                detail={"port": port, "mapping": mapping},
                internal_port=m.internal_port,
                double=double,
                **by_hand,
            )
        ]
    return [
        make(
            "UPNP_MAPPING_OK",
            variant="lease" if m.lease else "permanent",
            severity=Severity.INFO if view.double_nat else None,
            detail={"port": port, "mapping": mapping},
            port=port,
            client=m.internal_client,
            description=m.description,
            double=double,
            lease=m.lease,
        )
    ]


def firewall_rules(
    fw: FirewallResult, probes: Mapping[str, ProbeResult] | None = None
) -> list[Finding]:
    """FIREWALL_BLOCKS / FIREWALL_MAY_BLOCK per address family (issue 15). Where both
    families are ways in and one rule decides for both (an inet chain, ufw's mirrored rules),
    one finding; where they differ, the blocked family is named: a fail where it is the way
    in that was measured (the dial-back came over it) or the only one left, a warning
    otherwise (the PACS may well use the other)."""
    from reverseprobe.diagnosis.local import dial_back_family

    fams = {f.family: f for f in fw.families} or {
        "ipv4": FamilyVerdict("ipv4", fw.verdict, fw.deciding, fw.readings)
    }
    measured = dial_back_family(probes) if probes is not None else None
    ifs = probes.get("interfaces") if probes is not None else None
    global_v6 = isinstance(ifs, InterfacesResult) and any(
        a.family == "ipv6" and a.klass is AddressClass.GLOBAL_V6
        for i in ifs.interfaces
        for a in i.addresses
    )
    v6_way = "ipv6" in fams and (probes is None or measured == "ipv6" or global_v6)
    ways: list[str] = [f for f in ("ipv4", "ipv6") if f in fams and (f == "ipv4" or v6_way)]
    if measured is not None and measured in fams and measured not in ways:
        ways.append(measured)
    seen = [fams[f] for f in ways if fams[f].verdict is not None]
    if not seen:
        return []
    passes = {Verdict.ALLOWED, Verdict.OPEN}

    def key(f: FamilyVerdict) -> tuple[object, ...]:
        d = f.deciding
        return (f.verdict, d and (d.source, d.where, d.rule))

    if len({key(f) for f in seen}) == 1:  # one answer for every way in
        out = _firewall_finding(fw, seen[0], "", severity=None)
        fam_list = [f.family for f in seen]
        return [
            _with(x, family=None if len(fam_list) > 1 else fam_list[0], families=fam_list)
            for x in out
        ]
    out = []
    for f in seen:
        if f.verdict in passes:
            continue
        others = [o for o in seen if o is not f]
        open_other = [o for o in others if o.verdict in passes]
        # the only way in: no other family lets the PACS in, even under a condition
        maybe = [o for o in others if o.verdict in passes or o.verdict is Verdict.CONDITIONAL]
        fail = measured == f.family or (measured is None and not maybe)
        label = _FAMILY_NAME[f.family]
        tail = "".join(
            FIREWALL_OTHER_OPEN_RULE.format(family=_FAMILY_NAME[o.family], rule=o.deciding.rule)
            if o.deciding and o.deciding.rule
            else FIREWALL_OTHER_OPEN.format(family=_FAMILY_NAME[o.family])
            for o in open_other
        )
        if measured == f.family:
            tail += FIREWALL_MEASURED.format(family=label)
        out += [
            _with(x, family=f.family, families=[f.family])
            for x in _firewall_finding(
                fw, f, label, severity=None if fail else Severity.WARN, tail=tail
            )
        ]
    return out


_FAMILY_NAME = {"ipv4": "IPv4", "ipv6": "IPv6"}


def _with(f: Finding, **detail: Any) -> Finding:
    from dataclasses import replace

    return replace(f, detail={**f.detail, **detail})


def _firewall_finding(
    fw: FirewallResult,
    fv: FamilyVerdict,
    label: str,
    *,
    severity: Severity | None,
    tail: str = "",
) -> list[Finding]:
    """One family's reading as a finding (`label` "IPv6": the summary names the family)."""
    r = fv.deciding
    port = fw.port
    if r is None or fv.verdict is None:
        return []
    name = {
        "nftables": "nftables",
        "iptables": "iptables",
        "iptables-legacy": "iptables (legacy)",
        "ip6tables": "ip6tables",
        "ip6tables-legacy": "ip6tables (legacy)",
        "ufw": "ufw",
        "firewalld": "firewalld",
        "windows": "Windows Defender Firewall",
        "macos": "macOS application firewall",
    }.get(r.source, r.source)
    tag = ":family" if label else ""
    # a front end (ufw, firewalld) owns the rules: its own reading names what to change
    own = next((x for x in fv.readings if x.source in fw.managers and x.verdict is fv.verdict), r)
    fix = allow_command(port, own, fw.managers, fw.program)
    chain = "chain " if r.source in _RAW_FILTERS else ""
    where = f" ({chain}{r.where})" if r.where else ""
    values: dict[str, Any] = dict(
        family=label, name=name, where=where, port=port, tail=tail, command=fix
    )
    facts = {"source": r.source, "rule": r.rule, "where": r.where, "note": r.note}
    if fv.verdict is Verdict.BLOCKED:
        return [
            make(
                "FIREWALL_BLOCKS",
                variant="blocked" + tag,
                severity=severity,
                detail=facts,
                rule=r.rule,
                **values,
            )
        ]
    if fv.verdict is Verdict.DEFAULT_DROP:
        noted = f" ({r.note})" if r.note else ""
        gaps = _partial(fw, r)
        return [
            make(
                "FIREWALL_BLOCKS" if not gaps else "FIREWALL_MAY_BLOCK",
                variant="default_drop" + tag,
                severity=severity if not gaps else None,
                detail=facts,
                noted=noted,
                **({"unread": "; ".join(gaps)} if gaps else {}),
                **values,
            )
        ]
    if fv.verdict is Verdict.CONDITIONAL:
        return [
            make(
                "FIREWALL_MAY_BLOCK",
                variant="conditional" + tag,
                detail=facts,
                condition=r.note or "a condition this check cannot see",
                **values,
            )
        ]
    return []


_RAW_FILTERS = ("nftables", "iptables", "iptables-legacy", "ip6tables", "ip6tables-legacy")


def _partial(fw: FirewallResult, deciding: Reading | None = None) -> list[str]:
    """What keeps a default-drop reading from being the whole answer: a raw netfilter chain's
    drop is the kernel's own verdict (nothing else can let the packet through, nft(8)); a front
    end's or the OS firewall's reading is complete only when nothing else was left unread.
    macOS's pf cannot allow what the application firewall blocks, so its absence is no gap."""
    r = deciding or fw.deciding
    if r is None or r.source in _RAW_FILTERS:
        return []
    gaps = [u for u in fw.unread if not u.startswith("pf:")]
    if r.source == "macos" and fw.program is None:
        gaps.append("the listener's program is not known (the firewall decides per program)")
    return gaps
