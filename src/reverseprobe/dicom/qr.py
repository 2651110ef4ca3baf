"""Study Root Query/Retrieve SCU basics (PS3.4 Annex C): one bounded association, statuses
in words, why a response never came, and the result of move-test's C-ECHO step.

Every association takes its timeouts from the caller's Deadline: a connect timeout (pynetdicom's
default is none: 130 s on a black hole), an ACSE timeout, and a DIMSE timeout that callers re-set
before each wait so that a whole C-FIND/C-MOVE/C-GET, not each response, fits the budget.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reverseprobe.deadline import Deadline
from reverseprobe.dicom.echo import cut_text, rejection_of
from reverseprobe.dicom.guard import Cut, CutKind, Limits
from reverseprobe.dicom.guarded_ae import guard_of, guarded_ae
from reverseprobe.model.dicom import _MEANINGS as _MEANINGS
from reverseprobe.model.dicom import NO_RESPONSE_TEXT as NO_RESPONSE_TEXT
from reverseprobe.model.dicom import AssocOutcome as AssocOutcome
from reverseprobe.model.dicom import AssocState as AssocState
from reverseprobe.model.dicom import EchoProbeResult as EchoProbeResult
from reverseprobe.model.dicom import NoResponse as NoResponse
from reverseprobe.model.dicom import Rejection
from reverseprobe.model.dicom import StatusWord as StatusWord
from reverseprobe.model.dicom import status_meaning as status_meaning
from reverseprobe.model.dicom import status_word as status_word
from reverseprobe.model.tls import TlsSettings

QR_FIND = "1.2.840.10008.5.1.4.1.2.2.1"  # Study Root Q/R Information Model - FIND
QR_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"  # - MOVE
QR_GET = "1.2.840.10008.5.1.4.1.2.2.3"  # - GET
CONNECT_TIMEOUT_S = 5.0
MAX_MESSAGE = 256 << 20  # one DIMSE command or data set, reassembled in memory (C-GET images)
ACSE_TIMEOUT_S = 10.0
UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")  # PS3.5 9.1


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    called_aet: str  # the PACS's AE title
    calling_aet: str  # ours: the title the PACS knows us by
    # DICOM over TLS (PS3.15 B.1, issue 15): settings and the name the certificate must carry
    tls: TlsSettings | None = None
    tls_name: str | None = None


# --- association --------------------------------------------------------------------------


def associate(  # noqa: PLR0911, PLR0912 - one return per association outcome (accepted, rejected PS3.8 9.3.4, aborted)
    target: Target,
    contexts: Sequence[Any],
    deadline: Deadline,
    *,
    ext_neg: Sequence[Any] | None = None,
    handlers: Sequence[Any] | None = None,
) -> tuple[Any | None, AssocOutcome]:
    """Request an association with `contexts` (UIDs or PresentationContexts); every timeout
    from `deadline`. Returns (association or None, outcome)."""
    import time

    from pynetdicom import evt

    events: list[str] = []

    def on_fsm(event: Any) -> None:
        events.append(str(event.fsm_event))

    end = time.monotonic() + deadline.remaining()
    ae = guarded_ae(
        target.calling_aet,
        Limits(pdu_timeout=deadline.share(ACSE_TIMEOUT_S), deadline=end, max_message=MAX_MESSAGE),
    )
    for cx in contexts:
        if isinstance(cx, str):
            ae.add_requested_context(cx)
        else:
            ae.add_requested_context(cx.abstract_syntax, cx.transfer_syntax)
    ae.fsm_events = events  # no_response() tells garbage (Evt19) from a plain abort
    ae.connection_timeout = deadline.share(CONNECT_TIMEOUT_S)
    ae.acse_timeout = deadline.share(ACSE_TIMEOUT_S)
    ae.dimse_timeout = deadline.share(ACSE_TIMEOUT_S)
    ae.network_timeout = deadline.share(deadline.remaining())
    try:
        tls_args = _tls_args(target)
        assoc = ae.associate(
            target.host,
            target.port,
            ae_title=target.called_aet,
            ext_neg=list(ext_neg) if ext_neg else None,
            evt_handlers=[(evt.EVT_FSM_TRANSITION, on_fsm), *(handlers or [])],
            tls_args=tls_args,
        )
    except Exception as exc:  # noqa: BLE001 - e.g. a name that does not resolve
        return None, AssocOutcome(AssocState.UNREACHABLE, detail=f"{type(exc).__name__}: {exc}")
    if assoc.is_established:
        return assoc, AssocOutcome(AssocState.ACCEPTED)
    seen = tuple(events)
    tls_failed = _tls_connect_failure(assoc) if target.tls is not None else None
    if tls_failed is not None:
        return None, AssocOutcome(AssocState.UNREACHABLE, detail=tls_failed)
    cut = cut_of(assoc)
    if cut is not None:
        state = AssocState.NO_ANSWER if cut.kind == CutKind.TIMEOUT else AssocState.NOT_DICOM
        return None, AssocOutcome(state, detail=cut_text(cut))
    rej = rejection_of(assoc) if assoc.is_rejected else None
    if rej is None and "Evt4" in seen:  # an RJ arrived, but the close won pynetdicom's race
        rej = rejection_seen(assoc)
    if rej is not None:
        return None, AssocOutcome(AssocState.REJECTED, rej, f"{rej.source_str}: {rej.reason_str}")
    if "Evt2" not in seen:
        return None, AssocOutcome(AssocState.UNREACHABLE, detail="TCP connection failed")
    if "Evt3" in seen:  # A-ASSOCIATE-AC with no usable context: pynetdicom aborts
        return None, AssocOutcome(
            AssocState.CONTEXT_REJECTED, detail="the PACS accepted none of the contexts"
        )
    if "Evt19" in seen or ("Evt17" in seen and "Evt16" not in seen and "Evt15" not in seen):
        return None, AssocOutcome(AssocState.NOT_DICOM, detail="no DICOM answer")
    if "Evt16" in seen:
        return None, AssocOutcome(AssocState.ABORTED, detail="the PACS sent A-ABORT")
    return None, AssocOutcome(AssocState.NO_ANSWER, detail="no answer to A-ASSOCIATE-RQ")


def _tls_args(target: Target) -> tuple[Any, str] | None:
    """pynetdicom's tls_args (context, server_hostname) for a --tls target, else None."""
    if target.tls is None:
        return None
    from reverseprobe.dicom.tls import client_context

    return client_context(target.tls), target.tls_name or target.host


def _tls_connect_failure(assoc: Any) -> str | None:
    """Why our TLS connect failed (certificate problem named), from the guard that kept it."""
    from reverseprobe.dicom.tls import PROBLEM_TEXT, problem_of

    guard = guard_of(assoc.ae)
    exc = guard.connect_error if guard is not None else None
    if exc is None or not isinstance(exc, OSError):
        return None
    import ssl

    if not isinstance(exc, ssl.SSLError):
        return None
    problem, detail = problem_of(exc)
    return f"TLS: {PROBLEM_TEXT.get(problem, 'TLS failed')} ({problem}): {detail}"


def accepted(assoc: Any, sop_class: str) -> bool:
    return any(str(cx.abstract_syntax) == sop_class for cx in assoc.accepted_contexts)


def close(assoc: Any, deadline: Deadline | None = None) -> None:
    """Release politely (PS3.8 7.2), abort when that does not work in time."""
    if assoc is None:
        return
    with contextlib.suppress(Exception):
        if assoc.is_established:
            assoc.acse_timeout = deadline.share(2.0) if deadline else 2.0
            assoc.release()
    if getattr(assoc, "is_established", False):
        abort_quietly(assoc)


def rejection_seen(assoc: Any) -> Rejection | None:
    """The A-ASSOCIATE-RJ as our guard read it (PS3.8 9.3.4: type 0x03, length 4, then result,
    source, reason), for when pynetdicom saw the RJ (Evt4) but the peer's close ended the
    association before its ACSE read it (measured with dcmqrscp: is_rejected stays False)."""
    with contextlib.suppress(Exception):
        guard = guard_of(assoc.ae)
        head = guard.head if guard is not None else b""
        if len(head) >= 10 and head[0] == 0x03 and head[2:6] == b"\x00\x00\x00\x04":
            from pynetdicom.pdu_primitives import A_ASSOCIATE

            prim = A_ASSOCIATE()
            prim.result, prim.result_source, prim.diagnostic = head[7], head[8], head[9]
            return Rejection(
                result=head[7],
                source=head[8],
                reason=head[9],
                result_str=str(prim.result_str),
                source_str=str(prim.source_str),
                reason_str=str(prim.reason_str),
            )
    return None


def cut_of(assoc: Any) -> Cut | None:
    """Why our socket guard ended this association (guard.py), None when it did not."""
    with contextlib.suppress(Exception):
        guard = guard_of(assoc.ae)
        return guard.cut if guard is not None else None
    return None


def no_response(assoc: Any) -> NoResponse:  # noqa: PLR0911 - one return per way an association ends without an answer
    """Why the response generator gave up: read before the reactor consumes the abort
    (acse.is_aborted peeks at the queue), or after it did (is_aborted without our own).
    First whether our guard cut the PACS off, or pynetdicom found garbage (Evt19)."""
    cut = cut_of(assoc)
    if cut is not None:
        return NoResponse.TIMEOUT if cut.kind == CutKind.TIMEOUT else NoResponse.GARBAGE
    with contextlib.suppress(Exception):
        if "Evt19" in assoc.ae.fsm_events:  # PS3.8 9.2: invalid PDU or DIMSE message
            return NoResponse.GARBAGE
    with contextlib.suppress(Exception):
        if assoc.acse.is_aborted("a-abort"):
            return NoResponse.ABORTED
        if assoc.acse.is_aborted("a-p-abort"):
            return NoResponse.CLOSED
    if getattr(assoc, "is_aborted", False) and not getattr(assoc, "_sent_abort", False):
        return NoResponse.ABORTED
    if not getattr(assoc, "is_established", False) and not getattr(assoc, "_sent_abort", False):
        return NoResponse.CLOSED
    return NoResponse.TIMEOUT


def no_response_text(assoc: Any) -> str:
    why = no_response(assoc)
    cut = cut_of(assoc)
    if cut is not None and why is NoResponse.GARBAGE:
        return f"{NO_RESPONSE_TEXT[why]} ({cut.detail})"
    return NO_RESPONSE_TEXT[why]


def int_or_none(ds: Any, keyword: str) -> int | None:
    v = getattr(ds, keyword, None) if ds is not None else None
    try:
        return None if v is None or v == "" else int(v)
    except (TypeError, ValueError):
        return None


def study_query(study_uid: str, level: str = "STUDY") -> Any:
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.QueryRetrieveLevel = level
    ds.StudyInstanceUID = study_uid
    return ds


def abort_quietly(assoc: Any) -> None:
    """A-ABORT (PS3.8 7.3); a short ARTIM timer, so a peer that keeps the connection open
    after it cannot hold us (pynetdicom waits for the close up to the ACSE timeout)."""
    with contextlib.suppress(Exception):
        assoc.acse_timeout = 1.0
    with contextlib.suppress(Exception):
        assoc.abort()


_COUNTS = (
    ("remaining", "NumberOfRemainingSuboperations"),
    ("completed", "NumberOfCompletedSuboperations"),
    ("failed", "NumberOfFailedSuboperations"),
    ("warning", "NumberOfWarningSuboperations"),
)
MAX_COUNT = 0xFFFF  # the counts are US (PS3.7 Annex E): 0..65535


def counts(st: Any) -> dict[str, int]:
    """The sub-operation counts of a C-MOVE/C-GET response that are valid; invalid_counts()
    names the others (a PACS's -5 or 1e20 is not a count to pass on)."""
    out = {}
    for key, kw in _COUNTS:
        v = _count(st, kw)
        if isinstance(v, int):
            out[key] = v
    return out


def invalid_counts(st: Any) -> list[str]:
    """'PACS sent invalid count ...' for every count outside US range or not a number."""
    bad = []
    for _key, kw in _COUNTS:
        v = _count(st, kw)
        if isinstance(v, str):
            bad.append(f"PACS sent invalid count {kw}={v}")
    return bad


def _count(st: Any, kw: str) -> int | str | None:
    """int when valid, the offending value (shortened, printable) when not, None absent."""
    raw = getattr(st, kw, None) if st is not None else None
    if raw is None or raw == "":
        return None
    try:
        v = raw if isinstance(raw, int) else int(str(raw), 10)
    except (TypeError, ValueError):
        v = None
    if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_COUNT:
        return v
    text = repr(raw) if not isinstance(raw, (int, float)) else str(raw)
    return "".join(c if c.isprintable() else "?" for c in text)[:40]
