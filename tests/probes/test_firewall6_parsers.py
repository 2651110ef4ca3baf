"""Issue 15: the firewall readers per address family, on samples recorded from real nft and
ip6tables-nft in a throw-away network namespace (tests/samples/firewall/: nft_ip6_table.json,
nft_inet_nfproto6.json, ip6tables_save.txt with its nft view ip6tables_nft.json), and the
probe's per-family answer with an injected runner. ufw_status_verbose_v6.txt follows ufw's
`status verbose` format (v4-only, v6-only and mirrored "(v6)" rules)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from conftest import TESTS
from reverseprobe.probes.firewall import CommandOutput, probe_firewall
from reverseprobe.probes.fwparse import iptables, nft, ufw
from reverseprobe.probes.fwparse.model import Inbound, Verdict
from reverseprobe.runner import Deadline

SAMPLES = TESTS / "samples" / "firewall"
V = Verdict
V4 = Inbound(11112, "eth0")
V6 = Inbound(11112, "eth0", family="ipv6")


def sample(name: str) -> str:
    return (SAMPLES / name).read_text()


# --- nftables: ip6 and inet tables ------------------------------------------------------------


def test_ip6_table_drops_ipv6_only() -> None:
    text = sample("nft_ip6_table.json")
    r4, r6 = nft.evaluate(text, V4), nft.evaluate(text, V6)
    assert (r4.verdict, r4.where, r4.family) == (V.ALLOWED, "ip v4f input", "ipv4")
    assert (r6.verdict, r6.where, r6.family) == (V.BLOCKED, "ip6 v6f input", "ipv6")
    assert r6.rule is not None and "tcp dport 11112 drop" in r6.rule


def test_inet_table_restricted_by_meta_nfproto() -> None:
    text = sample("nft_inet_nfproto6.json")
    r4, r6 = nft.evaluate(text, V4), nft.evaluate(text, V6)
    # `meta nfproto ipv6 ... drop` is skipped by IPv4, decides for IPv6 (before the
    # `ip6 saddr` accept further down, which is only a condition)
    assert r4.verdict is V.OPEN and r4.family == "ipv4"
    assert r6.verdict is V.BLOCKED and r6.where == "inet hostfw input"
    assert r6.rule is not None and "nfproto" in r6.rule


def test_inet_ip_and_ip6_header_matches_belong_to_their_family() -> None:
    text = sample("nft_inet_nfproto6.json").replace('"policy": "accept"', '"policy": "drop"')
    # `ip saddr 10.0.0.0/8 tcp dport 104 accept` is a condition for IPv4, no match for IPv6
    r4 = nft.evaluate(text, Inbound(104, "eth0"))
    r6 = nft.evaluate(text, Inbound(104, "eth0", family="ipv6"))
    assert r4.verdict is V.CONDITIONAL and "10.0.0.0/8" in r4.note
    assert r6.verdict is V.DEFAULT_DROP and "10.0.0.0/8" not in r6.note
    # `ip6 saddr 2a0c::/29 tcp dport 11112 accept` the same the other way round (after the
    # nfproto drop for IPv6, so only IPv4 meets it: and there it cannot match)
    assert nft.evaluate(text, V4).verdict is V.DEFAULT_DROP


def test_ip_table_does_not_filter_ipv6() -> None:
    text = sample("nft_mixed.json")  # inet filter (accepts 11112) + ip6 v6only (drop policy)
    assert nft.evaluate(text, V4).verdict is V.ALLOWED
    r6 = nft.evaluate(text, V6)
    assert r6.verdict is V.DEFAULT_DROP and r6.where == "ip6 v6only input"
    only_ip = sample("ip6tables_nft.json")  # ip filter (accept 11112) + ip6 filter (drop)
    assert nft.evaluate(only_ip, V4).verdict is V.ALLOWED
    r6 = nft.evaluate(only_ip, V6)
    # its `xt conntrack` cannot be read from nft's JSON (ip6tables-save shows it in full)
    assert r6.verdict is V.CONDITIONAL and r6.where == "ip6 filter INPUT"


# --- ip6tables-save ---------------------------------------------------------------------------


def test_ip6tables_save_default_drop() -> None:
    text = sample("ip6tables_save.txt")
    save = iptables.parse_save(text)
    assert save.backend == "nf_tables" and save.tables == {"filter"}
    r = iptables.evaluate(text, V6)
    assert (r.verdict, r.where, r.family) == (V.DEFAULT_DROP, "filter INPUT", "ipv6")
    # 104 is allowed only from 2a0c::/29: a condition, never guessed
    r104 = iptables.evaluate(text, Inbound(104, "eth0", family="ipv6"))
    assert r104.verdict is V.CONDITIONAL and "2a0c::/29" in r104.note
    assert iptables.evaluate(text, Inbound(22, "eth0", family="ipv6")).verdict is V.ALLOWED


def test_ip6tables_any_source() -> None:
    text = "*filter\n:INPUT DROP [0:0]\n-A INPUT -s ::/0 -p tcp --dport 11112 -j ACCEPT\nCOMMIT\n"
    assert iptables.evaluate(text, V6).verdict is V.ALLOWED


# --- ufw's IPv6 rules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("port", "v4", "v6"),
    [
        (22, V.ALLOWED, V.ALLOWED),  # mirrored "(v6)"
        (11112, V.CONDITIONAL, V.DEFAULT_DROP),  # v4 from 10/8 only; v6: a deny, then the default
        (4242, V.ALLOWED, V.BLOCKED),  # allowed over IPv4, denied over IPv6
        (5000, V.DEFAULT_DROP, V.DEFAULT_DROP),
    ],
)
def test_ufw_per_family(port: int, v4: Verdict, v6: Verdict) -> None:
    text = sample("ufw_status_verbose_v6.txt")
    r4 = ufw.evaluate(text, Inbound(port, "eth0"), ipv6=True)
    r6 = ufw.evaluate(text, Inbound(port, "eth0", family="ipv6"), ipv6=True)
    assert (r4.verdict, r4.family) == (v4, "ipv4")
    assert (r6.verdict, r6.family) == (v6, "ipv6")


def test_ufw_ipv6_off_leaves_ipv6_alone() -> None:
    text = sample("ufw_status_verbose_v6.txt")
    r6 = ufw.evaluate(text, V6, ipv6=False)
    assert not r6.active and "IPV6=no" in r6.note
    assert ufw.ipv6_setting("# comment\nIPV6=no\n") is False
    assert ufw.ipv6_setting('IPV6="yes"\n') is True
    assert ufw.ipv6_setting("DEFAULT_INPUT_POLICY=DROP\n") is None


# --- the probe: one answer per family ---------------------------------------------------------


class Runner:
    def __init__(self, outputs: dict[str, str]):
        self.outputs = outputs

    def __call__(self, argv: Sequence[str], timeout: float) -> CommandOutput:
        out = self.outputs.get(" ".join(argv))
        return (
            CommandOutput(0, out) if out is not None else CommandOutput(None, "", "not installed")
        )


def test_probe_answers_per_family_with_ip6tables_nft() -> None:
    v4 = "# Generated by iptables-save v1.8.9 (nf_tables)\n*filter\n:INPUT ACCEPT [0:0]\n"
    v4 += "-A INPUT -p tcp -m tcp --dport 11112 -j ACCEPT\nCOMMIT\n"
    run = Runner(
        {
            "nft -j list ruleset": sample("ip6tables_nft.json"),
            "iptables-save": v4,
            "ip6tables-save": sample("ip6tables_save.txt"),
        }
    )
    fw = probe_firewall(11112, Deadline.after(5), run=run, platform="linux", iface="eth0")
    f4, f6 = fw.family("ipv4"), fw.family("ipv6")
    assert f4 is not None and f6 is not None
    assert f4.verdict is V.ALLOWED and fw.verdict is V.ALLOWED  # top level: IPv4 as before
    assert f6.verdict is V.DEFAULT_DROP
    assert f6.deciding is not None and f6.deciding.source == "ip6tables"
    # the iptables-nft tables are read once, from the -save output (not twice through nft)
    assert {r.source for r in f6.readings} == {"ip6tables", "nftables"}
    nft6 = next(r for r in f6.readings if r.source == "nftables")
    assert not nft6.active
    assert all(r.family == "ipv4" for r in fw.readings)
