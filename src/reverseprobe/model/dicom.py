"""Result types of the DICOM exchanges (echo, C-FIND, C-MOVE, C-GET) and the status classes of
PS3.4 C.4.2, so that rules read them without importing pynetdicom."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import TYPE_CHECKING, Any

from reverseprobe.model import ProbeResult
from reverseprobe.model.tls import TlsFacts

if TYPE_CHECKING:
    from reverseprobe.model.check import ListeningSocket


class TcpState(str, Enum):
    OPEN = "open"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"


class PacsTcp(str, Enum):
    """How move-test's TCP connect to the PACS ended: a TcpState, or no address to dial."""

    OPEN = "open"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    UNRESOLVED = "unresolved"  # the name did not resolve: nothing was dialled


DEFAULT_CALLING_AET = "REVERSEPROBE"


class DicomResult(str, Enum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    ABORTED = "aborted"
    NOT_DICOM = "not-dicom"
    NO_ANSWER = "no-answer"  # TCP accepted, nothing came back within the timeout
    NOT_TESTED = "not-tested"


@dataclass(frozen=True)
class Rejection:
    """A-ASSOCIATE-RJ fields (PS3.8 9.3.4), as numbers and as words."""

    result: int
    source: int
    reason: int
    result_str: str
    source_str: str
    reason_str: str


@dataclass(frozen=True)
class EchoResult:
    host: str
    port: int
    tcp: TcpState
    result: DicomResult
    called_aet: str
    calling_aet: str
    reject: Rejection | None = None
    echo_status: int | None = None
    implementation_class_uid: str | None = None
    implementation_version_name: str | None = None
    max_pdu: int | None = None
    detail: str | None = None
    elapsed_ms: float = 0.0
    fsm_events: tuple[str, ...] = field(default=(), repr=False)
    tls: TlsFacts | None = None  # DICOM over TLS seen or used (PS3.15 B.1, issue 15)

    @property
    def fingerprint(self) -> tuple[str | None, str | None]:
        return (self.implementation_class_uid, self.implementation_version_name)


class AssocState(str, Enum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"  # A-ASSOCIATE-RJ (PS3.8 9.3.4)
    ABORTED = "aborted"  # A-ABORT / A-P-ABORT instead of an answer
    UNREACHABLE = "unreachable"  # no TCP connection
    NO_ANSWER = "no-answer"  # TCP up, no answer to A-ASSOCIATE-RQ
    NOT_DICOM = "not-dicom"
    CONTEXT_REJECTED = "context-rejected"  # associated, but the SOP class we need was refused


class NoResponse(str, Enum):
    """Why a C-FIND/C-MOVE/C-GET ended without a final response."""

    ABORTED = "aborted"  # the PACS sent A-ABORT
    CLOSED = "closed"  # the connection dropped (A-P-ABORT)
    TIMEOUT = "timeout"  # nothing within the time left; we aborted
    GARBAGE = "garbage"  # the PACS sent what no DICOM peer sends; we aborted


NO_RESPONSE_TEXT = {
    NoResponse.ABORTED: "the PACS aborted the association (A-ABORT)",
    NoResponse.CLOSED: "the connection closed",
    NoResponse.TIMEOUT: "no response within the time left (DIMSE timeout)",
    NoResponse.GARBAGE: "the PACS answered garbage, not DICOM; we aborted",
}


class StatusWord(str, Enum):
    """Status categories of PS3.7 Annex C."""

    SUCCESS = "success"
    PENDING = "pending"
    WARNING = "warning"
    CANCEL = "cancel"
    FAILURE = "failure"


class DicomStatus(IntEnum):
    """Well-known DIMSE status codes (PS3.4 C.4.2.1.5 C-MOVE, C.4.3.1.4 C-GET, PS3.7 C)."""

    SUCCESS = 0x0000
    WARNING = 0x0001  # PS3.7 C.3: warning, no further meaning
    ATTRIBUTE_LIST_ERROR = 0x0107  # warning
    ATTRIBUTE_VALUE_OUT_OF_RANGE = 0x0116  # warning
    SOP_CLASS_NOT_SUPPORTED = 0x0122
    NOT_AUTHORIZED = 0x0124
    OUT_OF_RESOURCES = 0xA700  # C-STORE: out of resources
    OUT_OF_RESOURCES_MATCHES = 0xA701  # unable to calculate number of matches
    OUT_OF_RESOURCES_SUBOPERATIONS = 0xA702  # unable to perform sub-operations
    MOVE_DESTINATION_UNKNOWN = 0xA801
    IDENTIFIER_DOES_NOT_MATCH = 0xA900  # identifier does not match SOP class
    NO_FRAMES_FOUND = 0xAA00
    SUBOPERATIONS_WITH_FAILURES = 0xB000  # complete, one or more failures or warnings
    UNABLE_TO_PROCESS = 0xC000  # the first of C000-CFFF
    CANCEL = 0xFE00
    PENDING = 0xFF00
    PENDING_OPTIONAL_KEYS = 0xFF01  # pending: optional keys not supported


_S = DicomStatus
_MEANINGS = {
    _S.SUCCESS: "sub-operations complete, no failures",
    _S.SOP_CLASS_NOT_SUPPORTED: "SOP class not supported",
    _S.NOT_AUTHORIZED: "not authorized",
    _S.OUT_OF_RESOURCES_MATCHES: "out of resources: unable to calculate number of matches",
    _S.OUT_OF_RESOURCES_SUBOPERATIONS: "out of resources: unable to perform sub-operations",
    _S.MOVE_DESTINATION_UNKNOWN: "move destination unknown",
    _S.IDENTIFIER_DOES_NOT_MATCH: "identifier does not match SOP class",
    _S.NO_FRAMES_FOUND: "none of the frames requested were found",
    _S.SUBOPERATIONS_WITH_FAILURES: "sub-operations complete, one or more failures or warnings",
    _S.CANCEL: "sub-operations terminated due to cancel",
    _S.PENDING: "pending: sub-operations are continuing",
    _S.PENDING_OPTIONAL_KEYS: "pending: optional keys not supported",
}
_WARNINGS = frozenset({_S.WARNING, _S.ATTRIBUTE_LIST_ERROR, _S.ATTRIBUTE_VALUE_OUT_OF_RANGE})


def status_word(code: int) -> StatusWord:
    """The class of a status code (PS3.4 C.4.2: Success, Pending, Cancel, Warning, Failure;
    anything else, 0x01xx, 0x02xx, Axxx and Cxxx among them, is a failure)."""
    if code == _S.SUCCESS:
        return StatusWord.SUCCESS
    if code in (_S.PENDING, _S.PENDING_OPTIONAL_KEYS):
        return StatusWord.PENDING
    if code == _S.CANCEL:
        return StatusWord.CANCEL
    if code in _WARNINGS or 0xB000 <= code <= 0xBFFF:
        return StatusWord.WARNING
    return StatusWord.FAILURE


def status_meaning(code: int) -> str:
    if code in _MEANINGS:
        return _MEANINGS[DicomStatus(code)]
    if 0xC000 <= code <= 0xCFFF:
        return "unable to process"
    return "failure" if status_word(code) is StatusWord.FAILURE else status_word(code).value


@dataclass(frozen=True)
class AssocOutcome:
    state: AssocState
    reject: Rejection | None = None
    detail: str | None = None


@dataclass(frozen=True, kw_only=True)
class EchoProbeResult(ProbeResult):
    tcp: PacsTcp | None = None
    result: DicomResult | None = None
    reject: Rejection | None = None
    echo_status: int | None = None
    implementation_class_uid: str | None = None
    implementation_version_name: str | None = None
    detail: str | None = None
    tls: TlsFacts | None = None  # move-test --tls: the association to the PACS (issue 15)


class EventKind(str, Enum):
    """What happened, on our client side (requests, responses) or our listener's side."""

    LISTENING = "listening"
    MOVE_REQUEST = "c-move-rq"
    MOVE_PENDING = "c-move-pending"
    MOVE_FINAL = "c-move-final"
    MOVE_NO_RESPONSE = "c-move-no-response"
    MOVE_CANCEL = "c-move-cancel"
    CONNECTION = "connection"
    ASSOCIATE_RQ = "a-associate-rq"
    ACCEPTED = "a-associate-ac"
    REJECTED = "a-associate-rj"
    C_STORE = "c-store"
    RELEASED = "a-release"
    ABORTED = "a-abort"
    CLOSED = "connection-closed"
    GRACE_END = "grace-end"
    CUT_OFF = "cut-off"  # our guard ended or refused a peer's connection (guard.py)
    STOPPED = "stopped"


@dataclass(frozen=True)
class TimelineEvent:
    t: float  # seconds since the start of move-test (monotonic clock)
    event: EventKind
    peer: str | None = None
    association: int | None = None  # number of the inbound association, from 1
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ContextRecord:
    """One presentation context a peer proposed, and our answer (PS3.8 9.3.2.2, 9.3.3.2).

    `result`: accepted | user-rejection | no-reason | abstract-syntax-not-supported |
    transfer-syntaxes-not-supported (the A-ASSOCIATE-AC result/reason field)."""

    context_id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]
    result: str
    accepted_transfer_syntax: str | None = None
    scu_role: bool | None = None  # SCP/SCU Role Selection (PS3.7 D.3.3.4); None: not proposed
    scp_role: bool | None = None


@dataclass(frozen=True)
class InboundAssociation:
    """One inbound connection and what came over it."""

    number: int
    peer: str
    peer_port: int
    connected_t: float
    called_aet: str | None = None  # None: no A-ASSOCIATE-RQ arrived
    calling_aet: str | None = None
    accepted: bool = False
    stores: int = 0
    store_failures: int = 0
    bytes: int = 0
    first_store_t: float | None = None
    last_store_t: float | None = None
    ended: str | None = None  # released | aborted | closed; None: still open when we stopped
    ended_t: float | None = None
    rejected_sop_classes: tuple[str, ...] = ()
    move_originator_aet: str | None = None
    contexts: tuple[ContextRecord, ...] = ()  # every proposed context and our answer
    max_pdu: int | None = None  # the peer's Maximum Length Received (PS3.8 D.1); 0: unlimited
    store_statuses: tuple[int, ...] = ()  # distinct C-STORE statuses we answered, in order
    pid: int | None = None  # running mode: the process that owns the receiving socket
    process: str | None = None


@dataclass(frozen=True, kw_only=True)
class FindResult(ProbeResult):
    association: AssocState | None = None
    reject: Rejection | None = None
    final_code: int | None = None
    studies: int = 0  # matches read
    truncated: bool = False  # more matches than MAX_STUDIES
    requested_study: str | None = None
    study_uid: str | None = None  # the study move-test will move
    instances: int | None = None  # its instance count, None: unknown
    instances_from: str | None = None  # which query told the count
    sop_classes: tuple[str, ...] = ()


@dataclass(frozen=True)
class MoveOutcome:
    """What the C-MOVE SCU side saw."""

    association: AssocOutcome
    final_code: int | None = None
    final_t: float | None = None
    completed: int | None = None
    failed: int | None = None
    warning: int | None = None
    remaining: int | None = None
    pending_responses: int = 0
    error_comment: str | None = None
    failed_instances: int | None = None
    no_response: NoResponse | None = None  # why no final response came
    cancelled: bool = False


@dataclass(frozen=True, kw_only=True)
class MoveResult(ProbeResult):
    study_uid: str | None = None
    destination: str = ""
    port: int = 0
    association: AssocState | None = None
    reject: Rejection | None = None
    final_status: StatusWord | None = None
    final_code: int | None = None
    final_code_hex: str | None = None
    final_meaning: str | None = None
    completed: int | None = None
    failed: int | None = None
    warning: int | None = None
    remaining: int | None = None
    pending_responses: int = 0
    error_comment: str | None = None
    failed_instances: int | None = None
    no_response: NoResponse | None = None
    cancelled: bool = False  # move-test sent C-CANCEL: its time ran out
    expected: int | None = None  # instances in the study, from C-FIND
    received: int = 0  # C-STOREs our listener accepted
    store_failures: int = 0
    received_after_final: int = 0
    bytes_received: int = 0
    connections: int = 0
    associations: tuple[InboundAssociation, ...] = ()
    port_busy: tuple[ListeningSocket, ...] | None = None
    port_error: str | None = None
    grace_s: float = 0.0
    final_t: float | None = None
    timeline: tuple[TimelineEvent, ...] = ()
    timeline_dropped: int = 0
    receiver_mode: str = "own"  # own: our Storage SCP; running: the user's, observed
    observer_note: str | None = None  # running mode: why connections may be missing
    stall_s: float | None = None  # seconds without a C-MOVE response when the move stalled
    tls: bool = False  # move-test --tls: our receiver spoke DICOM over TLS (PS3.15 B.1)


@dataclass(frozen=True, kw_only=True)
class GetResult(ProbeResult):
    supported: bool | None = None  # the PACS accepted the C-GET presentation context
    association: AssocState | None = None
    tried: bool = False
    final_status: StatusWord | None = None
    final_code: int | None = None
    completed: int | None = None
    failed: int | None = None
    warning: int | None = None
    received: int = 0
