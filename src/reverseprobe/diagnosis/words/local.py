"""The words of this PC's codes: listener, port, route, the receiver's TLS
(diagnosis/local.py, diagnosis/network.py's TLS rules)."""

from __future__ import annotations

from collections.abc import Mapping

from reverseprobe.diagnosis.words import DEFAULT, Text

_T = Text

# the certificate problems with a fix of their own (TlsProblem values)
_CERT_FIXES: tuple[tuple[str, str], ...] = (
    ("expired", "Renew the receiver's certificate (it has expired) and restart it."),
    (
        "not-yet-valid",
        "Check the receiver's and this PC's clocks, or reissue the "
        "certificate: it is not valid yet.",
    ),
    (
        "wrong-name",
        "Issue the receiver's certificate for the name or address the "
        "PACS dials (subjectAltName), or dial the name the certificate carries.",
    ),
    (
        "unknown-ca",
        "Give the CA that signed the receiver's certificate with --tls-ca "
        "(and install it at the PACS), or have the certificate signed by the CA "
        "the PACS trusts.",
    ),
    ("other", "Check the receiver's certificate."),
)


TEXTS: Mapping[str, Mapping[str, Text]] = {
    "LISTENER_NONE": {
        DEFAULT: _T(
            "Nothing listens on TCP port {port} on this PC.",
            "Start the DICOM receiver (storage SCP) of your viewer or PACS client on port "
            "{port} before you run the C-MOVE, listening on all interfaces, with the AE "
            "title the PACS knows ({aet}).",
        ),
    },
    "LISTENER_MULTIPLE": {
        DEFAULT: _T(
            "More than one program or socket listens on port {port}: {names}.",
            "Keep exactly one DICOM receiver on port {port}: stop the others (or move them "
            "to another port). Which one gets the PACS's images is decided by the "
            "kernel, not by you.",
        ),
    },
    "LISTENER_LOOPBACK_ONLY": {
        DEFAULT: _T(
            "{who} listens on loopback only: no other machine can connect.",
            "Configure the receiver to listen on all interfaces (0.0.0.0) or on the LAN "
            "address; pynetdicom's bundled `movescu --store` is one program that listens "
            "on localhost only.",
        ),
    },
    "LISTENER_UNEXPECTED_PROCESS": {
        DEFAULT: _T(
            "Port {port} is held by {holders}, not by {expected}.",
            "Stop {holder} or move it off port {port}, then start {expected} on port {port}.",
        ),
    },
    "LISTENER_OK": {
        DEFAULT: _T("{who} accepts DICOM as {called_aet!r} ({implementation})."),
    },
    "LISTENER_IPV4_ONLY": {
        # measured: the dial-back came over IPv6; global_v6: this PC has a global address
        **{
            variant: _T(
                "The receiver listens on IPv4 only ({listing}): a PACS that dials this PC "
                "over IPv6 is refused" + tail,
                "Make the receiver listen on port {port} on :: as well (dual-stack; dcmtk "
                "`storescp +6`), or give the PACS this PC's IPv4 address literal (not a host "
                "name with an AAAA record): most clients try IPv6 first (RFC 6724, RFC 8305).",
            )
            for variant, tail in (
                ("measured", ", and the reflector's dial-back came over IPv6."),
                ("global_v6", " (this PC has a global IPv6 address)."),
            )
        },
    },
    "LISTENER_IPV6_ONLY": {
        **{
            variant: _T(
                "The receiver listens on IPv6 only ({listing}; {told}): a PACS that dials "
                "this PC's IPv4 address is refused" + tail,
                "Make the receiver listen on port {port} on IPv4 too (0.0.0.0 beside ::, or "
                "IPV6_V6ONLY off), or give the PACS this PC's IPv6 address.",
            )
            for variant, tail in (
                ("measured", ", and the reflector's dial-back came over IPv4."),
                (DEFAULT, "."),
            )
        },
    },
    "LISTENER_NOT_DICOM": {
        "no_echo_success": _T(
            "The program on {where} accepts the association but does not answer "
            "C-ECHO with success: {answer}.",
            "Check the receiver's log on port {port}: it must support the "
            "Verification service (C-ECHO) and answer within seconds.",
        ),
        "not_dicom": _T(
            "The program on {where} is not a DICOM receiver: {reason}.",
            "Free port {port} for the DICOM receiver (stop the program that holds "
            "it), or give the DICOM receiver another port and register that port at "
            "the PACS.",
        ),
        "aborted": _T(
            "The program on {where} aborted the DICOM association: {reason}.",
            "Check the receiver's log on port {port}; it may refuse our calling "
            "AE title or this address.",
        ),
    },
    "LISTENER_REJECTS_AET": {
        # called_aet: reason 7, "called AE title not recognized" (PS3.8 9.3.4)
        **{
            variant: _T(
                "The DICOM receiver on {where} rejects association with called AE title "
                "{called_aet!r}: {result_str}, {source_str}, {reason_str} "
                "(result {result}, source {source}, reason {reason}).",
                fix,
            )
            for variant, fix in (
                (
                    "called_aet",
                    "Make the receiver's own AE title {called_aet!r} (the title the "
                    "PACS will call), or pass --aet with the title it uses; that title "
                    "must also be the Move Destination and the PACS entry.",
                ),
                (
                    "caller",
                    "Allow this caller in the receiver's configuration (calling AE "
                    "title or address), or check its association limits.",
                ),
            )
        },
    },
    "LISTENER_TLS": {
        DEFAULT: _T(
            "The receiver on {where} speaks DICOM over TLS{what}: it "
            "{seen} and answered a TLS ClientHello.",
            "The PACS must send to it with TLS (PS3.15 B.1; port {tls_port} by "
            "convention); check it with --tls --tls-ca CA.pem. A PACS that sends plain "
            "DICOM here fails (MOVE_TLS_MISMATCH).",
        ),
        "handshake": _T(
            "The receiver on {where} answered TLS, but the handshake failed: {reason}.",
            "Check the TLS versions and ciphers the receiver allows (TLS 1.2 or later, "
            "PS3.15 B.9) and whether it requires a client certificate (--tls-cert).",
        ),
        # cert:<TlsProblem>: our --tls handshake failed on the certificate
        **{
            f"cert:{problem}": _T(
                "The receiver on {where} speaks DICOM over TLS, but our TLS connection "
                "failed: {problem} ({reason}).",
                fix + " The PACS verifies it the same way.",
            )
            for problem, fix in _CERT_FIXES
        },
        # reflector-cert:<TlsProblem>: the reflector's TLS dial-back, its certificate checked
        # here against --tls-ca (check --tls --reflector)
        **{
            f"reflector-cert:{problem}": _T(
                "The reflector reached the receiver over TLS at {where}, but its certificate "
                "would not be trusted: {problem} ({reason}).",
                fix + " A PACS outside verifies it the same way.",
            )
            for problem, fix in _CERT_FIXES
        },
        "reflector-failed": _T(
            "The reflector's TLS dial-back to {where} failed: {reason}.",
            "Check that the receiver on this port speaks DICOM over TLS (dcmtk: +tls; "
            "Orthanc: DicomTlsEnabled) with TLS 1.2 or later (PS3.15 B.9).",
        ),
        "reflector-ok": _T(
            "The reflector reached the receiver over TLS at {where} ({version}; {cert}); "
            "its certificate: {how}.",
            "A PACS outside must send to it with TLS (PS3.15 B.1) and trust the CA of this "
            "certificate{verify_hint}.",
        ),
    },
    "PORT_PRIVILEGED": {
        DEFAULT: _T(
            "Port {port} is below 1024: many ISPs block inbound connections to such ports, "
            "and listening on it needs administrator/root rights.",
            "Use port {dicom_port} (the IANA-registered DICOM port) for the "
            "receiver, and give the PACS administrator that port.",
        ),
    },
    "ROUTE_VIA_VPN": {
        DEFAULT: _T(
            "The default route leaves through {interface} ({kind}): the PACS may "
            "see the VPN's exit address, and connections back may not come through it.",
            "Disconnect the VPN while you test, or have the VPN forward the port; if the PACS "
            "is reached through the VPN, give the PACS this PC's address inside the VPN "
            "({address}).",
        ),
    },
}
