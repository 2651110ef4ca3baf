"""Rules for the network between the PACS and this PC: the public address and NAT
(diagnosis/nat.py), the router's UPnP mapping (diagnosis/upnp.py), and here the local firewall
per address family. Pure: probe results in, findings out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reverseprobe.addresses import AddressClass
from reverseprobe.config import CheckConfig
from reverseprobe.diagnosis.catalogue import (
    FIREWALL_MEASURED,
    FIREWALL_OTHER_OPEN,
    FIREWALL_OTHER_OPEN_RULE,
    make,
)
from reverseprobe.diagnosis.firewall_fix import allow_command
from reverseprobe.diagnosis.nat import nat_rules, public_rules, public_view
from reverseprobe.diagnosis.upnp import upnp_rules
from reverseprobe.model import Finding, ProbeResult, Severity, Status
from reverseprobe.model.check import InterfacesResult, RouterResult
from reverseprobe.model.firewall import FamilyVerdict, FirewallResult, Reading, Verdict


def _ok(p: ProbeResult | None) -> bool:
    return p is not None and p.status is Status.OK


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
