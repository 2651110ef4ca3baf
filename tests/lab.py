"""A real network lab built from Linux network namespaces, for integration tests.

See /work/shared/LAB.md for why. Typical use::

    from lab import Lab, home_net, http_get, requires_lab, start_ip_service

    @requires_lab
    def test_nat():
        with Lab() as lab:
            net = home_net(lab)
            url = start_ip_service(net.inet, 8080)
            assert http_get(net.pc, url) == net.public_ip

Everything a `Lab` makes (namespaces, processes, the temp dir) is removed by `Lab.close()`, also
when the test fails. Namespace names carry the creating PID (`rpl<pid>-<token>-<short>`), so
parallel runs never collide and a later `Lab()` deletes what a crashed run left behind.
Nothing here routes a namespace to the host's interfaces: traffic stays inside the lab.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
NETNS_PREFIX = "rpl"
_STALE = re.compile(rf"^{NETNS_PREFIX}(\d+)-[0-9a-f]{{4}}-")
_POLL = 0.02  # seconds between readiness polls
_KEPT = "KEPT"  # marks a temp dir kept on purpose (RP_LAB_KEEP=1), so no later run reaps it
_F = TypeVar("_F", bound=Callable[..., Any])


class LabError(RuntimeError):
    """The lab could not be built or a lab process misbehaved."""


class LabCommandError(subprocess.CalledProcessError):
    """A command in a namespace failed; unlike CalledProcessError, str() shows its output."""

    def __str__(self) -> str:
        return (
            f"{super().__str__()}\n--- stdout ---\n{_tail(self.stdout)}\n"
            f"--- stderr ---\n{_tail(self.stderr)}"
        )


def _tail(text: str | bytes | None, lines: int = 40) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return "\n".join((text or "").splitlines()[-lines:])


def _host_run(argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command in the host's namespace (only `ip netns` bookkeeping uses this)."""
    res = subprocess.run(
        list(argv),
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    if check and res.returncode != 0:
        raise LabCommandError(res.returncode, list(argv), res.stdout, res.stderr)
    return res


def _env(extra: Mapping[str, str] | None, *, python: bool = False) -> dict[str, str]:
    """os.environ plus `extra`; with `python`, <repo>/src first on PYTHONPATH."""
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    if python:
        paths = [str(SRC), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.update(extra or {})
    return env


@functools.cache
def lab_available() -> str | None:
    """None when namespaces can be built here, else why not (for skip reasons)."""
    if not sys.platform.startswith("linux"):
        return f"network namespaces need Linux, this is {sys.platform}"
    if os.geteuid() != 0:
        return "the network lab needs root (ip netns, nftables)"
    for tool in ("ip", "nft", "ss"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    probe = f"{NETNS_PREFIX}{os.getpid()}-{secrets.token_hex(2)}-probe"
    try:
        _host_run(["ip", "netns", "add", probe])
    except (OSError, subprocess.SubprocessError) as exc:
        return f"cannot create a network namespace: {exc}"
    try:
        _host_run(["ip", "netns", "exec", probe, "nft", "list", "ruleset"])
    except (OSError, subprocess.SubprocessError) as exc:
        return f"nftables does not work in a network namespace: {exc}"
    finally:
        _host_run(["ip", "netns", "del", probe], check=False)
    return None


def missing_tools(*names: str) -> list[str]:
    """The names among `names` that are not on PATH."""
    return [n for n in names if shutil.which(n) is None]


try:
    import pytest
except ImportError:  # lab.py is usable as a plain library too
    pytest = None  # type: ignore[assignment]


class Marker(Protocol):
    """A pytest mark used as a decorator (typed so decorated tests stay typed)."""

    def __call__(self, func: _F, /) -> _F: ...


def _identity(func: _F) -> _F:
    return func


def _skip_unless(reason: str | None) -> Marker:
    if pytest is None:
        return _identity
    return cast(Marker, pytest.mark.skipif(reason is not None, reason=reason or ""))


requires_lab = _skip_unless(
    None if lab_available() is None else f"network lab unavailable: {lab_available()}"
)


def requires_tools(*names: str) -> Marker:
    """A skip marker for tests that need these programs (e.g. "miniupnpd", "upnpc")."""
    missing = missing_tools(*names)
    return _skip_unless(f"not installed: {', '.join(missing)}" if missing else None)


def netns_names() -> list[str]:
    """Every network namespace name on this machine (`ip netns list`)."""
    out = _host_run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_netns_pids(name: str) -> None:
    """SIGKILL what still runs in a lab namespace (only lab code starts processes there)."""
    out = _host_run(["ip", "netns", "pids", name], check=False).stdout
    for pid in out.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def _stale(name: str) -> bool:
    m = _STALE.match(name)
    return m is not None and not _pid_alive(int(m.group(1)))


_NETNS_ETC = Path("/etc/netns")


def _private_etc(name: str) -> None:
    """`ip netns exec` bind-mounts /etc/netns/<name>/* over /etc: give each lab namespace a
    resolver that fails at once (nothing answers on its own loopback) and a minimal hosts
    file, so reverse look-ups by dcmtk or Orthanc never wait on the host's DNS server, which
    the lab cannot reach."""
    d = _NETNS_ETC / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    (d / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")


def reap_stale_labs() -> list[str]:
    """Delete what a crashed run left: namespaces (and what runs in them) and temp dirs
    whose creating process is gone. Dirs kept with RP_LAB_KEEP=1 stay. Returns the names.
    """
    reaped = []
    for name in netns_names():
        if _stale(name):
            _kill_netns_pids(name)
            _host_run(["ip", "netns", "del", name], check=False)
            reaped.append(name)
    for path in _NETNS_ETC.glob(f"{NETNS_PREFIX}*"):
        if _stale(path.name):
            shutil.rmtree(path, ignore_errors=True)
    for path in Path(tempfile.gettempdir()).glob(f"{NETNS_PREFIX}*-lab-*"):
        if _stale(path.name) and not (path / _KEPT).exists():
            shutil.rmtree(path, ignore_errors=True)
            reaped.append(str(path))
    return reaped


class LabProcess:
    """A process started in a namespace, in its own process group, logging to a file."""

    def __init__(self, proc: subprocess.Popen[bytes], log_path: Path, argv: Sequence[str]):
        self.proc = proc
        self.log_path = log_path
        self.argv = list(argv)

    def __repr__(self) -> str:
        return f"<LabProcess pid={self.proc.pid} {' '.join(self.argv)!r}>"

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        """None while running."""
        return self.proc.poll()

    def log(self) -> str:
        """Everything the process wrote so far (stdout and stderr)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def _died(self, waiting_for: str) -> LabError:
        return LabError(
            f"{self!r} exited with {self.proc.returncode} while waiting for {waiting_for}; "
            f"log {self.log_path}:\n{_tail(self.log())}"
        )

    def wait_log(self, pattern: str, timeout: float = 10) -> re.Match[str]:
        """First match of regex `pattern` (MULTILINE) in the log.

        Raises TimeoutError (with the log tail) after `timeout`, LabError at once if the
        process exits without having logged it.
        """
        rx = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            exited = self.proc.poll() is not None
            m = rx.search(self.log())
            if m:
                return m
            if exited:
                raise self._died(f"log pattern {pattern!r}")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self!r}: no log line matching {pattern!r} within {timeout}s; "
                    f"log {self.log_path}:\n{_tail(self.log())}"
                )
            time.sleep(_POLL)

    def signal(self, sig: int) -> None:
        """Send `sig` to the whole process group."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 5) -> None:
        """SIGTERM the process group, SIGKILL it after `timeout`; reaps the leader."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        # The leader may be gone while other members of its group still run.
        self.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout)


def _listening(ss_output: str, port: int, addr: str | None) -> bool:
    """Whether `ss -Hn` output has a socket bound to `port` (and to `addr` or a wildcard)."""
    for line in ss_output.splitlines():
        cols = line.split()
        if len(cols) < 4:
            continue
        host, _, lport = cols[3].rpartition(":")
        if lport != str(port):
            continue
        host = host.split("%")[0].strip("[]")
        if addr is None or host in (addr, "*", "0.0.0.0", "::", f"::ffff:{addr}"):
            return True
    return False


class Namespace:
    """One network namespace of a `Lab`."""

    def __init__(self, lab: Lab, name: str, short: str):
        self.lab = lab
        self.name = name
        self.short = short

    def __repr__(self) -> str:
        return f"<Namespace {self.name}>"

    def _argv(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = 30,
        input: str | None = None,  # mirrors subprocess.run
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run argv in the namespace, capture text output; `env` is added to os.environ.

        Raises LabCommandError (a CalledProcessError) when `check` and it fails,
        subprocess.TimeoutExpired after `timeout` (the child is killed).
        """
        full = self._argv(argv)
        res = subprocess.run(
            full,
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            env=_env(env),
        )
        if check and res.returncode != 0:
            raise LabCommandError(res.returncode, full, res.stdout, res.stderr)
        return res

    def python(self, args: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        """`sys.executable args...` in the namespace, with <repo>/src on PYTHONPATH."""
        kw["env"] = _env(kw.get("env"), python=True)
        return self.run([sys.executable, *args], **kw)

    def popen(
        self,
        argv: Sequence[str],
        *,
        log: bool = True,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        name: str | None = None,
    ) -> LabProcess:
        """Start argv in the namespace in its own process group; killed at Lab.close().

        stdout and stderr go to `lab.tmp/<ns>-<name>-<n>.log` (to /dev/null without `log`);
        `cwd` defaults to lab.tmp; `env` is added to os.environ.
        """
        return self.lab._popen(self, argv, log=log, env=_env(env), cwd=cwd, name=name)

    def python_popen(
        self,
        args: Sequence[str],
        *,
        log: bool = True,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        name: str | None = None,
    ) -> LabProcess:
        """`popen` of `sys.executable args...`, with <repo>/src on PYTHONPATH."""
        return self.lab._popen(
            self,
            [sys.executable, *args],
            log=log,
            env=_env(env, python=True),
            cwd=cwd,
            name=name or "python",
        )

    def ip(self, args: str | Sequence[str]) -> str:
        """`ip -n NAME args` (a string is split on whitespace); returns stdout."""
        argv = args.split() if isinstance(args, str) else list(args)
        return _host_run(["ip", "-n", self.name, *argv]).stdout

    def sysctl(self, key: str, value: str | int) -> None:
        self.run(["sysctl", "-qw", f"{key}={value}"])

    def nft(self, ruleset: str) -> None:
        """Load an nftables ruleset text (`nft -f -`) in the namespace."""
        self.run(["nft", "-f", "-"], input=ruleset)

    def addresses(self) -> list[str]:
        """Global IPv4 addresses of the namespace, without prefix length."""
        out = self.ip("-4 -o addr show scope global")
        return [cols[3].split("/")[0] for cols in map(str.split, out.splitlines())]

    def _wait_ss(
        self,
        flags: str,
        what: str,
        port: int,
        timeout: float,
        addr: str | None,
        proc: LabProcess | None,
    ) -> None:
        deadline = time.monotonic() + timeout
        while True:
            out = _host_run(["ss", "-N", self.name, "-H", flags], check=False).stdout
            if _listening(out, port, addr):
                return
            if proc is not None and proc.returncode is not None:
                raise proc._died(f"{what} port {port} in {self.name}")
            if time.monotonic() > deadline:
                where = f"{addr}:{port}" if addr else f"port {port}"
                raise TimeoutError(
                    f"nothing {what} {where} in namespace {self.name} after {timeout}s; "
                    f"`ss {flags}` shows:\n{out or '(nothing)'}"
                )
            time.sleep(_POLL)

    def wait_tcp_listen(
        self,
        port: int,
        timeout: float = 10,
        addr: str | None = None,
        *,
        proc: LabProcess | None = None,
    ) -> None:
        """Poll `ss -Hltn` until a TCP socket listens on port (on addr or a wildcard).

        With `proc`, fail fast (LabError) when that process exits meanwhile.
        """
        self._wait_ss("-ltn", "listening on TCP", port, timeout, addr, proc)

    def wait_udp_bound(
        self,
        port: int,
        timeout: float = 10,
        addr: str | None = None,
        *,
        proc: LabProcess | None = None,
    ) -> None:
        """Poll `ss -Hlun` until a UDP socket is bound to port (on addr or a wildcard)."""
        self._wait_ss("-lun", "bound to UDP", port, timeout, addr, proc)


class Lab:
    """A set of namespaces and processes, all removed by `close()` (or leaving a `with`)."""

    def __init__(self) -> None:
        reason = lab_available()
        if reason is not None:
            raise LabError(reason)
        reap_stale_labs()
        self.prefix = f"{NETNS_PREFIX}{os.getpid()}-{secrets.token_hex(2)}-"
        self.tmp = Path(tempfile.mkdtemp(prefix=f"{self.prefix}lab-"))
        self.namespaces: dict[str, Namespace] = {}
        self.processes: list[LabProcess] = []
        self._counter = 0
        self._closed = False
        atexit.register(self.close)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Lab {self.prefix} tmp={self.tmp}>"

    def ns(self, short: str, *, ip_forward: bool = False) -> Namespace:
        """Create namespace `<prefix><short>` with lo up and ip_forward set as asked."""
        if short in self.namespaces:
            raise LabError(f"namespace {short!r} already exists in {self!r}")
        ns = Namespace(self, self.prefix + short, short)
        _private_etc(ns.name)
        _host_run(["ip", "netns", "add", ns.name])
        self.namespaces[short] = ns  # registered first, so close() deletes it whatever happens
        ns.ip("link set lo up")
        ns.sysctl("net.ipv4.ip_forward", int(ip_forward))
        return ns

    def veth(
        self,
        a: Namespace,
        a_if: str,
        a_addr: str | None,
        b: Namespace,
        b_if: str,
        b_addr: str | None,
    ) -> None:
        """A veth pair made directly inside a and b; CIDR addresses (or None); links up."""
        veth = f"ip link add {a_if} netns {a.name} type veth peer name {b_if} netns {b.name}"
        _host_run(veth.split())
        for ns, ifname, addr in ((a, a_if, a_addr), (b, b_if, b_addr)):
            if addr is not None:
                ns.ip(["addr", "add", addr, "dev", ifname])
            ns.ip(["link", "set", ifname, "up"])

    def _popen(
        self,
        ns: Namespace,
        argv: Sequence[str],
        *,
        log: bool,
        env: dict[str, str],
        cwd: str | Path | None,
        name: str | None,
    ) -> LabProcess:
        if self._closed:
            raise LabError(f"{self!r} is closed")
        self._counter += 1
        label = re.sub(r"[^\w.-]", "_", name or Path(argv[0]).name)
        log_path = self.tmp / f"{ns.short}-{label}-{self._counter}.log" if log else Path(os.devnull)
        with open(log_path, "ab") as out:  # the child keeps its own descriptor
            proc = subprocess.Popen(
                ns._argv(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd if cwd is not None else self.tmp,
                start_new_session=True,
            )
        lp = LabProcess(proc, log_path, argv)
        self.processes.append(lp)
        return lp

    def close(self) -> None:
        """Stop every process, delete every namespace, remove tmp (kept with RP_LAB_KEEP=1).

        Idempotent; never raises.
        """
        if self._closed:
            return
        self._closed = True
        for lp in reversed(self.processes):
            with contextlib.suppress(Exception):
                lp.stop(timeout=3)
        for ns in reversed(list(self.namespaces.values())):
            with contextlib.suppress(Exception):
                _kill_netns_pids(ns.name)  # anything that escaped its process group
            with contextlib.suppress(Exception):
                _host_run(["ip", "netns", "del", ns.name], check=False)
            shutil.rmtree(_NETNS_ETC / ns.name, ignore_errors=True)
        if os.environ.get("RP_LAB_KEEP") == "1":
            with contextlib.suppress(OSError):
                (self.tmp / _KEPT).touch()
            print(f"RP_LAB_KEEP=1: lab files kept in {self.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)


# --- the home network of LAB.md ------------------------------------------------------------

_ROUTER_NFT = """\
table inet filter {{
  chain forward {{
    type filter hook forward priority 0; policy accept;
    jump miniupnpd
  }}
  chain miniupnpd {{
  }}
}}
table inet nat {{
  chain prerouting {{
    type nat hook prerouting priority -100; policy accept;
    jump prerouting_miniupnpd
  }}
  chain postrouting {{
    type nat hook postrouting priority 100; policy accept;
    jump postrouting_miniupnpd
    oifname "{wan}" masquerade
  }}
  chain prerouting_miniupnpd {{
  }}
  chain postrouting_miniupnpd {{
  }}
}}
"""

_ROUTER_FLUSH = """\
flush chain inet filter miniupnpd
flush chain inet nat prerouting_miniupnpd
flush chain inet nat postrouting_miniupnpd
"""

_CARRIER_NFT = """\
table ip nat {{
  chain postrouting {{
    type nat hook postrouting priority 100; policy accept;
    oifname "{wan}" masquerade
  }}
}}
"""

_ISP_NFT = """\
table inet isp {{
  chain forward {{
    type filter hook forward priority 0; policy accept;
    iifname "{upstream}" tcp dport < {below} drop
  }}
}}
"""


@dataclass(kw_only=True)
class HomeNet:
    """pc -- router (NAT, miniupnpd) [-- carrier NAT] [-- isp filter] -- inet."""

    lab: Lab
    pc: Namespace
    router: Namespace
    inet: Namespace
    pc2: Namespace | None = None
    isp: Namespace | None = None
    carrier: Namespace | None = None
    pc_ip: str = "192.168.2.2"
    pc2_ip: str = "192.168.2.3"
    router_lan_ip: str = "192.168.2.1"
    lan_cidr: str = "192.168.2.0/24"
    router_lan_if: str = "lan0"  # "br0" with a second PC
    router_wan_if: str = "wan0"
    router_wan_ip: str = "100.128.0.2"
    inet_ip: str = "100.128.0.1"
    public_ip: str = "100.128.0.2"
    miniupnpd: LabProcess | None = None
    igd_url: str | None = None  # rootDesc.xml URL while miniupnpd runs with UPnP
    miniupnpd_conf: Path | None = None

    def start_miniupnpd(
        self,
        *,
        upnp: bool = True,
        natpmp: bool = True,
        allow_ports: Iterable[str] = ("1024-65535",),
        extra_config: Iterable[str] = (),
        keep_mappings: bool = False,
        timeout: float = 10,
    ) -> LabProcess:
        """(Re)start miniupnpd in the router (foreground, -d) and wait until it serves.

        `allow_ports`: one `allow P <lan> P` line each (e.g. "104"), then deny everything else.
        With `keep_mappings`, a running daemon's mappings survive the restart.
        """
        self.stop_miniupnpd(clear=not keep_mappings)
        tmp = self.lab.tmp
        lines = [
            f"ext_ifname={self.router_wan_if}",
            f"listening_ip={self.router_lan_if}",
            f"enable_upnp={'yes' if upnp else 'no'}",
            f"enable_natpmp={'yes' if natpmp else 'no'}",
            "secure_mode=yes",
            "system_uptime=no",
            f"uuid={uuid.uuid4()}",
            "upnp_table_name=filter",
            "upnp_nat_table_name=nat",
            "upnp_forward_chain=miniupnpd",
            "upnp_nat_chain=prerouting_miniupnpd",
            "upnp_nat_postrouting_chain=postrouting_miniupnpd",
            f"lease_file={tmp / 'miniupnpd.leases'}",
            *extra_config,
            *(f"allow {p} {self.lan_cidr} {p}" for p in allow_ports),
            "deny 0-65535 0.0.0.0/0 0-65535",
        ]
        conf = tmp / "miniupnpd.conf"
        conf.write_text("\n".join(lines) + "\n")
        self.miniupnpd_conf = conf
        proc = self.router.popen(
            ["miniupnpd", "-d", "-f", str(conf), "-P", str(tmp / "miniupnpd.pid")]
        )
        self.miniupnpd = proc
        if upnp:
            m = proc.wait_log(r"HTTP listening on port (\d+)", timeout)
            self.igd_url = f"http://{self.router_lan_ip}:{m.group(1)}/rootDesc.xml"
            self.router.wait_udp_bound(1900, timeout, proc=proc)
        if natpmp:
            self.router.wait_udp_bound(5351, timeout, self.router_lan_ip, proc=proc)
        return proc

    def stop_miniupnpd(self, *, clear: bool = True) -> None:
        """Stop miniupnpd; with `clear`, also drop its mappings (rules and lease file).

        miniupnpd leaves its nftables rules in place when it stops and reloads the lease
        file when it starts: `clear=False` keeps both, as after a daemon crash.
        """
        if self.miniupnpd is not None:
            self.miniupnpd.stop()
        self.miniupnpd = None
        self.igd_url = None
        if clear and self.miniupnpd_conf is not None:
            self.router.nft(_ROUTER_FLUSH)
            (self.lab.tmp / "miniupnpd.leases").unlink(missing_ok=True)

    def upnpc(
        self, args: Sequence[str], *, ns: Namespace | None = None, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """`upnpc` in pc (or `ns`), pointed at the router's rootDesc (no 2 s SSDP discovery)."""
        if self.igd_url is None:
            raise LabError("miniupnpd does not run with UPnP in this HomeNet")
        return (ns or self.pc).run(["upnpc", "-u", self.igd_url, *args], check=check)


def home_net(
    lab: Lab,
    *,
    upnp: bool = True,
    natpmp: bool = True,
    second_pc: bool = False,
    isp_block_below: int | None = None,
    cgnat: bool = False,
    allow_ports: Iterable[str] = ("1024-65535",),
) -> HomeNet:
    """Build LAB.md's home network in `lab`; starts miniupnpd when `upnp` or `natpmp`.

    Addresses: LAN 192.168.2.0/24 (router .1, pc .2, pc2 .3). The router's WAN is
    100.128.0.2/24 facing 100.128.0.1, a non-reserved address so miniupnpd reports Connected.
    With `cgnat` the router's WAN is 100.64.0.2/24 (RFC 6598) behind a carrier NAT whose WAN
    is 100.128.0.2. With `isp_block_below` an "isp" hop (100.128.0.1 | 100.129.0.1) drops
    inbound TCP (coming from inet) to ports below N; inet is then 100.129.0.2. Outbound
    traffic to low ports (pc -> inet:104) is not blocked.
    """
    pc = lab.ns("pc")
    router = lab.ns("router", ip_forward=True)
    pc2 = lab.ns("pc2") if second_pc else None
    carrier = lab.ns("carrier", ip_forward=True) if cgnat else None
    isp = lab.ns("isp", ip_forward=True) if isp_block_below is not None else None
    inet = lab.ns("inet")
    net = HomeNet(lab=lab, pc=pc, router=router, inet=inet, pc2=pc2, isp=isp, carrier=carrier)

    # LAN side.
    lan_ip = f"{net.router_lan_ip}/24"
    if pc2 is None:
        lab.veth(pc, "eth0", f"{net.pc_ip}/24", router, "lan0", lan_ip)
    else:
        net.router_lan_if = "br0"
        router.ip("link add br0 type bridge stp_state 0 mcast_snooping 0")
        router.ip(["addr", "add", lan_ip, "dev", "br0"])
        for host, ip, port_if in ((pc, net.pc_ip, "lan0"), (pc2, net.pc2_ip, "lan1")):
            lab.veth(host, "eth0", f"{ip}/24", router, port_if, None)
            router.ip(["link", "set", port_if, "master", "br0"])
        router.ip("link set br0 up")
    for host in filter(None, (pc, pc2)):
        host.ip(["route", "add", "default", "via", net.router_lan_ip])
        host.ip("route add 239.0.0.0/8 dev eth0")
    router.ip(["route", "add", "239.0.0.0/8", "dev", net.router_lan_if])

    # WAN side: router [-- carrier] [-- isp] -- inet.
    if carrier is not None:
        net.router_wan_ip = "100.64.0.2"
        lab.veth(router, "wan0", "100.64.0.2/24", carrier, "lan0", "100.64.0.1/24")
        router.ip("route add default via 100.64.0.1")
        nat_ns = carrier
    else:
        nat_ns = router
    net.public_ip = "100.128.0.2"
    upstream = isp or inet
    up_if = "cust0" if isp is not None else "eth0"
    lab.veth(nat_ns, "wan0", "100.128.0.2/24", upstream, up_if, "100.128.0.1/24")
    nat_ns.ip("route add default via 100.128.0.1")
    if isp is not None:
        lab.veth(isp, "up0", "100.129.0.1/24", inet, "eth0", "100.129.0.2/24")
        inet.ip("route add 100.128.0.0/24 via 100.129.0.1")
        isp.nft(_ISP_NFT.format(upstream="up0", below=isp_block_below))
        net.inet_ip = "100.129.0.2"
    else:
        net.inet_ip = "100.128.0.1"

    router.nft(_ROUTER_NFT.format(wan=net.router_wan_if))
    if carrier is not None:
        carrier.nft(_CARRIER_NFT.format(wan="wan0"))
    if upnp or natpmp:
        net.start_miniupnpd(upnp=upnp, natpmp=natpmp, allow_ports=allow_ports)
    return net


# --- small servers for the "internet" ------------------------------------------------------

_IP_SERVICE = """\
import http.server, json, sys

port, answer, key = int(sys.argv[1]), sys.argv[2] or None, sys.argv[3] or None

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ip = answer or self.client_address[0]
        body = (json.dumps({key: ip}) if key else ip).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json" if key else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
"""

_BLACKHOLE = """\
import socket, sys

srv = socket.create_server(("0.0.0.0", int(sys.argv[1])), backlog=64)
held = []
while True:  # accept and hold every connection, never send a byte
    held.append(srv.accept()[0])
"""


def _script(lab: Lab, name: str, text: str) -> Path:
    path = lab.tmp / name
    if not path.exists():
        path.write_text(text)
    return path


def start_ip_service(
    ns: Namespace,
    port: int,
    *,
    answer: str | None = None,
    json_key: str | None = None,
    host: str | None = None,
) -> str:
    """A public-IP HTTP service in `ns`: GET answers the client's address (or `answer`),
    as text or as {json_key: ip}. Returns its URL on `host` (default: the ns's first address).
    """
    script = _script(ns.lab, "ip_service.py", _IP_SERVICE)
    proc = ns.popen(
        [sys.executable, str(script), str(port), answer or "", json_key or ""],
        name=f"ip_service{port}",
    )
    ns.wait_tcp_listen(port, proc=proc)
    return f"http://{host or ns.addresses()[0]}:{port}/"


def start_blackhole(ns: Namespace, port: int) -> LabProcess:
    """A TCP listener in `ns` that accepts connections and never answers."""
    script = _script(ns.lab, "blackhole.py", _BLACKHOLE)
    proc = ns.popen([sys.executable, str(script), str(port)], name=f"blackhole{port}")
    ns.wait_tcp_listen(port, proc=proc)
    return proc


_TCP_CONNECT = """\
import socket, sys

host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
try:
    socket.create_connection((host, port), timeout=timeout).close()
    print("open")
except TimeoutError:
    print("timeout")
except ConnectionRefusedError:
    print("refused")
except OSError as exc:
    print(f"error: {exc}")
"""

_HTTP_GET = """\
import sys, urllib.request

with urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])) as resp:
    sys.stdout.write(resp.read().decode())
"""


def tcp_connect(ns: Namespace, host: str, port: int, timeout: float = 1.0) -> str:
    """Connect from `ns`: "open", "refused" (RST), "timeout" (dropped) or "error: ...".

    Inbound to a forwarded port, "refused" means no mapping and "timeout" a dropping firewall.
    """
    args = ["-c", _TCP_CONNECT, host, str(port), str(timeout)]
    return ns.run([sys.executable, *args], timeout=timeout + 10).stdout.strip()


def http_get(ns: Namespace, url: str, timeout: float = 5.0) -> str:
    """GET `url` from `ns` and return the body (LabCommandError on failure)."""
    return ns.run([sys.executable, "-c", _HTTP_GET, url, str(timeout)], timeout=timeout + 10).stdout
