"""Which address family a finding or a PACS entry is about, for every renderer (issue 15).

forward reports the IPv4 mapping and the IPv6 pinhole under the same codes (detail.family 6 on
the pinhole's), and check's host firewall findings name the family whose rules they read
(detail.family "ipv4" | "ipv6", detail.families): the text alone does not tell two
UPNP_MAPPING_OK apart. The renderers show the label computed here beside the code; the finding
texts (diagnosis/catalogue.py) stay as they are.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from reverseprobe.model import Finding, PacsEntry

IPV4, IPV6, BOTH = "IPv4", "IPv6", "IPv4 and IPv6"

# Codes one command reports once per family; a finding of one of them without a family, beside
# an IPv6 one of its group, is the IPv4 one (the IGD mapping and NAT are IPv4 matters, RFC 6887
# 1; the pinhole is WANIPv6FirewallControl's).
_PER_FAMILY = (
    frozenset({"UPNP_MAPPING_OK", "UPNP_MAPPING_MISSING", "UPNP_MAPPING_OTHER_HOST"}),
    frozenset({"FIREWALL_BLOCKS", "FIREWALL_MAY_BLOCK"}),
)


def _name(value: Any) -> str | None:
    if value in (6, "6", "ipv6", "IPv6"):
        return IPV6
    if value in (4, "4", "ipv4", "IPv4"):
        return IPV4
    return None


def finding_family(f: Finding) -> str | None:
    """The family a finding names in its detail (family, or families when it is one or both);
    None where it names none."""
    fam = _name(f.detail.get("family"))
    if fam is not None:
        return fam
    fams = f.detail.get("families")
    if isinstance(fams, (list, tuple)):
        names = {_name(x) for x in fams} - {None}
        if names == {IPV4, IPV6}:
            return BOTH
        if len(names) == 1 and len(fams) == 1:
            return names.pop()
    return None


def family_labels(findings: Sequence[Finding]) -> dict[int, str]:
    """Labels by id(finding), for findings of one report or target: a finding about IPv6 is
    always labelled; IPv4 (or both) only where the same findings also speak of IPv6, so a
    machine without IPv6 reads its report unchanged."""
    by_target: dict[str | None, list[Finding]] = {}
    for f in findings:
        by_target.setdefault(f.target, []).append(f)
    out: dict[int, str] = {}
    for group in by_target.values():
        fams = {id(f): finding_family(f) for f in group}
        dual = any(v in (IPV6, BOTH) for v in fams.values())
        v6_codes = {f.code for f in group if fams[id(f)] == IPV6}
        for f in group:
            fam = fams[id(f)]
            if fam == IPV6 or (dual and fam is not None):
                out[id(f)] = fam
            elif fam is None and _twin_of_v6(f.code, v6_codes):
                out[id(f)] = IPV4
    return out


def _twin_of_v6(code: str, v6_codes: set[str]) -> bool:
    if code in v6_codes:
        return True
    return any(code in g and g & v6_codes for g in _PER_FAMILY)


def host_port(host: str, port: int) -> str:
    """host:port, an IPv6 literal in brackets (RFC 3986 3.2.2)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _literal_family(host: str | None) -> str | None:
    if not host:
        return None
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    return IPV6 if ip.version == 6 else IPV4


def alternative_lines(entry: PacsEntry) -> list[tuple[str, str]]:
    """The entry's other-family addresses as (line, note): "or over IPv6: AET @ [2a0c::2]:11112"
    with what that way needs (the general rule on host names is in `which_family`, once)."""
    from reverseprobe.diagnosis.entry import PREFERS_IPV6

    out = []
    for fam, host, note in entry.alternatives:
        label = _name(fam) or fam
        aet = entry.aet or "(your AE title)"
        line = f"or over {label}: {aet} @ {host_port(host, entry.port)}"
        out.append((line, " ".join(note.replace(PREFERS_IPV6, "").split())))
    return out


def which_family(entry: PacsEntry) -> str:
    """Which of the entry's addresses the PACS will use: the family of the literal it is given;
    given a host name with both an A and an AAAA record it usually tries IPv6 first (RFC 6724
    section 6 destination selection, RFC 8305 Happy Eyeballs). Empty without alternatives."""
    if not entry.alternatives:
        return ""
    rfc = "(RFC 6724 address selection, RFC 8305 Happy Eyeballs)"
    main = _literal_family(entry.host)
    if entry.host and main is None:
        return (
            f"{entry.host} is a host name: a PACS that resolves it to both an A and an AAAA "
            f"record usually tries IPv6 first {rfc}, so both ways in must work."
        )
    given = [f"given {host_port(entry.host, entry.port)} it uses {main}"] if entry.host else []
    for fam, host, _ in entry.alternatives:
        lit = _literal_family(host) or _name(fam) or fam
        given.append(f"given {host_port(host, entry.port)} it uses {lit}")
    return (
        "Which one the PACS uses: " + "; ".join(given) + "; given a host name with both an A "
        f"and an AAAA record it usually tries IPv6 first {rfc}, so both ways in must work."
    )
