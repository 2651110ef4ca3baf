"""The reflector's HTTP + JSON contract (docs/reference.md "reverseprobe reflector"), pure: no I/O.

Both sides live here: the server validates requests and builds answers, `check` builds
requests and validates answers. Everything that arrives is untrusted, on either side: a
request may name hosts, ports or sizes it must not; a reflector may answer garbage. Parsing
raises `RequestError` (server side) or `AnswerError` (client side), never anything else.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from reverseprobe.config import MAX_DIALBACK_TIMEOUT, BadInput
from reverseprobe.config.validate import parse_aet
from reverseprobe.model.dicom import DEFAULT_CALLING_AET, DicomResult, EchoResult, TcpState
from reverseprobe.model.inbound import PortProbe as PortProbe
from reverseprobe.model.inbound import ProbeAnswer as ProbeAnswer
from reverseprobe.model.inbound import Reject as Reject
from reverseprobe.model.tls import TlsFacts

PATH_IP = "/v1/ip"
PATH_PROBE = "/v1/probe"
PATH_HEALTH = "/healthz"
SERVER_HEADER = "reverseprobe-reflector"  # no version: nothing to look up in a CVE list
MAX_PORTS = 4
BODY_LIMIT = 4096  # bytes: a probe request is ~100 bytes; "a few KiB" (docs/reference.md)
ANSWER_LIMIT = 64 * 1024  # what a client reads of an answer at most
DEFAULT_CALLED_AET = "ANY-SCP"
MIN_TIMEOUT = 0.2
MAX_TIMEOUT = MAX_DIALBACK_TIMEOUT
_DETAIL_LIMIT = 200
_REQUEST_KEYS = ("ports", "called_aet", "calling_aet", "timeout", "tls", "tls_server_name")
MAX_PEM = 12 << 10  # the receiver's certificate in an answer (dicom/tls.py MAX_PEM_DER as PEM)
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
                       r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$")  # fmt: skip

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
PortRanges = Sequence[tuple[int, int]]


class ErrorCode(str, Enum):
    """The `error` word of a 4xx/5xx answer; stable, clients branch on it."""

    BAD_JSON = "bad-json"
    BAD_REQUEST = "bad-request"
    TOO_MANY_PORTS = "too-many-ports"
    PORT_NOT_ALLOWED = "port-not-allowed"
    BODY_TOO_LARGE = "body-too-large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported-media-type"
    UNAUTHORIZED = "unauthorized"
    RATE_LIMITED = "rate-limited"
    BUSY = "busy"
    REQUEST_TIMEOUT = "request-timeout"
    BAD_FORWARDED_FOR = "bad-forwarded-for"
    ADDRESS_NOT_ALLOWED = "address-not-allowed"  # 403: it will not dial that address
    NOT_FOUND = "not-found"
    METHOD_NOT_ALLOWED = "method-not-allowed"
    INTERNAL = "internal"


class RequestError(Exception):
    """A request the reflector refuses: HTTP status, error word, one line for the client."""

    def __init__(self, status: int, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after: float | None = None

    def with_retry(self, seconds: float) -> RequestError:
        """Say when to retry (HTTP Retry-After) for 429 and 503."""
        self.retry_after = seconds
        return self

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message)


def error_body(code: ErrorCode, message: str) -> dict[str, Any]:
    return {"error": code.value, "message": message}


@dataclass(frozen=True)
class ProbeRequest:
    """A validated POST /v1/probe. No field names a host: the reflector dials the requester."""

    ports: tuple[int, ...]
    called_aet: str = DEFAULT_CALLED_AET
    calling_aet: str = DEFAULT_CALLING_AET
    timeout: float | None = None  # the client's budget for the whole dial-back, seconds
    ignored: tuple[str, ...] = ()  # keys we do not know, ignored (e.g. a "host" to dial)
    # "tls": true: dial back with DICOM over TLS (PS3.15 B.1, issue 15); the server name is
    # only the SNI of the ClientHello (RFC 6066 3), never a place to connect to
    tls: bool = False
    tls_server_name: str | None = None


def port_allowed(port: int, ranges: PortRanges) -> bool:
    return any(lo <= port <= hi for lo, hi in ranges)


def format_ranges(ranges: PortRanges) -> str:
    return ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)


def _bad(message: str, code: ErrorCode = ErrorCode.BAD_REQUEST) -> RequestError:
    return RequestError(400, code, message)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _bad(f"duplicate key {k!r}", ErrorCode.BAD_JSON)
        out[k] = v
    return out


def _no_constants(name: str) -> Any:
    raise _bad(f"{name} is not JSON", ErrorCode.BAD_JSON)


def loads_strict(body: bytes) -> Any:
    """RFC 8259 JSON in UTF-8: no NaN/Infinity, no duplicate keys, bounded nesting."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("the body is not UTF-8", ErrorCode.BAD_JSON) from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except RequestError:
        raise
    except (ValueError, RecursionError) as exc:
        # RecursionError: thousands of nested brackets fit in the body limit.
        reason = str(exc).splitlines()[0][:120] if isinstance(exc, ValueError) else "too deep"
        raise _bad(f"the body is not valid JSON: {reason}", ErrorCode.BAD_JSON) from None


def parse_probe_request(
    body: bytes, allow_ports: PortRanges, *, max_ports: int = MAX_PORTS
) -> ProbeRequest:
    """Validate a POST /v1/probe body. Unknown keys are ignored, never used: a key naming
    another host cannot redirect the dial-back (docs/reference.md security rules)."""
    doc = loads_strict(body)
    if not isinstance(doc, dict):
        raise _bad("the body must be a JSON object")
    ports = _ports(doc.get("ports"), allow_ports, max_ports)
    called = _aet(doc.get("called_aet", DEFAULT_CALLED_AET), "called_aet")
    calling = _aet(doc.get("calling_aet", DEFAULT_CALLING_AET), "calling_aet")
    timeout = _timeout(doc.get("timeout"))
    tls, server_name = _tls(doc.get("tls", False), doc.get("tls_server_name"))
    ignored = tuple(sorted(str(k)[:40] for k in doc if k not in _REQUEST_KEYS))
    return ProbeRequest(ports, called, calling, timeout, ignored[:8], tls, server_name)


def _tls(value: Any, name: Any) -> tuple[bool, str | None]:
    """'tls' a boolean; 'tls_server_name' a host name (RFC 1123 2.1, no address: SNI carries
    names only, RFC 6066 3) and only with "tls": true."""
    if not isinstance(value, bool):
        raise _bad("'tls' must be true or false")
    if name is None:
        return value, None
    if not value:
        raise _bad("'tls_server_name' needs \"tls\": true")
    if not isinstance(name, str) or not _HOSTNAME.match(name) or _is_ip(name):
        raise _bad(f"invalid tls_server_name {_short(name)}: must be a host name")
    return True, name.rstrip(".").lower()


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _ports(value: Any, allow: PortRanges, max_ports: int) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise _bad("'ports' must be a non-empty list of port numbers")
    if len(value) > max_ports:
        raise _bad(
            f"at most {max_ports} ports a request, not {len(value)}", ErrorCode.TOO_MANY_PORTS
        )
    out: list[int] = []
    for p in value:
        if isinstance(p, bool) or not isinstance(p, int) or not 1 <= p <= 65535:
            raise _bad(f"invalid port {_short(p)}: must be a whole number 1-65535")
        if not port_allowed(p, allow):
            raise RequestError(
                403,
                ErrorCode.PORT_NOT_ALLOWED,
                f"port {p} is not in this reflector's allow-list ({format_ranges(allow)})",
            )
        if p in out:
            raise _bad(f"port {p} is listed twice")
        out.append(p)
    return tuple(out)


def _aet(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _bad(f"'{what}' must be a string")
    try:
        return parse_aet(value, what=what)
    except BadInput as exc:
        raise _bad(str(exc)) from None


def _timeout(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad("'timeout' must be a number of seconds")
    if not MIN_TIMEOUT <= float(value) <= MAX_TIMEOUT:
        raise _bad(f"'timeout' must be {MIN_TIMEOUT:g}-{MAX_TIMEOUT:g} seconds")
    return float(value)


def _short(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else "?"
    return text if len(text) <= 24 else text[:21] + "..."


def normalize_ip(value: str) -> str:
    """An IP address as text, IPv4-mapped IPv6 unwrapped; ValueError when it is not one."""
    ip = ipaddress.ip_address(value.strip().split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _forwarded_entry(entry: str) -> str:
    """One X-Forwarded-For entry: '1.2.3.4', '1.2.3.4:5678', '2001:db8::1', '[2001:db8::1]:80'."""
    e = entry.strip().strip('"')
    if e.startswith("["):
        e = e[1 : e.find("]")] if "]" in e else e
    elif e.count(":") == 1:
        e = e.split(":", 1)[0]
    return normalize_ip(e)


def _in_any(address: str, networks: Iterable[IpNetwork]) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip.version == n.version and ip in n for n in networks)


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[IpNetwork]
) -> str:
    """The address to dial back: the TCP peer, unless the peer is a trusted proxy; then the
    right-most X-Forwarded-For entry that is not itself a trusted proxy. Entries left of it
    are the client's own words (a proxy such as Cloudflare appends to what the client sent)
    and are never believed."""
    if not peer:
        raise RequestError(400, ErrorCode.BAD_REQUEST, "no peer address")
    try:
        addr = normalize_ip(peer)
    except ValueError:
        raise RequestError(400, ErrorCode.BAD_REQUEST, "the peer is not an IP address") from None
    if not trusted or not _in_any(addr, trusted):
        return addr
    hops = [h for header in forwarded_for for h in header.split(",") if h.strip()]
    if not hops:
        raise RequestError(
            400, ErrorCode.BAD_FORWARDED_FOR, "the trusted proxy sent no X-Forwarded-For"
        )
    for hop in reversed(hops[-16:]):
        try:
            addr = _forwarded_entry(hop)
        except ValueError:
            raise RequestError(
                400, ErrorCode.BAD_FORWARDED_FOR, "X-Forwarded-For holds a non-address"
            ) from None
        if not _in_any(addr, trusted):
            return addr
    return addr


# --- answers -------------------------------------------------------------------------------


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


def probe_request_body(  # noqa: PLR0913 - the fields of one probe request
    ports: Sequence[int],
    called_aet: str,
    calling_aet: str,
    timeout: float | None = None,
    *,
    tls: bool = False,
    tls_server_name: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ports": list(ports),
        "called_aet": called_aet,
        "calling_aet": calling_aet,
    }
    if timeout is not None:
        body["timeout"] = round(min(MAX_TIMEOUT, max(MIN_TIMEOUT, timeout)), 2)
    if tls:
        body["tls"] = True
        if tls_server_name:
            body["tls_server_name"] = tls_server_name
    return body


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
