"""Rules for this PC: the listener on the port, the port number, the route (issue: foundation).
A listener that speaks TLS: diagnosis/tls.py."""

from __future__ import annotations

from collections.abc import Mapping

from reverseprobe.config import CheckConfig
from reverseprobe.diagnosis.catalogue import make
from reverseprobe.diagnosis.tls import inbound_tls_rules, tls_rules
from reverseprobe.model import Finding, ProbeResult, Severity, Status
from reverseprobe.model.check import InterfacesResult, ListenersResult, ListeningSocket, overlapping
from reverseprobe.model.dicom import DicomResult, DicomStatus, EchoResult

REGISTERED_DICOM_PORT = 11112  # IANA "dicom" (104 is "acr-nema", below 1024)


def rules(probes: Mapping[str, ProbeResult], cfg: CheckConfig) -> list[Finding]:
    out: list[Finding] = []
    lst = probes.get("listeners")
    if isinstance(lst, ListenersResult) and lst.status is Status.OK:
        out.extend(listener_rules(lst, cfg))
        out.extend(family_rules(lst, probes, cfg))
    out.extend(inbound_tls_rules(probes.get("inbound"), cfg))
    out.extend(port_rules(cfg.port))
    ifs = probes.get("interfaces")
    if isinstance(ifs, InterfacesResult) and ifs.status is Status.OK:
        out.extend(route_rules(ifs))
    return out


def _who(s: ListeningSocket) -> str:
    who = f"{s.process} (PID {s.pid})" if s.pid is not None else "a process (PID not visible)"
    return f"{who} on {s.address}:{s.port}"


def listener_rules(lst: ListenersResult, cfg: CheckConfig) -> list[Finding]:
    port = cfg.port
    socks = lst.sockets
    if not socks:
        sev = Severity.FAIL if cfg.require_listener else None
        return [
            make(
                "LISTENER_NONE",
                severity=sev,
                detail={"port": port},
                port=port,
                aet=cfg.aet or "your AE title",
            )
        ]
    out: list[Finding] = []
    socket_list = [{"address": s.address, "pid": s.pid, "process": s.process} for s in socks]
    if overlapping(socks):
        names = "; ".join(_who(s) for s in socks)
        out.append(
            make("LISTENER_MULTIPLE", detail={"sockets": socket_list}, port=port, names=names)
        )
    if all(s.loopback for s in socks):
        out.append(
            make("LISTENER_LOOPBACK_ONLY", detail={"sockets": socket_list}, who=_who(socks[0]))
        )
    if cfg.expect_process:
        want = _norm_proc(cfg.expect_process)
        others = [s for s in socks if s.process is None or _norm_proc(s.process) != want]
        # docker-proxy only sends the port on to a container (LISTENER_IN_CONTAINER, issue 13)
        others = [s for s in others if _norm_proc(s.process or "") != "docker-proxy"]
        if others:
            out.append(
                make(
                    "LISTENER_UNEXPECTED_PROCESS",
                    detail={"expected": cfg.expect_process, "sockets": socket_list},
                    port=port,
                    holders=", ".join(_who(s) for s in others),
                    holder=others[0].process or "that program",
                    expected=cfg.expect_process,
                )
            )
    out.extend(_echo_rules(lst.echoes, cfg))
    out.extend(tls_rules(lst.echoes, cfg))
    if not any(f.severity is Severity.FAIL for f in out) and any(_answered(e) for e in lst.echoes):
        e = next(e for e in lst.echoes if _answered(e))
        out.append(
            make(
                "LISTENER_OK",
                detail={
                    "sockets": socket_list,
                    "implementation_class_uid": e.implementation_class_uid,
                    "implementation_version_name": e.implementation_version_name,
                },
                who=_who(socks[0]),
                called_aet=cfg.called_aet,
                implementation=e.implementation_version_name or "unknown implementation",
            )
        )
    return out


def dial_back_family(probes: Mapping[str, ProbeResult]) -> str | None:
    """The family the reflector's dial-back came over: the family of the address it saw
    (it dials that address back), None when no dial-back was asked for."""
    from reverseprobe.diagnosis.nat import family_of

    observed = getattr(probes.get("inbound"), "observed_ip", None)
    return family_of(observed) if isinstance(observed, str) else None


def takes_families(lst: ListenersResult) -> tuple[set[str], bool]:
    """The families the non-loopback listeners accept, and whether an IPv6 wildcard's
    IPV6_V6ONLY could not be told (another process's socket, no system default read)."""
    fams: set[str] = set()
    unknown = False
    for s in lst.sockets:
        if s.loopback:
            continue
        fams.add(s.family)
        if s.family == "ipv6" and s.address == "::":
            v6only = s.v6only if s.v6only is not None else lst.bindv6only
            if v6only is None:
                unknown = True
            elif not v6only:
                fams.add("ipv4")  # dual-stack: IPv4 peers arrive as ::ffff:a.b.c.d
        elif s.family == "ipv6" and s.address.lower().startswith("::ffff:"):
            fams.add("ipv4")
    return fams, unknown


def _has_global_v6(probes: Mapping[str, ProbeResult]) -> bool:
    from reverseprobe.addresses import AddressClass

    ifs = probes.get("interfaces")
    if not isinstance(ifs, InterfacesResult) or ifs.status is not Status.OK:
        return False
    return any(
        a.family == "ipv6" and a.klass is AddressClass.GLOBAL_V6
        for i in ifs.interfaces
        for a in i.addresses
    )


def family_rules(
    lst: ListenersResult, probes: Mapping[str, ProbeResult], cfg: CheckConfig
) -> list[Finding]:
    """LISTENER_IPV4_ONLY / LISTENER_IPV6_ONLY: a receiver that takes one family only is
    refused over the other (RFC 3493 5.3 for [::] with IPV6_V6ONLY); it fails where the
    dial-back was measured over the missing family."""
    port = cfg.port
    fams, unknown = takes_families(lst)
    if not fams:
        return []
    way_in = dial_back_family(probes)
    socks = [s for s in lst.sockets if not s.loopback]
    listing = "; ".join(_who(s) for s in socks)
    socket_list = [
        {"address": s.address, "family": s.family, "pid": s.pid, "v6only": s.v6only} for s in socks
    ]
    if fams == {"ipv4"} and (way_in == "ipv6" or _has_global_v6(probes)):
        measured = way_in == "ipv6"
        return [
            make(
                "LISTENER_IPV4_ONLY",
                variant="measured" if measured else "global_v6",
                severity=Severity.FAIL if measured else None,
                detail={"sockets": socket_list, "dial_back_family": way_in},
                listing=listing,
                port=port,
            )
        ]
    if fams == {"ipv6"} and not unknown:
        measured = way_in == "ipv4"
        told = (
            "IPV6_V6ONLY on"
            if any(s.v6only for s in socks)
            else "IPV6_V6ONLY from the system default net.ipv6.bindv6only=1"
            if lst.bindv6only and any(s.address == "::" for s in socks)
            else "an IPv6 address"
        )
        return [
            make(
                "LISTENER_IPV6_ONLY",
                variant="measured" if measured else None,
                severity=Severity.FAIL if measured else None,
                detail={"sockets": socket_list, "dial_back_family": way_in},
                listing=listing,
                told=told,
                port=port,
            )
        ]
    return []  # dual-stack, or an IPv6 wildcard whose IPV6_V6ONLY could not be told


def _answered(e: EchoResult) -> bool:
    """Associated and answered the C-ECHO with Success (PS3.7 9.1.5.1.4): only that passes."""
    return e.result is DicomResult.ACCEPTED and e.echo_status == DicomStatus.SUCCESS


def _echo_rules(echoes: tuple[EchoResult, ...], cfg: CheckConfig) -> list[Finding]:
    out: list[Finding] = []
    for e in echoes:
        where = f"{e.host}:{e.port}"
        if e.tls is not None and e.result is not DicomResult.ACCEPTED:
            continue  # LISTENER_TLS says what it is (tls_rules)
        if e.result is DicomResult.ACCEPTED and not _answered(e):
            answer = (
                e.detail or "no C-ECHO response"
                if e.echo_status is None
                else f"C-ECHO status 0x{e.echo_status:04X}"
            )
            out.append(
                make(
                    "LISTENER_NOT_DICOM",
                    variant="no_echo_success",
                    detail={"host": e.host, "result": e.result.value},
                    where=where,
                    answer=answer,
                    port=cfg.port,
                )
            )
            continue
        if e.result in (DicomResult.NOT_DICOM, DicomResult.NO_ANSWER):
            out.append(
                make(
                    "LISTENER_NOT_DICOM",
                    variant="not_dicom",
                    detail={"host": e.host, "result": e.result.value},
                    where=where,
                    reason=e.detail,
                    port=cfg.port,
                )
            )
        elif e.result is DicomResult.REJECTED and e.reject is not None:
            r = e.reject
            out.append(
                make(
                    "LISTENER_REJECTS_AET",
                    variant="called_aet" if r.reason == 7 else "caller",
                    detail={
                        "host": e.host,
                        "reject": {
                            "result": r.result,
                            "source": r.source,
                            "reason": r.reason,
                            "reason_str": r.reason_str,
                        },
                    },
                    where=where,
                    called_aet=cfg.called_aet,
                    result_str=r.result_str,
                    source_str=r.source_str,
                    reason_str=r.reason_str,
                    result=r.result,
                    source=r.source,
                    reason=r.reason,
                )
            )
        elif e.result is DicomResult.ABORTED:
            out.append(
                make(
                    "LISTENER_NOT_DICOM",
                    variant="aborted",
                    detail={"host": e.host, "result": e.result.value},
                    where=where,
                    reason=e.detail,
                    port=cfg.port,
                )
            )
    return out


def port_rules(port: int) -> list[Finding]:
    if port >= 1024:
        return []
    return [
        make("PORT_PRIVILEGED", detail={"port": port}, port=port, dicom_port=REGISTERED_DICOM_PORT)
    ]


def route_rules(ifs: InterfacesResult) -> list[Finding]:
    if not ifs.route_via_tunnel:
        return []
    iface = ifs.interface(ifs.route_via_tunnel)
    kind = iface.tunnel if iface else "tunnel"
    return [
        make(
            "ROUTE_VIA_VPN",
            detail={"interface": ifs.route_via_tunnel, "kind": kind},
            interface=ifs.route_via_tunnel,
            kind=kind,
            address=ifs.source_address or "the tunnel address",
        )
    ]


def _norm_proc(name: str) -> str:
    n = name.strip().lower()
    return n[:-4] if n.endswith(".exe") else n
