"""The command that lets a new inbound TCP connection to the port through, for the firewall
that decided. A front end (ufw, firewalld) wins over raw rules: it would overwrite them."""

from __future__ import annotations

from collections.abc import Sequence

from reverseprobe.model.firewall import Reading, Verdict

SOCKETFILTERFW = "/usr/libexec/ApplicationFirewall/socketfilterfw"
_IPTABLES_PROGS = ("iptables", "iptables-legacy", "ip6tables", "ip6tables-legacy")


def allow_command(  # noqa: PLR0911, PLR0912 - one branch per firewall manager and platform, each returns its command
    port: int, reading: Reading, managers: Sequence[str] = (), program: str | None = None
) -> str:
    """One shell line (or two, joined by '; then ') that allows TCP `port` inbound."""
    blocked = reading.verdict is Verdict.BLOCKED
    if "firewalld" in managers:
        zone = ""
        if reading.source == "firewalld" and reading.where and reading.where.startswith("zone "):
            zone = f" --zone={reading.where[5:]}"
        cmd = (
            f"sudo firewall-cmd --permanent{zone} --add-port={port}/tcp "
            "&& sudo firewall-cmd --reload"
        )
        if blocked and reading.source == "firewalld" and reading.rule:
            cmd = (
                f"sudo firewall-cmd --permanent{zone} --remove-rich-rule='{reading.rule}'; "
                f"then {cmd}"
            )
        return cmd
    if "ufw" in managers:
        allow = f"sudo ufw allow {port}/tcp"
        if not blocked:
            return allow
        # ufw will not add "allow P" beside "deny P" (the same rule to it): remove the deny
        parts = (reading.rule or "").split() if reading.source == "ufw" else []
        if len(parts) == 4 and parts[2] == "IN" and parts[3] == "Anywhere":
            return f"sudo ufw delete {parts[1].lower()} {parts[0]} && {allow}"
        return (
            f"remove the rule that refuses it (`sudo ufw status numbered`, then "
            f"`sudo ufw delete NUMBER`), then {allow}"
        )
    src = reading.source
    if src == "nftables":
        chain = reading.where or "inet filter input"
        return (
            f"sudo nft insert rule {chain} tcp dport {port} accept "
            "(and add the same rule to /etc/nftables.conf to keep it after a reboot)"
        )
    if src.startswith(("iptables", "ip6tables")):  # ip6tables: the IPv6 twin (issue 15)
        prog = src if src in _IPTABLES_PROGS else "iptables"
        table, _, chain = (reading.where or "filter INPUT").partition(" ")
        if table == "filter":
            chain = "INPUT"  # the base chain: before any jump to the blocking chain
        elif chain not in ("PREROUTING", "INPUT"):
            chain = "PREROUTING"
        t = "" if table == "filter" else f"-t {table} "
        return (
            f"sudo {prog} {t}-I {chain} -p tcp --dport {port} -j ACCEPT "
            "(and save it, e.g. `netfilter-persistent save`, to keep it after a reboot)"
        )
    if src == "windows":
        add = (
            f'netsh advfirewall firewall add rule name="DICOM receiver {port}" dir=in '
            f"action=allow protocol=TCP localport={port}"
        )
        if blocked and reading.rule and reading.rule.startswith("Firewall Policy"):
            return (
                "netsh advfirewall set currentprofile firewallpolicy blockinbound,allowoutbound"
                f"; then {add}"
            )
        if blocked and reading.rule:
            # a block rule beats every allow rule on Windows: it has to go
            off = f'netsh advfirewall firewall set rule name="{reading.rule}" new enable=no'
            return f"{off}; then {add}"
        return f"{add} (in an administrator prompt)"
    if src == "macos":
        if blocked and reading.rule == "Block all incoming connections":
            return f"sudo {SOCKETFILTERFW} --setblockall off"
        if program:
            sfw = f"sudo {SOCKETFILTERFW}"
            return f"{sfw} --add '{program}' && {sfw} --unblockapp '{program}'"
        return "allow the DICOM receiver in System Settings > Network > Firewall > Options"
    return f"allow inbound TCP port {port} in the firewall's configuration"
