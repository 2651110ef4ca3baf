"""The second pass: the per-area rules' findings, seen together, told as one story (pure).

Each area's rules see only their own probe; here every finding and every probe result is in
view, so that each problem appears once, at its cause, with the one fix that addresses it, and
no fix tells the user to do what another finding says is done. A finding explained by another
one stays in the report (it is what was measured) as info with `detail["caused_by"]`, no fix of
its own, and marks no hop (diagnosis/path.py; those passes: diagnosis/causes.py). What was not
measured in time is said to be not measured, never turned into a network fact.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from reverseprobe.config import CheckConfig
from reverseprobe.diagnosis.catalogue import make
from reverseprobe.diagnosis.causes import (
    consequences,
    explained,
    has_code,
    ipv6_timeout,
    listener_family_is_the_cause,
    listener_is_the_cause,
)
from reverseprobe.diagnosis.inbound import reflector_inside
from reverseprobe.model import Finding, ProbeResult, Severity, Status

# The codes whose fix tells the user to make the router forward the port, most specific cause
# first: the first one present carries the forwarding advice, the others point to it.
FORWARDING_OWNERS = (
    "UPNP_MAPPING_OTHER_HOST",
    "INBOUND_OTHER_HOST",
    "UPNP_MAPPING_MISSING",
    "INBOUND_REFUSED",
    "INBOUND_TIMEOUT",
    "NAT_DOUBLE",
    "UPNP_UNAVAILABLE",
    "NAT_DETECTED",
)
# Codes a dial-back from the reflector produces: from an inside reflector they prove nothing.
DIAL_BACK_CODES = frozenset(
    {"INBOUND_OK", "INBOUND_REFUSED", "INBOUND_TIMEOUT", "INBOUND_OTHER_HOST", "PORT_ISP_BLOCKED"}
)
# Codes each probe's rules emit: when the probe was cut short by the deadline they are not
# network facts and are not emitted.
PROBE_CODES: Mapping[str, frozenset[str]] = {
    "router": frozenset(
        {"UPNP_UNAVAILABLE", "UPNP_MAPPING_OK", "UPNP_MAPPING_MISSING", "UPNP_MAPPING_OTHER_HOST"}
    ),
    "inbound": DIAL_BACK_CODES
    | {"INBOUND_NOT_TESTED", "REFLECTOR_UNREACHABLE", "REFLECTOR_INSIDE"},
    "public_ip": frozenset({"PUBLIC_IP_UNKNOWN", "PUBLIC_IP_INCONSISTENT"}),
    "firewall": frozenset({"FIREWALL_BLOCKS", "FIREWALL_MAY_BLOCK"}),
}


@dataclasses.dataclass(frozen=True)
class CutShort:
    """A probe the deadline did not let measure: the seconds it had and the seconds it needs."""

    had_s: float
    need_s: float


def resolve(
    findings: Sequence[Finding],
    probes: Mapping[str, ProbeResult],
    cfg: CheckConfig,
    *,
    cut_short: Mapping[str, CutShort] | None = None,
) -> list[Finding]:
    """`check`'s findings as one story (see the module docstring)."""
    out = list(findings)
    out = _not_measured(out, probes, cut_short or {})
    out = _inside_reflector(out, probes)
    out = listener_is_the_cause(out, cfg)
    out = listener_family_is_the_cause(out)
    out = ipv6_timeout(out, probes, cfg)
    out = consequences(out)
    out = _no_stale_advice(out, cfg)
    out = _behind_the_host(out, cfg)
    out = _one_forwarding_fix(out, cfg)
    out = _receiver_runs(out, cfg)
    return out


def _not_measured(
    out: list[Finding], probes: Mapping[str, ProbeResult], cut: Mapping[str, CutShort]
) -> list[Finding]:
    """A probe that ran out of time measured nothing: drop what its rules concluded, say
    "not measured in time" for the inbound test a reflector was given for."""
    short = dict(cut)
    for name, p in probes.items():
        if p.status is Status.TIMEOUT and name in PROBE_CODES and name not in short:
            short[name] = CutShort(p.elapsed_s or 0.0, 0.0)
    if not short:
        return out
    drop = frozenset().union(*(PROBE_CODES.get(n, frozenset()) for n in short))
    kept = [f for f in out if f.code not in drop]
    if "inbound" in short:
        c = short["inbound"]
        need = max((x.need_s for x in short.values()), default=0.0)
        kept.append(
            make(
                "INBOUND_NOT_TESTED",
                variant=("deadline:need" + (":one" if len(short) == 1 else ""))
                if need > 0
                else "deadline",
                severity=Severity.WARN,
                detail={"not_measured_in_time": True},
                had=c.had_s,
                need=need,
                names=", ".join(sorted(short)),
            )
        )
    return kept


def _inside_reflector(out: list[Finding], probes: Mapping[str, ProbeResult]) -> list[Finding]:
    why = reflector_inside(probes)
    if why is None:
        return out
    shown = [f for f in out if f.code in DIAL_BACK_CODES]
    r = probes.get("inbound")
    url = getattr(r, "reflector", None) or "the reflector"
    seen = "; ".join(f"{f.code}: {f.summary}" for f in shown) or "no dial-back result"
    inside = make(
        "REFLECTOR_INSIDE",
        detail={
            "reflector": url,
            "observed_ip": getattr(r, "observed_ip", None),
            "dial_back": [{"code": f.code, "summary": f.summary} for f in shown],
        },
        reflector=url,
        why=why,
        seen=seen,
    )
    return [f for f in out if f.code not in DIAL_BACK_CODES] + [inside]


def _no_stale_advice(out: list[Finding], cfg: CheckConfig) -> list[Finding]:
    """Once the router's mapping or a dial-back proves the way in, no fix says to open it."""
    port = cfg.port
    mapped = has_code(out, "UPNP_MAPPING_OK", Severity.PASS)
    came_in = has_code(out, "INBOUND_OK", Severity.PASS)
    if not (mapped or came_in):
        return out
    proof = "INBOUND_OK" if came_in else "UPNP_MAPPING_OK"
    res = []
    for orig in out:
        f = orig
        d: Mapping[str, Any] = f.detail
        if f.code == "NAT_DETECTED" and d.get("public_address"):
            lan = d.get("lan_address") or "the LAN address"
            f = dataclasses.replace(
                f,
                fix=f"Give the PACS administrator {d['public_address']} port {port} (not "
                f"{lan}); the router already forwards TCP {port} to this PC ({proof}). "
                f"{_dynamic(d['public_address'])}",
            )
        elif f.code == "UPNP_UNAVAILABLE" and came_in:
            f = explained(f, "INBOUND_OK", "The way in works all the same (INBOUND_OK).")
        elif f.code == "UPNP_MAPPING_MISSING" and came_in:
            f = explained(
                f,
                "INBOUND_OK",
                "The dial-back came in all the same (INBOUND_OK): a rule made by hand forwards "
                "the port.",
            )
        elif f.code == "UPNP_MAPPING_OTHER_HOST" and came_in:
            m = d.get("mapping") or {}
            other = m.get("internal_client") or "that host"
            f = dataclasses.replace(
                f,
                severity=Severity.WARN,
                summary=f"{f.summary} Yet the dial-back reached this PC (INBOUND_OK): another "
                "rule, or a second address of this PC, carries the port.",
                fix=f"Look at the router's mapping table: remove the mapping to {other} if that "
                "machine does not need it, so that it cannot take the port from this PC later.",
            )
        elif f.code in ("INBOUND_REFUSED", "INBOUND_TIMEOUT") and mapped and f.fix:
            f = dataclasses.replace(
                f,
                fix=f"The router forwards TCP {port} to this PC (UPNP_MAPPING_OK), so the "
                f"block is elsewhere: allow inbound TCP {port} in this PC's firewall, check "
                f"that the receiver runs, and whether another NAT or a filter sits in front of "
                f"the router (the ISP, the PACS site's firewall).",
            )
        res.append(f)
    return res


def _dynamic(public: str) -> str:
    from reverseprobe.diagnosis.nat import _dynamic_note

    return _dynamic_note(public)


def _behind_the_host(out: list[Finding], cfg: CheckConfig) -> list[Finding]:
    """In a container or VM behind its host's NAT, the router can only forward to the host:
    NAT_DETECTED must not name the container's address as the router's target."""
    if not has_code(out, "NAT_VIRTUAL"):
        return out
    port, res = cfg.port, []
    for f in out:
        if f.code != "NAT_DETECTED":
            res.append(f)
            continue
        inner = f.detail.get("lan_address") or "this container"
        public = f.detail.get("public_address")
        give = f"Give the PACS administrator {public} port {port}; " if public else ""
        res.append(
            dataclasses.replace(
                f,
                summary=f"Behind two NATs: this PC ({inner}) is a container or VM behind its "
                "host, and the host is behind the router"
                + (f"; the internet sees {public}." if public else "."),
                fix=f"{give}the router forwards TCP {port} to the host (not {inner}), and the "
                f"host sends it on to {inner}: see NAT_VIRTUAL.",
                detail={**f.detail, "caused_by": "NAT_VIRTUAL"},
            )
        )
    return res


def _one_forwarding_fix(out: list[Finding], cfg: CheckConfig) -> list[Finding]:
    """The forwarding advice once, at the most specific cause; the others point to it."""
    owners = [f for f in out if f.code in FORWARDING_OWNERS and f.fix and _advises_forwarding(f)]
    if len(owners) < 2:
        return out
    owner = min(owners, key=lambda f: FORWARDING_OWNERS.index(f.code)).code
    port = cfg.port
    res = []
    for f in out:
        if f not in owners or f.code == owner:
            res.append(f)
            continue
        d: Mapping[str, Any] = f.detail
        if f.code == "NAT_DETECTED" and d.get("public_address"):
            lan = d.get("lan_address") or "the LAN address"
            fix = (
                f"Give the PACS administrator {d['public_address']} port {port} (not {lan}); "
                f"the router's forwarding: see {owner}. {_dynamic(d['public_address'])}"
            )
        elif f.code == "NAT_DETECTED":
            fix = (
                f"Find the public address (see PUBLIC_IP_UNKNOWN) and give it to the PACS "
                f"administrator with port {port}; the router's forwarding: see {owner}."
            )
        elif f.code == "NAT_DOUBLE":
            fix = (
                "Ask the ISP for a public IPv4 address (or put the ISP's modem/router in bridge "
                "mode so your router gets it); otherwise the outer NAT must forward the port "
                f"too, or connect the sites by VPN, or use C-GET. Your own router: see {owner}."
            )
        elif f.code == "UPNP_UNAVAILABLE":
            fix = f"UPnP is a convenience only; what the way in needs: see {owner}."
        else:
            fix = f"See {owner}: that fix addresses this too."
        res.append(dataclasses.replace(f, fix=fix))
    return res


def _receiver_runs(out: list[Finding], cfg: CheckConfig) -> list[Finding]:
    """With LISTENER_OK, no fix says to start the receiver: it runs."""
    if not has_code(out, "LISTENER_OK", Severity.PASS):
        return out
    clause = f"; then start the receiver on port {cfg.port} and re-run."
    return [
        dataclasses.replace(f, fix=f.fix.replace(clause, ", then re-run."))
        if clause in f.fix
        else f
        for f in out
    ]


def _advises_forwarding(f: Finding) -> bool:
    t = f.fix.lower()
    return "forward tcp" in t or "reverseprobe forward" in t or "forwarding rule" in t


def verdict_note(findings: Sequence[Finding]) -> str | None:
    """What the verdict line must add although nothing failed: a receiver that is not
    running is not a pass for the move (the way in may be open, nothing would take images)."""
    if has_code(findings, "LISTENER_NONE"):
        return "nothing listens: start the receiver before the move"
    return None
