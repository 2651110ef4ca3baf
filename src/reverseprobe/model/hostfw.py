"""What `forward --firewall` did to this PC's own firewall (data only; hostfw/ acts)."""

from __future__ import annotations

from dataclasses import dataclass

from reverseprobe.model import ProbeResult


@dataclass(frozen=True, kw_only=True)
class HostFirewallResult(ProbeResult):
    """`action` is open | remove; `backend` the firewall that decides (nftables, iptables, ufw,
    firewalld, windows, macos; None: none could be read); `commands` are the exact argv lines,
    shell-quoted, run (or, with --dry-run, that would run); `changed` says whether the
    ruleset was touched (False: already allowed, nothing of ours to remove, or a dry run)."""

    action: str
    port: int
    backend: str | None = None
    where: str | None = None  # chain, zone or profile
    source: str | None = None  # --from CIDR
    permanent: bool = False
    dry_run: bool = False
    changed: bool = False
    commands: tuple[str, ...] = ()
    elevate: str | None = None  # the command to run with root/administrator rights
    # the address families opened where each has its own rules (issue 15: nft ip + ip6
    # chains, iptables + ip6tables); empty where one rule set covers both (inet, ufw...)
    families: tuple[str, ...] = ()
