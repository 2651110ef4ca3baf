"""The reflector's answers (docs/reference.md "reverseprobe reflector"), pure: no I/O.

The server builds them from its dial-back results; `check` parses them. A reflector may answer
garbage: parsing raises `AnswerError`, never anything else, and every text is bounded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reverseprobe.model.dicom import DicomResult, EchoResult, TcpState
from reverseprobe.model.inbound import PortProbe, ProbeAnswer, Reject
from reverseprobe.model.tls import TlsFacts
from reverseprobe.reflector.protocol import MAX_PORTS, normalize_ip

ANSWER_LIMIT = 64 * 1024  # what a client reads of an answer at most
_DETAIL_LIMIT = 200
MAX_PEM = 12 << 10  # the receiver's certificate in an answer (dicom/tls.py MAX_PEM_DER as PEM)


def port_result(result: EchoResult) -> dict[str, Any]:
    """One entry of `results` (docs/reference.md); `dicom.result` may also be "no-answer"."""
    dicom: dict[str, Any] = {
        "result": result.result.value,
        "reject": None,
        "implementation_class_uid": result.implementation_class_uid,
        "implementation_version_name": result.implementation_version_name,
        "echo_status": result.echo_status,
    }
    if result.reject is not None:
        r = result.reject
        dicom["reject"] = {
            "result": r.result,
            "source": r.source,
            "reason": r.reason,
            "result_str": r.result_str,
            "source_str": r.source_str,
            "reason_str": r.reason_str,
        }
    detail = (result.detail or "").splitlines()[0][:_DETAIL_LIMIT] if result.detail else None
    out: dict[str, Any] = {
        "port": result.port,
        "tcp": result.tcp.value,
        "dicom": dicom,
        "detail": detail,
        "elapsed_ms": round(result.elapsed_ms, 1),
    }
    if result.tls is not None:
        out["tls"] = tls_result(result.tls)
    return out


def tls_result(t: TlsFacts) -> dict[str, Any]:
    """The `tls` object of a result (docs/reference.md): what the handshake showed; nothing
    is verified here, the client verifies `certificate_pem` against its own CA."""
    return {
        "answered": t.answered,
        "version": t.version,
        "cipher": t.cipher,
        "subject": t.subject,
        "issuer": t.issuer,
        "not_after": t.not_after,
        "self_signed": t.self_signed,
        "problem": t.problem,
        "detail": (t.detail or "").splitlines()[0][:_DETAIL_LIMIT] if t.detail else None,
        "certificate_pem": t.certificate_pem
        if t.certificate_pem and len(t.certificate_pem) <= MAX_PEM
        else None,
    }


def probe_answer(
    observed_ip: str, results: Sequence[EchoResult], ignored: Sequence[str] = ()
) -> dict[str, Any]:
    out: dict[str, Any] = {"observed_ip": observed_ip, "results": [port_result(r) for r in results]}
    if ignored:
        out["ignored"] = list(ignored)
    return out


class AnswerError(ValueError):
    """A reflector answer that does not follow the contract."""


def parse_probe_answer(doc: Any, ports: Sequence[int]) -> ProbeAnswer:
    """Validate a 200 answer to POST /v1/probe that asked for `ports`."""
    if not isinstance(doc, Mapping):
        raise AnswerError("the answer is not a JSON object")
    try:
        observed = normalize_ip(_text(doc.get("observed_ip"), "observed_ip", 64) or "")
    except ValueError:
        raise AnswerError("'observed_ip' is not an IP address") from None
    raw = doc.get("results")
    if not isinstance(raw, list) or len(raw) > MAX_PORTS:
        raise AnswerError("'results' is not a list of at most 4 entries")
    results = tuple(_port_probe(r) for r in raw)
    missing = sorted(set(ports) - {r.port for r in results})
    if missing:
        raise AnswerError(f"no result for port {missing[0]}")
    return ProbeAnswer(observed, results)


def parse_ip_answer(doc: Any) -> str:
    if not isinstance(doc, Mapping):
        raise AnswerError("the answer is not a JSON object")
    try:
        return normalize_ip(_text(doc.get("ip"), "ip", 64) or "")
    except ValueError:
        raise AnswerError("'ip' is not an IP address") from None


def parse_error_answer(doc: Any) -> tuple[str, str] | None:
    """(error word, message) of a 4xx/5xx JSON answer, cut to a sane length; None if absent."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("error"), str):
        return None
    msg = doc.get("message")
    return doc["error"][:40], (msg if isinstance(msg, str) else "")[:200]


def _port_probe(doc: Any) -> PortProbe:
    if not isinstance(doc, Mapping):
        raise AnswerError("a result is not a JSON object")
    port = doc.get("port")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise AnswerError("a result has no valid 'port'")
    try:
        tcp = TcpState(doc.get("tcp"))
    except ValueError:
        raise AnswerError(f"port {port}: unknown 'tcp' value") from None
    dicom = doc.get("dicom")
    if not isinstance(dicom, Mapping):
        raise AnswerError(f"port {port}: 'dicom' is not an object")
    try:
        result = DicomResult(dicom.get("result"))
    except ValueError:
        raise AnswerError(f"port {port}: unknown 'dicom.result' value") from None
    elapsed = doc.get("elapsed_ms")
    return PortProbe(
        port=port,
        tcp=tcp,
        dicom=result,
        reject=_reject(dicom.get("reject")),
        implementation_class_uid=_text(dicom.get("implementation_class_uid"), "uid", 64),
        implementation_version_name=_text(dicom.get("implementation_version_name"), "name", 16),
        detail=_text(doc.get("detail"), "detail", _DETAIL_LIMIT),
        elapsed_ms=float(elapsed)
        if isinstance(elapsed, (int, float)) and not isinstance(elapsed, bool)
        else None,
        tls=_tls_answer(doc.get("tls"), port),
    )


_TLS_PROBLEMS = ("expired", "not-yet-valid", "wrong-name", "unknown-ca", "certificate",
                 "handshake", "not-tls")  # fmt: skip


def _tls_answer(doc: Any, port: int) -> TlsFacts | None:
    """A result's `tls` object, untrusted: bounded text, a PEM that looks like one or none."""
    if doc is None:
        return None
    if not isinstance(doc, Mapping) or not isinstance(doc.get("answered"), bool):
        raise AnswerError(f"port {port}: 'tls' is not an object with 'answered'")
    problem = doc.get("problem")
    if problem is not None and problem not in _TLS_PROBLEMS:
        raise AnswerError(f"port {port}: unknown 'tls.problem' value")
    pem = doc.get("certificate_pem")
    if pem is not None and (
        not isinstance(pem, str)
        or len(pem) > MAX_PEM
        or not pem.startswith("-----BEGIN CERTIFICATE-----")
    ):
        raise AnswerError(f"port {port}: 'tls.certificate_pem' is not a PEM certificate")
    self_signed = doc.get("self_signed")
    return TlsFacts(
        answered=doc["answered"],
        version=_text(doc.get("version"), "version", 16),
        cipher=_text(doc.get("cipher"), "cipher", 80),
        subject=_text(doc.get("subject"), "subject", 200),
        issuer=_text(doc.get("issuer"), "issuer", 200),
        not_after=_text(doc.get("not_after"), "not_after", 32),
        problem=problem,
        detail=_text(doc.get("detail"), "detail", _DETAIL_LIMIT),
        self_signed=self_signed if isinstance(self_signed, bool) else None,
        certificate_pem=pem,
    )


def _reject(doc: Any) -> Reject | None:
    if doc is None:
        return None
    if not isinstance(doc, Mapping):
        raise AnswerError("'reject' is not an object")
    nums: list[int] = []
    for k in ("result", "source", "reason"):
        n = doc.get(k)
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 255:
            raise AnswerError("'reject' lacks result/source/reason numbers")
        nums.append(n)
    words = [_text(doc.get(k), k, 80) for k in ("result_str", "source_str", "reason_str")]
    text = ": ".join(w for w in words if w)
    return Reject(nums[0], nums[1], nums[2], text)


def _text(value: Any, what: str, limit: int) -> str | None:
    """Untrusted text: printable, one line, bounded; anything else is dropped or refused."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise AnswerError(f"'{what}' is not a string")
    clean = "".join(ch if ch.isprintable() else "?" for ch in value[:limit]).strip()
    return clean or None
