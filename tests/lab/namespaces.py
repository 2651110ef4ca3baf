"""Network namespaces: `Namespace` (run, start, wait for a port), `Lab` (a set of them, all
removed at close), each with a private /etc, and the reaping of what a crashed run left."""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .host import NETNS_PREFIX, POLL, LabCommandError, LabError, child_env, host_run
from .markers import lab_available
from .procs import LabProcess

_STALE = re.compile(rf"^{NETNS_PREFIX}(\d+)-[0-9a-f]{{4}}-")
_KEPT = "KEPT"  # marks a temp dir kept on purpose (RP_LAB_KEEP=1), so no later run reaps it


def netns_names() -> list[str]:
    """Every network namespace name on this machine (`ip netns list`)."""
    out = host_run(["ip", "netns", "list"], check=False).stdout
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
    out = host_run(["ip", "netns", "pids", name], check=False).stdout
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
            host_run(["ip", "netns", "del", name], check=False)
            reaped.append(name)
    for path in _NETNS_ETC.glob(f"{NETNS_PREFIX}*"):
        if _stale(path.name):
            shutil.rmtree(path, ignore_errors=True)
    for path in Path(tempfile.gettempdir()).glob(f"{NETNS_PREFIX}*-lab-*"):
        if _stale(path.name) and not (path / _KEPT).exists():
            shutil.rmtree(path, ignore_errors=True)
            reaped.append(str(path))
    return reaped


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
            env=child_env(env),
        )
        if check and res.returncode != 0:
            raise LabCommandError(res.returncode, full, res.stdout, res.stderr)
        return res

    def python(self, args: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        """`sys.executable args...` in the namespace, with <repo>/src on PYTHONPATH."""
        kw["env"] = child_env(kw.get("env"), python=True)
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
        return self.lab._popen(self, argv, log=log, env=child_env(env), cwd=cwd, name=name)

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
            env=child_env(env, python=True),
            cwd=cwd,
            name=name or "python",
        )

    def ip(self, args: str | Sequence[str]) -> str:
        """`ip -n NAME args` (a string is split on whitespace); returns stdout."""
        argv = args.split() if isinstance(args, str) else list(args)
        return host_run(["ip", "-n", self.name, *argv]).stdout

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
            out = host_run(["ss", "-N", self.name, "-H", flags], check=False).stdout
            if _listening(out, port, addr):
                return
            if proc is not None and proc.returncode is not None:
                raise proc.died(f"{what} port {port} in {self.name}")
            if time.monotonic() > deadline:
                where = f"{addr}:{port}" if addr else f"port {port}"
                raise TimeoutError(
                    f"nothing {what} {where} in namespace {self.name} after {timeout}s; "
                    f"`ss {flags}` shows:\n{out or '(nothing)'}"
                )
            time.sleep(POLL)

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
        host_run(["ip", "netns", "add", ns.name])
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
        host_run(veth.split())
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
                host_run(["ip", "netns", "del", ns.name], check=False)
            shutil.rmtree(_NETNS_ETC / ns.name, ignore_errors=True)
        if os.environ.get("RP_LAB_KEEP") == "1":
            with contextlib.suppress(OSError):
                (self.tmp / _KEPT).touch()
            print(f"RP_LAB_KEEP=1: lab files kept in {self.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)
