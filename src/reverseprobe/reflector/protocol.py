"""The reflector's HTTP + JSON contract (docs/reference.md "reverseprobe reflector"), pure: no I/O.

The request side lives here: the server validates requests, `check` builds them; the answers
are answers.py. Everything that arrives is untrusted: a request may name hosts, ports or sizes
it must not. Parsing raises `RequestError`, never anything else.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from reverseprobe.config import MAX_DIALBACK_TIMEOUT, BadInput
from reverseprobe.config.validate import parse_aet
from reverseprobe.model.dicom import DEFAULT_CALLING_AET

PATH_IP = "/v1/ip"
PATH_PROBE = "/v1/probe"
PATH_HEALTH = "/healthz"
SERVER_HEADER = "reverseprobe-reflector"  # no version: nothing to look up in a CVE list
MAX_PORTS = 4
BODY_LIMIT = 4096  # bytes: a probe request is ~100 bytes; "a few KiB" (docs/reference.md)
DEFAULT_CALLED_AET = "ANY-SCP"
MIN_TIMEOUT = 0.2
MAX_TIMEOUT = MAX_DIALBACK_TIMEOUT
_REQUEST_KEYS = ("ports", "called_aet", "calling_aet", "timeout", "tls", "tls_server_name")
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
