"""Frozen configuration per command, validation of every input, and the one place where a
command's Config is built from argparse and the environment (docs/reference.md "Inputs").

Validators raise BadInput with one line that names the bad value; the CLI turns it into exit 2.
The REVERSEPROBE_* fallbacks are read here only (`reflector_url`, `ip_service_urls`).
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import ipaddress
import os
import re
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from reverseprobe.model.tls import TlsSettings

if TYPE_CHECKING:
    from reverseprobe.sitefile import Site

DEFAULT_PORT = 11112
DEFAULT_CHECK_TIMEOUT = 8.0
DEFAULT_ALLOW_PORTS = "104,11112,1024-65535"
ENV_REFLECTOR = "REVERSEPROBE_REFLECTOR"
ENV_IP_SERVICES = "REVERSEPROBE_IP_SERVICES"
MAX_TIMEOUT = 24 * 3600.0
MAX_DIALBACK_TIMEOUT = 60.0  # the reflector's budget for one request's dial-backs
MAX_TOKEN_BYTES = 4096
DEFAULT_FORWARD_TIMEOUT = 10.0
DEFAULT_MOVE_TIMEOUT = 120.0
DEFAULT_GRACE = 5.0
DEFAULT_REFLECTOR_TIMEOUT = 8.0
DEFAULT_CHECKLIST_TIMEOUT = 600.0
DEFAULT_KEEP_LEASE = 600  # forward --keep without --lease: short, so a killed run leaves little
DEFAULT_LEASE = 3600  # forward without --lease: an hour, so a forgotten mapping closes itself
MAX_DESCRIPTION = 64
MIN_MOVE_TIME_S = 1.0  # what move-test keeps for echo, find and the C-MOVE besides the grace


class _Choice(str, enum.Enum):
    """One of a closed set of option words; prints, formats and compares as its word."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class ForwardMode(_Choice):
    """How `forward` talks to the router: UPnP IGD, NAT-PMP/PCP (RFC 6886, RFC 6887), or both."""

    UPNP = "upnp"
    NATPMP = "natpmp"
    AUTO = "auto"


class ForwardFamily(_Choice):
    """Which address family `forward` opens (issue 15): IPv4 maps a port through the NAT,
    IPv6 opens a pinhole in the router's IPv6 firewall (no NAT on IPv6)."""

    V4 = "4"
    V6 = "6"
    BOTH = "both"


class ForwardAction(_Choice):
    ADD = "add"
    LIST = "list"
    REMOVE = "remove"


class ReportFormat(_Choice):
    """The checklist's report formats."""

    TEXT = "text"
    JSON = "json"
    JUNIT = "junit"
    HTML = "html"


_UID = re.compile(r"[0-9]+(\.[0-9]+)*")

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


def parse_study_uid(value: str, *, what: str = "Study Instance UID") -> str:
    """A UID per PS3.5 9.1: digits and dots, no empty component, at most 64 characters."""
    if not isinstance(value, str) or len(value) > 64 or not _UID.fullmatch(value):
        raise BadInput(f"invalid {what} {value!r}: digits and dots, at most 64")
    return value


def parse_description(value: str) -> str:
    """A mapping description (UPnP NewPortMappingDescription): printable ASCII, bounded."""
    if not value.strip():
        raise BadInput(f"invalid --description {value!r}: empty")
    if len(value) > MAX_DESCRIPTION:
        raise BadInput(f"invalid --description {value!r}: longer than {MAX_DESCRIPTION} characters")
    if any(not 0x20 <= ord(ch) <= 0x7E for ch in value):
        raise BadInput(f"invalid --description {value!r}: only printable ASCII")
    return value


def parse_lease(value: str) -> int:
    """A mapping lifetime in seconds; 0 is permanent (UPnP IGD NewLeaseDuration is a ui4)."""
    try:
        n = parse_digits(value, what="lease")
    except BadInput:
        raise BadInput(f"invalid lease {value!r}: not a whole number of seconds") from None
    if not 0 <= n <= 2**31 - 1:
        raise BadInput(f"invalid lease {value!r}: must be 0 (permanent) to 2147483647")
    return n


def parse_from(value: str) -> str:
    """`forward --from`: the one IPv4 source address the mapping admits. UPnP IGD's
    AddPortMapping filters on one NewRemoteHost (IGD WANIPConnection:2 2.4.16), no prefix."""
    try:
        net = ipaddress.ip_network(value.strip(), strict=True)
    except ValueError:
        raise BadInput(f"invalid --from {value!r}: not an IPv4 address or CIDR") from None
    if net.version != 4:
        raise BadInput(f"invalid --from {value!r}: the router maps IPv4 only")
    if net.num_addresses != 1:
        raise BadInput(
            f"invalid --from {value!r}: a router restricts a mapping to one source address "
            "(UPnP NewRemoteHost), not a range; give the PACS's address, e.g. "
            f"{net.network_address}/32"
        )
    return str(net.network_address)


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


# --- the environment fallback, written once ---------------------------------------------------


def reflector_url(given: str | None, environ: Mapping[str, str]) -> str | None:
    """--reflector, else $REVERSEPROBE_REFLECTOR (validated like the option), else None."""
    if given is not None:
        return given
    value = environ.get(ENV_REFLECTOR)
    return parse_url(value, what=ENV_REFLECTOR) if value else None


def ip_service_urls(
    given: list[str] | tuple[str, ...] | None, environ: Mapping[str, str]
) -> tuple[str, ...] | None:
    """--ip-service (repeatable), else $REVERSEPROBE_IP_SERVICES, else None (the built-in list)."""
    if given:
        return tuple(given)
    items = split_env_list(environ.get(ENV_IP_SERVICES))
    return tuple(parse_url(u, what=f"URL in {ENV_IP_SERVICES}") for u in items) or None


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
    # The PACS's existing entry for us (--pacs-entry AET@HOST:PORT), to compare (issue 13).
    pacs_entry: PacsEntryGiven | None = None
    # Where the container/VM markers are read (REVERSEPROBE_SYSROOT; "/" when None) and the
    # environment variables that are markers themselves (KUBERNETES_SERVICE_HOST).
    sysroot: str | None = None
    virtual_env: tuple[tuple[str, str], ...] = ()
    tls: TlsSettings | None = None  # --tls: the C-ECHO to the listener over TLS (issue 15)
    # The receiver preflight (issue 11): --pacs HOST:PORT with --pacs-aet (its IMAGE-level
    # C-FIND tells the contexts), or --context SOP=TS pairs.
    pacs: tuple[str, int] | None = None
    pacs_aet: str | None = None
    contexts: tuple[tuple[str, str], ...] = ()
    # --contexts-from FILE: the contexts a PACS proposed in a recorded move-test --json run.
    recorded_contexts: tuple[tuple[str, str], ...] = ()

    @property
    def called_aet(self) -> str:
        """The called AE for our C-ECHO to the listener: --aet, else dcmtk's default title."""
        return self.aet or "ANY-SCP"


@dataclass(frozen=True)
class ForwardConfig:
    mode: ForwardMode = ForwardMode.UPNP
    port: int = DEFAULT_PORT
    external_port: int | None = None
    lease: int = DEFAULT_LEASE
    description: str | None = None
    aet: str | None = None
    action: ForwardAction = ForwardAction.ADD
    force: bool = False
    dry_run: bool = False
    keep: bool = False
    verify: bool = False
    reflector: str | None = None
    ip_services: tuple[str, ...] | None = None
    timeout: float = DEFAULT_FORWARD_TIMEOUT
    remote_host: str | None = None  # --from: the one source the mapping admits (UPnP only)
    # --firewall (issue 14): this PC's own firewall too; alone (no --upnp/--natpmp/--auto)
    # it touches only the PC. source: --from CIDR; permanent: firewalld's permanent config.
    firewall: bool = False
    firewall_only: bool = False
    source: str | None = None
    permanent: bool = False
    # --family (issue 15): the IPv4 mapping, the IPv6 pinhole, or both (where this PC has a
    # global IPv6 address)
    family: ForwardFamily = ForwardFamily.BOTH


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
    grace: float = DEFAULT_GRACE
    ip_services: tuple[str, ...] | None = None
    public_ip: bool = True
    strict: bool = False
    timeout: float = DEFAULT_MOVE_TIMEOUT
    receiver: str = "auto"  # auto | own | running (RECEIVER_MODES)
    # --context SOP=TS: what the receiver preflight proposes (else from the PACS's C-FIND).
    contexts: tuple[tuple[str, str], ...] = ()
    # --contexts-from FILE: what the PACS proposed in an earlier --receiver own run's --json.
    recorded_contexts: tuple[tuple[str, str], ...] = ()
    # --reflector / REVERSEPROBE_REFLECTOR: measure the way in (the inbound probe) before the move
    reflector: str | None = None
    # --tls (issue 15): the association to the PACS and our receiver use DICOM TLS (PS3.15 B.1)
    tls: TlsSettings | None = None


RECEIVER_MODES = ("auto", "own", "running")


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
    timeout: float = DEFAULT_REFLECTOR_TIMEOUT  # the whole dial-back of one request
    json_log: bool = False
    max_per_source: int = 2  # probe requests in progress per source (libp2p AutoNAT: 2)
    allow_loopback: bool = False  # dial loopback addresses: for tests and labs only
    # every --listen address (host, port), the first being (host, port); () means just that one
    listen: tuple[tuple[str, int], ...] = ()

    @property
    def addresses(self) -> tuple[tuple[str, int], ...]:
        """Every address to bind: --listen in the order given (one TCP site each)."""
        return self.listen or ((self.host, self.port),)


@dataclass(frozen=True)
class ChecklistConfig:
    site_file: Path
    formats: tuple[ReportFormat, ...] = (ReportFormat.TEXT,)
    outputs: tuple[Path, ...] = ()  # one per format; Path("-") is stdout
    output_dir: Path | None = None
    strict: bool = False
    timeout: float = DEFAULT_CHECKLIST_TIMEOUT
    site: Site | None = None  # the site file, read (so bad input exits 2 before anything runs)
    json_out: bool = False


DEFAULT_WATCH_INTERVAL = 300.0  # watch: between rounds


@dataclass(frozen=True)
class WatchConfig:
    """`watch` (issue 14): check's probes every `interval` s; `count` rounds (0: until
    stopped); `metrics_port` 0: no Prometheus endpoint."""

    port: int = DEFAULT_PORT
    aet: str | None = None
    reflector: str | None = None
    ip_services: tuple[str, ...] | None = None
    upnp: bool = True
    public_ip: bool = True
    interval: float = DEFAULT_WATCH_INTERVAL
    count: int = 0
    exit_on_change: bool = False
    json: bool = False
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    timeout: float = DEFAULT_CHECK_TIMEOUT  # each round's check


def _probe_targets(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, Any]:
    """What check's probes ask, from the options check and watch share (and the environment)."""
    return {
        "port": args.port,
        "aet": args.aet,
        "reflector": reflector_url(args.reflector, environ),
        "ip_services": ip_service_urls(args.ip_services, environ),
        "upnp": not args.no_upnp,
        "public_ip": not args.no_public_ip,
    }


def watch_config(args: argparse.Namespace, environ: Mapping[str, str]) -> WatchConfig:
    host, mport = "127.0.0.1", 0
    if args.metrics is not None:
        value = str(args.metrics)
        if value.isdigit():
            mport = parse_port(value, what="--metrics port")
        else:
            host, mport = parse_host_port(value, what="--metrics HOST:PORT")
    if args.interval < 1:
        raise BadInput(f"invalid --interval {args.interval:g}: at least 1 second")
    return WatchConfig(
        **_probe_targets(args, environ),
        interval=args.interval,
        count=args.count,
        exit_on_change=args.exit_on_change,
        json=args.json,
        metrics_host=host,
        metrics_port=mport,
        timeout=args.timeout,
    )


FILE_NAMES = {
    ReportFormat.TEXT: "report.txt",
    ReportFormat.JSON: "report.json",
    ReportFormat.JUNIT: "report.xml",
    ReportFormat.HTML: "report.html",
}


# --- argparse + environment -> Config, for every command ---------------------------------------

Config = (
    CheckConfig | ForwardConfig | MoveTestConfig | ReflectorConfig | ChecklistConfig | WatchConfig
)


def build_config(args: argparse.Namespace, environ: Mapping[str, str]) -> Config:
    """The frozen Config of the command `args` names; BadInput (exit 2) names a bad value."""
    builders: dict[str, Callable[[argparse.Namespace, Mapping[str, str]], Config]] = {
        "check": check_config,
        "forward": forward_config,
        "move-test": move_test_config,
        "reflector": reflector_config,
        "checklist": checklist_config,
        "watch": watch_config,
    }
    return builders[args.command](args, environ)


ENV_SYSROOT = "REVERSEPROBE_SYSROOT"
VIRTUAL_ENV_MARKERS = ("KUBERNETES_SERVICE_HOST",)


@dataclass(frozen=True)
class PacsEntryGiven:
    """The entry a PACS administrator already made for this SCU: AE title -> host:port."""

    aet: str
    host: str
    port: int


def parse_pacs_entry(value: str, *, what: str = "--pacs-entry") -> PacsEntryGiven:
    """AET@HOST:PORT (an IPv6 host in brackets)."""
    if not isinstance(value, str) or "@" not in value:
        raise BadInput(f"invalid {what} {value!r}: expected AET@HOST:PORT")
    aet, _, hostport = value.rpartition("@")
    host, port = parse_host_port(hostport, what=what)
    return PacsEntryGiven(aet=parse_aet(aet, what=f"{what} AE title"), host=host, port=port)


def _virtual_env(environ: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((k, environ[k]) for k in VIRTUAL_ENV_MARKERS if environ.get(k))


def check_config(args: argparse.Namespace, environ: Mapping[str, str]) -> CheckConfig:
    return CheckConfig(
        **_probe_targets(args, environ),
        expect_process=args.expect_process,
        require_listener=args.require_listener,
        strict=args.strict,
        timeout=args.timeout,
        pacs_entry=getattr(args, "pacs_entry", None),
        sysroot=environ.get(ENV_SYSROOT) or None,
        virtual_env=_virtual_env(environ),
        tls=tls_settings(args),
        pacs=_check_pacs(args),
        pacs_aet=getattr(args, "pacs_aet", None),
        contexts=tuple(getattr(args, "contexts", None) or ()),
        recorded_contexts=_recorded(args),
    )


def tls_settings(args: argparse.Namespace) -> TlsSettings | None:
    """--tls and its files; a file option without --tls, or an unreadable file, is bad input."""
    files = {
        "--tls-ca": getattr(args, "tls_ca", None),
        "--tls-cert": getattr(args, "tls_cert", None),
        "--tls-key": getattr(args, "tls_key", None),
    }
    name = getattr(args, "tls_name", None)
    if not getattr(args, "tls", False):
        given = [k for k, v in files.items() if v] + (["--tls-name"] if name else [])
        if given:
            raise BadInput(f"invalid {given[0]}: it needs --tls")
        return None
    for opt, path in files.items():
        if path is not None and not os.access(path, os.R_OK):
            raise BadInput(f"invalid {opt} {path!r}: not a readable file")
    if files["--tls-key"] and not files["--tls-cert"]:
        raise BadInput("invalid --tls-key: it needs --tls-cert")
    if name is not None and not _TLS_NAME.match(name):
        raise BadInput(f"invalid --tls-name {name!r}: not a host name or IP address")
    return TlsSettings(
        ca=files["--tls-ca"], cert=files["--tls-cert"], key=files["--tls-key"], name=name
    )


_TLS_NAME = re.compile(r"^[A-Za-z0-9._:-]{1,253}$")  # a host name (RFC 1123) or an address


def _check_pacs(args: argparse.Namespace) -> tuple[str, int] | None:
    """check's --pacs for the receiver preflight; it goes with --pacs-aet."""
    pacs: tuple[str, int] | None = getattr(args, "pacs", None)
    pacs_aet = getattr(args, "pacs_aet", None)
    if (pacs is None) != (pacs_aet is None):
        given, missing = ("--pacs", "--pacs-aet") if pacs else ("--pacs-aet", "--pacs")
        raise BadInput(f"invalid {given}: it needs {missing} too (the receiver preflight)")
    return pacs


def forward_config(args: argparse.Namespace, environ: Mapping[str, str]) -> ForwardConfig:
    action = ForwardAction(args.action or ForwardAction.ADD.value)
    if args.keep and (action is not ForwardAction.ADD or args.dry_run):
        raise BadInput(
            "invalid --keep: it only goes with adding a mapping (not --list, --remove or --dry-run)"
        )
    lease = args.lease
    if lease is None:
        lease = DEFAULT_KEEP_LEASE if args.keep else DEFAULT_LEASE
    mode = ForwardMode(args.mode or ForwardMode.UPNP.value)
    source = getattr(args, "source", None)
    router_part = args.mode is not None or not getattr(args, "firewall", False)
    remote_host = parse_from(source) if source is not None and router_part else None
    if remote_host is not None and mode is ForwardMode.NATPMP:
        raise BadInput(
            f"invalid --from {remote_host}: NAT-PMP and PCP MAP cannot restrict the source "
            "(RFC 6887: MAP has no remote-peer filter, only PEER has); use --upnp"
        )
    if remote_host is not None and (action is not ForwardAction.ADD):
        raise BadInput(f"invalid --from {remote_host}: it only goes with adding a mapping")
    cfg = ForwardConfig(
        mode=mode,
        port=args.port,
        external_port=args.external_port,
        lease=lease,
        description=None if args.description is None else parse_description(args.description),
        aet=args.aet,
        action=action,
        force=args.force,
        dry_run=args.dry_run,
        keep=args.keep,
        verify=args.verify,
        reflector=reflector_url(args.reflector, environ),
        ip_services=ip_service_urls(args.ip_services, environ),
        timeout=args.timeout,
        remote_host=remote_host,
    )
    return with_family(with_firewall_options(cfg, args), args)


def with_family(cfg: ForwardConfig, args: argparse.Namespace) -> ForwardConfig:
    """forward's --family (issue 15); --family 6 with --list or --from exits 2."""
    family = ForwardFamily(getattr(args, "family", None) or ForwardFamily.BOTH.value)
    if family is ForwardFamily.V6 and cfg.action is ForwardAction.LIST:
        raise BadInput("invalid --family 6: --list reads the router's IPv4 mappings")
    if family is ForwardFamily.V6 and cfg.remote_host is not None:
        raise BadInput(f"invalid --from {cfg.remote_host}: an IPv4 source for an IPv6 pinhole")
    if family is ForwardFamily.V6 and cfg.keep:
        raise BadInput("invalid --keep: it renews the IPv4 mapping; use --family 4 or both")
    return dataclasses.replace(cfg, family=family)


def with_firewall_options(cfg: ForwardConfig, args: argparse.Namespace) -> ForwardConfig:
    """forward's --firewall, --from, --permanent (issue 14); bad combinations exit 2."""
    fw = bool(getattr(args, "firewall", False))
    source = getattr(args, "source", None)
    permanent = bool(getattr(args, "permanent", False))
    if not fw:
        if permanent:
            raise BadInput("invalid --permanent: it only goes with --firewall")
        return cfg
    if cfg.action is ForwardAction.LIST:
        raise BadInput("invalid --firewall: it goes with opening or --remove, not --list")
    only = args.mode is None
    if only and args.keep:
        raise BadInput("invalid --keep: with --firewall alone there is no router mapping to keep")
    return dataclasses.replace(
        cfg,
        firewall=True,
        firewall_only=only,
        source=None if source is None else str(parse_cidr(source, what="--from CIDR")),
        permanent=permanent,
    )


def move_test_config(args: argparse.Namespace, environ: Mapping[str, str]) -> MoveTestConfig:
    """A --grace the user gave must leave time for the move; the default grace is clamped to
    the time there is instead (so `--timeout 3` alone is not an error about --grace)."""
    host, port = args.pacs
    grace = getattr(args, "grace", None)
    if grace is None:
        grace = max(0.0, min(DEFAULT_GRACE, args.timeout - MIN_MOVE_TIME_S, args.timeout / 2))
    elif grace >= args.timeout:
        raise BadInput(
            f"invalid --grace {grace:g}: must be shorter than --timeout {args.timeout:g}"
        )
    return MoveTestConfig(
        pacs_host=host,
        pacs_port=port,
        pacs_aet=args.pacs_aet,
        aet=args.aet,
        port=args.port,
        study=args.study,
        try_cget=bool(args.try_cget),
        save_dir=parse_save_dir(args.save) if getattr(args, "save", None) else None,
        grace=float(grace),
        ip_services=ip_service_urls(args.ip_services, environ),
        public_ip=not args.no_public_ip,
        strict=bool(args.strict),
        timeout=args.timeout,
        receiver=getattr(args, "receiver", None) or "auto",
        contexts=tuple(getattr(args, "contexts", None) or ()),
        recorded_contexts=_recorded(args),
        reflector=reflector_url(getattr(args, "reflector", None), environ),
        tls=_move_tls(args),
    )


def _move_tls(args: argparse.Namespace) -> TlsSettings | None:
    """move-test --tls: our own receiver is a TLS server, so it needs a certificate whose key
    loads (a bad pair is bad input here, not a failure in the middle of the move)."""
    tls = tls_settings(args)
    if tls is None or (getattr(args, "receiver", None) or "auto") == "running":
        return tls
    if not tls.cert:
        raise BadInput("invalid --tls: move-test's receiver needs --tls-cert (and --tls-key)")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(tls.cert, tls.key)
    except (OSError, ssl.SSLError) as exc:
        raise BadInput(f"invalid --tls-cert {tls.cert}: {exc}") from None
    return tls


def parse_context(value: str, *, what: str = "--context") -> tuple[str, str]:
    """'SOP_CLASS_UID=TRANSFER_SYNTAX_UID': one presentation context for the receiver
    preflight (PS3.8 9.3.2.2), both UIDs per PS3.5 9.1."""
    sop, sep, ts = value.partition("=")
    if not sep:
        raise BadInput(f"invalid {what} {value!r}: expected SOP_CLASS_UID=TRANSFER_SYNTAX_UID")
    for uid in (sop, ts):
        if len(uid.strip()) > 64 or not _UID.fullmatch(uid.strip()):
            raise BadInput(f"invalid {what} {value!r}: {uid!r} is not a UID")
    return sop.strip(), ts.strip()


MAX_RECORDED_BYTES = 8 * 1024 * 1024  # a move-test --json report; thousands of associations
VERIFICATION_UID = "1.2.840.10008.1.1"


def _recorded(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    path = getattr(args, "contexts_from", None)
    return read_recorded_contexts(path) if path else ()


def read_recorded_contexts(path: str) -> tuple[tuple[str, str], ...]:
    """The (SOP class, transfer syntax) pairs a PACS proposed on the C-STORE sub-associations
    recorded in a move-test --json report (probes.move.associations[].contexts[], PS3.8
    9.3.2.2): what the same PACS will propose again, when its C-FIND does not say."""
    import json

    from reverseprobe.userfile import read_regular_file

    what = "--contexts-from"
    raw = read_regular_file(path, MAX_RECORDED_BYTES, what=what)
    bad = f"invalid {what} {path!r}"
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadInput(f"{bad}: not JSON (expected a move-test --json report)") from None
    probes = doc.get("probes") if isinstance(doc, dict) else None
    move = probes.get("move") if isinstance(probes, dict) else None
    if not isinstance(move, dict):
        raise BadInput(f"{bad}: no probes.move (expected a move-test --json report)")
    assocs = move.get("associations")
    if not isinstance(assocs, list):
        raise BadInput(f"{bad}: probes.move.associations is not a list")
    pairs: list[tuple[str, str]] = []
    for a in assocs:
        cxs = a.get("contexts") if isinstance(a, dict) else None
        if not isinstance(cxs, list):
            raise BadInput(f"{bad}: an association without a contexts list")
        for cx in cxs:
            pairs.extend(_recorded_pairs(cx, bad))
    sent = _sent_pairs(move.get("timeline"))
    pairs = list(dict.fromkeys(sent + pairs))  # what was sent first: the preflight caps at 127
    if not pairs:
        raise BadInput(
            f"{bad}: no storage context recorded (run move-test --receiver own --json first)"
        )
    return tuple(pairs)


def _sent_pairs(timeline: object) -> list[tuple[str, str]]:
    """(SOP class, transfer syntax) of the C-STOREs the timeline recorded (a PACS such as
    dcmqrscp proposes every storage SOP class it knows; these are what it used)."""
    out: list[tuple[str, str]] = []
    for e in timeline if isinstance(timeline, list) else ():
        d = e.get("detail") if isinstance(e, dict) and e.get("event") == "c-store" else None
        sop = d.get("sop_class") if isinstance(d, dict) else None
        ts = d.get("transfer_syntax") if isinstance(d, dict) else None
        if all(isinstance(u, str) and len(u) <= 64 and _UID.fullmatch(u) for u in (sop, ts)):
            out.append((str(sop), str(ts)))
    return out


def _recorded_pairs(cx: object, bad: str) -> list[tuple[str, str]]:
    """One recorded context's pairs; Verification is not what the PACS sends images as."""
    sop = cx.get("abstract_syntax") if isinstance(cx, dict) else None
    tss = cx.get("transfer_syntaxes") if isinstance(cx, dict) else None
    if not isinstance(sop, str) or not isinstance(tss, list):
        raise BadInput(f"{bad}: a context without abstract_syntax and transfer_syntaxes")
    for uid in (sop, *tss):
        if not isinstance(uid, str) or len(uid) > 64 or not _UID.fullmatch(uid):
            raise BadInput(f"{bad}: {str(uid)[:70]!r} is not a UID")
    return [] if sop == VERIFICATION_UID else [(sop, ts) for ts in tss]


def reflector_config(args: argparse.Namespace, environ: Mapping[str, str]) -> ReflectorConfig:
    del environ
    given = tuple(dict.fromkeys(args.listen or [("127.0.0.1", 8470)]))
    host, port = given[0]
    if args.timeout > MAX_DIALBACK_TIMEOUT:
        raise BadInput(
            f"invalid --timeout {args.timeout:g}: a dial-back budget is at most "
            f"{MAX_DIALBACK_TIMEOUT:g} seconds"
        )
    return ReflectorConfig(
        host=host,
        port=port,
        trust_proxy=tuple(args.trust_proxy),
        allow_ports=tuple(args.allow_ports),
        rate_per_minute=args.rate,
        burst=args.burst,
        max_concurrent=args.max_concurrent,
        token=read_token(args.token_file) if args.token_file else None,
        connect_timeout=min(args.connect_timeout, args.timeout),
        timeout=args.timeout,
        json_log=bool(args.json),
        max_per_source=args.max_per_source,
        allow_loopback=bool(args.allow_loopback),
        listen=given if len(given) > 1 else (),
    )


def checklist_config(args: argparse.Namespace, environ: Mapping[str, str]) -> ChecklistConfig:
    """Read the site file (env fallbacks for what it leaves out) and pair each --format with
    where it goes."""
    from reverseprobe.sitefile import load_site

    site = load_site(Path(args.site))
    if site.reflector is None:
        site = dataclasses.replace(site, reflector=reflector_url(None, environ))
    if site.ip_services is None:
        site = dataclasses.replace(site, ip_services=ip_service_urls(None, environ))
    formats, outputs, out_dir = plan_outputs(
        args.formats or [], args.outputs or [], args.output_dir, json_out=args.json
    )
    return ChecklistConfig(
        site_file=Path(args.site),
        formats=formats,
        outputs=outputs,
        output_dir=out_dir,
        strict=args.strict,
        timeout=args.timeout,
        site=site,
        json_out=bool(args.json),
    )


def plan_outputs(
    formats: list[str] | tuple[str, ...],
    outputs: list[str] | tuple[str, ...],
    output_dir: str | None,
    *,
    json_out: bool,
) -> tuple[tuple[ReportFormat, ...], tuple[Path, ...], Path | None]:
    """--format F (repeatable) with --output FILE per format ('-' = stdout), or --output-dir
    (every format, or those given, as report.*). Nothing else: the formats go to stdout."""
    choices = [f.value for f in ReportFormat.__members__.values()]
    for f in formats:
        if f not in choices:
            raise BadInput(f"invalid --format {f!r}: choose from {', '.join(choices)}")
    fmts = [ReportFormat(f) for f in formats]
    if len(set(fmts)) != len(fmts):
        raise BadInput(f"--format given twice for the same format: {', '.join(formats)}")
    if outputs:
        if output_dir is not None:
            raise BadInput("give either --output FILE (per --format) or --output-dir, not both")
        if len(outputs) != len(fmts):
            raise BadInput(
                f"{len(outputs)} --output for {len(fmts)} --format: give one --output per "
                "--format, in the same order"
            )
        paths = tuple(Path(o) for o in outputs)
        if sum(1 for p in paths if str(p) == "-") > 1:
            raise BadInput("only one --output may be '-' (stdout)")
    elif output_dir is not None:
        d = Path(output_dir)
        if d.exists() and not d.is_dir():
            raise BadInput(f"invalid --output-dir {output_dir!r}: not a directory")
        fmts = fmts or [*ReportFormat.__members__.values()]
        return tuple(fmts), tuple(d / FILE_NAMES[f] for f in fmts), d
    else:
        fmts = fmts or [ReportFormat.JSON if json_out else ReportFormat.TEXT]
        if len(fmts) > 1:
            raise BadInput(
                "several --format need --output FILE for each, or --output-dir DIR "
                "(only one report can go to stdout)"
            )
        paths = (Path("-"),)
    to_stdout = [f for f, p in zip(fmts, paths, strict=True) if str(p) == "-"]
    if json_out and to_stdout and to_stdout != [ReportFormat.JSON]:
        raise BadInput(f"--json prints JSON on stdout: write --format {to_stdout[0]} to a file")
    return tuple(fmts), paths, None


def read_token(path: str) -> str:
    """The bearer token (RFC 6750 2.1 b64token) from a file, surrounding whitespace ignored."""
    from reverseprobe.userfile import read_regular_file

    try:  # a regular file of bounded size: not a FIFO (blocks), not /dev/zero (endless)
        raw = read_regular_file(path, MAX_TOKEN_BYTES + 1, what="--token-file", truncate=True)
    except BadInput as exc:
        raise BadInput(f"invalid --token-file {path!r}: {str(exc).rsplit(': ', 1)[-1]}") from None
    try:
        token = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise BadInput(f"invalid --token-file {path!r}: the token must be ASCII") from None
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=")
    if not token or len(token) > MAX_TOKEN_BYTES or not set(token) <= allowed:
        raise BadInput(
            f"invalid --token-file {path!r}: one token of letters, digits and -._~+/= "
            f"(1-{MAX_TOKEN_BYTES} characters) expected"
        )
    return token
