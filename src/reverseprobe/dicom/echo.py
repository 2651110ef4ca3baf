"""One DICOM association with C-ECHO (PS3.7 9.1.5), and what it tells about the peer.

Used by `check` (our own listener), the reflector (the dial-back) and move-test (the PACS). The
result separates a DICOM peer that accepts, rejects (A-ASSOCIATE-RJ, PS3.8 9.3.4, decoded) or
aborts, from a program that is not DICOM at all (an unrecognised PDU type, PS3.8 9.3.1 Evt19) or
that never answers. Every step has a timeout inside the caller's budget.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from reverseprobe.concurrent import Call, start
from reverseprobe.dicom.guard import Cut, CutKind, Limits
from reverseprobe.dicom.guarded_ae import guard_of, guarded_ae
from reverseprobe.dicom.tcp import TcpState, tcp_connect
from reverseprobe.dicom.tls import (
    PROBLEM_TEXT,
    TlsFacts,
    TlsSettings,
    client_context,
    facts_of_error,
)
from reverseprobe.model.dicom import DEFAULT_CALLING_AET as DEFAULT_CALLING_AET
from reverseprobe.model.dicom import DicomResult as DicomResult
from reverseprobe.model.dicom import EchoResult as EchoResult
from reverseprobe.model.dicom import Rejection as Rejection

VERIFICATION_SOP_CLASS = "1.2.840.10008.1.1"


def rejection_of(assoc: Any) -> Rejection:
    """The A-ASSOCIATE-RJ a rejected pynetdicom association received (PS3.8 9.3.4)."""
    prim: Any = assoc.acceptor.primitive
    return Rejection(
        result=int(prim.result),
        source=int(prim.result_source),
        reason=int(prim.diagnostic),
        result_str=str(prim.result_str),
        source_str=str(prim.source_str),
        reason_str=str(prim.reason_str),
    )


_preload: Call[None] | None = None
_preload_lock = threading.Lock()


def _import_pynetdicom() -> None:
    import pynetdicom  # noqa: F401 - pydicom with it: ~0.45 s of CPU, most of check's


def preload_pynetdicom() -> Call[None]:
    """Import pynetdicom (and pydicom) once per process, in one thread, as soon as a command
    knows it will associate, so that it overlaps the other probes' network waits. Every
    association waits for this one import (`echo` does) rather than importing on its own: two
    threads inside pydicom's circular imports can be handed a partially initialised module."""
    global _preload  # noqa: PLW0603 - one import per process
    with _preload_lock:
        if _preload is None:
            _preload = start(_import_pynetdicom, name="import-pynetdicom")
        return _preload


def quiet_pynetdicom(debug: bool = False) -> None:
    """pynetdicom logs every refused or aborted association at ERROR; those are our results,
    not errors of ours, so keep them off stderr unless debugging."""
    level = logging.DEBUG if debug else logging.CRITICAL + 1
    logging.getLogger("pynetdicom").setLevel(level)
    logging.getLogger("pydicom").setLevel(level)
    if not debug:
        # A peer's bad element values make pydicom warn with its own file paths; what a peer
        # sends is judged by our rules, not printed raw (issue 16).
        import warnings

        warnings.filterwarnings("ignore", module=r"(pydicom|pynetdicom)(\.|$)")


def echo(  # noqa: PLR0913 - keyword-only options of one bounded C-ECHO (PS3.7 9.1.5)
    host: str,
    port: int,
    *,
    called_aet: str,
    calling_aet: str = DEFAULT_CALLING_AET,
    timeout: float = 5.0,
    tcp_first: bool = True,
    connect_timeout: float = 3.0,
    tls: TlsSettings | None = None,
    tls_name: str | None = None,
) -> EchoResult:
    """Associate, C-ECHO, release; never raises for what the peer does, never exceeds `timeout`
    by more than pynetdicom's polling granularity. `tcp_first` classifies a failed connect
    (refused/timeout/unreachable) with a bare TCP connect first; that costs a listener one
    empty connection, so callers that know something listens pass False. `tls`: DICOM over
    TLS (PS3.15 B.1), the certificate verified against --tls-ca for `tls_name` (default: `host`;
    RFC 6125: the name the user gave, not the address it resolved to); a failed handshake is
    named."""
    t0 = time.monotonic()
    deadline = t0 + timeout

    def left(at_most: float = timeout) -> float:
        return max(0.05, min(at_most, deadline - time.monotonic()))

    base: dict[str, Any] = {
        "host": host,
        "port": port,
        "called_aet": called_aet,
        "calling_aet": calling_aet,
    }
    if tcp_first:
        tcp = tcp_connect(host, port, left(min(connect_timeout, timeout / 2)))
        if tcp.state is not TcpState.OPEN:
            return EchoResult(
                tcp=tcp.state,
                result=DicomResult.NOT_TESTED,
                detail=tcp.error,
                elapsed_ms=_ms(t0),
                **base,
            )
    preload_pynetdicom().wait(left())  # the one import, not a second one of our own
    try:
        return _associate(base, t0, deadline, left, connect_timeout, tls=tls, tls_name=tls_name)
    except Exception as exc:  # noqa: BLE001 - whatever the peer sent, a result, not a crash
        return EchoResult(
            tcp=TcpState.OPEN,
            result=DicomResult.ABORTED,
            detail=f"association failed: {type(exc).__name__}: {exc}",
            elapsed_ms=_ms(t0),
            **base,
        )


def _associate(  # noqa: PLR0913 - internal; the deadline pieces of echo()
    base: dict[str, Any],
    t0: float,
    deadline: float,
    left: Any,
    connect_timeout: float,
    *,
    tls: TlsSettings | None = None,
    tls_name: str | None = None,
) -> EchoResult:
    from pynetdicom import evt

    events: list[str] = []
    lock = threading.Lock()

    def on_fsm(event: Any) -> None:
        with lock:
            events.append(str(event.fsm_event))

    ae = guarded_ae(base["calling_aet"], Limits(pdu_timeout=left(), deadline=deadline))
    ae.add_requested_context(VERIFICATION_SOP_CLASS)
    ae.connection_timeout = left(connect_timeout)
    ae.acse_timeout = left()
    ae.dimse_timeout = left()
    ae.network_timeout = left()
    name = tls_name or base["host"]
    tls_args = (client_context(tls), name) if tls is not None else None
    assoc = ae.associate(
        base["host"],
        base["port"],
        ae_title=base["called_aet"],
        evt_handlers=[(evt.EVT_FSM_TRANSITION, on_fsm)],
        tls_args=tls_args,
    )
    acceptor = assoc.acceptor
    fp: dict[str, Any] = {
        "implementation_class_uid": _str_or_none(acceptor.implementation_class_uid),
        "implementation_version_name": _str_or_none(acceptor.implementation_version_name),
    }
    tcp_state = TcpState.OPEN
    if assoc.is_established:
        status_word: int | None = None
        detail = None
        try:
            assoc.dimse_timeout = left()
            status = assoc.send_c_echo()
            status_word = _status_of(status)
            if status_word is None:
                cut = _cut(ae)
                detail = (
                    f"answered the association, then {cut_text(cut)}"
                    if cut
                    else f"no C-ECHO response within {base_timeout(t0, deadline):g} s "
                    "(DIMSE timeout or abort)"
                )
        finally:
            if assoc.is_established:
                assoc.acse_timeout = left(2.0)
                assoc.release()
            if assoc.is_established:
                assoc.abort()
        return EchoResult(
            tcp=tcp_state,
            result=DicomResult.ACCEPTED,
            echo_status=status_word,
            max_pdu=_int_or_none(acceptor.maximum_length),
            detail=detail,
            elapsed_ms=_ms(t0),
            fsm_events=tuple(events),
            **fp,
            **base,
        )
    with lock:
        seen = tuple(events)
    guard = guard_of(ae)
    if tls is not None and guard is not None and guard.connect_error is not None:
        failed = _tls_failed(base, t0, seen, guard.connect_error)
        if failed is not None:
            return failed
    cut = _cut(ae)
    if cut is not None and cut.kind == CutKind.TLS:
        # a TLS alert to our plain A-ASSOCIATE-RQ: a DICOM TLS listener, not "not DICOM"
        return EchoResult(
            tcp=tcp_state,
            result=DicomResult.NOT_DICOM,
            detail=cut_text(cut),
            elapsed_ms=_ms(t0),
            fsm_events=seen,
            tls=TlsFacts(answered=True, seen="tls-alert"),
            **base,
        )
    if cut is not None:
        return EchoResult(
            tcp=tcp_state,
            result=DicomResult.NO_ANSWER if cut.kind == CutKind.TIMEOUT else DicomResult.NOT_DICOM,
            detail=cut_text(cut),
            elapsed_ms=_ms(t0),
            fsm_events=seen,
            **base,
        )
    if assoc.is_rejected:
        rej = rejection_of(assoc)
        return EchoResult(
            tcp=tcp_state,
            result=DicomResult.REJECTED,
            reject=rej,
            detail=f"{rej.result_str}: {rej.source_str}: {rej.reason_str}",
            elapsed_ms=_ms(t0),
            fsm_events=seen,
            **fp,
            **base,
        )
    return _classify_failure(base, t0, seen)


def _tls_failed(
    base: dict[str, Any], t0: float, seen: tuple[str, ...], exc: BaseException
) -> EchoResult | None:
    """Our TLS connect failed: the certificate (expired, wrong name, unknown CA, from
    SSLCertVerificationError.verify_code) or the handshake; None when TCP itself failed."""
    import ssl

    if not isinstance(exc, ssl.SSLError):
        return None
    facts = facts_of_error(exc)
    # a plain DICOM peer reads our ClientHello as garbage: it never answered as TLS
    answered = isinstance(exc, ssl.SSLCertVerificationError) or not any(
        m in str(exc) for m in ("WRONG_VERSION_NUMBER", "record layer failure")
    )
    facts = TlsFacts(**{**facts.__dict__, "answered": answered})
    return EchoResult(
        tcp=TcpState.OPEN,
        result=DicomResult.NOT_TESTED,
        detail=f"TLS: {PROBLEM_TEXT.get(facts.problem or '', 'TLS failed')}: {facts.detail}",
        elapsed_ms=_ms(t0),
        fsm_events=seen,
        tls=facts,
        **base,
    )


def _classify_failure(base: dict[str, Any], t0: float, seen: tuple[str, ...]) -> EchoResult:
    """Tell from the state machine's events why no association came about."""
    if "Evt2" not in seen:
        result, detail = DicomResult.NOT_TESTED, "TCP connection failed"
        tcp = TcpState.REFUSED
    elif "Evt19" in seen:
        tcp = TcpState.OPEN
        result, detail = DicomResult.NOT_DICOM, "answered with data that is not a DICOM PDU"
    elif "Evt16" in seen:
        tcp = TcpState.OPEN
        result, detail = DicomResult.ABORTED, "the peer sent A-ABORT"
    elif "Evt15" in seen:
        # We gave up (ACSE timeout) and aborted: the peer sent nothing at all.
        tcp = TcpState.OPEN
        result, detail = DicomResult.NO_ANSWER, "accepted TCP but never answered A-ASSOCIATE-RQ"
    elif "Evt17" in seen:
        tcp = TcpState.OPEN
        result, detail = (
            DicomResult.NOT_DICOM,
            "closed the connection without a DICOM answer to A-ASSOCIATE-RQ",
        )
    else:
        tcp = TcpState.OPEN
        result, detail = DicomResult.NO_ANSWER, "accepted TCP but never answered A-ASSOCIATE-RQ"
    return EchoResult(
        tcp=tcp, result=result, detail=detail, elapsed_ms=_ms(t0), fsm_events=seen, **base
    )


def _cut(ae: Any) -> Cut | None:
    guard = guard_of(ae)
    return guard.cut if guard is not None else None


def cut_text(cut: Cut) -> str:
    """Why we ended an association, in words for a finding."""
    if cut.kind == CutKind.TIMEOUT:
        return f"did not answer in time: {cut.detail}"
    if cut.kind in (CutKind.OVERSIZE, CutKind.GARBAGE, CutKind.BUDGET):
        return f"answered garbage, not DICOM: {cut.detail}"
    return cut.detail


def base_timeout(t0: float, deadline: float) -> float:
    return round(deadline - t0, 1)


def _status_of(status: Any) -> int | None:
    """The Status (0000,0900) of a response, None when absent or not a number."""
    try:
        return int(status.Status) if status and "Status" in status else None
    except (TypeError, ValueError, AttributeError):
        return None


def _ms(t0: float) -> float:
    return round((time.monotonic() - t0) * 1000, 1)


def _str_or_none(v: Any) -> str | None:
    if v is None:
        return None
    s = str(v).strip()
    return s or None


def _int_or_none(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None
