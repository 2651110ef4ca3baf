"""What we learnt about DICOM over TLS on a connection (PS3.15 B.1 "The Basic TLS Secure
Transport Connection Profile"; port 2762 by convention), for rules that import no ssl."""

from __future__ import annotations

from dataclasses import dataclass

TLS_DICOM_PORT = 2762  # IANA "dicom-tls"


class TlsProblem:
    """Why a TLS handshake failed, named from OpenSSL's X509 verify codes."""

    EXPIRED = "expired"  # X509_V_ERR_CERT_HAS_EXPIRED (10)
    NOT_YET_VALID = "not-yet-valid"  # X509_V_ERR_CERT_NOT_YET_VALID (9)
    WRONG_NAME = "wrong-name"  # X509_V_ERR_HOSTNAME_MISMATCH / IP_ADDRESS_MISMATCH (62, 64)
    UNKNOWN_CA = "unknown-ca"  # 18, 19, 20, 21: no trusted issuer
    CERT_OTHER = "certificate"  # another verify code
    HANDSHAKE = "handshake"  # the handshake failed for a reason that is not the certificate
    NOT_TLS = "not-tls"  # the peer did not answer our ClientHello as TLS


@dataclass(frozen=True)
class TlsFacts:
    """What one TLS look at a peer saw. `answered`: a ServerHello came back (the peer speaks
    TLS), whatever happened after; `seen` says what a plain A-ASSOCIATE-RQ met, where known."""

    answered: bool
    version: str | None = None
    cipher: str | None = None
    subject: str | None = None  # the certificate's subject CN (or whole name)
    issuer: str | None = None
    not_after: str | None = None  # as the certificate says, UTC
    problem: str | None = None  # a TlsProblem value; None: the handshake succeeded
    detail: str | None = None  # OpenSSL's words (verify_message), escaped by the renderer
    seen: str | None = None  # "tls-alert" | "closed" | "silence": how a plain RQ was met
    self_signed: bool | None = None  # issuer name == subject name (RFC 5280 6.1: a trust anchor)
    # the reflector's TLS dial-back: the receiver's certificate as it was shown from outside,
    # for the client to verify against its own --tls-ca (the reflector trusts nothing)
    certificate_pem: str | None = None
    verified_by: str | None = None  # "reflector-pem": checked here against --tls-ca; else None

    @property
    def certificate_problem(self) -> bool:
        return self.problem in (
            TlsProblem.EXPIRED,
            TlsProblem.NOT_YET_VALID,
            TlsProblem.WRONG_NAME,
            TlsProblem.UNKNOWN_CA,
            TlsProblem.CERT_OTHER,
        )


@dataclass(frozen=True)
class TlsSettings:
    """--tls, --tls-ca, --tls-cert, --tls-key: readable file paths (checked by config.tls)."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    name: str | None = None  # --tls-name: the name the PACS calls this PC by (RFC 6125)
    insecure: bool = False  # verify nothing: the reflector's dial-back (the client verifies)
