"""Rules for the echo-back probe: did the reflector's dial-back reach this PC's listener?

Pure: an `InboundResult` (and the interfaces probe, for the LAN address in fixes) -> findings.
Proof comes in two strengths: the nonce seen by our temporary listener (certain), or the
listener's fingerprint matching from both sides (same implementation; a twin elsewhere
cannot be excluded). What was not measured is said to be not tested, never passed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

from reverseprobe.addresses import AddressClass, classify
from reverseprobe.config import CheckConfig
from reverseprobe.diagnosis.catalogue import make
from reverseprobe.model import Finding, ProbeResult, Severity, Status
from reverseprobe.model.check import InterfacesResult
from reverseprobe.model.dicom import DicomResult, TcpState
from reverseprobe.model.inbound import (
    ControlOutcome,
    Fingerprint,
    InboundMode,
    InboundResult,
)

REGISTERED_DICOM_PORT = 11112


class Verdict(str, Enum):
    OK = "ok"  # proven: nonce seen, or the same fingerprint from both sides
    OK_UNCONFIRMED = "ok-unconfirmed"  # reached a listener; that it is ours is not proven
    REFUSED = "refused"
    TIMEOUT = "timeout"  # dropped, or rejected with an ICMP error: filtered either way
    OTHER_HOST = "other-host"


def judge(r: InboundResult) -> Verdict | None:  # noqa: PLR0911 - one return per verdict, in order of precedence
    """What the dial-back of the main port shows; None when there is no result for it."""
    m = r.main
    if m is None:
        return None
    if m.tcp is TcpState.REFUSED:
        return Verdict.REFUSED
    if m.tcp in (TcpState.TIMEOUT, TcpState.UNREACHABLE):
        return Verdict.TIMEOUT
    if r.mode is InboundMode.TEMPORARY_LISTENER:
        return Verdict.OK if r.nonce_seen else Verdict.OTHER_HOST
    if r.mode is InboundMode.NOT_HELD:
        return Verdict.OTHER_HOST  # nothing listens here, yet something accepted
    if r.remote_fingerprint is None:
        return Verdict.OK_UNCONFIRMED
    return compare(r.local_fingerprints, r.remote_fingerprint)


def compare(local: tuple[Fingerprint, ...], remote: Fingerprint) -> Verdict:
    """The listener seen from outside against the one(s) seen from this PC."""
    if not local or remote.result is DicomResult.NOT_TESTED:
        return Verdict.OK_UNCONFIRMED
    if remote in local:
        return Verdict.OK
    if remote.implementation_class_uid and any(
        fp.implementation_class_uid
        and (fp.implementation_class_uid, fp.implementation_version_name)
        != (remote.implementation_class_uid, remote.implementation_version_name)
        for fp in local
    ):
        return Verdict.OTHER_HOST  # another DICOM implementation answered
    dicom = (DicomResult.ACCEPTED, DicomResult.REJECTED, DicomResult.ABORTED)
    if remote.result in (DicomResult.REJECTED, DicomResult.ABORTED) and any(
        fp.result is DicomResult.ACCEPTED for fp in local
    ):
        return Verdict.OK_UNCONFIRMED  # our listener may refuse the reflector's address
    if (remote.result in dicom) != any(fp.result in dicom for fp in local):
        return Verdict.OTHER_HOST  # DICOM on one side, not on the other
    return Verdict.OK_UNCONFIRMED


def isp_blocked(r: InboundResult) -> bool | None:
    """True: the control port got through and the low port did not, beyond the router.
    None: not measured (no control test, or it could not run)."""
    c, m = r.control, r.main
    if r.port >= 1024 or c is None or m is None or c.outcome is not ControlOutcome.REACHED:
        return None
    if m.tcp in (TcpState.TIMEOUT, TcpState.UNREACHABLE):
        return True
    mapped_here = bool(c.low_port_mapping and c.lan_address) and (
        (c.low_port_mapping or "").rsplit(":", 1)[0] == c.lan_address
    )
    # Refused while the router maps the port to us: the RST came from beyond the router.
    return m.tcp is TcpState.REFUSED and mapped_here


def rules(probes: Mapping[str, ProbeResult], cfg: CheckConfig) -> list[Finding]:
    r = probes.get("inbound")
    if r is None:
        return []
    if not isinstance(r, InboundResult):
        return [
            make(
                "INBOUND_NOT_TESTED",
                variant="unfinished",
                severity=Severity.WARN,
                detail={"status": r.status.value},
                status=r.status.value,
                reason=r.reason,
            )
        ]
    if r.status is Status.SKIPPED:
        return [
            make(
                "INBOUND_NOT_TESTED",
                variant="skipped",
                detail={"port": r.port},
                port=r.port,
                reason=r.reason,
            )
        ]
    if r.status is not Status.OK:
        return [_reflector_failed(r)]
    return _measured(r, cfg, _lan_address(probes, r))


def _reflector_failed(r: InboundResult) -> Finding:
    if r.reflector_error == "refused":
        return make(
            "INBOUND_NOT_TESTED",
            variant=_refusal(r.http_status),
            severity=Severity.WARN,
            detail={"reflector": r.reflector, "http_status": r.http_status},
            reflector=r.reflector,
            reason=r.reason,
            port=r.port,
            dicom_port=REGISTERED_DICOM_PORT,
        )
    return make(
        "REFLECTOR_UNREACHABLE",
        detail={"reflector": r.reflector, "error": r.reflector_error},
        reflector=r.reflector,
        reason=r.reason,
    )


def _refusal(status: int | None) -> str:
    """The INBOUND_NOT_TESTED variant for the reflector's HTTP refusal (RFC 9110 15.5)."""
    if status in (401, 403):
        return f"refused:{status}"
    return "refused:busy" if status in (429, 503) else "refused"


def _lan_address(probes: Mapping[str, ProbeResult], r: InboundResult) -> str | None:
    ifs = probes.get("interfaces")
    if isinstance(ifs, InterfacesResult) and ifs.lan_address:
        return ifs.lan_address
    return r.control.lan_address if r.control else None


def _measured(r: InboundResult, cfg: CheckConfig, lan: str | None) -> list[Finding]:
    m = r.main
    verdict = judge(r)
    if m is None or verdict is None:
        return [
            make("INBOUND_NOT_TESTED", variant="no_result", severity=Severity.WARN, port=r.port)
        ]
    here = lan or "this PC"
    target = f"{r.observed_ip}:{r.port}"
    detail: dict[str, Any] = {
        "reflector": r.reflector,
        "observed_ip": r.observed_ip,
        "port": r.port,
        "tcp": m.tcp.value,
        "dicom": m.dicom.value,
        "mode": r.mode.value if r.mode else None,
        "nonce_seen": r.nonce_seen,
    }
    if r.note:
        detail["note"] = r.note
    out: list[Finding] = []
    if verdict is Verdict.OK:
        evidence = "nonce" if r.mode is InboundMode.TEMPORARY_LISTENER else "fingerprint"
        out.append(
            make(
                "INBOUND_OK",
                variant=evidence,
                detail={"evidence": evidence, **detail},
                dialed=target,
            )
        )
    elif verdict is Verdict.OK_UNCONFIRMED:
        out.append(
            make(
                "INBOUND_OK",
                variant="unconfirmed",
                severity=Severity.INFO,
                detail={"evidence": "reachability", **detail},
                dialed=target,
                dicom=m.dicom.value,
                port=r.port,
            )
        )
    elif verdict is Verdict.OTHER_HOST:
        out.append(_other_host(r, target, here, detail))
    else:
        out.extend(
            _not_reached(r, verdict=verdict, target=target, here=here, detail=detail, cfg=cfg)
        )
    return out


def _other_host(r: InboundResult, target: str, here: str, detail: dict[str, Any]) -> Finding:
    m = r.main
    assert m is not None
    values: dict[str, Any] = {}
    if r.mode is InboundMode.TEMPORARY_LISTENER:
        variant = "temporary_listener"
    elif r.mode is InboundMode.NOT_HELD:
        variant = "not_held"
    else:
        local = ", ".join(
            fp.implementation_version_name or fp.result.value for fp in r.local_fingerprints
        )
        variant, values = "fingerprint", {"local": local or "something else"}
    return make(
        "INBOUND_OTHER_HOST",
        variant=variant,
        detail={"remote": m.implementation_version_name, **detail},
        dialed=target,
        who=m.implementation_version_name or m.dicom.value,
        port=r.port,
        here=here,
        **values,
    )


def _not_reached(  # noqa: PLR0913 - keyword-only pieces of the one finding it builds
    r: InboundResult,
    *,
    verdict: Verdict,
    target: str,
    here: str,
    detail: dict[str, Any],
    cfg: CheckConfig,
) -> list[Finding]:
    out: list[Finding] = []
    blocked = isp_blocked(r)
    if r.port < 1024:
        detail["isp_block"] = (
            "measured"
            if blocked
            else ("not blocked by the ISP" if blocked is False else _why_untold(r, cfg))
        )
    if blocked:
        # One problem, one finding: the router and this PC passed the control port, so an
        # INBOUND_TIMEOUT here would blame the wrong hop.
        c = r.control
        assert c is not None
        return [
            make(
                "PORT_ISP_BLOCKED",
                variant="timeout" if verdict is Verdict.TIMEOUT else "refused",
                detail={"control_port": c.port, **detail},
                dialed=target,
                control_port=c.port,
                port=r.port,
                dicom_port=REGISTERED_DICOM_PORT,
                here=here,
            )
        ]
    if verdict is Verdict.REFUSED:
        out.append(
            make(
                "INBOUND_REFUSED",
                variant="temporary_listener" if r.mode is InboundMode.TEMPORARY_LISTENER else None,
                detail=detail,
                dialed=target,
                port=r.port,
                here=here,
            )
        )
    else:
        how = "icmp" if r.main and r.main.tcp is TcpState.UNREACHABLE else "timed_out"
        low = ":low_port" if r.port < 1024 and not blocked else ""
        out.append(
            make(
                "INBOUND_TIMEOUT",
                variant=how + low,
                detail=detail,
                dialed=target,
                port=r.port,
                here=here,
            )
        )
    return out


def _why_untold(r: InboundResult, cfg: CheckConfig) -> str:
    c = r.control
    if c is None:
        return "could not tell: " + (
            "UPnP is off (--no-upnp), so no control port was opened"
            if not cfg.upnp
            else "no control port was tested"
        )
    if c.outcome is ControlOutcome.NOT_REACHED:
        return f"could not tell: the control port {c.port} did not get through either"
    return f"could not tell: {c.reason or 'the control port could not be tested'}"


_INSIDE_CLASSES = {
    AddressClass.PRIVATE: "a private address (RFC 1918)",
    AddressClass.SHARED: "in 100.64.0.0/10, the shared space of carrier-grade NAT (RFC 6598)",
    AddressClass.LOOPBACK: "a loopback address: the reflector runs on this PC",
    AddressClass.LINK_LOCAL: "a link-local address",
    AddressClass.ULA: "an IPv6 unique local address (RFC 4193)",
}


def reflector_inside(probes: Mapping[str, ProbeResult]) -> str | None:
    """Why the reflector is inside this network (its dial-back then never crossed the router
    from outside and proves nothing, docs/reflector.md), else None.

    The address it observed is this PC's as the reflector saw it: private, shared or loopback
    means no NAT to the internet lay between them. A reflector whose own address (the URL's
    host, when an address) is this PC's or in one of its subnets is on-link. A public observed
    address that is this PC's own is the no-NAT case, not a sign of an inside reflector."""
    r = probes.get("inbound")
    ip = getattr(r, "observed_ip", None)
    k = classify(ip) if isinstance(ip, str) else AddressClass.INVALID
    if k in _INSIDE_CLASSES:
        return f"it saw this PC as {ip}, {_INSIDE_CLASSES[k]}"
    host = _url_host(getattr(r, "reflector", None))
    ifs = probes.get("interfaces")
    if host is None or not isinstance(ifs, InterfacesResult) or ifs.status is not Status.OK:
        return None
    for i in ifs.interfaces:
        for a in i.addresses:
            if a.address.split("%", 1)[0] == str(host):
                return f"the reflector {host} runs on this PC ({i.name})"
            net = _network(a.address, a.netmask)
            if net is not None and host.version == net.version and host in net:
                return f"the reflector {host} is in this PC's subnet {net} ({i.name})"
    return None


def _url_host(url: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not isinstance(url, str):
        return None
    from urllib.parse import urlsplit

    try:
        h = urlsplit(url).hostname
        return ipaddress.ip_address(h) if h else None
    except ValueError:
        return None  # a name: resolving it is I/O, not a rule's business


def _network(
    address: str, netmask: str | None
) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    if not netmask:
        return None
    try:
        return ipaddress.ip_network(f"{address.split('%', 1)[0]}/{netmask}", strict=False)
    except ValueError:
        return None


def ipv6_timeout_cause(findings: Sequence[Finding]) -> Finding | None:
    """Who dropped a dial-back over IPv6 that timed out (issue 15: no NAT on IPv6, only
    firewalls): this PC, when its own IPv6 rules refuse the port (the FIREWALL_BLOCKS fail
    naming IPv6, probes/firewall.py read nft ip6/inet and ip6tables), else None: the router's
    IPv6 forward policy (RFC 6092 REC-11). The two readings are exclusive: one story."""
    return next(
        (
            f
            for f in findings
            if f.code == "FIREWALL_BLOCKS"
            and f.severity is Severity.FAIL
            and "ipv6" in (f.detail.get("families") or ())
        ),
        None,
    )
