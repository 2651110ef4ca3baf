"""check's LISTENER_TLS rules: a listener that speaks TLS (PS3.15 B.1) where plain DICOM was
tried, a certificate problem our --tls handshake met, and the certificate the reflector's TLS
dial-back saw from outside. Pure: echo and inbound results in, findings out."""

from __future__ import annotations

from typing import Any

from reverseprobe.config import CheckConfig
from reverseprobe.diagnosis.catalogue import make
from reverseprobe.model import Finding, ProbeResult, Severity
from reverseprobe.model.dicom import DicomResult, EchoResult
from reverseprobe.model.tls import TLS_DICOM_PORT, TlsProblem

# the certificate problems with a fix of their own (LISTENER_TLS variants "cert:<problem>")
_CERT_FIXED = (
    TlsProblem.EXPIRED,
    TlsProblem.NOT_YET_VALID,
    TlsProblem.WRONG_NAME,
    TlsProblem.UNKNOWN_CA,
)


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
                    variant=f"cert:{t.problem if t.problem in _CERT_FIXED else 'other'}",
                    severity=Severity.FAIL,
                    detail=facts,
                    where=where,
                    problem=t.problem,
                    reason=t.detail,
                )
            )
            continue
        if e.result is DicomResult.NOT_TESTED:  # a --tls handshake that failed otherwise
            out.append(
                make(
                    "LISTENER_TLS",
                    variant="handshake",
                    severity=Severity.FAIL,
                    detail=facts,
                    where=where,
                    reason=t.detail,
                )
            )
            continue
        what = f" ({t.version}{'; ' + cert if cert else ''})" if t.version else ""
        out.append(
            make(
                "LISTENER_TLS",
                detail=facts,
                where=where,
                what=what,
                seen=seen or "refused plain DICOM",
                tls_port=TLS_DICOM_PORT,
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
        problem = t.problem if t.problem in _CERT_FIXED else "other"
        return [
            make(
                "LISTENER_TLS",
                variant=f"reflector-cert:{problem}",
                severity=Severity.FAIL,
                detail=facts,
                where=where,
                problem=t.problem,
                reason=t.detail,
            )
        ]
    if t.problem is not None or not t.answered:
        return [
            make(
                "LISTENER_TLS",
                variant="reflector-failed",
                severity=Severity.FAIL,
                detail=facts,
                where=where,
                reason=t.detail or t.problem,
            )
        ]
    return [
        make(
            "LISTENER_TLS",
            variant="reflector-ok",
            detail=facts,
            where=where,
            version=t.version,
            cert=f"subject {t.subject}, issuer {t.issuer}, expires {t.not_after}",
            how=t.detail or "not verified",
            verify_hint="" if cfg.tls.ca else " (give --tls-ca to verify it here)",
        )
    ]
