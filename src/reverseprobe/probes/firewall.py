"""What the local firewall does with a new inbound TCP connection to the port: read, never guessed.

Linux: `nft -j list ruleset`, `iptables-save` and `ip6tables-save` (and their `-legacy-`
twins), `ufw status verbose` (and IPV6= of /etc/default/ufw), `firewall-cmd --list-all-zones`,
each family read on its own (issue 15: IPv6 has no NAT, its filters are the whole way in).
Windows: `netsh advfirewall`; macOS: the application
firewall (`socketfilterfw`). Each tool that exists is run concurrently with a timeout from the
deadline; every packet filter must let the connection pass, so the worst reading decides. A
tool that cannot be read (missing rights, unknown output) is named in `unread` and the reason,
and claims nothing.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from reverseprobe.concurrent import gather
from reverseprobe.config import CheckConfig
from reverseprobe.model import Status
from reverseprobe.model.firewall import FamilyVerdict
from reverseprobe.model.firewall import FirewallResult as FirewallResult
from reverseprobe.probes.fwparse import iptables, nft
from reverseprobe.probes.fwparse.model import Inbound, ParseError, Reading, Verdict, worst
from reverseprobe.runner import Deadline, Probe

COMMAND_BUDGET_S = 3.0
MAX_OUTPUT = 16 * 1024 * 1024
SOCKETFILTERFW = "/usr/libexec/ApplicationFirewall/socketfilterfw"
UFW_DEFAULT = Path("/etc/default/ufw")  # IPV6=yes: ufw mirrors its rules to IPv6
FIREWALLD_SERVICE_DIRS = (Path("/etc/firewalld/services"), Path("/usr/lib/firewalld/services"))


@dataclass(frozen=True)
class CommandOutput:
    returncode: int | None  # None: did not run (missing, timed out)
    stdout: str
    error: str | None = None  # why it did not run, or its stderr's first line


Runner = Callable[[Sequence[str], float], CommandOutput]


def run_command(argv: Sequence[str], timeout: float) -> CommandOutput:
    """Run a read-only firewall command; never raises."""
    try:
        res = subprocess.run(
            list(argv),
            capture_output=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
            env=_env(),
        )
    except FileNotFoundError:
        return CommandOutput(None, "", "not installed")
    except subprocess.TimeoutExpired:
        return CommandOutput(None, "", f"no answer within {timeout:.1f} s")
    except OSError as exc:
        return CommandOutput(None, "", f"{type(exc).__name__}: {exc}")
    out = res.stdout[:MAX_OUTPUT].decode("utf-8", errors="replace")
    err = res.stderr[:4096].decode("utf-8", errors="replace").strip()
    first = err.splitlines()[0] if err else None
    return CommandOutput(res.returncode, out, first)


def _env() -> dict[str, str]:
    """English, unlocalized output (the parsers read English), sbin on PATH."""
    import os

    env = dict(os.environ)
    env.update(LC_ALL="C", LANG="C", PATH=_search_path())
    return env


def _search_path() -> str:
    import os

    path = os.environ.get("PATH", "")
    if sys.platform.startswith("linux"):
        path = os.pathsep.join(p for p in (path, "/usr/sbin", "/sbin") if p)
    return path


# --- Linux ----------------------------------------------------------------------------------


def _linux(  # noqa: PLR0912, PLR0915 - one branch per Linux firewall tool, tried in order
    inbound: Inbound, run: Runner, timeout: float
) -> tuple[list[Reading], list[str]]:
    """Readings for both families (issue 15): IPv4 from nft ip/inet, iptables-save and ufw's
    v4 rules; IPv6 from nft ip6/inet, ip6tables-save and ufw's v6 rules. Each Reading says
    its family."""
    filters = {
        "nftables": ["nft", "-j", "list", "ruleset"],
        "iptables": ["iptables-save"],
        "iptables-legacy": ["iptables-legacy-save"],
        "ip6tables": ["ip6tables-save"],
        "ip6tables-legacy": ["ip6tables-legacy-save"],
    }
    outs = _installed(_run_all(filters, run, timeout))
    # ufw and firewalld are Python programs (~0.2 s each): ask them only when their rules
    # are loaded (ufw's chains, firewalld's table), or when the rules themselves were unreadable
    # (firewall-cmd may answer an unprivileged user through polkit)
    loaded = " ".join(o.stdout[:4_000_000] for o in outs.values() if _ok(o))
    unreadable = not any(_ok(o) for o in outs.values())
    fronts = {}
    if "ufw-user-input" in loaded or "ufw6-user-input" in loaded:
        fronts["ufw"] = ["ufw", "status", "verbose"]
    if unreadable or '"firewalld"' in loaded or "_direct" in loaded:
        fronts["firewalld"] = ["firewall-cmd", "--list-all-zones"]
    if fronts:
        outs.update(_installed(_run_all(fronts, run, timeout)))
    if "firewalld" in outs and unreadable and not _ok(outs["firewalld"]):
        outs.pop("firewalld")  # not running (FirewallD is not running, exit 252)
    present = dict(outs)
    inbound6 = replace(inbound, family="ipv6")
    readings: list[Reading] = []
    unread: list[str] = []
    skip: set[tuple[str, str]] = set()
    for names, nft_family, ib in (
        (("iptables", "iptables-legacy"), "ip", inbound),
        (("ip6tables", "ip6tables-legacy"), "ip6", inbound6),
    ):
        backends: set[str] = set()
        for name in names:
            out = outs.get(name)
            if out is None or (name.endswith("-legacy") and "legacy" in backends):
                continue  # iptables-save is the legacy one itself: the same rules
            if not _ok(out) or not out.stdout.strip():
                if not _ok(out):
                    unread.append(_why(name, out))
                continue
            try:
                save = iptables.parse_save(out.stdout)
                r = iptables.evaluate(out.stdout, ib)
            except ParseError as exc:
                unread.append(f"{name}: {exc}")
                continue
            backends.add(save.backend or "")
            if not name.endswith("-legacy") and save.backend == "nf_tables":
                skip |= {(nft_family, t) for t in save.tables}  # the same rules, shown in full
            readings.append(_renamed(r, name))
    readers: dict[str, Callable[[str], list[Reading]]] = {
        "nftables": lambda t: [
            nft.evaluate(t, inbound, skip_tables=skip),
            nft.evaluate(t, inbound6, skip_tables=skip),
        ],
    }
    if "ufw" in outs:
        from reverseprobe.probes.fwparse import ufw

        v6 = ufw.ipv6_setting(_read_text(UFW_DEFAULT))
        readers["ufw"] = lambda t: [
            ufw.evaluate(t, inbound, ipv6=v6),
            ufw.evaluate(t, inbound6, ipv6=v6),
        ]
    if "firewalld" in outs:
        from reverseprobe.probes.fwparse import firewalld

        # firewalld's zones and ports cover both families (rich rules may name one)
        readers["firewalld"] = lambda t: [
            firewalld.evaluate(t, inbound, _service_ports),
            replace(firewalld.evaluate(t, inbound6, _service_ports), family="ipv6"),
        ]
    for name, reader in readers.items():
        out = outs.get(name)
        if out is None:
            continue
        if not _ok(out):
            unread.append(_why(name, out))
            continue
        try:
            readings.extend(reader(out.stdout))
        except ParseError as exc:
            unread.append(f"{name}: {exc}")
    if not present:
        unread.append("no firewall tool found (nft, iptables-save, firewall-cmd)")
    return readings, unread


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[:65536]
    except OSError:
        return ""


def _service_ports(name: str) -> list[tuple[str, str]] | None:
    from reverseprobe.probes.fwparse import firewalld

    if not name.replace("-", "").replace("_", "").isalnum():
        return None
    for d in FIREWALLD_SERVICE_DIRS:
        f = d / f"{name}.xml"
        try:
            return firewalld.parse_service_xml(f.read_text(errors="replace")[:65536])
        except (OSError, ParseError):
            continue
    return None


# --- Windows and macOS ----------------------------------------------------------------------


def _windows(inbound: Inbound, run: Runner, timeout: float) -> tuple[list[Reading], list[str]]:
    from reverseprobe.probes.fwparse import netsh

    outs = _run_all(
        {
            "profile": ["netsh", "advfirewall", "show", "currentprofile"],
            "rules": [
                "netsh",
                "advfirewall",
                "firewall",
                "show",
                "rule",
                "name=all",
                "dir=in",
                "verbose",
            ],
        },
        run,
        timeout,
    )
    prof, rules = outs["profile"], outs["rules"]
    if not _ok(prof):
        return [], [_why("netsh", prof)]
    try:
        r = netsh.evaluate(prof.stdout, rules.stdout if _ok(rules) else None, inbound)
    except ParseError as exc:
        return [], [f"netsh: {exc}"]
    return [r], ([] if _ok(rules) else [_why("netsh rules", rules)])


def _macos(inbound: Inbound, run: Runner, timeout: float) -> tuple[list[Reading], list[str]]:
    from reverseprobe.probes.fwparse import macos

    argv = [SOCKETFILTERFW, "--getglobalstate", "--getblockall", "--getallowsigned"]
    out = run([*argv, "--listapps"], timeout)
    if not _ok(out):
        return [], [_why("socketfilterfw", out)]
    try:
        return [macos.evaluate(out.stdout, inbound)], ["pf: not read (pfctl needs root)"]
    except ParseError as exc:
        return [], [f"socketfilterfw: {exc}"]


# --- the probe -----------------------------------------------------------------------------


def _run_all(cmds: dict[str, list[str]], run: Runner, timeout: float) -> dict[str, CommandOutput]:
    def job(argv: list[str]) -> Callable[[], CommandOutput]:
        return lambda: run(argv, timeout)

    got = gather(
        {name: job(argv) for name, argv in cmds.items()},
        Deadline.after(timeout + 1.0),
        name="firewall",
    )
    outs: dict[str, CommandOutput] = {}
    for name in cmds:
        value = got.get(name)
        if isinstance(value, CommandOutput):
            outs[name] = value
        elif isinstance(value, BaseException):
            outs[name] = CommandOutput(None, "", f"{type(value).__name__}: {value}")
        else:
            outs[name] = CommandOutput(None, "", f"no answer within {timeout:.1f} s")
    return outs


def _installed(outs: dict[str, CommandOutput]) -> dict[str, CommandOutput]:
    return {k: o for k, o in outs.items() if o.error != "not installed"}


def _ok(out: CommandOutput) -> bool:
    return out.returncode == 0


def _why(name: str, out: CommandOutput) -> str:
    why = out.error or f"exit status {out.returncode}"
    low = why.lower()
    if "permission" in low or "not permitted" in low or "root" in low or "denied" in low:
        why += " (run as administrator/root to read the firewall)"
    return f"{name}: {why}"


def _renamed(r: Reading, source: str) -> Reading:
    return replace(r, source=source)


def probe_firewall(  # noqa: PLR0913 - keyword-only injection points (run, platform) for tests
    port: int,
    deadline: Deadline,
    *,
    run: Runner = run_command,
    platform: str | None = None,
    iface: str | None = None,
    program: str | None = None,
) -> FirewallResult:
    plat = platform or sys.platform
    timeout = deadline.share(COMMAND_BUDGET_S)
    if plat.startswith("linux"):
        if iface is None:
            from reverseprobe.probes.interfaces import default_gateway

            iface = default_gateway()[1]
        inbound = Inbound(port, iface, None)
        readings, unread = _linux(inbound, run, timeout)
    elif plat in ("win32", "cygwin"):
        inbound = Inbound(port, iface, program or listener_program(port))
        readings, unread = _windows(inbound, run, timeout)
    elif plat == "darwin":
        inbound = Inbound(port, iface, program or listener_program(port))
        readings, unread = _macos(inbound, run, timeout)
    else:
        return FirewallResult(
            status=Status.SKIPPED,
            reason=f"not checked: no firewall reader for {plat}",
            port=port,
            platform=plat,
        )
    if not plat.startswith("linux"):  # one rule set for both families there
        readings += [replace(r, family="ipv6") for r in readings]
    managers = tuple(
        dict.fromkeys(r.source for r in readings if r.source in ("ufw", "firewalld") and r.active)
    )
    families = tuple(
        _family(fam, [r for r in readings if r.family == fam])
        for fam in ("ipv4", "ipv6")
        if any(r.family == fam for r in readings)
    )
    v4 = next((f for f in families if f.family == "ipv4"), None)
    readings4 = [r for r in readings if r.family == "ipv4"]
    reason = None
    if unread:
        reason = ("could not read: " if readings else "not checked, could not read: ") + (
            "; ".join(unread)
        )
    if not readings:
        status = (
            Status.SKIPPED
            if all("not installed" in u or "no firewall tool" in u for u in unread)
            else Status.ERROR
        )
        return FirewallResult(
            status=status,
            reason=reason,
            port=port,
            platform=plat,
            interface=inbound.iface,
            program=inbound.program,
            unread=tuple(unread),
        )
    return FirewallResult(
        status=Status.OK,
        reason=reason,
        port=port,
        platform=plat,
        interface=inbound.iface,
        program=inbound.program,
        readings=tuple(readings4),
        unread=tuple(unread),
        verdict=v4.verdict if v4 else None,
        deciding=v4.deciding if v4 else None,
        managers=managers,
        families=families,
    )


def _family(family: str, readings: list[Reading]) -> FamilyVerdict:
    """Every packet filter of the family must let the connection pass: the worst decides."""
    active = [r for r in readings if r.active]
    verdict = worst([r.verdict for r in active]) if active else None
    if readings and verdict is None:
        verdict = Verdict.OPEN  # every firewall read is off
    deciding = next((r for r in active if r.verdict is verdict), None)
    return FamilyVerdict(family, verdict, deciding, tuple(readings))


def listener_program(port: int) -> str | None:
    """The executable listening on TCP `port`, where the OS lets us see it."""
    try:
        import psutil

        for c in psutil.net_connections(kind="tcp"):
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
                return str(psutil.Process(c.pid).exe()) or None
    except Exception:  # noqa: BLE001 - access denied or a vanished process: not known
        return None
    return None


def check_probe(cfg: CheckConfig) -> Probe:
    """The `firewall` probe of `check`."""
    return lambda d: probe_firewall(cfg.port, d)
