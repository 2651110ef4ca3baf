"""Decide which firewall to change, and change it through one injected runner.

The firewall probe (probes/firewall.py) has already read every filter; the one that decides
gets the accept (a front end, ufw or firewalld, wins: it would rewrite raw rules on reload).
Removal needs no reading: it lists each firewall and deletes what carries our mark, so the
ruleset is left as it was before we opened it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from reverseprobe.hostfw import builders as b
from reverseprobe.model import Status
from reverseprobe.model.firewall import FamilyVerdict, FirewallResult, Reading, Verdict, worst
from reverseprobe.model.hostfw import HostFirewallResult
from reverseprobe.probes.firewall import CommandOutput

Run = Callable[[Sequence[str], float], CommandOutput]
STATE_FILE = "hostfw.json"  # what we added where rules carry no comment (firewalld, macOS)


@dataclass(frozen=True)
class Request:
    port: int
    source: str | None = None  # --from CIDR: only the PACS's address
    permanent: bool = False  # firewalld: also the permanent configuration
    dry_run: bool = False
    timeout: float = 5.0  # per command


def is_elevated() -> bool:
    """root on POSIX, an administrator token on Windows."""
    if sys.platform in ("win32", "cygwin"):
        try:
            import ctypes

            return bool(ctypes.windll.shell32.IsUserAnAdmin())  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - no shell32: cannot tell, treat as not elevated
            return False
    return os.geteuid() == 0


def backend_of(fw: FirewallResult) -> Reading | None:
    """The reading whose firewall we change: a front end's own reading, else the deciding one."""
    for manager in ("firewalld", "ufw"):
        if manager in fw.managers:
            own = next((r for r in fw.readings if r.source == manager), None)
            if own is not None:
                return own
    return fw.deciding


def _result(req: Request, action: str, **kw: object) -> HostFirewallResult:
    return HostFirewallResult(
        action=action,
        port=req.port,
        source=req.source,
        permanent=req.permanent,
        dry_run=req.dry_run,
        **kw,  # type: ignore[arg-type]
    )


def open_port(
    req: Request, fw: FirewallResult, run: Run, state_dir: Path, program: str | None = None
) -> HostFirewallResult:
    """Add one accept for TCP req.port inbound to the firewall that decides, for each address
    family whose raw rules decide on their own (issue 15: nft ip and ip6 chains, iptables and
    ip6tables); an inet chain deciding both gets one rule, a front end (ufw, firewalld) or
    the OS firewall one command that covers both."""
    fams = _families(fw, req.source)
    r = backend_of(fw)
    if r is None or not fams:
        why = fw.reason or "no firewall could be read"
        return _result(req, "open", status=Status.FAIL, reason=f"not opened: {why}")
    raw = [f for f in fams if f.deciding is not None and f.deciding.source in _RAW]
    if r.source not in _RAW or not raw:
        verdict = worst([f.verdict for f in fams if f.verdict is not None])
        return _open_one(req, fw, r, verdict, run, state_dir=state_dir, program=program)
    need = [f for f in raw if f.verdict not in (Verdict.ALLOWED, Verdict.OPEN)]
    if not need:
        return _open_one(req, fw, r, fams[0].verdict, run, state_dir=state_dir, program=program)
    unknown = [f for f in need if f.verdict is Verdict.UNKNOWN]
    if len(unknown) == len(need):
        return _open_one(
            req, fw, unknown[0].deciding or r, Verdict.UNKNOWN, run, state_dir=state_dir
        )
    cmds: list[b.Argv] = []
    readings: list[Reading] = []
    try:
        for f in need:
            if f.verdict is None or f.verdict is Verdict.UNKNOWN or f.deciding is None:
                continue
            for argv in _open_argv(req, f.deciding, f.verdict, run, program)[0]:
                if argv not in cmds:
                    cmds.append(argv)
                    readings.append(f.deciding)
    except _Refuse as exc:
        return _result(
            req, "open", status=Status.FAIL, backend=r.source, where=r.where, reason=str(exc)
        )
    res = _execute(
        req,
        "open",
        cmds,
        backend=", ".join(dict.fromkeys(x.source for x in readings)),
        where=", ".join(dict.fromkeys(x.where or "" for x in readings)) or None,
        run=run,
        state_dir=state_dir,
    )
    opened = tuple(dict.fromkeys(f.family for f in need if f not in unknown))
    if unknown and res.status is not Status.FAIL:
        res = replace(
            res,
            reason=f"{res.reason}; {', '.join(_NAME[f.family] for f in unknown)} not opened: "
            "its rules could not be evaluated",
        )
    return replace(res, families=opened)


_RAW = ("nftables", "iptables", "iptables-legacy", "ip6tables", "ip6tables-legacy")
_NAME = {"ipv4": "IPv4", "ipv6": "IPv6"}


def _families(fw: FirewallResult, source: str | None) -> list[FamilyVerdict]:
    """The families to open: both (a --from CIDR: its own family only), read ones only."""
    fams = list(fw.families) or [FamilyVerdict("ipv4", fw.verdict, fw.deciding, fw.readings)]
    if source:
        fam = "ipv6" if b.is_v6(source) else "ipv4"
        fams = [f for f in fams if f.family == fam]
    return [f for f in fams if f.verdict is not None]


def _open_one(  # noqa: PLR0913 - the one firewall that decides, its verdict, and where to run
    req: Request,
    fw: FirewallResult,
    r: Reading,
    verdict: Verdict | None,
    run: Run,
    *,
    state_dir: Path,
    program: str | None = None,
) -> HostFirewallResult:
    """One firewall for every family (a front end, the OS firewall, or one raw reading)."""
    if verdict is None:
        why = fw.reason or "no firewall could be read"
        return _result(req, "open", status=Status.FAIL, reason=f"not opened: {why}")
    if verdict in (Verdict.ALLOWED, Verdict.OPEN):
        rule = f" (rule `{r.rule}`)" if r.rule else ""
        return _result(
            req,
            "open",
            status=Status.OK,
            backend=r.source,
            where=r.where,
            reason=f"nothing to do: {r.source} already lets TCP {req.port} in{rule}",
        )
    if verdict is Verdict.UNKNOWN:
        return _result(
            req,
            "open",
            status=Status.FAIL,
            backend=r.source,
            where=r.where,
            reason=f"not opened: {r.source}'s rules could not be evaluated ({r.note})",
        )
    try:
        cmds, record = _open_argv(req, r, verdict, run, program)
    except _Refuse as exc:
        return _result(
            req, "open", status=Status.FAIL, backend=r.source, where=r.where, reason=str(exc)
        )
    return _execute(
        req,
        "open",
        cmds,
        backend=r.source,
        where=r.where,
        run=run,
        state_dir=state_dir,
        record=record,
    )


class _Refuse(Exception):
    """A firewall we will not (or cannot) open safely; str() says why and what to do."""


def _open_argv(  # noqa: PLR0912 - one branch per firewall backend
    req: Request, r: Reading, verdict: Verdict, run: Run, program: str | None
) -> tuple[list[b.Argv], list[dict[str, object]]]:
    src, port = r.source, req.port
    if src == "nftables":
        if not r.where or len(r.where.split()) != 3:
            raise _Refuse("not opened: the nftables chain that decides is not known")
        return [b.nft_open(r.where, port, req.source)], []
    if src in ("iptables", "iptables-legacy", "ip6tables", "ip6tables-legacy"):
        prog = src
        table, _, chain = (r.where or "filter INPUT").partition(" ")
        if table == "filter":
            chain = "INPUT"  # the base chain: before any jump to the blocking chain
        elif chain not in ("PREROUTING", "INPUT"):
            chain = "PREROUTING"
        return [b.iptables_open(prog, table, chain, port, req.source)], []
    if src == "ufw":
        return [b.ufw_open(port, req.source, first=verdict is Verdict.BLOCKED)], []
    if src == "firewalld":
        zone = r.where[5:] if r.where and r.where.startswith("zone ") else None
        spec = b.firewalld_spec(port, req.source)
        cmds, record = [], []
        for permanent in (False, True) if req.permanent else (False,):
            q = run(b.firewalld_cmd("query", zone, spec, permanent=permanent), req.timeout)
            if q.returncode == 0:
                continue  # already there: not ours, so never removed by --remove
            cmds.append(b.firewalld_cmd("add", zone, spec, permanent=permanent))
            record.append(
                {
                    "backend": "firewalld",
                    "port": port,
                    "zone": zone,
                    "spec": spec,
                    "permanent": permanent,
                }
            )
        return cmds, record
    if src == "windows":
        if verdict is Verdict.BLOCKED:
            raise _Refuse(
                f"not opened: `{r.rule}` blocks TCP {port}, and a Windows block rule wins over "
                "every allow rule: disable or narrow it first"
            )
        return [b.netsh_open(port, req.source)], []
    if src == "macos":
        if verdict is Verdict.BLOCKED and r.rule == "Block all incoming connections":
            raise _Refuse(
                "not opened: the application firewall blocks all incoming connections "
                f"(turn that off: sudo {b.SOCKETFILTERFW} --setblockall off)"
            )
        if req.source:
            raise _Refuse("not opened: the macOS application firewall cannot limit a source")
        if not program:
            raise _Refuse(
                "not opened: the macOS firewall allows programs, and no program listens on "
                f"TCP {port}: start the receiver, then run this again"
            )
        return b.alf_open(program), [{"backend": "macos", "port": port, "program": program}]
    raise _Refuse(f"not opened: no way to change {src}")


def _execute(  # noqa: PLR0913 - keyword-only: backend, state and the records it writes
    req: Request,
    action: str,
    cmds: list[b.Argv],
    *,
    backend: str | None,
    where: str | None,
    run: Run,
    state_dir: Path,
    record: list[dict[str, object]] | None = None,
    forget: list[dict[str, object]] | None = None,
) -> HostFirewallResult:
    shown = tuple(b.show(c) for c in cmds)
    common = {"backend": backend, "where": where, "commands": shown}
    if not cmds:
        what = "nothing of reverseprobe's to remove" if action == "remove" else "nothing to do"
        return _result(req, action, status=Status.OK, reason=what, **common)
    if req.dry_run:
        return _result(
            req,
            action,
            status=Status.SKIPPED,
            reason="dry run: would run " + "; ".join(shown),
            **common,
        )
    for done, argv in enumerate(cmds):
        out = run(argv, req.timeout)
        if out.returncode != 0:
            why = out.error or f"exit status {out.returncode}"
            _save(state_dir, req.port, (record or [])[:done], forget if done else None)
            return _result(
                req,
                action,
                status=Status.FAIL,
                changed=done > 0,
                reason=f"`{b.show(argv)}` failed: {why}",
                **common,
            )
    _save(state_dir, req.port, record or [], forget)
    return _result(
        req, action, status=Status.OK, changed=True, reason="ran " + "; ".join(shown), **common
    )


# --- removal ---------------------------------------------------------------------------------


def remove_port(  # noqa: PLR0912 - one branch per firewall backend
    req: Request, run: Run, state_dir: Path, platform: str | None = None
) -> HostFirewallResult:
    """Delete every rule carrying our mark for req.port (and what the state file says we added
    where rules cannot carry one). Listing runs even with --dry-run: it changes nothing."""
    plat = platform or sys.platform
    cmds: list[b.Argv] = []
    backends: list[str] = []
    recorded = [e for e in _load(state_dir) if e.get("port") == req.port]
    if plat.startswith("linux"):
        out = run(b.NFT_LIST, req.timeout)
        if out.returncode == 0:
            mine = b.nft_ours(out.stdout, req.port)
            cmds += mine
            backends += ["nftables"] if mine else []
        for prog in ("iptables", "iptables-legacy", "ip6tables", "ip6tables-legacy"):
            for table in ("filter", "nat"):
                out = run(b.iptables_list(prog, table), req.timeout)
                if out.returncode == 0:
                    mine = b.iptables_ours(prog, table, out.stdout, req.port)
                    cmds += mine
                    backends += [prog] if mine else []
        out = run(b.UFW_NUMBERED, req.timeout)
        if out.returncode == 0:
            mine = b.ufw_ours(out.stdout, req.port)
            cmds += mine
            backends += ["ufw"] if mine else []
        for e in recorded:
            if e.get("backend") == "firewalld":
                zone = e.get("zone")
                cmds.append(
                    b.firewalld_cmd(
                        "remove",
                        zone if isinstance(zone, str) else None,
                        str(e.get("spec")),
                        permanent=bool(e.get("permanent")),
                    )
                )
                backends.append("firewalld")
    elif plat in ("win32", "cygwin"):
        cmds.append(b.netsh_remove(req.port))
        backends.append("windows")
    elif plat == "darwin":
        for e in recorded:
            if e.get("backend") == "macos" and isinstance(e.get("program"), str):
                cmds.append(b.alf_remove(str(e["program"])))
                backends.append("macos")
    # nftables/iptables share rules under iptables-nft: deleting the nft rule removes both
    if "nftables" in backends:
        cmds = [c for c in cmds if c[0] not in ("iptables", "ip6tables")]
        backends = [x for x in backends if x not in ("iptables", "ip6tables")]
    backend = ", ".join(dict.fromkeys(backends)) or None
    forget = [e for e in recorded if e.get("backend") in ("firewalld", "macos")]
    result = _execute(
        req,
        "remove",
        cmds,
        backend=backend,
        where=None,
        run=run,
        state_dir=state_dir,
        forget=forget,
    )
    if plat in ("win32", "cygwin") and result.status is Status.FAIL and not req.dry_run:
        # netsh says "No rules match the specified criteria." (exit 1) when there is none
        return _result(
            req,
            "remove",
            status=Status.OK,
            backend="windows",
            commands=result.commands,
            reason="nothing of reverseprobe's to remove",
        )
    return result


# --- the state file ----------------------------------------------------------------------------


def _load(state_dir: Path) -> list[dict[str, object]]:
    try:
        data = json.loads((state_dir / STATE_FILE).read_text()[:1_000_000])
    except (OSError, ValueError):
        return []
    return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []


def _save(
    state_dir: Path,
    port: int,
    add: list[dict[str, object]],
    forget: list[dict[str, object]] | None,
) -> None:
    if not add and not forget:
        return
    entries = [e for e in _load(state_dir) if not forget or e not in forget]
    entries += [e for e in add if e not in entries]
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        tmp = state_dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(entries, indent=1))
        tmp.replace(state_dir / STATE_FILE)
    except OSError:
        pass  # the rule itself is in place; --remove then names it by hand
