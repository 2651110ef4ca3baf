"""argv builders for opening (and closing) TCP `port` inbound, one per firewall. Pure: no I/O.

Each rule we add carries `mark(port)`, so `--remove` finds exactly ours and nothing else.
"""

from __future__ import annotations

import ipaddress
import json
import shlex
from collections.abc import Sequence

MARK = "reverseprobe DICOM"
SOCKETFILTERFW = "/usr/libexec/ApplicationFirewall/socketfilterfw"
Argv = tuple[str, ...]


def mark(port: int) -> str:
    """The comment (rule name on Windows) that identifies a rule reverseprobe added."""
    return f"{MARK} {port}"


def show(argv: Sequence[str]) -> str:
    """The argv as one shell line (what --dry-run prints; pasteable as is)."""
    return shlex.join(argv)


def _v6(cidr: str | None) -> bool:
    return cidr is not None and ipaddress.ip_network(cidr, strict=False).version == 6


def is_v6(cidr: str) -> bool:
    """Whether a --from CIDR is IPv6 (its rule goes to the IPv6 rules only)."""
    return _v6(cidr)


# --- nftables (nft(8): "RULES", "insert", "comment") --------------------------------------


def nft_open(chain: str, port: int, source: str | None = None) -> Argv:
    """Insert at the head of the chain that decides (so it precedes its drop), marked.
    `chain` is "FAMILY TABLE CHAIN" as the reading names it."""
    fam_table_chain = tuple(chain.split())
    match: Argv = ()
    if source:
        match = ("ip6" if _v6(source) else "ip", "saddr", source)
    return (
        "nft",
        "insert",
        "rule",
        *fam_table_chain,
        *match,
        "tcp",
        "dport",
        str(port),
        "accept",
        "comment",
        f'"{mark(port)}"',
    )


NFT_LIST: Argv = ("nft", "-a", "-j", "list", "ruleset")


def nft_ours(ruleset_json: str, port: int) -> list[Argv]:
    """`nft delete rule ... handle N` for every rule whose comment is our mark for `port`."""
    try:
        doc = json.loads(ruleset_json)
    except ValueError:
        return []
    out: list[Argv] = []
    for item in doc.get("nftables", []) if isinstance(doc, dict) else []:
        rule = item.get("rule") if isinstance(item, dict) else None
        if not isinstance(rule, dict) or rule.get("comment") != mark(port):
            continue
        try:
            fam, table, chain, handle = (
                str(rule["family"]),
                str(rule["table"]),
                str(rule["chain"]),
                int(rule["handle"]),
            )
        except (KeyError, TypeError, ValueError):
            continue
        out.append(("nft", "delete", "rule", fam, table, chain, "handle", str(handle)))
    return out


# --- iptables (iptables(8), iptables-extensions(8) "comment") -----------------------------


def iptables_open(prog: str, table: str, chain: str, port: int, source: str | None = None) -> Argv:
    src: Argv = ("-s", source) if source else ()
    t: Argv = () if table == "filter" else ("-t", table)
    return (
        prog,
        *t,
        "-I",
        chain,
        "1",
        *src,
        "-p",
        "tcp",
        "--dport",
        str(port),
        "-m",
        "comment",
        "--comment",
        mark(port),
        "-j",
        "ACCEPT",
    )


def iptables_list(prog: str, table: str = "filter") -> Argv:
    return (prog, "-t", table, "-S")


def iptables_ours(prog: str, table: str, listing: str, port: int) -> list[Argv]:
    """`-D` for every `-A` line of `iptables -S` that carries our comment for `port`."""
    out: list[Argv] = []
    for line in listing.splitlines():
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        if len(words) < 3 or words[0] != "-A":
            continue
        if "--comment" in words and words[words.index("--comment") + 1 :][:1] == [mark(port)]:
            out.append((prog, "-t", table, "-D", *words[1:]))
    return out


# --- ufw (ufw(8): "allow", "insert", "comment", "status numbered") -------------------------


def ufw_open(port: int, source: str | None = None, *, first: bool = False) -> Argv:
    """`first`: insert before the rules (a deny for the port would win otherwise)."""
    head: Argv = ("ufw", "insert", "1") if first else ("ufw",)
    return (
        *head,
        "allow",
        "proto",
        "tcp",
        "from",
        source or "any",
        "to",
        "any",
        "port",
        str(port),
        "comment",
        mark(port),
    )


UFW_NUMBERED: Argv = ("ufw", "status", "numbered")


def ufw_ours(numbered: str, port: int) -> list[Argv]:
    """`ufw --force delete N`, highest first (numbers shift after each delete)."""
    nums: list[int] = []
    for line in numbered.splitlines():
        s = line.strip()
        if not s.startswith("[") or "]" not in s:
            continue
        if not s.rstrip().endswith(f"# {mark(port)}"):
            continue
        try:
            nums.append(int(s[1 : s.index("]")].strip()))
        except ValueError:
            continue
    return [("ufw", "--force", "delete", str(n)) for n in sorted(nums, reverse=True)]


# --- firewalld (firewall-cmd(1): runtime, then --permanent on request) ---------------------


def firewalld_spec(port: int, source: str | None) -> str:
    """--add-port's value, or a rich rule when a source limits it (firewalld.richlanguage(5))."""
    if not source:
        return f"--port={port}/tcp"
    fam = "ipv6" if _v6(source) else "ipv4"
    return (
        f'--rich-rule=rule family="{fam}" source address="{source}" '
        f'port port="{port}" protocol="tcp" accept'
    )


def firewalld_cmd(verb: str, zone: str | None, spec: str, *, permanent: bool = False) -> Argv:
    """verb: add | remove | query; spec: from firewalld_spec."""
    z: Argv = (f"--zone={zone}",) if zone else ()
    p: Argv = ("--permanent",) if permanent else ()
    kind, _, value = spec.partition("=")
    return ("firewall-cmd", *p, *z, f"--{verb}-{kind[2:]}={value}")


# --- Windows (netsh advfirewall firewall add/delete rule) ----------------------------------


def netsh_open(port: int, source: str | None = None, program: str | None = None) -> Argv:
    extra: Argv = ()
    if source:
        extra += (f"remoteip={source}",)
    if program:
        extra += (f"program={program}",)
    return (
        "netsh",
        "advfirewall",
        "firewall",
        "add",
        "rule",
        f"name={mark(port)}",
        "dir=in",
        "action=allow",
        "protocol=TCP",
        f"localport={port}",
        *extra,
    )


def netsh_remove(port: int) -> Argv:
    return ("netsh", "advfirewall", "firewall", "delete", "rule", f"name={mark(port)}")


# --- macOS application firewall (socketfilterfw --add / --unblockapp / --remove) -----------


def alf_open(program: str) -> list[Argv]:
    return [(SOCKETFILTERFW, "--add", program), (SOCKETFILTERFW, "--unblockapp", program)]


def alf_remove(program: str) -> Argv:
    return (SOCKETFILTERFW, "--remove", program)
