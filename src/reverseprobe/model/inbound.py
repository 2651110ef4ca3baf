"""Result types of the inbound probe and of the reflector's answers that rules read
(docs/reference.md "inbound")."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from reverseprobe.model import ProbeResult
from reverseprobe.model.dicom import DicomResult, EchoResult, TcpState
from reverseprobe.model.tls import TlsFacts


@dataclass(frozen=True)
class Reject:
    result: int
    source: int
    reason: int
    text: str


@dataclass(frozen=True)
class PortProbe:
    """What the reflector saw dialling one port back (client side, validated)."""

    port: int
    tcp: TcpState
    dicom: DicomResult
    reject: Reject | None = None
    implementation_class_uid: str | None = None
    implementation_version_name: str | None = None
    detail: str | None = None
    elapsed_ms: float | None = None
    tls: TlsFacts | None = None  # "tls": true: the receiver's TLS handshake, seen from outside

    @property
    def fingerprint(self) -> tuple[str | None, str | None]:
        return (self.implementation_class_uid, self.implementation_version_name)


@dataclass(frozen=True)
class ProbeAnswer:
    observed_ip: str
    results: tuple[PortProbe, ...]

    def for_port(self, port: int) -> PortProbe | None:
        return next((r for r in self.results if r.port == port), None)


class InboundMode(str, Enum):
    TEMPORARY_LISTENER = "temporary-listener"  # the port was free: our SCP held it
    EXISTING_LISTENER = "existing-listener"  # a program listens: compare fingerprints
    NOT_HELD = "not-held"  # free, but we could not listen on it (privileges)


class ControlOutcome(str, Enum):
    REACHED = "reached"
    NOT_REACHED = "not-reached"
    NOT_TESTED = "not-tested"


@dataclass(frozen=True)
class Fingerprint:
    """How a listener answers an association: enough to tell two listeners apart."""

    result: DicomResult
    implementation_class_uid: str | None = None
    implementation_version_name: str | None = None
    reject_reason: int | None = None

    @classmethod
    def of_echo(cls, e: EchoResult) -> Fingerprint:
        reason = e.reject.reason if e.reject else None
        return cls(e.result, e.implementation_class_uid, e.implementation_version_name, reason)

    @classmethod
    def of_probe(cls, r: PortProbe) -> Fingerprint:
        reason = r.reject.reason if r.reject else None
        return cls(r.dicom, r.implementation_class_uid, r.implementation_version_name, reason)


@dataclass(frozen=True)
class ControlResult:
    """The high control port test for a low port (docs/reference.md "inbound")."""

    outcome: ControlOutcome
    reason: str | None = None
    port: int | None = None  # external and internal port of the temporary mapping
    lan_address: str | None = None
    result: PortProbe | None = None
    nonce_seen: bool = False
    mapping_removed: bool | None = None
    low_port_mapping: str | None = None  # "host:port" the router maps the low port to (UPnP)


@dataclass(frozen=True, kw_only=True)
class InboundResult(ProbeResult):
    port: int
    reflector: str | None = None  # the URL without any token
    mode: InboundMode | None = None
    observed_ip: str | None = None  # the reflector's view of our public address
    results: tuple[PortProbe, ...] = ()
    nonce: str | None = None
    nonce_seen: bool | None = None  # None: no temporary listener, so no nonce to see
    calling_aets_seen: tuple[str, ...] = ()
    connections_seen: tuple[str, ...] = ()
    local_fingerprints: tuple[Fingerprint, ...] = ()
    remote_fingerprint: Fingerprint | None = None
    control: ControlResult | None = None
    http_status: int | None = None
    reflector_error: str | None = None  # "unreachable" | "refused" | "garbage"
    note: str | None = None

    @property
    def main(self) -> PortProbe | None:
        return next((r for r in self.results if r.port == self.port), None)
