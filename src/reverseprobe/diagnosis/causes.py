"""The story's causes (pure, diagnosis/story.py runs them): a finding another one explains
stays in the report as what was measured, as info with `detail["caused_by"]` and no fix of its
own, the fix at its cause: a loopback-only listener, a listener missing the dial-back's family,
IPv6's firewalls (no NAT66), the router's mapping or the host firewall behind a failed dial-back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from reverseprobe.config import CheckConfig
from reverseprobe.diagnosis.inbound import ipv6_timeout_cause
from reverseprobe.model import Finding, ProbeResult, Severity


def has_code(findings: Sequence[Finding], code: str, sev: Severity | None = None) -> bool:
    """Whether `code` is among the findings (with severity `sev`, where given)."""
    return any(f.code == code and (sev is None or f.severity is sev) for f in findings)


def explained(f: Finding, by: str, summary_tail: str) -> Finding:
    """`f` explained by `by`: kept as a measured fact, info, its fix at the cause."""
    return dataclasses.replace(
        f,
        severity=Severity.INFO,
        summary=f"{f.summary} {summary_tail}",
        fix="",
        detail={**f.detail, "caused_by": by},
    )


def listener_is_the_cause(out: list[Finding], cfg: CheckConfig) -> list[Finding]:
    """A listener bound to loopback refuses every connection from outside: with the router's
    mapping measured good, a refused dial-back is the listener's doing, not the router's."""
    if not has_code(out, "LISTENER_LOOPBACK_ONLY"):
        return out
    mapped = has_code(out, "UPNP_MAPPING_OK", Severity.PASS)
    res = []
    for orig in out:
        f = orig
        if f.code == "INBOUND_REFUSED" and mapped:
            f = explained(
                f,
                "LISTENER_LOOPBACK_ONLY",
                "The router forwards the port to this PC (UPNP_MAPPING_OK): this PC refused "
                "it because the listener listens on loopback only (LISTENER_LOOPBACK_ONLY).",
            )
        elif f.code == "INBOUND_REFUSED":
            f = dataclasses.replace(
                f,
                fix=f"First make the receiver listen on all interfaces (LISTENER_LOOPBACK_ONLY) "
                f"and re-run: a loopback-only listener refuses this connection too. If it is "
                f"still refused then, {f.fix[0].lower()}{f.fix[1:]}"
                if f.fix
                else "",
            )
        res.append(f)
    return res


def listener_family_is_the_cause(out: list[Finding]) -> list[Finding]:
    """A dial-back refused over the family the listener lacks is the listener's doing
    (issue 15: an IPv4-only storescp, the dial-back over IPv6)."""
    cause = next(
        (
            f
            for f in out
            if f.code in ("LISTENER_IPV4_ONLY", "LISTENER_IPV6_ONLY")
            and f.severity is Severity.FAIL
        ),
        None,
    )
    if cause is None:
        return out
    fam = "IPv6" if cause.code == "LISTENER_IPV4_ONLY" else "IPv4"
    return [
        explained(
            f,
            cause.code,
            f"The dial-back came over {fam} and the receiver does not listen on {fam} "
            f"({cause.code}): this PC refused it.",
        )
        if f.code == "INBOUND_REFUSED" and f.severity is Severity.FAIL
        else f
        for f in out
    ]


def ipv6_timeout(
    out: list[Finding], probes: Mapping[str, ProbeResult], cfg: CheckConfig
) -> list[Finding]:
    """IPv6 has no NAT (no NAT66 on a routed prefix): a dial-back over IPv6 that times out
    was dropped by a firewall, most often the router's IPv6 forward policy (home routers drop
    unsolicited inbound IPv6, RFC 6092 REC-11), else this PC's ip6/inet rules."""
    from reverseprobe.diagnosis.local import dial_back_family

    if dial_back_family(probes) != "ipv6":
        return out
    host = ipv6_timeout_cause(out)
    if host is not None:  # this PC's ip6 rules drop it: the host's firewall, not the router
        return [
            explained(
                f,
                host.code,
                f"The dial-back came over IPv6 and this PC's own IPv6 rules drop it "
                f"({host.code}): the router was not the one that stopped it.",
            )
            if f.code == "INBOUND_TIMEOUT" and not f.detail.get("caused_by")
            else f
            for f in out
        ]
    port = cfg.port
    res = []
    for orig in out:
        f = orig
        if f.code == "INBOUND_TIMEOUT" and not f.detail.get("caused_by"):
            f = dataclasses.replace(
                f,
                summary=f"{f.summary} The dial-back came over IPv6, where no NAT is in the "
                "way: a firewall dropped it, most often the router's IPv6 forward policy "
                "(home routers drop unsolicited inbound IPv6).",
                fix=f"Allow inbound TCP {port} to this PC's IPv6 address in the router's IPv6 "
                f"firewall (a pinhole, not a port forwarding), and in this PC's IPv6 rules "
                f"(nft ip6/inet, ip6tables); or give the PACS the IPv4 address. Where the "
                f"PACS is behind its own firewall, its administrator must allow connections "
                f"out to port {port}.",  # not the IPv4 advice: there is no forwarding on IPv6
                detail={**f.detail, "dial_back_family": "ipv6", "likely": "router-ipv6-policy"},
            )
        res.append(f)
    return res


def consequences(out: list[Finding]) -> list[Finding]:
    """A failed dial-back explained by a router or firewall finding that names its cause."""
    res = []
    for f in out:
        if f.severity is not Severity.FAIL or f.detail.get("caused_by"):
            res.append(f)
            continue
        cause: str | None = None
        if f.code == "INBOUND_OTHER_HOST" and has_code(out, "UPNP_MAPPING_OTHER_HOST"):
            cause = "UPNP_MAPPING_OTHER_HOST"
        elif f.code == "INBOUND_REFUSED" and has_code(out, "UPNP_MAPPING_MISSING"):
            cause = "UPNP_MAPPING_MISSING"
        elif f.code == "INBOUND_TIMEOUT":
            cause = next(
                (
                    c
                    for c in ("FIREWALL_BLOCKS", "UPNP_MAPPING_MISSING")
                    # a firewall's warning names the other family's rules (issue 15)
                    if has_code(out, c, Severity.FAIL if c == "FIREWALL_BLOCKS" else None)
                ),
                None,
            )
        if cause is None:
            res.append(f)
            continue
        res.append(explained(f, cause, f"This is what {cause} leads to."))
    # The cause of a measured failure fails: a missing mapping the dial-back proved.
    proven = {f.detail["caused_by"] for f in res if f.detail.get("caused_by")}
    return [
        dataclasses.replace(
            f,
            severity=Severity.FAIL,
            summary=f"{f.summary} Measured: the reflector's dial-back did not get in.",
        )
        if f.code in proven and f.severity is Severity.WARN and f.code.startswith("UPNP_")
        else f
        for f in res
    ]
