"""Frozen configuration per command, and validation of every input (docs/reference.md "Inputs").

Validators raise BadInput with one line that names the bad value; the CLI turns it into exit 2.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_PORT = 11112
DEFAULT_CHECK_TIMEOUT = 8.0
DEFAULT_ALLOW_PORTS = "104,11112,1024-65535"
ENV_REFLECTOR = "REVERSEPROBE_REFLECTOR"
ENV_IP_SERVICES = "REVERSEPROBE_IP_SERVICES"
MAX_TIMEOUT = 24 * 3600.0

_HOSTNAME_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


class BadInput(ValueError):
    """A bad value given by the user; str() is the one line shown before exit 2."""


_ASCII_INT = re.compile(r"[0-9]{1,20}")
_ASCII_DECIMAL = re.compile(r"[0-9]{1,20}(\.[0-9]{0,20})?|\.[0-9]{1,20}")


def parse_digits(value: str | int, *, what: str = "number") -> int:
    """A whole number written in ASCII digits only: int() also takes `１１１１２`, `٣`, `1_1112`
    and `+5`, none of which a user means as a port or a count."""
    if isinstance(value, bool):
        raise BadInput(f"invalid {what} {value!r}: not a number")
    if isinstance(value, int):
        return value
    v = str(value).strip(" ")
    if not _ASCII_INT.fullmatch(v):
        raise BadInput(f"invalid {what} {value!r}: not a number in digits 0-9")
    return int(v, 10)


def parse_port(value: str | int, *, what: str = "port") -> int:
    try:
        port = parse_digits(value, what=what)
    except BadInput:
        raise BadInput(f"invalid {what} {value!r}: not a number (1-65535)") from None
    if not 1 <= port <= 65535:
        raise BadInput(f"invalid {what} {value!r}: must be 1-65535")
    return port


def parse_aet(value: str, *, what: str = "AE title") -> str:
    """AE title per PS3.5 6.2 (AE VR): 1-16 chars of the default repertoire, no backslash or
    control characters, not all spaces. Leading/trailing spaces are not significant."""
    if not isinstance(value, str):
        raise BadInput(f"invalid {what} {value!r}: not text")
    if len(value) > 16:
        raise BadInput(f"invalid {what} {value!r}: longer than 16 characters")
    for ch in value:
        if ch == "\\":
            raise BadInput(f"invalid {what} {value!r}: backslash is not allowed")
        if not 0x20 <= ord(ch) <= 0x7E:
            raise BadInput(
                f"invalid {what} {value!r}: only printable ASCII (DICOM default repertoire)"
            )
    stripped = value.strip(" ")
    if not stripped:
        raise BadInput(f"invalid {what} {value!r}: empty or all spaces")
    return stripped


def parse_host(value: str, *, what: str = "host") -> str:
    """A DNS name (RFC 1123 labels) or an IPv4/IPv6 address (IPv6 may be in brackets)."""
    if not isinstance(value, str):
        raise BadInput(f"invalid {what} {value!r}: not text")
    v = value.strip()
    if v.startswith("[") and v.endswith("]"):
        try:  # brackets are for IPv6 only (RFC 3986 3.2.2): `[127.0.0.1]` is refused
            return str(ipaddress.IPv6Address(v[1:-1]))
        except ValueError:
            raise BadInput(f"invalid {what} {value!r}: brackets are for IPv6 addresses") from None
    try:
        return str(ipaddress.ip_address(v))
    except ValueError:
        pass
    name = v[:-1] if v.endswith(".") else v
    labels = name.split(".")
    if (
        not name
        or len(name) > 253
        or not all(_HOSTNAME_LABEL.match(lb) for lb in labels)
        or labels[-1].isdigit()
    ):
        raise BadInput(f"invalid {what} {value!r}: not a host name or IP address")
    return name


def parse_host_port(value: str, *, what: str = "HOST:PORT") -> tuple[str, int]:
    """'host:port', '1.2.3.4:104' or '[2001:db8::1]:104'."""
    v = value.strip()
    m = re.match(r"^\[(?P<h6>[^\]]+)\]:(?P<p6>[^:]+)$", v) or re.match(
        r"^(?P<h>[^:\[\]]+):(?P<p>[^:]+)$", v
    )
    if not m:
        raise BadInput(f"invalid {what} {value!r}: expected HOST:PORT ([IPv6]:PORT)")
    host = f"[{m.group('h6')}]" if m.groupdict().get("h6") else m.group("h")
    port = m.group("p6") if m.groupdict().get("p6") else m.group("p")
    return parse_host(host, what=f"host in {what}"), parse_port(port, what=f"port in {what}")


def parse_url(value: str, *, what: str = "URL") -> str:
    """An http(s) URL naming a host; no control characters or spaces (a newline in a URL would
    forge a header line of the request, RFC 9112 3.2)."""
    if not isinstance(value, str):
        raise BadInput(f"invalid {what} {value!r}: not text")
    v = value.strip(" ")
    if any(ord(ch) < 0x21 or 0x7F <= ord(ch) <= 0x9F for ch in v):
        raise BadInput(f"invalid {what} {value!r}: control characters or spaces in a URL")
    try:
        parts = urlsplit(v)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise BadInput(f"invalid {what} {value!r}: not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise BadInput(f"invalid {what} {value!r}: must start with http:// or https://")
    if not parts.hostname:
        raise BadInput(f"invalid {what} {value!r}: no host")
    parse_host(parts.hostname, what=f"host in {what}")
    return v


def parse_decimal(value: str | float, *, what: str = "number") -> float:
    """A number written as ASCII digits with an optional decimal point (`1.5`, `10`, `.5`):
    float() also takes `1_0`, `١٠`, `1e3`, `inf` and `nan`."""
    if isinstance(value, bool):
        raise BadInput(f"invalid {what} {value!r}: not a number")
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str) or not _ASCII_DECIMAL.fullmatch(value.strip(" ")):
        raise BadInput(f"invalid {what} {value!r}: not a number in digits 0-9")
    return float(value.strip(" "))


def parse_timeout(value: str | float, *, what: str = "timeout") -> float:
    try:
        t = parse_decimal(value, what=what)
    except BadInput:
        raise BadInput(f"invalid {what} {value!r}: not a number of seconds") from None
    if not 0 < t <= MAX_TIMEOUT:  # also rejects NaN
        raise BadInput(f"invalid {what} {value!r}: must be more than 0 and at most {MAX_TIMEOUT:g}")
    return t


def parse_cidr(value: str, *, what: str = "CIDR") -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise BadInput(f"invalid {what} {value!r}: expected an address or network") from None


def parse_port_ranges(value: str, *, what: str = "port list") -> tuple[tuple[int, int], ...]:
    """'104,11112,1024-65535' -> ((104, 104), (11112, 11112), (1024, 65535))."""
    out: list[tuple[int, int]] = []
    for raw in value.split(","):
        part = raw.strip()
        if not part:
            raise BadInput(f"invalid {what} {value!r}: empty item")
        lo_s, sep, hi_s = part.partition("-")
        lo = parse_port(lo_s, what=f"port in {what}")
        hi = parse_port(hi_s, what=f"port in {what}") if sep else lo
        if hi < lo:
            raise BadInput(f"invalid {what} {value!r}: range {part} is backwards")
        out.append((lo, hi))
    return tuple(out)


def split_env_list(value: str | None) -> list[str]:
    """Environment lists are separated by commas or whitespace."""
    return [v for v in re.split(r"[,\s]+", value or "") if v]


@dataclass(frozen=True)
class CheckConfig:
    port: int = DEFAULT_PORT
    aet: str | None = None
    reflector: str | None = None
    ip_services: tuple[str, ...] | None = None  # None: the built-in list
    upnp: bool = True
    public_ip: bool = True
    expect_process: str | None = None
    require_listener: bool = False
    strict: bool = False
    timeout: float = DEFAULT_CHECK_TIMEOUT

    @property
    def called_aet(self) -> str:
        """The called AE for our C-ECHO to the listener: --aet, else dcmtk's default title."""
        return self.aet or "ANY-SCP"


@dataclass(frozen=True)
class ForwardConfig:
    mode: str = "upnp"  # upnp | natpmp | auto
    port: int = DEFAULT_PORT
    external_port: int | None = None
    lease: int = 0
    description: str | None = None
    aet: str | None = None
    action: str = "add"  # add | list | remove
    force: bool = False
    dry_run: bool = False
    keep: bool = False
    verify: bool = False
    reflector: str | None = None
    ip_services: tuple[str, ...] | None = None
    timeout: float = 10.0


@dataclass(frozen=True)
class MoveTestConfig:
    pacs_host: str
    pacs_port: int
    pacs_aet: str
    aet: str
    port: int = DEFAULT_PORT
    study: str | None = None
    try_cget: bool = False
    save_dir: Path | None = None
    grace: float = 5.0
    ip_services: tuple[str, ...] | None = None
    public_ip: bool = True
    strict: bool = False
    timeout: float = 120.0


@dataclass(frozen=True)
class ReflectorConfig:
    host: str = "127.0.0.1"
    port: int = 8470
    trust_proxy: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    allow_ports: tuple[tuple[int, int], ...] = parse_port_ranges(DEFAULT_ALLOW_PORTS)
    rate_per_minute: float = 12.0
    burst: int = 4
    max_concurrent: int = 64
    token: str | None = None
    connect_timeout: float = 3.0
    timeout: float = 8.0  # the whole dial-back of one request
    json_log: bool = False
    max_per_source: int = 2  # probe requests in progress per source (libp2p AutoNAT: 2)
    allow_loopback: bool = False  # dial loopback addresses: for tests and labs only


@dataclass(frozen=True)
class ChecklistConfig:
    site_file: Path
    formats: tuple[str, ...] = ("text",)
    outputs: tuple[Path, ...] = ()
    output_dir: Path | None = None
    strict: bool = False
    timeout: float = 600.0
