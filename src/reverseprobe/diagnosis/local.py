"""Rules for this PC: the listener on the port, the port number, the route (issue: foundation)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reverseprobe.config import CheckConfig
from reverseprobe.diagnosis.catalogue import make
from reverseprobe.model import Finding, ProbeResult, Severity, Status
from reverseprobe.model.check import InterfacesResult, ListenersResult, ListeningSocket, overlapping
from reverseprobe.model.dicom import DicomResult, DicomStatus, EchoResult
from reverseprobe.model.tls import TLS_DICOM_PORT, TlsProblem

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
                f"Nothing listens on TCP port {port} on this PC.",
                f"Start the DICOM receiver (storage SCP) of your viewer or PACS client on port "
                f"{port} before you run the C-MOVE, listening on all interfaces, with the AE "
                f"title the PACS knows ({cfg.aet or 'your AE title'}).",
                severity=sev,
                port=port,
            )
        ]
    out: list[Finding] = []
    socket_list = [{"address": s.address, "pid": s.pid, "process": s.process} for s in socks]
    if overlapping(socks):
        names = "; ".join(_who(s) for s in socks)
        out.append(
            make(
                "LISTENER_MULTIPLE",
                f"More than one program or socket listens on port {port}: {names}.",
                f"Keep exactly one DICOM receiver on port {port}: stop the others (or move them "
                f"to another port). Which one gets the PACS's images is decided by the "
                f"kernel, not by you.",
                sockets=socket_list,
            )
        )
    if all(s.loopback for s in socks):
        out.append(
            make(
                "LISTENER_LOOPBACK_ONLY",
                f"{_who(socks[0])} listens on loopback only: no other machine can connect.",
                "Configure the receiver to listen on all interfaces (0.0.0.0) or on the LAN "
                "address; pynetdicom's bundled `movescu --store` is one program that listens "
                "on localhost only.",
                sockets=socket_list,
            )
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
                    f"Port {port} is held by {', '.join(_who(s) for s in others)}, "
                    f"not by {cfg.expect_process}.",
                    f"Stop {others[0].process or 'that program'} or move it off port {port}, "
                    f"then start {cfg.expect_process} on port {port}.",
                    expected=cfg.expect_process,
                    sockets=socket_list,
                )
            )
    out.extend(_echo_rules(lst.echoes, cfg))
    out.extend(tls_rules(lst.echoes, cfg))
    if not any(f.severity is Severity.FAIL for f in out) and any(_answered(e) for e in lst.echoes):
        e = next(e for e in lst.echoes if _answered(e))
        out.append(
            make(
                "LISTENER_OK",
                f"{_who(socks[0])} accepts DICOM as {cfg.called_aet!r} "
                f"({e.implementation_version_name or 'unknown implementation'}).",
                sockets=socket_list,
                implementation_class_uid=e.implementation_class_uid,
                implementation_version_name=e.implementation_version_name,
            )
        )
    return out


def dial_back_family(probes: Mapping[str, ProbeResult]) -> str | None:
    """The family the reflector's dial-back came over: the family of the address it saw
    (it dials that address back), None when no dial-back was asked for."""
    from reverseprobe.diagnosis.network import family_of

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
                f"The receiver listens on IPv4 only ({listing}): a PACS that dials this PC "
                "over IPv6 is refused"
                + (
                    ", and the reflector's dial-back came over IPv6."
                    if measured
                    else " (this PC has a global IPv6 address)."
                ),
                f"Make the receiver listen on :: as well (dual-stack; dcmtk `storescp +6`), "
                f"or give the PACS this PC's IPv4 address literal (not a host name with an "
                f"AAAA record): most clients try IPv6 first (RFC 6724, RFC 8305). Port {port}.",
                severity=Severity.FAIL if measured else None,
                sockets=socket_list,
                dial_back_family=way_in,
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
                f"The receiver listens on IPv6 only ({listing}; {told}): a PACS that dials "
                "this PC's IPv4 address is refused"
                + (", and the reflector's dial-back came over IPv4." if measured else "."),
                f"Make the receiver listen on IPv4 too (0.0.0.0 beside ::, or IPV6_V6ONLY "
                f"off), or give the PACS this PC's IPv6 address. Port {port}.",
                severity=Severity.FAIL if measured else None,
                sockets=socket_list,
                dial_back_family=way_in,
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
                    f"The program on {where} accepts the association but does not answer "
                    f"C-ECHO with success: {answer}.",
                    f"Check the receiver's log on port {cfg.port}: it must support the "
                    f"Verification service (C-ECHO) and answer within seconds.",
                    host=e.host,
                    result=e.result.value,
                )
            )
            continue
        if e.result in (DicomResult.NOT_DICOM, DicomResult.NO_ANSWER):
            out.append(
                make(
                    "LISTENER_NOT_DICOM",
                    f"The program on {where} is not a DICOM receiver: {e.detail}.",
                    f"Free port {cfg.port} for the DICOM receiver (stop the program that holds "
                    f"it), or give the DICOM receiver another port and register that port at "
                    f"the PACS.",
                    host=e.host,
                    result=e.result.value,
                )
            )
        elif e.result is DicomResult.REJECTED and e.reject is not None:
            r = e.reject
            out.append(
                make(
                    "LISTENER_REJECTS_AET",
                    f"The DICOM receiver on {where} rejects association with called AE title "
                    f"{cfg.called_aet!r}: {r.result_str}, {r.source_str}, {r.reason_str} "
                    f"(result {r.result}, source {r.source}, reason {r.reason}).",
                    (
                        f"Make the receiver's own AE title {cfg.called_aet!r} (the title the "
                        f"PACS will call), or pass --aet with the title it uses; that title "
                        f"must also be the Move Destination and the PACS entry."
                        if r.reason == 7
                        else "Allow this caller in the receiver's configuration (calling AE "
                        "title or address), or check its association limits."
                    ),
                    host=e.host,
                    reject={
                        "result": r.result,
                        "source": r.source,
                        "reason": r.reason,
                        "reason_str": r.reason_str,
                    },
                )
            )
        elif e.result is DicomResult.ABORTED:
            out.append(
                make(
                    "LISTENER_NOT_DICOM",
                    f"The program on {where} aborted the DICOM association: {e.detail}.",
                    f"Check the receiver's log on port {cfg.port}; it may refuse our calling "
                    f"AE title or this address.",
                    host=e.host,
                    result=e.result.value,
                )
            )
    return out


_TLS_FIX = {
    TlsProblem.EXPIRED: "Renew the receiver's certificate (it has expired) and restart it.",
    TlsProblem.NOT_YET_VALID: "Check the receiver's and this PC's clocks, or reissue the "
    "certificate: it is not valid yet.",
    TlsProblem.WRONG_NAME: "Issue the receiver's certificate for the name or address the "
    "PACS dials (subjectAltName), or dial the name the certificate carries.",
    TlsProblem.UNKNOWN_CA: "Give the CA that signed the receiver's certificate with --tls-ca "
    "(and install it at the PACS), or have the certificate signed by the CA the PACS trusts.",
}


def tls_rules(echoes: tuple[EchoResult, ...], cfg: CheckConfig) -> list[Finding]:
    """LISTENER_TLS: the listener answers a TLS ClientHello (PS3.15 B.1); it replaces
    LISTENER_NOT_DICOM, and names a certificate problem when our --tls handshake failed."""
    out: list[Finding] = []
    for e in echoes:
        t = e.tls
        if t is None or not t.answered or e.result is DicomResult.ACCEPTED:
            continue
        where = f"{e.host}:{e.port}"
        seen = {
            "tls-alert": "answered our plain A-ASSOCIATE-RQ with a TLS alert",
            "closed": "closed the connection at our plain A-ASSOCIATE-RQ",
            "silence": "did not answer our plain A-ASSOCIATE-RQ",
        }.get(t.seen or "", "")
        cert = ", ".join(
            f"{k} {v}"
            for k, v in (("subject", t.subject), ("issuer", t.issuer), ("expires", t.not_after))
            if v
        )
        facts: dict[str, Any] = {
            "host": e.host,
            "tls_version": t.version,
            "subject": t.subject,
            "issuer": t.issuer,
            "not_after": t.not_after,
            "problem": t.problem,
            "seen": t.seen,
        }
        if t.certificate_problem:
            out.append(
                make(
                    "LISTENER_TLS",
                    f"The receiver on {where} speaks DICOM over TLS, but our TLS connection "
                    f"failed: {t.problem} ({t.detail}).",
                    _TLS_FIX.get(t.problem or "", "Check the receiver's certificate.")
                    + " The PACS verifies it the same way.",
                    severity=Severity.FAIL,
                    **facts,
                )
            )
            continue
        if e.result is DicomResult.NOT_TESTED:  # a --tls handshake that failed otherwise
            out.append(
                make(
                    "LISTENER_TLS",
                    f"The receiver on {where} answered TLS, but the handshake failed: {t.detail}.",
                    "Check the TLS versions and ciphers the receiver allows (TLS 1.2 or later, "
                    "PS3.15 B.9) and whether it requires a client certificate (--tls-cert).",
                    severity=Severity.FAIL,
                    **facts,
                )
            )
            continue
        what = f" ({t.version}{'; ' + cert if cert else ''})" if t.version else ""
        out.append(
            make(
                "LISTENER_TLS",
                f"The receiver on {where} speaks DICOM over TLS{what}: it "
                f"{seen or 'refused plain DICOM'} and answered a TLS ClientHello.",
                f"The PACS must send to it with TLS (PS3.15 B.1; port {TLS_DICOM_PORT} by "
                f"convention); check it with --tls --tls-ca CA.pem. A PACS that sends plain "
                f"DICOM here fails (MOVE_TLS_MISMATCH).",
                **facts,
            )
        )
    return out


def inbound_tls_rules(inbound: ProbeResult | None, cfg: CheckConfig) -> list[Finding]:
    """LISTENER_TLS from the reflector's TLS dial-back (check --tls --reflector): the
    certificate as the receiver shows it from outside, verified here against --tls-ca (the
    reflector verifies nothing); fail when it would not be trusted or the handshake failed."""
    main = getattr(inbound, "main", None)
    t = getattr(main, "tls", None)
    if main is None or t is None or cfg.tls is None:
        return []
    where = f"{getattr(inbound, 'observed_ip', None) or 'the public address'}:{main.port}"
    facts: dict[str, Any] = {
        "via": "reflector",
        "tls_version": t.version,
        "subject": t.subject,
        "issuer": t.issuer,
        "not_after": t.not_after,
        "self_signed": t.self_signed,
        "problem": t.problem,
        "verified": t.verified_by is not None and t.problem is None and bool(cfg.tls.ca),
    }
    if t.certificate_problem:
        return [
            make(
                "LISTENER_TLS",
                f"The reflector reached the receiver over TLS at {where}, but its certificate "
                f"would not be trusted: {t.problem} ({t.detail}).",
                _TLS_FIX.get(t.problem or "", "Check the receiver's certificate.")
                + " A PACS outside verifies it the same way.",
                severity=Severity.FAIL,
                **facts,
            )
        ]
    if t.problem is not None or not t.answered:
        return [
            make(
                "LISTENER_TLS",
                f"The reflector's TLS dial-back to {where} failed: {t.detail or t.problem}.",
                "Check that the receiver on this port speaks DICOM over TLS (dcmtk: +tls; "
                "Orthanc: DicomTlsEnabled) with TLS 1.2 or later (PS3.15 B.9).",
                severity=Severity.FAIL,
                **facts,
            )
        ]
    cert = f"subject {t.subject}, issuer {t.issuer}, expires {t.not_after}"
    how = t.detail or "not verified"
    return [
        make(
            "LISTENER_TLS",
            f"The reflector reached the receiver over TLS at {where} ({t.version}; {cert}); "
            f"its certificate: {how}.",
            f"A PACS outside must send to it with TLS (PS3.15 B.1) and trust the CA of this "
            f"certificate{'' if cfg.tls.ca else ' (give --tls-ca to verify it here)'}.",
            **facts,
        )
    ]


def port_rules(port: int) -> list[Finding]:
    if port >= 1024:
        return []
    return [
        make(
            "PORT_PRIVILEGED",
            f"Port {port} is below 1024: many ISPs block inbound connections to such ports, "
            f"and listening on it needs administrator/root rights.",
            f"Use port {REGISTERED_DICOM_PORT} (the IANA-registered DICOM port) for the "
            f"receiver, and give the PACS administrator that port.",
            port=port,
        )
    ]


def route_rules(ifs: InterfacesResult) -> list[Finding]:
    if not ifs.route_via_tunnel:
        return []
    iface = ifs.interface(ifs.route_via_tunnel)
    kind = iface.tunnel if iface else "tunnel"
    return [
        make(
            "ROUTE_VIA_VPN",
            f"The default route leaves through {ifs.route_via_tunnel} ({kind}): the PACS may "
            f"see the VPN's exit address, and connections back may not come through it.",
            "Disconnect the VPN while you test, or have the VPN forward the port; if the PACS "
            "is reached through the VPN, give the PACS this PC's address inside the VPN "
            f"({ifs.source_address or 'the tunnel address'}).",
            interface=ifs.route_via_tunnel,
            kind=kind,
        )
    ]


def _norm_proc(name: str) -> str:
    n = name.strip().lower()
    return n[:-4] if n.endswith(".exe") else n
