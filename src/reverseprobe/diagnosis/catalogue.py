"""The catalogue of finding codes (docs/reference.md "Findings"): stable API, add, never rename.

Each code has a default severity, the report section it belongs to, the hop of the path
(PACS -> internet -> router -> this PC -> listener) that it marks, and its words: a summary
and a fix template per variant (`TEXTS`, like tailscale's health.Warnable). Rules in
`diagnosis/` decide which code and variant apply and supply the values; `make()` renders.

To add a code:
1. a `Code(...)` line in `CATALOGUE` (the name and severity SPEC.md's table gives);
2. its `Text(summary, fix)` templates in `TEXTS`, one per variant where the wording genuinely
   differs (str.format fields, plain names only: `{port}`, `{aet!r}`, `{status:04X}`);
3. a section in docs/findings.md (tests/test_findings_docs.py);
4. the rule picks the variant and supplies the values, and the JSON facts apart:
   `make("CODE", variant="...", detail={...}, port=..., ...)`. A field of the variant left
   without a value, or a value no variant of the code names, raises (tests/test_catalogue.py
   renders every template). Peer-supplied text is escaped where it is shown (render/,
   textsafe.py); str.format never re-reads a value, so a peer's "{" is just a character.
The older `make(code, summary, fix, **detail)` still works for rules not yet moved.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from reverseprobe.model import Finding, Severity
from reverseprobe.model.path import HOP_LABELS as HOP_LABELS
from reverseprobe.model.path import Hop as Hop


class Section(str, Enum):
    LISTENER = "Listener"
    PORT = "Port"
    INTERFACES = "Interfaces and route"
    PUBLIC = "Public address and NAT"
    ROUTER = "Router"
    FIREWALL = "Firewall"
    INBOUND = "Inbound (echo-back)"
    PACS = "PACS"
    MOVE = "C-MOVE"


@dataclass(frozen=True)
class Code:
    code: str
    severity: Severity
    section: Section
    hop: Hop
    meaning: str

    @property
    def texts(self) -> Mapping[str, Text]:
        """The code's wordings by variant (empty: its rules still pass the text to `make`)."""
        return TEXTS.get(self.code, {})

    def fields(self) -> frozenset[str]:
        """Every field some variant of the code names: the values a rule may pass."""
        return frozenset().union(*(t.fields() for t in self.texts.values()))

    def render(self, variant: str | None, values: Mapping[str, Any]) -> tuple[str, str]:
        """(summary, fix) of one variant. A field of the variant without a value, or a value
        no variant of the code names (a misspelt field), is a programming error, raised here
        rather than shown half-filled to a user. Values are per code, so a rule may pass one
        that only its other variants use."""
        name = variant or DEFAULT
        text = self.texts.get(name)
        if text is None:
            raise ValueError(f"{self.code}: no text variant {name!r} (has {sorted(self.texts)})")
        missing, extra = text.fields() - values.keys(), values.keys() - self.fields()
        if missing or extra:
            raise TypeError(
                f"{self.code}/{name}: missing values {sorted(missing)}, "
                f"unexpected values {sorted(extra)}"
            )
        return text.summary.format(**values), text.fix.format(**values)


DEFAULT = "default"  # the variant of a code with one wording


@dataclass(frozen=True)
class Text:
    """One wording of a code: summary and fix as str.format templates with named fields."""

    summary: str
    fix: str = ""

    def fields(self) -> frozenset[str]:
        """Every field the two templates name (a field with an attribute or index counts by
        its whole name, which tests/test_catalogue.py rejects: rules pass plain values)."""
        return frozenset(
            name
            for template in (self.summary, self.fix)
            for _lit, name, _spec, _conv in string.Formatter().parse(template)
            if name is not None
        )


_S = Severity
_C = Section
_H = Hop

CATALOGUE: Mapping[str, Code] = {
    c.code: c
    for c in (
        Code("LISTENER_OK", _S.PASS, _C.LISTENER, _H.LISTENER,
             "one program listens on the port and answers DICOM"),
        Code("LISTENER_NONE", _S.INFO, _C.LISTENER, _H.LISTENER,
             "nothing listens on the port"),
        Code("LISTENER_MULTIPLE", _S.FAIL, _C.LISTENER, _H.LISTENER,
             "more than one process or socket listens on the port"),
        Code("LISTENER_LOOPBACK_ONLY", _S.FAIL, _C.LISTENER, _H.LISTENER,
             "the listener is bound to loopback only"),
        Code("LISTENER_NOT_DICOM", _S.FAIL, _C.LISTENER, _H.LISTENER,
             "the listener does not answer a DICOM association"),
        Code("LISTENER_REJECTS_AET", _S.FAIL, _C.LISTENER, _H.LISTENER,
             "the listener rejects association with the configured called AE title"),
        Code("LISTENER_TLS", _S.INFO, _C.LISTENER, _H.LISTENER,
             "the receiver speaks DICOM over TLS (PS3.15 B.1)"),
        Code("LISTENER_UNEXPECTED_PROCESS", _S.FAIL, _C.LISTENER, _H.LISTENER,
             "the port's owner is not the expected program"),
        Code("LISTENER_IPV4_ONLY", _S.WARN, _C.LISTENER, _H.LISTENER,
             "the receiver does not listen on IPv6"),
        Code("LISTENER_IPV6_ONLY", _S.WARN, _C.LISTENER, _H.LISTENER,
             "the receiver does not listen on IPv4"),
        Code("PORT_PRIVILEGED", _S.WARN, _C.PORT, _H.INTERNET,
             "port < 1024: ISPs often block it; needs elevated rights to listen"),
        Code("PORT_ISP_BLOCKED", _S.FAIL, _C.PORT, _H.INTERNET,
             "measured: a high control port is reachable, this low port is not"),
        Code("NAT_NONE", _S.INFO, _C.PUBLIC, _H.ROUTER,
             "the public address is on this machine"),
        Code("NAT_DETECTED", _S.INFO, _C.PUBLIC, _H.ROUTER,
             "behind NAT: the PACS must dial the public address, the router must forward"),
        Code("NAT_DOUBLE", _S.FAIL, _C.PUBLIC, _H.INTERNET,
             "the router's external address is private/shared, or differs from the public one"),
        Code("PUBLIC_IP_UNKNOWN", _S.WARN, _C.PUBLIC, _H.INTERNET,
             "no source could tell the public address"),
        Code("PUBLIC_IP_INCONSISTENT", _S.WARN, _C.PUBLIC, _H.INTERNET,
             "sources disagree about the public address (multi-WAN, proxy, VPN)"),
        Code("ROUTE_VIA_VPN", _S.WARN, _C.INTERFACES, _H.PC,
             "the default route leaves through a tunnel interface"),
        Code("UPNP_UNAVAILABLE", _S.INFO, _C.ROUTER, _H.ROUTER,
             "no UPnP IGD answered"),
        Code("UPNP_MAPPING_OK", _S.PASS, _C.ROUTER, _H.ROUTER,
             "the router forwards the port to this machine"),
        Code("UPNP_MAPPING_MISSING", _S.WARN, _C.ROUTER, _H.ROUTER,
             "the router has no mapping for the port"),
        Code("UPNP_MAPPING_OTHER_HOST", _S.FAIL, _C.ROUTER, _H.ROUTER,
             "the router forwards the port to another LAN host"),
        Code("ROUTER_MAPPINGS", _S.INFO, _C.ROUTER, _H.ROUTER,
             "the router's port mappings (forward --list)"),
        Code("FORWARD_PORT_CHANGED", _S.WARN, _C.ROUTER, _H.ROUTER,
             "the router mapped another external port than the one asked for"),
        Code("FIREWALL_BLOCKS", _S.FAIL, _C.FIREWALL, _H.PC,
             "the local firewall drops or rejects inbound connections to the port"),
        Code("FIREWALL_MAY_BLOCK", _S.WARN, _C.FIREWALL, _H.PC,
             "a firewall is active and nothing shows the port allowed"),
        Code("INBOUND_OK", _S.PASS, _C.INBOUND, _H.LISTENER,
             "the reflector reached this machine's listener on the port"),
        Code("INBOUND_TIMEOUT", _S.FAIL, _C.INBOUND, _H.ROUTER,
             "dial-back timed out (filtered)"),
        Code("INBOUND_REFUSED", _S.FAIL, _C.INBOUND, _H.ROUTER,
             "dial-back was refused"),
        Code("INBOUND_OTHER_HOST", _S.FAIL, _C.INBOUND, _H.ROUTER,
             "dial-back reached a listener that is not this machine's"),
        Code("INBOUND_NOT_TESTED", _S.INFO, _C.INBOUND, _H.INTERNET,
             "inbound reachability was not measured"),
        Code("REFLECTOR_UNREACHABLE", _S.WARN, _C.INBOUND, _H.INTERNET,
             "the reflector did not answer"),
        Code("REFLECTOR_INSIDE", _S.WARN, _C.INBOUND, _H.INTERNET,
             "the reflector sees this PC by a private or local address: its dial-back "
             "proves nothing"),
        Code("PACS_UNREACHABLE", _S.FAIL, _C.PACS, _H.PACS,
             "no TCP connection or association to the PACS"),
        Code("PACS_REJECTED_ASSOCIATION", _S.FAIL, _C.PACS, _H.PACS,
             "the PACS rejected the association"),
        Code("PACS_ABORTED", _S.FAIL, _C.PACS, _H.PACS,
             "the PACS accepted the association but aborted C-FIND/C-MOVE"),
        Code("PACS_PROTOCOL_ERROR", _S.FAIL, _C.PACS, _H.PACS,
             "the PACS answered with data that is not valid DICOM"),
        Code("MOVE_DESTINATION_UNKNOWN", _S.FAIL, _C.MOVE, _H.PACS,
             "C-MOVE status 0xA801: the PACS does not know the destination AE"),
        Code("MOVE_NO_CONNECT_BACK", _S.FAIL, _C.MOVE, _H.PACS,
             "the move failed and no association reached us"),
        Code("MOVE_DELIVERED_ELSEWHERE", _S.FAIL, _C.MOVE, _H.ROUTER,
             "the PACS reports sub-operations completed, none arrived here"),
        Code("MOVE_CALLED_AET_MISMATCH", _S.WARN, _C.MOVE, _H.PACS,
             "the PACS connected back but called another AE title than the move destination"),
        Code("MOVE_TLS_MISMATCH", _S.FAIL, _C.MOVE, _H.PACS,
             "one side of the sub-association expects TLS, the other not"),
        Code("MOVE_FINAL_BEFORE_IMAGES", _S.WARN, _C.MOVE, _H.PACS,
             "images arrived after the final C-MOVE response (faulty PACS)"),
        Code("MOVE_PORT_BUSY", _S.FAIL, _C.MOVE, _H.LISTENER,
             "the receive port is taken by another program"),
        Code("MOVE_NOTHING_TO_MOVE", _S.WARN, _C.MOVE, _H.PACS,
             "the PACS returned no study to test with"),
        Code("MOVE_INCOMPLETE", _S.FAIL, _C.MOVE, _H.LISTENER,
             "the PACS connected back, but sub-operations failed or images are missing"),
        Code("MOVE_OK", _S.PASS, _C.MOVE, _H.LISTENER,
             "every image arrived"),
        Code("MOVE_STORE_REJECTED", _S.FAIL, _C.MOVE, _H.LISTENER,
             "the PACS reached the receiver, which refused the images"),
        Code("LISTENER_REJECTS_CONTEXT", _S.FAIL, _C.LISTENER, _H.LISTENER,
             "the receiver refuses a SOP class / transfer syntax the PACS will send"),
        Code("LISTENER_BUSY", _S.WARN, _C.LISTENER, _H.LISTENER,
             "the receiver rejects an association as transient (limit reached)"),
        Code("MOVE_STALLED", _S.FAIL, _C.MOVE, _H.PACS,
             "pending responses stopped before the move finished"),
        Code("MOVE_NOT_SUPPORTED", _S.FAIL, _C.MOVE, _H.PACS,
             "0x0122: no C-MOVE at that information model"),
        Code("CGET_AVAILABLE", _S.INFO, _C.MOVE, _H.PACS,
             "the PACS accepts C-GET, which needs no reverse connection"),
        Code("CHECKLIST_INCOMPLETE", _S.FAIL, _C.PACS, _H.PACS,
             "a test of the checklist did not run to its end (deadline, internal error)"),
        Code("NAT_VIRTUAL", _S.WARN, _C.PUBLIC, _H.PC,
             "this PC is a container or VM behind its host's NAT"),
        Code("LISTENER_IN_CONTAINER", _S.INFO, _C.LISTENER, _H.LISTENER,
             "the port is published to a container on this PC"),
        Code("NAT_HAIRPIN", _S.WARN, _C.PACS, _H.ROUTER,
             "the public address is given to a PACS inside the same site"),
        Code("PACS_ENTRY_OK", _S.PASS, _C.PACS, _H.PACS,
             "the PACS's entry for us matches what was measured"),
        Code("PACS_ENTRY_WRONG", _S.FAIL, _C.PACS, _H.PACS,
             "the PACS's entry for us is wrong: which part, and what it must be"),
    )
}  # fmt: skip


def make(  # noqa: PLR0913 - keyword-only knobs beside the old positional texts
    code: str,
    summary: str | None = None,
    fix: str = "",
    *,
    variant: str | None = None,
    severity: Severity | None = None,
    target: str | None = None,
    detail: Mapping[str, Any] | None = None,
    **values: Any,
) -> Finding:
    """A finding for a catalogued code; an unknown code is a programming error.

    Templated: `make(code, variant=..., detail={...}, **values)` renders the catalogue's
    texts. Older form, kept for rules not yet moved: `make(code, summary, fix, **detail)`."""
    entry = CATALOGUE[code]
    if summary is None:
        summary, fix = entry.render(variant, values)
        facts = dict(detail or {})
    else:
        if variant is not None or detail is not None:
            raise TypeError(f"{code}: a literal summary takes no variant and no detail mapping")
        facts = values
    return Finding(
        code=code,
        severity=severity or entry.severity,
        summary=summary,
        fix=fix,
        detail=facts,
        target=target,
    )


_T = Text

# sentences more than one code's template shares
DYNAMIC_NOTE = (
    "If {public} is a dynamic address (most home and many business lines), it changes "
    "when the line reconnects and the PACS entry breaks: ask the ISP for a static address, "
    "or give the PACS a dynamic-DNS name that follows it."
)
_BY_HAND = "forward TCP {port} to {lan}:{port} by hand in {admin}"
_UPNP_ON = (
    "Turn on UPnP in the router so `reverseprobe forward --upnp --port {port}` "
    "can open the port, or " + _BY_HAND + "."
)
_UPNP_FAULTY = "The router's UPnP service is faulty: restart the router, or " + _BY_HAND + "."

# The words of every code, by variant. Fields are filled by the rule that makes the finding.
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
    # this PC: listener, port, route (diagnosis/local.py)
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
    # the network between: public address, NAT, the router's UPnP (diagnosis/network.py)
    "PUBLIC_IP_UNKNOWN": {
        variant: _T(
            summary,
            "Check that this PC reaches the internet over HTTPS (a proxy-only network "
            "blocks the services), pass --ip-service URL of a service you trust, or read "
            "the WAN address on the status page of {gateway}.",
        )
        for variant, summary in (
            (DEFAULT, "No source could tell this network's public address."),
            ("reason", "No source could tell this network's public address ({reason})."),
        )
    },
    "PUBLIC_IP_INCONSISTENT": {
        DEFAULT: _T(
            "Sources disagree about the public address: {listing}.",
            "A multi-WAN router, a proxy or a VPN makes services see different addresses, "
            "and a PACS can dial only one. Find the line the PACS's connection will arrive "
            "on (turn off the VPN/proxy for the test, or ask your network administrator), "
            "and give the PACS that address; {address} got the most votes.",
        ),
    },
    "NAT_DOUBLE": {
        # router: the router's external address shows it (v6_note: what IPv6 adds, or "")
        "router": _T(
            "Double NAT: {why}. Forwarding TCP {port} on your own router "
            "cannot make this PC reachable over IPv4 on its own.{v6_note}",
            "Ask the ISP for a public IPv4 address (or put the ISP's modem/router in "
            "bridge mode so your router gets it), then forward TCP "
            "{port} to {lan}:{port}. Otherwise the outer NAT must forward the port too, "
            "or connect the sites by VPN, or use C-GET where the PACS supports it.",
        ),
        # path: a hop in 100.64/10 on the way out (diagnosis/virtual.py path_rules)
        "path": _T(
            "Double NAT: the path toward {toward} crosses {shared}, in "
            "100.64.0.0/10, the shared space of carrier-grade NAT (RFC 6598): the ISP "
            "translates this network's address again. Forwarding on your own router cannot "
            "make this PC reachable on its own.",
            "Ask the ISP for a public IPv4 address (or a port forward on its carrier-grade NAT), "
            "or connect the sites by VPN, or use C-GET where the PACS supports it.",
        ),
    },
    "NAT_NONE": {
        DEFAULT: _T(
            "The public address {public} is on this PC: no NAT in between, the PACS can "
            "dial it directly.",
            DYNAMIC_NOTE.replace("{public}", "{dynamic}"),
        ),
    },
    "NAT_DETECTED": {
        "public": _T(
            "Behind NAT: this PC is {lan}, the internet sees {public}. A PACS outside "
            "this network must dial {public}, and the router must forward TCP {port} "
            "to {lan}.{v6_note}",
            "Give the PACS administrator {public} port {port} (not {lan}), and forward "
            "TCP {port} on the router to {lan}:{port}: `reverseprobe forward --upnp "
            "--port {port}`, or by hand in {admin}. " + DYNAMIC_NOTE,
        ),
        "private_only": _T(
            "This PC's address {lan} is private: a PACS outside this network cannot "
            "dial it, and the public address is not known.",
            "Find the public address (see PUBLIC_IP_UNKNOWN), give it to the PACS "
            "administrator with port {port}, and forward TCP {port} on the router to "
            "{lan}:{port} (`reverseprobe forward --upnp --port {port}`, or {admin}).",
        ),
    },
    "UPNP_UNAVAILABLE": {
        # natpmp: the NAT-PMP sentence where NAT-PMP answered, or ""
        variant: _T(summary + "{natpmp}", fix)
        for variant, summary, fix in (
            ("no_igd", "No UPnP IGD answered (asked {asked}).", _UPNP_ON),
            (
                "garbage",  # it is there and broken (or hostile): not "no UPnP" (issue 16)
                "The router's UPnP IGD at {location} answered garbage, so its port "
                "mappings could not be read: {error}.",
                _UPNP_FAULTY,
            ),
            (
                "timeout",
                "The router's UPnP IGD at {location} answered discovery, then stopped "
                "answering: {error}.",
                _UPNP_FAULTY,
            ),
            ("unusable", "The UPnP IGD at {location} could not be used: {error}.", _UPNP_ON),
        )
    },
    "UPNP_MAPPING_MISSING": {
        # double: the NAT_DOUBLE sentence where the router sits behind another NAT, or ""
        "none": _T(
            "The router has no mapping for TCP {port}: a connection to the public "
            "address on port {port} stops at the router.{double}",
            "`reverseprobe forward --upnp --port {port}` (maps TCP {port} to {lan}), or "
            + _BY_HAND
            + ".",
        ),
        **{
            variant: _T(
                summary + "{double}",
                "Replace it: `reverseprobe forward --upnp --port {port} --force`, or "
                + _BY_HAND
                + ".",
            )
            for variant, summary in (
                (
                    "other_port",
                    "The router forwards TCP {port} to this PC's port {internal_port}, not {port}.",
                ),
                (
                    "disabled",
                    "The router forwards TCP {port} to this PC, but the mapping is disabled.",
                ),
            )
        },
    },
    "UPNP_MAPPING_OTHER_HOST": {
        DEFAULT: _T(
            "The router forwards TCP {port} to {client}:{internal_port} "
            "({description!r}), not to this PC ({lan}): the PACS's connection reaches "
            "that machine instead.",
            "Remove or change that mapping in {admin} (or, if {client} does not "
            "need it, `reverseprobe forward --upnp --port {port} --force`), or give this "
            "PC another port and register that port at the PACS.",
        ),
    },
    "UPNP_MAPPING_OK": {
        "lease": _T(
            "The router forwards TCP {port} to this PC ({client}:{port}, "
            "{description!r}, lease {lease} s left).{double}",
            "A mapping with a lease ends when it runs out or the router restarts: renew it "
            "with `reverseprobe forward --upnp`, or make a permanent rule in the router.",
        ),
        "permanent": _T(
            "The router forwards TCP {port} to this PC ({client}:{port}, "
            "{description!r}, permanent).{double}",
        ),
    },
    # the reflector's dial-back (diagnosis/inbound.py)
    "INBOUND_NOT_TESTED": {
        "unfinished": _T(
            "The echo-back probe did not finish ({status}): {reason}.",
            "Re-run with a longer --timeout; if it persists, check that the reflector "
            "answers (curl URL/healthz).",
        ),
        "skipped": _T(
            "Inbound reachability of port {port} was not tested: {reason}.",
            "Run `reverseprobe reflector` on a server outside this network (best beside "
            "the PACS) and pass --reflector URL, or set REVERSEPROBE_REFLECTOR; only a "
            "connection from outside proves that the PACS can connect back.",
        ),
        # refused:<why>: the reflector answered our request with an HTTP error
        **{
            variant: _T("The reflector {reflector} refused the probe: {reason}.", fix)
            for variant, fix in (
                (
                    "refused:401",
                    "The reflector wants a bearer token: give it in the URL as "
                    "https://:TOKEN@host:8470/ (better in REVERSEPROBE_REFLECTOR than on the "
                    "command line).",
                ),
                (
                    "refused:403",
                    "The reflector does not dial port {port}: ask its operator to add it to "
                    "--allow-ports, or use port {dicom_port}.",
                ),
                (
                    "refused:busy",
                    "The reflector is rate limiting or busy: wait a minute and re-run.",
                ),
                (
                    "refused",
                    "Check that the URL names a reverseprobe reflector of a compatible version.",
                ),
            )
        },
        # deadline: the probe ran out of time (diagnosis/story.py); :need when its need is known
        **{
            variant: _T("The echo-back probe was not measured in time ({had:.1f} s).", fix)
            for variant, fix in (
                (
                    "deadline:need",
                    "Re-run with --timeout {need:.0f} or more: {names} need about {need:.0f} s.",
                ),
                (
                    "deadline:need:one",  # one probe was cut short: singular
                    "Re-run with --timeout {need:.0f} or more: {names} needs about {need:.0f} s.",
                ),
                ("deadline", "Re-run with a longer --timeout: {names} did not finish."),
            )
        },
        "no_result": _T(
            "The reflector gave no result for port {port}.",
            "Re-run; if it persists, the reflector is not a compatible version.",
        ),
    },
    "REFLECTOR_UNREACHABLE": {
        DEFAULT: _T(
            "The reflector {reflector} did not answer properly: {reason}.",
            "Check the URL, that the reflector runs (its /healthz answers) and that this network "
            "lets HTTP(S) out to it; inbound reachability was not tested.",
        ),
    },
    "INBOUND_OK": {
        "nonce": _T(
            "The reflector connected to {dialed} and reached this PC: the temporary listener "
            "saw the one-time calling AE title arrive."
        ),
        "fingerprint": _T(
            "The reflector connected to {dialed} and reached this PC: the listener answered "
            "it exactly as it answers this PC."
        ),
        "unconfirmed": _T(
            "The reflector connected to {dialed} and reached a listener ({dicom}), "
            "but could not confirm that it is this PC's listener.",
            "To prove it, stop the receiver on port {port} and re-run `check`: it then "
            "holds the port itself and has the reflector call it with a one-time AE title.",
        ),
    },
    "INBOUND_OTHER_HOST": {
        # by how this PC's own listener was told apart (InboundMode)
        variant: _T(
            "The reflector's connection to {dialed} was accepted by another listener ({who}), "
            + why
            + ": the router forwards port {port} to another machine, or a device on the way "
            "answers.",
            "Point the router's forwarding rule for TCP {port} at this PC ({here}): "
            "`reverseprobe forward --upnp --port {port} --force` where UPnP is on, or the "
            "router's admin page; the images would otherwise go to that other machine.",
        )
        for variant, why in (
            (
                "temporary_listener",
                "but the temporary listener on this PC never saw its one-time AE title",
            ),
            ("not_held", "although nothing listens on that port on this PC"),
            ("fingerprint", "but this PC's listener answers as {local}"),
        )
    },
    "PORT_ISP_BLOCKED": {
        # by how the dial-back to the low port failed; the high control port got through
        variant: _T(
            "Measured: the reflector's connection to {dialed} "
            + how
            + ", while the high control port {control_port} reached this PC through the "
            "same router: the ISP (or a filter beyond the router) blocks inbound port {port}.",
            "Use port {dicom_port} (the IANA-registered DICOM port) for the "
            "receiver, forward that port to this PC ({here}), and give the PACS "
            "administrator the new port.",
        )
        for variant, how in (("timeout", "timed out"), ("refused", "was refused"))
    },
    "INBOUND_REFUSED": {
        # temporary_listener: our own listener held the port, so something listened
        variant: _T(
            "The reflector's connection to {dialed} was refused: the router has no "
            "forwarding for port {port}" + tail,
            "Forward TCP port {port} on the router to this PC ({here}): "
            "`reverseprobe forward --upnp --port {port}` where UPnP is on, else the "
            "router's admin page; then start the receiver on port {port} and re-run.",
        )
        for variant, tail in ((DEFAULT, ", or nothing listens on it."), ("temporary_listener", "."))
    },
    "INBOUND_TIMEOUT": {
        # timed_out | icmp, and ":low_port" where the ISP may block a port below 1024
        f"{variant}{low}": _T(
            "The reflector's connection to {dialed} "
            + how
            + ": a firewall filters it (this PC's, the router's, or one between the sites)"
            + tail,
            "Allow inbound TCP port {port} in this PC's firewall and check that the "
            "router forwards it to this PC ({here}); where the PACS is behind its own "
            "firewall, its administrator must allow connections out to port {port}.",
        )
        for variant, how in (
            ("timed_out", "timed out"),
            ("icmp", "was rejected with an ICMP error"),
        )
        for low, tail in (("", "."), (":low_port", ", or the ISP blocks port {port}."))
    },
    # the PACS side of move-test (diagnosis/pacs.py); {pacs} is "AET at host:port"
    "PACS_UNREACHABLE": {
        "unresolved": _T(
            "The PACS host name {host!r} does not resolve: {reason}.",
            "Check the spelling and this PC's DNS (or VPN), or give the PACS's IP address "
            "in --pacs.",
        ),
        # by how the TCP connect ended (PacsTcp)
        **{
            variant: _T("No TCP connection to the PACS {pacs}: {tcp} ({reason}).", fix)
            for variant, fix in (
                (
                    "refused",
                    "Nothing listens on {host}:{port}: check the PACS's "
                    "DICOM port with its administrator (104 and 11112 are usual) and that it runs.",
                ),
                (
                    "timeout",
                    "The connection to {host}:{port} timed out: a firewall "
                    "drops it, or the address is wrong, or the VPN to the PACS is down.",
                ),
                (
                    "unreachable",
                    "No route to {host}: check the address, this PC's network "
                    "and any VPN to the PACS.",
                ),
            )
        },
        "not_dicom": _T(
            "{host}:{port} accepts TCP but does not answer DICOM: {reason}.",
            "Check the PACS's DICOM port with its administrator; {port} may be "
            "another service (HTTP, TLS-only DICOM).",
        ),
    },
    "PACS_REJECTED_ASSOCIATION": {
        # A-ASSOCIATE-RJ (PS3.8 9.3.4): source 1 reason 7 / 3 / other, result 2 (transient)
        variant: _T(
            "The PACS {pacs} rejected the association ({what}): {result_str}, "
            "{source_str}, {reason_str} "
            "(result {result}, source {source}, reason {reason}).",
            fix,
        )
        for variant, fix in (
            (
                "called_aet",
                "Use the PACS's exact AE title (case matters): {pacs_aet!r} is not it. "
                "dcmqrscp says the same when the calling AE title is unknown: ask the "
                "administrator to register {register}.",
            ),
            ("calling_aet", "Ask the PACS administrator to register {register}."),
            (
                "caller",
                "The PACS refused this caller: ask its administrator to allow {register} "
                "(many PACS check the calling AE title and the address it comes from).",
            ),
            ("transient", "The PACS is busy or temporarily refusing (transient): try again later."),
            ("other", "Ask the PACS administrator what the PACS logged for this association."),
        )
    },
    "PACS_ABORTED": {
        "association": _T(
            "The PACS {pacs} accepted the association but aborted {what} (A-ABORT, no "
            "status): it does not know the calling AE title {aet!r}, or knows it with another "
            "address than the one this PC's connections come from.",
            "Ask the PACS administrator to register {register}; the address must be "
            "the one the PACS sees (behind NAT: the public address) and the title must match "
            "exactly.",
        ),
        "no_final_find": _T(
            "The PACS {pacs} accepted the association but gave no final C-FIND response: {reason}.",
            "Ask the PACS administrator why the query does not complete (its log for this "
            "caller, {aet!r}); a PACS that answers C-ECHO but not C-FIND often does not "
            "know the calling AE title.",
        ),
    },
    "PACS_PROTOCOL_ERROR": {
        DEFAULT: _T(
            "The PACS {pacs} answered {what} with garbage, not DICOM: {reason}.",
            "Report it to the PACS vendor with a network capture of the exchange; confirm with "
            "another Q/R client (dcmtk movescu) that it is the PACS and not the path.",
        ),
    },
    "MOVE_NOTHING_TO_MOVE": {
        "find_refused": _T(
            "The PACS {pacs} refused Study Root C-FIND, so no study could be chosen.",
            "Name a study that is on the PACS with --study UID.",
        ),
        "find_failed": _T(
            "C-FIND on the PACS {pacs} failed: {reason}.",
            "Name a study that is on the PACS with --study UID, or ask the administrator "
            "why the query fails.",
        ),
        **{
            variant: _T(
                summary,
                "Store a small test study on the PACS (or ask for one), or name one with "
                "--study UID; until then the C-MOVE cannot be tested.",
            )
            for variant, summary in (
                ("study_missing", "Study {study} is not on the PACS (C-FIND found no match)."),
                ("no_study", "The PACS {pacs} returned no study for C-FIND: nothing to move."),
            )
        },
    },
    "REFLECTOR_INSIDE": {
        DEFAULT: _T(
            "The reflector {reflector} is inside this network: {why}. Its dial-back is shown "
            "but proves nothing about a connection from outside (dial-back: {seen}).",
            "Run `reverseprobe reflector` on a server outside this network (best beside the PACS) "
            "and pass its URL with --reflector; only a connection from outside proves that the "
            "PACS can connect back.",
        ),
    },
    # containers and VMs (diagnosis/virtual.py); host_fix: what to do on the host, per platform
    "NAT_VIRTUAL": {
        f"{variant}{closed}": _T(
            "This PC is {what}{where}: a second NAT, its host, stands between the PACS and "
            "the listener." + more + tail,
            todo + ". Then give the PACS administrator the HOST's address, not {address}: "
            "{aet} @ <host's LAN address>:{port} for a PACS on the same LAN, or {aet} @ "
            "<public address>:{port} (with the router forwarding TCP {port} to the host) for "
            "a PACS outside.",
        )
        for variant, more, todo in (
            (
                "reached",
                " The host sends port {port} on: the dial-back got in and reached this listener.",
                "Keep the host's forwarding of port {port} (it works)",
            ),
            (
                "not_reached",
                " Nothing reaches port {port} here unless the host sends it on.",
                "On the host: {host_fix}",
            ),
        )
        for closed, tail in (("", ""), (":closed", " The dial-back did not get in."))
    },
    "LISTENER_IN_CONTAINER": {
        DEFAULT: _T(
            "Port {port} on this PC is published to a container: connections go on to "
            "{address}:{container_port}. The receiver is the program in that container.",
            "Check the receiver inside the container ({address}:{container_port}): its AE "
            "title and its storage. The PACS still dials this PC's address and port {port}.",
        ),
    },
    # the PACS's entry for us, as given with --pacs-entry (diagnosis/pacs_entry_check.py)
    "PACS_ENTRY_WRONG": {
        DEFAULT: _T(
            "The PACS's entry {aet}@{host}:{port} is wrong: {wrong}.",
            "In the PACS's AE table change {changes}: the entry must be {must}.",
        ),
    },
    "PACS_ENTRY_OK": {
        DEFAULT: _T("The PACS's entry {aet}@{host}:{port} matches what was measured."),
    },
    "NAT_HAIRPIN": {
        variant: _T(
            "The PACS is inside this site but its entry gives the public address {public}: "
            "its connection must turn around on the router (hairpin NAT). " + measured,
            "Give the PACS this PC's LAN address: {aet} @ {lan}:{port}.",
        )
        for variant, measured in (
            ("hairpins", "Measured: the router hairpins (this PC reached its own public address)."),
            ("no_hairpin", "Measured: the router does not hairpin: the connection cannot arrive."),
            ("not_measured", "Whether the router hairpins was not measured."),
        )
    },
}


def _merged(*tables: Mapping[str, Mapping[str, Text]]) -> Mapping[str, Mapping[str, Text]]:
    """One table from the per-area ones; a (code, variant) given twice would silently lose
    a wording, so it raises."""
    out: dict[str, dict[str, Text]] = {}
    for table in tables:
        for code, variants in table.items():
            into = out.setdefault(code, {})
            twice = into.keys() & variants.keys()
            if twice:
                raise ValueError(f"{code}: variant(s) {sorted(twice)} given twice")
            into.update(variants)
    return out


# `forward`'s words (diagnosis/forward.py, commands/forward.py), beside check's under the
# same codes. {manual}: the manual procedure (forward.manual_steps); {via}: upnp | natpmp | pcp
_NO_READBACK = (
    "NAT-PMP/PCP cannot read a mapping back: the router's answer is the proof; --verify "
    "tests it from outside."
)
_V6_FIX = (
    "IPv6 has no NAT: the router's IPv6 firewall decides. Open TCP port {port} for {addr} in the "
    "router's IPv6 firewall page ({admin}), or let the PACS reach this PC over IPv4 (the "
    "port mapping)."
)
_FORWARD_TEXTS: Mapping[str, Mapping[str, Text]] = {
    "UPNP_UNAVAILABLE": {
        "forward": _T(
            "No router answered a port mapping request ({tried}).",
            "Turn on UPnP IGD (or NAT-PMP/PCP) in the router, or forward the port by hand. "
            "{manual}",
        ),
    },
    "NAT_DOUBLE": {
        "forward:router": _T(
            "The router is behind another NAT: {why}. A mapping on it alone cannot make this "
            "PC reachable from the internet.",
            "{manual}",
        ),
        "forward:differs": _T(
            "The router's external address {external_ip} differs from the public "
            "address {public_ip} the IP services see: another NAT, a VPN or multi-WAN "
            "lies beyond the router.",
            "{manual}",
        ),
    },
    "ROUTER_MAPPINGS": {
        # rows: one "\n    PROTO EXT -> CLIENT:PORT 'description' ..." per mapping
        "listing": _T("The router holds {count} port mapping(s):{rows}"),
        "listing:none": _T("The router holds {count} port mapping(s)."),
        "not_listed": _T(
            "The router's mappings were not listed: {reason}.",
            "Use --upnp --list where the router speaks UPnP IGD.",
        ),
    },
    "PORT_PRIVILEGED": {
        "forward": _T(
            "External port {port} is below 1024: many ISPs block inbound "
            "connections to such ports.",
            "Prefer {dicom_port} (the IANA-registered DICOM port); test it with --verify and a "
            "reflector.",
        ),
    },
    "UPNP_MAPPING_OK": {
        # done: "added", "renewed", ...; lease: "lease N s" | "permanent"; expiry: "" or a clause
        **{
            variant: _T(
                "The router forwards {external}:{port} ({via}) to this PC ({client}:"
                "{internal_port}): {done}; {lease}{expiry}.",
                fix,
            )
            for variant, fix in (("forward", ""), ("forward:unverified", _NO_READBACK))
        },
        "listed": _T(
            "The router forwards TCP port {port} to this PC ({client}:{internal_port}), {lease}.",
        ),
        # the IPv6 pinhole (issue 15); how: "UPnP pinhole ID" | "PCP"; back: how it is known
        "v6": _T(
            "The router's IPv6 firewall admits TCP port {port} to this PC {addr} "
            "({how}, {action}{lease}; {back}).",
            "A PACS that reaches you over IPv6 dials {addr} port {port} (no NAT: "
            "the address is this PC's own). Remove it with `reverseprobe forward --remove`.",
        ),
    },
    "FORWARD_PORT_CHANGED": {
        DEFAULT: _T(
            "The router mapped external port {assigned}, not "
            "{asked} as asked (port {asked} is taken or not allowed "
            "there).",
            "Give the PACS administrator port {assigned}, or free port "
            "{asked} on the router and run again.",
        ),
    },
    "UPNP_MAPPING_OTHER_HOST": {
        **{
            variant: _T(
                "The router already forwards TCP port {port} to {held_by}"
                + named
                + ", not to this PC: left untouched.",
                "If {held_by} no longer needs it, remove it there (or re-run with --force to "
                "take it over); otherwise choose another --external-port and give that port to "
                "the PACS administrator.",
            )
            for variant, named in (("held", ""), ("held:named", " ('{description}')"))
        },
        "listed": _T(
            "The router forwards TCP port {port} to {held_by}, not to this PC.",
            "Free it there, or choose another --external-port.",
        ),
        # refused: a router in secure mode (UPnP IGD: 606 Action not authorized)
        "refused": _T(
            "The router forwards TCP port {port} to {held_by} and refused to "
            "remove that mapping ({error_code} {error_name}): routers in secure mode let "
            "only the host that made a mapping delete it. Left untouched.",
            "Remove it from {held_by} (`reverseprobe forward --remove` there) or in the "
            "router's admin page, or choose another --external-port. {manual}",
        ),
    },
    "UPNP_MAPPING_MISSING": {
        "removed": _T("Removed: the router no longer forwards TCP port {port} ({via})."),
        "removed:note": _T(
            "Removed: the router no longer forwards TCP port {port} ({via}). ({note})"
        ),
        "absent": _T("Nothing to remove: the router holds no mapping for TCP port {port}."),
        **{
            variant: _T(
                "Dry run: would forward TCP port {port} to this PC ({client}:{internal_port}) "
                "via {via}" + extra + "; nothing changed.",
                "Run again without --dry-run.",
            )
            for variant, extra in (
                ("would_add", ""),
                ("would_add:replacing", " (replacing the mapping to {held_by})"),
            )
        },
        "would_remove": _T(
            "Dry run: would remove the mapping of TCP port {port} via {via}; nothing changed."
        ),
        "listed": _T(
            "The router has no mapping for TCP port {port}.",
            "Run `reverseprobe forward` (without --list) to add it.",
        ),
        # failed:<remove|forward>, and :error_fix where the router's error code has a fix
        **{
            f"failed:{doing}{tag}": _T(
                "Could not "
                + doing
                + " TCP port {port} to this PC ({client}:{internal_port}) ({via}): {why}.",
                lead + "{manual}",
            )
            for doing in ("remove", "forward")
            for tag, lead in (("", ""), (":error_fix", "{error_fix}. "))
        },
        # the IPv6 pinhole (issue 15)
        "v6:not_asked": _T("No IPv6 pinhole asked: {reason}.", _V6_FIX),
        "v6:none": _T("No IPv6 pinhole: {reason}.", _V6_FIX),
        "v6:removed": _T("The IPv6 pinhole for {addr} port {port} was removed."),
        "v6:absent": _T("No IPv6 pinhole of reverseprobe to remove: {reason}."),
        "v6:would_add": _T("Would open an IPv6 pinhole for {addr} port {port}."),
        "v6:would_remove": _T("Would remove the IPv6 pinhole {unique_id} for {addr}."),
        "v6:not_offered": _T(
            "The router offers no IPv6 pinhole: {reason}. The IPv4 part is not affected.",
            _V6_FIX,
        ),
        "v6:not_offered:alone": _T("The router offers no IPv6 pinhole: {reason}.", _V6_FIX),
        **{
            f"v6:failed{tag}": _T(
                "The IPv6 pinhole for {addr} port {port} was not opened: {reason}.",
                lead + _V6_FIX,
            )
            for tag, lead in (("", ""), (":error_fix", "{error_fix}. "))
        },
    },
    "INBOUND_NOT_TESTED": {
        "forward:skipped": _T(
            "Inbound reachability was not tested: {reason}.",
            "Run `reverseprobe reflector` outside this network and pass "
            "--reflector URL (or set REVERSEPROBE_REFLECTOR).",
        ),
    },
}

# the local firewall, per address family (diagnosis/network.py firewall_rules). A ":family"
# variant names the family ("Over IPv6, the ..."); {name}: the firewall's display name;
# {where}: " (chain inet filter input)" or ""; {tail}: FIREWALL_OTHER_OPEN/_MEASURED sentences;
# {command}: diagnosis/firewall_fix.allow_command
FIREWALL_OTHER_OPEN = " Over {family} it lets the connection in."
FIREWALL_OTHER_OPEN_RULE = " Over {family} it lets the connection in (rule `{rule}`)."
FIREWALL_MEASURED = " The reflector's dial-back came over {family}."
_BY_FORWARD = (
    "Run `reverseprobe forward --firewall --port {port}` (--dry-run shows what it "
    "runs, --remove undoes it), or allow the port by hand: {command}."
)
_FIREWALL_TEXTS: Mapping[str, Mapping[str, Text]] = {
    code: {
        f"{variant}{tag}": _T(lead + summary + "{tail}", fix)
        for variant, summary, fix in rows
        for tag, lead in (("", "The "), (":family", "Over {family}, the "))
    }
    for code, rows in (
        (
            "FIREWALL_BLOCKS",
            (
                (
                    "blocked",
                    "{name} firewall{where} refuses inbound TCP {port}: rule `{rule}`.",
                    "Allow the port: {command}.",
                ),
                (
                    # {noted}: " (the chain's note)" or ""
                    "default_drop",
                    "{name} firewall{where} is active and no rule allows inbound TCP {port}: "
                    "its default refuses the connection{noted}.",
                    _BY_FORWARD,
                ),
            ),
        ),
        (
            "FIREWALL_MAY_BLOCK",
            (
                (
                    # unread: what could not be read, so the default may not be the answer
                    "default_drop",
                    "{name} firewall{where} is active and no rule allows inbound TCP {port}: "
                    "its default refuses the connection{noted}. Not everything could be read: "
                    "{unread}.",
                    _BY_FORWARD,
                ),
                (
                    "conditional",
                    "{name} firewall{where} allows inbound TCP {port} only conditionally: "
                    "{condition}.",
                    "Make sure the PACS's connection meets that condition (its address is in "
                    "the allowed range), or allow the port for every source: {command}.",
                ),
            ),
        ),
    )
}

# the checklist's own findings (commands/checklist_run.py); {what}: "PACS 'name'" | "this PC"
_CHECKLIST_TEXTS: Mapping[str, Mapping[str, Text]] = {
    "CHECKLIST_INCOMPLETE": {
        "broken": _T(
            "{command} for {what} did not complete: {reason}. Nothing about it was measured.",
            "Run `reverseprobe {command}` for {what} by hand to see what happens "
            "(add --debug for the traceback), or raise --timeout.",
        ),
        "not_run": _T(
            "move-test for PACS {name!r} was not run: {reason}.",
            "Run the checklist again with a longer --timeout, or test this PACS alone with "
            "`reverseprobe move-test`.",
        ),
    },
}

TEXTS = _merged(TEXTS, _FORWARD_TEXTS, _FIREWALL_TEXTS, _CHECKLIST_TEXTS)
