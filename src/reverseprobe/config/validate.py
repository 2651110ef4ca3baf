"""Validators of every input: each returns the clean value or raises BadInput with one line
that names the bad value (the CLI turns it into exit 2)."""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from reverseprobe.config import MAX_TIMEOUT, BadInput, PacsEntryGiven

UID_PATTERN = re.compile(r"[0-9]+(\.[0-9]+)*")  # PS3.5 9.1: digits and dots


_HOSTNAME_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


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


def parse_study_uid(value: str, *, what: str = "Study Instance UID") -> str:
    """A UID per PS3.5 9.1: digits and dots, no empty component, at most 64 characters."""
    if not isinstance(value, str) or len(value) > 64 or not UID_PATTERN.fullmatch(value):
        raise BadInput(f"invalid {what} {value!r}: digits and dots, at most 64")
    return value


def parse_positive(value: str, *, what: str = "value") -> float:
    v = parse_decimal(value, what=what)
    if not 0 < v < float("inf"):
        raise BadInput(f"invalid {what} {value!r}: must be more than 0")
    return v


def parse_count(value: str, *, what: str = "count") -> int:
    try:
        v = parse_digits(value, what=what)
    except BadInput:
        raise BadInput(f"invalid {what} {value!r}: not a whole number") from None
    if not 1 <= v <= 100_000:
        raise BadInput(f"invalid {what} {value!r}: must be 1-100000")
    return v


def parse_save_dir(value: str) -> Path:
    path = Path(value).expanduser()
    if not path.is_dir():
        raise BadInput(f"invalid --save {value!r}: not an existing directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise BadInput(f"invalid --save {value!r}: not writable")
    return path


def parse_context(value: str, *, what: str = "--context") -> tuple[str, str]:
    """'SOP_CLASS_UID=TRANSFER_SYNTAX_UID': one presentation context for the receiver
    preflight (PS3.8 9.3.2.2), both UIDs per PS3.5 9.1."""
    sop, sep, ts = value.partition("=")
    if not sep:
        raise BadInput(f"invalid {what} {value!r}: expected SOP_CLASS_UID=TRANSFER_SYNTAX_UID")
    for uid in (sop, ts):
        if len(uid.strip()) > 64 or not UID_PATTERN.fullmatch(uid.strip()):
            raise BadInput(f"invalid {what} {value!r}: {uid!r} is not a UID")
    return sop.strip(), ts.strip()


def parse_pacs_entry(value: str, *, what: str = "--pacs-entry") -> PacsEntryGiven:
    """AET@HOST:PORT (an IPv6 host in brackets)."""
    if not isinstance(value, str) or "@" not in value:
        raise BadInput(f"invalid {what} {value!r}: expected AET@HOST:PORT")
    aet, _, hostport = value.rpartition("@")
    host, port = parse_host_port(hostport, what=what)
    return PacsEntryGiven(aet=parse_aet(aet, what=f"{what} AE title"), host=host, port=port)
