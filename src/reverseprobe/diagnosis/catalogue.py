"""The catalogue of finding codes (docs/reference.md "Findings"): stable API, add, never rename.

Each code has a default severity, the report section it belongs to, the hop of the path
(PACS -> internet -> router -> this PC -> listener) that it marks, and its words: a summary
and a fix template per variant (`TEXTS`, like tailscale's health.Warnable). Rules in
`diagnosis/` decide which code and variant apply and supply the values; `make()` renders.

To add a code:
1. a `Code(...)` line in `CATALOGUE` (the name and severity SPEC.md's table gives);
2. its `Text(summary, fix)` templates, one per variant where the wording genuinely differs
   (str.format fields, plain names only: `{port}`, `{aet!r}`, `{status:04X}`), in the
   `TEXTS` of the words module of the rules that make it (diagnosis/words/__init__.py says
   which area goes where; a new area gets a module there, added to `merged()` below).
   A sentence only some cases add is a module-level fragment there, formatted by the rule
   and passed as a field ("" when absent); a variant where it is one such choice;
3. a section in docs/findings.md (tests/test_findings_docs.py);
4. the rule picks the variant and supplies the values, and the JSON facts apart:
   `make("CODE", variant="...", detail={...}, port=..., ...)`. A field of the variant left
   without a value, or a value no variant of the code names, raises
   (tests/diagnosis/test_catalogue.py renders every template and checks, by AST, that no
   rule passes a sentence). Peer-supplied text is escaped where it is shown (render/,
   textsafe.py); str.format never re-reads a value, so a peer's "{" is just a character.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from reverseprobe.diagnosis.words import DEFAULT as DEFAULT
from reverseprobe.diagnosis.words import Text as Text
from reverseprobe.diagnosis.words import forward as _forward
from reverseprobe.diagnosis.words import local as _local
from reverseprobe.diagnosis.words import merged
from reverseprobe.diagnosis.words import move as _move
from reverseprobe.diagnosis.words import network as _network
from reverseprobe.diagnosis.words import pacs as _pacs
from reverseprobe.diagnosis.words import receiver as _receiver
from reverseprobe.diagnosis.words.network import DYNAMIC_NOTE as DYNAMIC_NOTE
from reverseprobe.diagnosis.words.network import FIREWALL_MEASURED as FIREWALL_MEASURED
from reverseprobe.diagnosis.words.network import FIREWALL_OTHER_OPEN as FIREWALL_OTHER_OPEN
from reverseprobe.diagnosis.words.network import (
    FIREWALL_OTHER_OPEN_RULE as FIREWALL_OTHER_OPEN_RULE,
)
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


def make(
    code: str,
    *,
    variant: str | None = None,
    severity: Severity | None = None,
    target: str | None = None,
    detail: Mapping[str, Any] | None = None,
    **values: Any,
) -> Finding:
    """A finding for a catalogued code, its words rendered from `TEXTS` (one way: a rule
    never writes a sentence itself); an unknown code is a programming error. `values` fill
    the variant's template, `detail` is the JSON facts, apart from the words."""
    entry = CATALOGUE[code]
    summary, fix = entry.render(variant, values)
    return Finding(
        code=code,
        severity=severity or entry.severity,
        summary=summary,
        fix=fix,
        detail=dict(detail or {}),
        target=target,
    )


# The words of every code, by variant (diagnosis/words/: one module per area).
TEXTS: Mapping[str, Mapping[str, Text]] = merged(
    _local.TEXTS,
    _network.TEXTS,
    _pacs.TEXTS,
    _move.TEXTS,
    _receiver.TEXTS,
    _forward.TEXTS,
    _network.FIREWALL_TEXTS,
    _pacs.CHECKLIST_TEXTS,
)
