"""Issue 15: `forward --firewall` per address family with a fake runner (the real nftables,
iptables and ip6tables are in tests/integration/test_firewall6_lab.py): one accept per
family where each has its own rules, one for an inet chain or a front end, the --from
CIDR's family only, and --remove finding our mark in ip6tables."""

from __future__ import annotations

from pathlib import Path

from test_hostfw import Fake

from reverseprobe.hostfw import apply
from reverseprobe.hostfw import builders as b
from reverseprobe.model import Status
from reverseprobe.model.firewall import FamilyVerdict, FirewallResult, Reading, Verdict
from reverseprobe.probes.firewall import CommandOutput

V = Verdict
MARK = b.mark(11112)


def fw(v4: Reading, v6: Reading, managers: tuple[str, ...] = ()) -> FirewallResult:
    return FirewallResult(
        status=Status.OK,
        port=11112,
        platform="linux",
        readings=(v4,),
        verdict=v4.verdict,
        deciding=v4,
        managers=managers,
        families=(
            FamilyVerdict("ipv4", v4.verdict, v4, (v4,)),
            FamilyVerdict("ipv6", v6.verdict, v6, (v6,)),
        ),
    )


def dry(f: FirewallResult, tmp: Path, source: str | None = None) -> tuple[str, ...]:
    req = apply.Request(port=11112, source=source, dry_run=True)
    res = apply.open_port(req, f, Fake(), tmp)
    assert res.status is Status.SKIPPED, res.reason
    return res.commands


def test_nft_ip_and_ip6_chains_get_one_accept_each(tmp_path: Path) -> None:
    v4 = Reading("nftables", True, V.DEFAULT_DROP, None, "ip host4 input")
    v6 = Reading("nftables", True, V.BLOCKED, "tcp dport 11112 drop", "ip6 host6 input", "", "ipv6")
    cmds = dry(fw(v4, v6), tmp_path)
    assert [c.split(" tcp dport")[0] for c in cmds] == [
        "nft insert rule ip host4 input",
        "nft insert rule ip6 host6 input",
    ]


def test_only_the_family_that_drops_is_opened(tmp_path: Path) -> None:
    v4 = Reading("nftables", True, V.ALLOWED, "tcp dport 11112 accept", "ip host4 input")
    v6 = Reading("nftables", True, V.DEFAULT_DROP, None, "ip6 host6 input", "", "ipv6")
    req = apply.Request(port=11112, dry_run=True)
    res = apply.open_port(req, fw(v4, v6), Fake(), tmp_path)
    assert res.commands == (
        f"nft insert rule ip6 host6 input tcp dport 11112 accept comment '\"{MARK}\"'",
    )
    assert res.families == ("ipv6",)


def test_an_inet_chain_deciding_both_gets_one_rule(tmp_path: Path) -> None:
    v4 = Reading("nftables", True, V.DEFAULT_DROP, None, "inet filter input")
    v6 = Reading("nftables", True, V.DEFAULT_DROP, None, "inet filter input", "", "ipv6")
    assert len(dry(fw(v4, v6), tmp_path)) == 1


def test_iptables_beside_ip6tables(tmp_path: Path) -> None:
    v4 = Reading("iptables", True, V.DEFAULT_DROP, None, "filter INPUT")
    v6 = Reading("ip6tables", True, V.DEFAULT_DROP, None, "filter INPUT", "", "ipv6")
    cmds = dry(fw(v4, v6), tmp_path)
    assert [c.split()[0] for c in cmds] == ["iptables", "ip6tables"]
    # --from: that source's family only (an IPv4 CIDR has no place in ip6tables)
    only = dry(fw(v4, v6), tmp_path, source="192.0.2.0/24")
    assert len(only) == 1 and only[0].startswith("iptables -I INPUT 1 -s 192.0.2.0/24")
    only6 = dry(fw(v4, v6), tmp_path, source="2a0c::/29")
    assert len(only6) == 1 and only6[0].startswith("ip6tables -I INPUT 1 -s 2a0c::/29")


def test_ufw_covers_ipv6_by_itself(tmp_path: Path) -> None:
    v4 = Reading("ufw", True, V.DEFAULT_DROP)
    v6 = Reading("ufw", True, V.DEFAULT_DROP, family="ipv6")
    cmds = dry(fw(v4, v6, managers=("ufw",)), tmp_path)
    assert len(cmds) == 1 and cmds[0].startswith("ufw allow proto tcp")


def test_an_unreadable_ipv6_is_said_not_opened(tmp_path: Path) -> None:
    v4 = Reading("nftables", True, V.DEFAULT_DROP, None, "ip host4 input")
    v6 = Reading("nftables", True, V.UNKNOWN, None, "ip6 host6 input", "a set", "ipv6")
    req = apply.Request(port=11112, dry_run=True)
    res = apply.open_port(req, fw(v4, v6), Fake(), tmp_path)
    assert len(res.commands) == 1 and res.families == ("ipv4",)
    assert res.reason is not None and "IPv6 not opened" in res.reason


def test_remove_finds_ours_in_ip6tables(tmp_path: Path) -> None:
    line = f'-A INPUT -p tcp -m tcp --dport 11112 -m comment --comment "{MARK}" -j ACCEPT'
    run = Fake(
        {
            ("nft", "-a", "-j", "list", "ruleset"): CommandOutput(1, "", "not installed"),
            ("ip6tables", "-t", "filter", "-S"): CommandOutput(0, f"-P INPUT DROP\n{line}\n"),
        }
    )
    res = apply.remove_port(apply.Request(port=11112, dry_run=True), run, tmp_path, "linux")
    assert res.backend == "ip6tables"
    assert res.commands[0].startswith("ip6tables -t filter -D INPUT -p tcp")
