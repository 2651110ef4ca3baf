"""DICOM over TLS (PS3.15 B.1): contexts, what the first bytes of a connection say, and a
bounded look at a listener's TLS handshake.

The first byte of a connection tells the two worlds apart (PS3.8 9.3.1; RFC 8446 5.1): a
DICOM peer starts with a PDU type (0x01 A-ASSOCIATE-RQ), a TLS client with a handshake record
(0x16, then 0x03 0x0N), and a TLS server that gets plain bytes answers with an alert record
(0x15) or just closes. The handshake look runs over a memory BIO on our own socket, so that a
peer gets a read deadline and a byte budget like every DICOM socket of ours (dicom/guard.py).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from typing import Any

from reverseprobe.model.tls import TLS_DICOM_PORT as TLS_DICOM_PORT
from reverseprobe.model.tls import TlsFacts as TlsFacts
from reverseprobe.model.tls import TlsProblem
from reverseprobe.model.tls import TlsSettings as TlsSettings

HANDSHAKE_BUDGET = 64 << 10  # a ServerHello with a certificate chain is a few KiB
RECORD_HANDSHAKE = 0x16
RECORD_ALERT = 0x15
PDU_ASSOCIATE_RQ = 0x01

# OpenSSL X509_V_ERR_* codes (x509_vfy.h) -> our names
_VERIFY_CODES = {
    9: TlsProblem.NOT_YET_VALID,
    10: TlsProblem.EXPIRED,
    18: TlsProblem.UNKNOWN_CA,
    19: TlsProblem.UNKNOWN_CA,
    20: TlsProblem.UNKNOWN_CA,
    21: TlsProblem.UNKNOWN_CA,
    62: TlsProblem.WRONG_NAME,
    64: TlsProblem.WRONG_NAME,
}

PROBLEM_TEXT = {
    TlsProblem.EXPIRED: "its certificate has expired",
    TlsProblem.NOT_YET_VALID: "its certificate is not valid yet",
    TlsProblem.WRONG_NAME: "its certificate is for another name",
    TlsProblem.UNKNOWN_CA: "its certificate is signed by a CA we do not trust",
    TlsProblem.CERT_OTHER: "its certificate failed verification",
    TlsProblem.HANDSHAKE: "the TLS handshake failed",
    TlsProblem.NOT_TLS: "it did not answer a TLS ClientHello",
}


def first_bytes_kind(data: bytes) -> str | None:
    """ "tls-hello", "tls-alert", "dicom" or None from the first bytes a peer sent."""
    if not data:
        return None
    if data[0] in (RECORD_HANDSHAKE, RECORD_ALERT) and (len(data) < 2 or data[1] == 0x03):
        return "tls-hello" if data[0] == RECORD_HANDSHAKE else "tls-alert"
    if data[0] == PDU_ASSOCIATE_RQ:
        return "dicom"
    return None


def client_context(tls: TlsSettings) -> ssl.SSLContext:
    """Verifying client context (BCP 195 via PS3.15 B.9: TLS 1.2 or later); `insecure`
    settings (the reflector's dial-back) verify nothing."""
    if tls.insecure:
        ctx = insecure_client_context()
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx
    ctx = ssl.create_default_context(cafile=tls.ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.cert:
        ctx.load_cert_chain(tls.cert, tls.key)
    return ctx


def server_context(tls: TlsSettings) -> ssl.SSLContext:
    """Server context for our receivers; with --tls-ca the peer must show a certificate of it
    (PS3.15 B.1: both sides may authenticate)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if not tls.cert:
        raise ValueError("a TLS receiver needs --tls-cert (and --tls-key)")
    ctx.load_cert_chain(tls.cert, tls.key)
    if tls.ca:
        ctx.load_verify_locations(cafile=tls.ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def problem_of(exc: BaseException) -> tuple[str, str]:
    """(TlsProblem, OpenSSL's words) for a failed handshake."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = int(getattr(exc, "verify_code", 0) or 0)
        message = str(getattr(exc, "verify_message", "") or exc)
        return _VERIFY_CODES.get(code, TlsProblem.CERT_OTHER), message
    return TlsProblem.HANDSHAKE, f"{type(exc).__name__}: {exc}"


def facts_of_error(exc: BaseException) -> TlsFacts:
    problem, detail = problem_of(exc)
    return TlsFacts(answered=True, problem=problem, detail=detail)


def insecure_client_context() -> ssl.SSLContext:
    """A client context that verifies nothing: for looking at a certificate (the listener
    probe, the reflector's dial-back), never for trusting one."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def handshake_probe(  # noqa: PLR0911, PLR0912, PLR0913 - one return per handshake outcome
    host: str,
    port: int,
    timeout: float,
    *,
    seen: str | None = None,
    server_name: str | None = None,
    keep_pem: bool = False,
    budget: int = HANDSHAKE_BUDGET,
) -> TlsFacts:
    """Send a ClientHello and see what comes back, verifying nothing: TLS version, cipher and
    the certificate's names and expiry where the handshake got that far. Bounded by `timeout`
    (one deadline for connect and handshake) and `budget` bytes; never raises. `server_name`:
    the SNI (RFC 6066 3; none when None); `keep_pem`: the certificate in PEM, for a caller that
    verifies it elsewhere (the reflector's client)."""
    deadline = time.monotonic() + timeout
    ctx = insecure_client_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_side=False, server_hostname=server_name)
    got = 0
    answered = False
    try:
        with socket.create_connection((host, port), timeout=max(0.05, timeout)) as sock:
            while True:
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    pass
                out = outgoing.read()
                if out:
                    sock.settimeout(max(0.05, deadline - time.monotonic()))
                    sock.sendall(out)
                left = deadline - time.monotonic()
                if left <= 0:
                    return TlsFacts(
                        answered,
                        problem=TlsProblem.NOT_TLS,
                        detail=f"no TLS answer within {timeout:g} s",
                        seen=seen,
                    )
                sock.settimeout(left)
                try:
                    data = sock.recv(4096)
                except TimeoutError:
                    data = None
                if data is None:
                    return TlsFacts(
                        answered,
                        problem=TlsProblem.HANDSHAKE if answered else TlsProblem.NOT_TLS,
                        detail=f"no TLS answer within {timeout:g} s",
                        seen=seen,
                    )
                if not data:
                    return TlsFacts(
                        answered,
                        problem=TlsProblem.NOT_TLS,
                        detail="closed the connection",
                        seen=seen,
                    )
                if got == 0 and first_bytes_kind(data) not in ("tls-hello", "tls-alert"):
                    return TlsFacts(
                        False,
                        problem=TlsProblem.NOT_TLS,
                        detail="answered a ClientHello with data that is not TLS",
                        seen=seen,
                    )
                answered = answered or data[0] == RECORD_HANDSHAKE
                got += len(data)
                if got > budget:
                    return TlsFacts(
                        answered,
                        problem=TlsProblem.HANDSHAKE,
                        detail=f"sent over {budget} bytes of handshake",
                        seen=seen,
                    )
                incoming.write(data)
            with contextlib.suppress(OSError):
                sock.sendall(outgoing.read())
    except (OSError, ssl.SSLError) as exc:
        if isinstance(exc, ssl.SSLError) and answered:
            problem, detail = problem_of(exc)
            return TlsFacts(True, problem=problem, detail=detail, seen=seen)
        return TlsFacts(
            answered, problem=TlsProblem.NOT_TLS, detail=f"{type(exc).__name__}: {exc}", seen=seen
        )
    subject = issuer = not_after = pem = None
    self_signed = None
    der = tls.getpeercert(binary_form=True)
    if der:
        subject, issuer, not_after = certificate_names(der)
        self_signed = is_self_signed(der)
        if keep_pem and len(der) <= MAX_PEM_DER:
            pem = ssl.DER_cert_to_PEM_cert(der)
    cipher = tls.cipher()
    return TlsFacts(
        True,
        version=tls.version(),
        cipher=cipher[0] if cipher else None,
        subject=subject,
        issuer=issuer,
        not_after=not_after,
        seen=seen,
        self_signed=self_signed,
        certificate_pem=pem,
    )


MAX_PEM_DER = 8 << 10  # a leaf certificate is 1-2 KiB; a larger one is described, not sent


def verify_pem(pem: str, ca: str | None, name: str | None) -> tuple[str | None, str]:  # noqa: PLR0911 - one return per verdict
    """Verify a certificate the reflector saw against our --tls-ca, for `name` (RFC 5280 6.1
    path to a trust anchor, reduced to one issuer; RFC 6125 6.4 names in subjectAltName):
    (TlsProblem or None, words). Needs the `cryptography` package; without it, or without
    --tls-ca, the problem is None and the words say it was not verified."""
    try:
        from cryptography import x509
    except ImportError:
        return None, "not verified here: the cryptography package is not installed"
    import datetime

    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except ValueError as exc:
        return TlsProblem.CERT_OTHER, f"the certificate does not parse: {exc}"
    now = datetime.datetime.now(datetime.timezone.utc)
    if cert.not_valid_after_utc < now:
        return TlsProblem.EXPIRED, f"expired {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    if cert.not_valid_before_utc > now:
        return TlsProblem.NOT_YET_VALID, f"valid from {cert.not_valid_before_utc:%Y-%m-%d} UTC"
    if ca is None:
        return None, "not verified here: no --tls-ca given"
    try:
        with open(ca, "rb") as f:
            anchors = x509.load_pem_x509_certificates(f.read(MAX_CA_FILE))
    except (OSError, ValueError) as exc:
        return TlsProblem.CERT_OTHER, f"--tls-ca does not load: {exc}"
    if not any(_issued_by(cert, a) for a in anchors):
        return TlsProblem.UNKNOWN_CA, f"issued by {cert.issuer.rfc4514_string()}, not by --tls-ca"
    if name and not _names_match(cert, name):
        return TlsProblem.WRONG_NAME, f"the certificate is not for {name}"
    return None, "verified against --tls-ca"


MAX_CA_FILE = 1 << 20


def _issued_by(cert: Any, anchor: Any) -> bool:
    try:
        cert.verify_directly_issued_by(anchor)
    except Exception:  # noqa: BLE001 - ValueError, TypeError, InvalidSignature: not this one
        return False
    return True


def _names_match(cert: Any, name: str) -> bool:
    """RFC 6125 6.4: subjectAltName DNS names (a "*." first label) or IP addresses."""
    import ipaddress

    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        ip = None
    if ip is not None:
        return ip in san.get_values_for_type(x509.IPAddress)
    want = name.lower().rstrip(".")
    for dns in san.get_values_for_type(x509.DNSName):
        d = dns.lower().rstrip(".")
        if d == want or (d.startswith("*.") and "." in want and want.split(".", 1)[1] == d[2:]):
            return True
    return False


# --- a minimal DER reader (X.690) for the names and expiry of an X.509 certificate ----------

_CN = bytes.fromhex("550403")  # 2.5.4.3 commonName
_O = bytes.fromhex("55040a")  # 2.5.4.10 organizationName


def _tlv(der: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the element at `pos`."""
    tag = der[pos]
    length = der[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4:
            raise ValueError("unsupported DER length")
        length = int.from_bytes(der[pos : pos + n], "big")
        pos += n
    if pos + length > len(der):
        raise ValueError("DER element runs past the end")
    return tag, pos, pos + length


def _children(der: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out = []
    while start < end:
        tag, vs, ve = _tlv(der, start)
        out.append((tag, vs, ve))
        start = ve
    return out


def _name(der: bytes, start: int, end: int) -> str:
    """A Name (RFC 5280 4.1.2.4): its CN, else its O, else "?"."""
    found: dict[bytes, str] = {}
    for _, ss, se in _children(der, start, end):  # SET OF AttributeTypeAndValue
        for _, as_, ae in _children(der, ss, se):
            parts = _children(der, as_, ae)
            if len(parts) == 2 and parts[0][0] == 0x06:
                oid = der[parts[0][1] : parts[0][2]]
                found[oid] = der[parts[1][1] : parts[1][2]].decode("utf-8", "replace")
    return found.get(_CN) or found.get(_O) or "?"


def _time(der: bytes, tag: int, start: int, end: int) -> str:
    raw = der[start:end].decode("ascii", "replace").rstrip("Z")
    if tag == 0x17:  # UTCTime YYMMDDHHMMSS (RFC 5280 4.1.2.5.1)
        year = int(raw[:2])
        raw = f"{1900 + year if year >= 50 else 2000 + year}{raw[2:]}"
    return f"{raw[:4]}-{raw[4:6]}-{raw[6:8]}T{raw[8:10]}:{raw[10:12]}:{raw[12:14]}Z"


def is_self_signed(der: bytes) -> bool | None:
    """Issuer and subject are the same Name (RFC 5280 3.2, 6.1); None if unreadable."""
    try:
        _, cs, ce = _tlv(der, 0)
        _, ts, te = _children(der, cs, ce)[0]
        fields = _children(der, ts, te)
        if fields and fields[0][0] == 0xA0:
            fields = fields[1:]
        return der[fields[2][1] : fields[2][2]] == der[fields[4][1] : fields[4][2]]
    except (ValueError, IndexError):
        return None


def certificate_names(der: bytes) -> tuple[str | None, str | None, str | None]:
    """(subject, issuer, notAfter) of a DER certificate (RFC 5280 4.1); Nones if unreadable."""
    try:
        _, cs, ce = _tlv(der, 0)
        _, ts, te = _children(der, cs, ce)[0]
        fields = _children(der, ts, te)
        if fields and fields[0][0] == 0xA0:  # [0] version
            fields = fields[1:]
        # serialNumber, signature, issuer, validity, subject
        issuer = _name(der, fields[2][1], fields[2][2])
        validity = _children(der, fields[3][1], fields[3][2])
        not_after = _time(der, *validity[1])
        subject = _name(der, fields[4][1], fields[4][2])
        return subject, issuer, not_after
    except (ValueError, IndexError, UnicodeError):
        return None, None, None
