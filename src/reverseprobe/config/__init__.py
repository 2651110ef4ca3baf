"""Every command's frozen Config, the constants and option words they use, and BadInput: the
types the rest of the package reads (docs/reference.md "Inputs").

How a Config is built from argparse and the environment lives in the submodules, one per
command (check, forward, move, reflector, checklist, watch; build.build_config picks one);
the validators in validate. This module imports none of them, so code that only reads a
Config (diagnosis, probes) loads no builder. Validators raise BadInput with one line that
names the bad value; the CLI turns it into exit 2.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reverseprobe.model.tls import TlsSettings

if TYPE_CHECKING:
    from reverseprobe.sitefile import Site


DEFAULT_PORT = 11112
DEFAULT_CHECK_TIMEOUT = 8.0
DEFAULT_ALLOW_PORTS = "104,11112,1024-65535"
# DEFAULT_ALLOW_PORTS parsed (validate.parse_port_ranges; tests/test_config.py keeps them equal)
DEFAULT_ALLOW_RANGES = ((104, 104), (11112, 11112), (1024, 65535))
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
DEFAULT_WATCH_INTERVAL = 300.0  # watch: between rounds


ENV_SYSROOT = "REVERSEPROBE_SYSROOT"
VIRTUAL_ENV_MARKERS = ("KUBERNETES_SERVICE_HOST",)


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


class BadInput(ValueError):
    """A bad value given by the user; str() is the one line shown before exit 2."""


@dataclass(frozen=True)
class PacsEntryGiven:
    """The entry a PACS administrator already made for this SCU: AE title -> host:port."""

    aet: str
    host: str
    port: int


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
    allow_ports: tuple[tuple[int, int], ...] = DEFAULT_ALLOW_RANGES
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


FILE_NAMES = {
    ReportFormat.TEXT: "report.txt",
    ReportFormat.JSON: "report.json",
    ReportFormat.JUNIT: "report.xml",
    ReportFormat.HTML: "report.html",
}


Config = (
    CheckConfig | ForwardConfig | MoveTestConfig | ReflectorConfig | ChecklistConfig | WatchConfig
)
