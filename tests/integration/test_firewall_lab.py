"""The firewall probe against real host firewalls in the lab PC (nftables, iptables-nft, ufw).

Each test compares what `check` says with what a real connection from the router to the PC's
DICOM listener experiences (drop: timeout, reject: refused, accept: open), then applies the
command the finding's fix names and checks that the port opens.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import SRC, HomeNet, Lab, home_net, requires_lab, requires_tools, start_ip_service
from netcheck_lab import PORT, connect, run_check, run_check_argv, sh, shell_of_fix, start_storescp

pytestmark = [pytest.mark.lab, requires_lab]

HOSTFW = """\
table inet hostfw {{
  chain input {{
    type filter hook input priority 0; policy {policy};
    ct state established,related accept
    iifname "lo" accept
{rules}
  }}
}}
"""


@pytest.fixture
def net() -> Iterator[tuple[HomeNet, str]]:
    with Lab() as lab:
        net = home_net(lab)
        url = start_ip_service(net.inet, 8080)
        start_storescp(net.pc)
        yield net, url


def load(net: HomeNet, policy: str, *rules: str) -> None:
    body = "\n".join(f"    {r}" for r in rules)
    net.pc.nft(HOSTFW.format(policy=policy, rules=body))


def fix_and_recheck(net: HomeNet, url: str, fix: str) -> None:
    sh(net.pc, shell_of_fix(fix))
    after = run_check(net.pc, [url])
    assert not {"FIREWALL_BLOCKS", "FIREWALL_MAY_BLOCK"} & set(after.codes), after.codes
    assert after.probe("firewall")["verdict"] == "allowed"
    assert connect(net.router, net.pc_ip) == "open"


@pytest.mark.parametrize(
    ("rule", "seen"), [("tcp dport 11112 drop", "timeout"), ("tcp dport 11112 reject", "refused")]
)
def test_nft_rule_blocks(net: tuple[HomeNet, str], rule: str, seen: str) -> None:
    n, url = net
    load(n, "accept", "tcp dport 22 accept", rule)
    run = run_check(n.pc, [url])
    f = run.finding("FIREWALL_BLOCKS")
    assert f["severity"] == "fail" and rule in f["summary"]
    assert f["detail"]["source"] == "nftables" and f["detail"]["where"] == "inet hostfw input"
    assert "nft insert rule inet hostfw input tcp dport 11112 accept" in f["fix"]
    assert connect(n.router, n.pc_ip) == seen
    assert run.rc == 1
    fix_and_recheck(n, url, f["fix"])


def test_nft_accept_under_a_drop_policy(net: tuple[HomeNet, str]) -> None:
    n, url = net
    load(n, "drop", "tcp dport 11112 accept")
    run = run_check(n.pc, [url])
    fw = run.probe("firewall")
    assert fw["verdict"] == "allowed" and "tcp dport 11112 accept" in fw["deciding"]["rule"]
    assert not {"FIREWALL_BLOCKS", "FIREWALL_MAY_BLOCK"} & set(run.codes)
    assert connect(n.router, n.pc_ip) == "open"
    # the check's own traffic (UPnP, the IP service) still worked under the drop policy
    assert run.probe("router")["mapping_checked"] is True
    assert run.probe("public_ip")["address"] == n.public_ip


def test_nft_default_drop_policy(net: tuple[HomeNet, str]) -> None:
    n, url = net
    load(n, "drop", "tcp dport 22 accept")
    run = run_check(n.pc, [url])
    # a complete reading: the chain's default drop decides (issue 14: a fail, not a warning)
    f = run.finding("FIREWALL_BLOCKS")
    assert f["severity"] == "fail" and "default" in f["summary"]
    assert "FIREWALL_MAY_BLOCK" not in run.codes
    assert connect(n.router, n.pc_ip) == "timeout"
    fix_and_recheck(n, url, f["fix"])


def test_nft_accept_for_one_source_only(net: tuple[HomeNet, str]) -> None:
    n, url = net
    load(n, "drop", "ip saddr 10.9.0.0/16 tcp dport 11112 accept")
    run = run_check(n.pc, [url])
    f = run.finding("FIREWALL_MAY_BLOCK")
    assert "10.9.0.0/16" in f["summary"]


@requires_tools("iptables", "iptables-save")
def test_iptables_rule_blocks(net: tuple[HomeNet, str]) -> None:
    n, url = net
    sh(n.pc, f"iptables -A INPUT -p tcp --dport {PORT} -j REJECT --reject-with tcp-reset")
    run = run_check(n.pc, [url])
    f = run.finding("FIREWALL_BLOCKS")
    assert f["detail"]["source"] == "iptables" and "REJECT" in f["summary"]
    assert connect(n.router, n.pc_ip) == "refused"
    assert f"iptables -I INPUT -p tcp --dport {PORT} -j ACCEPT" in f["fix"]
    fix_and_recheck(n, url, f["fix"])


@requires_tools("ufw", "iptables")
def test_ufw_deny_and_its_fix(net: tuple[HomeNet, str]) -> None:
    """ufw runs in a private mount namespace over a copy of /etc/ufw: the host's ufw and its
    settings are never touched. `check` runs in that mount namespace to read `ufw status`."""
    n, url = net
    argv = " ".join(run_check_argv(PORT, [url], 5))
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree("/etc/ufw", Path(tmp) / "ufw")
        script = (
            f"mount --make-rprivate / && mount --bind {tmp}/ufw /etc/ufw"
            " && ufw --force enable >/dev/null && ufw allow 22/tcp >/dev/null"
            f" && ufw deny {PORT}/tcp >/dev/null"
            f" && {{ {argv} > {tmp}/before.json || true; }}"
            f" && {{ {argv} > {tmp}/fix.json || true; }}"
        )
        n.pc.run(["unshare", "-m", "sh", "-c", script], env={"PYTHONPATH": str(SRC)}, timeout=60)
        before = json.loads((Path(tmp) / "before.json").read_text())
        f = next(x for x in before["findings"] if x["code"] == "FIREWALL_BLOCKS")
        assert f["detail"]["source"] in ("ufw", "iptables")
        # ufw manages the rules: its own commands, and "allow" alone would be refused
        assert "sudo ufw delete deny 11112/tcp && sudo ufw allow 11112/tcp" in f["fix"]
        readings = {r["source"]: r for r in before["probes"]["firewall"]["readings"]}
        assert readings["ufw"]["verdict"] == "blocked"
        assert readings["ufw"]["rule"] == "11112/tcp DENY IN Anywhere"
        assert readings["iptables"]["verdict"] == "blocked"
        assert connect(n.router, n.pc_ip) == "timeout"
        fix = shell_of_fix(f["fix"])
        again = (
            f"mount --make-rprivate / && mount --bind {tmp}/ufw /etc/ufw && {fix} >/dev/null"
            f" && {{ {argv} > {tmp}/after.json || true; }}"
        )
        n.pc.run(["unshare", "-m", "sh", "-c", again], env={"PYTHONPATH": str(SRC)}, timeout=60)
        after = json.loads((Path(tmp) / "after.json").read_text())
        codes = {x["code"] for x in after["findings"]}
        assert not {"FIREWALL_BLOCKS", "FIREWALL_MAY_BLOCK"} & codes
        assert connect(n.router, n.pc_ip) == "open"
