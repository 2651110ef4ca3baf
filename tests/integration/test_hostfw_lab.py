"""`forward --firewall` against a real policy-drop nftables host in the lab PC (issue 14).

The PC's input chain has the shape of Debian's nftables.conf with policy drop (established,
lo, icmp and ssh allowed), plus a rule of somebody else's that must survive. The port is opened
(dry run first: nothing changes), a real connection from the router proves it, and --remove
leaves `nft list ruleset` byte for byte as it was.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab import HomeNet, Lab, home_net, requires_lab, requires_tools
from netcheck_lab import PORT, connect, start_storescp
from test_json_schema import assert_valid

pytestmark = [pytest.mark.lab, requires_lab]

DEBIAN_DROP = """\
table inet filter {
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iifname "lo" accept
    ip protocol icmp accept
    tcp dport 22 accept
    tcp dport 4242 accept comment "somebody else's"
  }
}
"""


@pytest.fixture
def net() -> Iterator[tuple[HomeNet, dict[str, str]]]:
    with Lab() as lab:
        net = home_net(lab)
        start_storescp(net.pc)
        net.pc.nft(DEBIAN_DROP)
        yield net, {"REVERSEPROBE_STATE_DIR": str(lab.tmp / "state")}


def ruleset(net: HomeNet) -> str:
    return net.pc.run(["nft", "list", "ruleset"]).stdout


def forward(net: HomeNet, env: dict[str, str], *args: str) -> tuple[int, dict[str, Any], str]:
    argv = ["-m", "reverseprobe", "forward", "--firewall", "--port", str(PORT), "--json"]
    argv += ["--timeout", "20", *args]
    res = net.pc.python(argv, check=False, timeout=60, env=env)
    doc = json.loads(res.stdout) if res.stdout.strip().startswith("{") else {}
    if doc:
        assert_valid(doc, "forward")  # every --firewall run follows the schema
    return res.returncode, doc, res.stderr


def test_open_then_remove_leaves_the_ruleset_as_it_was(net: tuple[HomeNet, dict[str, str]]) -> None:
    n, env = net
    before = ruleset(n)
    assert connect(n.router, n.pc_ip) == "timeout"  # the policy drops it

    rc, doc, err = forward(n, env, "--dry-run")
    assert rc == 0, err
    hf = doc["probes"]["host_firewall"]
    assert hf["status"] == "skipped" and hf["dry_run"] and not hf["changed"]
    assert hf["commands"] == [
        f"nft insert rule inet filter input tcp dport {PORT} accept comment "
        f"'\"reverseprobe DICOM {PORT}\"'"
    ]
    assert ruleset(n) == before  # a dry run changes nothing

    rc, doc, err = forward(n, env)
    assert rc == 0, err
    hf = doc["probes"]["host_firewall"]
    assert hf["status"] == "ok" and hf["changed"] and hf["backend"] == "nftables"
    assert doc["probes"]["firewall"]["verdict"] == "allowed"  # read back after the change
    assert not {"FIREWALL_BLOCKS", "FIREWALL_MAY_BLOCK"} & {f["code"] for f in doc["findings"]}
    assert connect(n.router, n.pc_ip) == "open"
    assert ruleset(n) != before

    rc, doc, err = forward(n, env, "--remove", "--dry-run")
    assert rc == 0, err
    assert doc["probes"]["host_firewall"]["commands"][0].startswith("nft delete rule inet filter")
    assert ruleset(n) != before

    rc, doc, err = forward(n, env, "--remove")
    assert rc == 0, err
    assert doc["probes"]["host_firewall"]["changed"]
    assert ruleset(n) == before  # byte for byte, somebody else's rule included
    assert connect(n.router, n.pc_ip) == "timeout"

    rc, doc, err = forward(n, env, "--remove")  # nothing of ours left: nothing touched
    assert rc == 0, err
    assert not doc["probes"]["host_firewall"]["changed"]
    assert ruleset(n) == before


def test_from_allows_only_that_source(net: tuple[HomeNet, dict[str, str]]) -> None:
    n, env = net
    before = ruleset(n)
    rc, doc, err = forward(n, env, "--from", "10.99.0.0/24")  # not the router's address
    assert rc == 0, err
    assert "ip saddr 10.99.0.0/24" in doc["probes"]["host_firewall"]["commands"][0]
    assert connect(n.router, n.pc_ip) == "timeout"
    rc, doc, err = forward(n, env, "--remove")
    assert ruleset(n) == before
    rc, doc, err = forward(n, env, "--from", f"{n.router_lan_ip}/32")
    # the reading after: accepted only from that source, a condition `check` cannot see
    assert rc == 0, err
    assert doc["probes"]["firewall"]["verdict"] == "conditional"
    assert connect(n.router, n.pc_ip) == "open"
    forward(n, env, "--remove")
    assert ruleset(n) == before


NOT_ROOT = (
    "import sys; import reverseprobe.hostfw.apply as a; a.is_elevated = lambda: False; "
    "from reverseprobe.cli import main; sys.exit(main(sys.argv[1:]))"
)


def test_without_root_exits_1_with_the_elevated_command(
    net: tuple[HomeNet, dict[str, str]],
) -> None:
    """The rights check comes first (the process is root in the lab, so it is patched to say
    no): exit 1, one line naming the command to run elevated, nothing changed."""
    n, env = net
    before = ruleset(n)
    argv = ["forward", "--firewall", "--port", str(PORT), "--from", "10.0.0.0/8"]
    res = n.pc.python(["-c", NOT_ROOT, *argv], check=False, timeout=60, env=env)
    assert res.returncode == 1, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr
    assert "`sudo reverseprobe forward --firewall --port 11112 --from 10.0.0.0/8`" in lines[0]
    assert ruleset(n) == before


@requires_tools("ufw", "iptables")
def test_ufw_from_a_per_namespace_configuration(net: tuple[HomeNet, dict[str, str]]) -> None:
    """ufw's configuration comes from /etc/netns/<pc>/ufw: `ip netns exec` binds it over
    /etc/ufw for every command in the PC's namespace (ip-netns(8)), so the host's ufw and its
    settings are never touched. ufw manages the rules: `forward --firewall` uses `ufw allow`,
    and --remove deletes our numbered rules, leaving ufw's rules and files as before."""
    n, env = net
    n.pc.run(["nft", "flush", "ruleset"])  # ufw alone decides here
    shutil.copytree("/etc/ufw", Path("/etc/netns") / n.pc.name / "ufw")
    n.pc.run(["sh", "-c", "ufw --force enable >/dev/null && ufw allow 22/tcp >/dev/null"])

    def state() -> tuple[str, str, str]:
        return (
            n.pc.run(["ufw", "status", "verbose"]).stdout,
            n.pc.run(["iptables", "-S"]).stdout,
            n.pc.run(["cat", "/etc/ufw/user.rules", "/etc/ufw/user6.rules"]).stdout,
        )

    before = state()
    assert "deny (incoming)" in before[0]
    assert connect(n.router, n.pc_ip) == "timeout"
    rc, doc, err = forward(n, env)
    assert rc == 0, err
    hf = doc["probes"]["host_firewall"]
    assert hf["backend"] == "ufw" and hf["changed"], hf
    assert hf["commands"] == [
        f"ufw allow proto tcp from any to any port {PORT} comment 'reverseprobe DICOM {PORT}'"
    ]
    assert connect(n.router, n.pc_ip) == "open"
    rc, doc, err = forward(n, env, "--remove")
    assert rc == 0, err
    assert doc["probes"]["host_firewall"]["backend"] == "ufw"
    assert state() == before
    assert connect(n.router, n.pc_ip) == "timeout"


def test_router_and_pc_in_one_run_proved_by_the_dial_back() -> None:
    """`forward --upnp --firewall --verify`: miniupnpd maps the port, the PC's policy-drop
    chain gets its accept, and the reflector on the internet side reaches the PC. The mapping
    alone is not enough (the dial-back times out in the PC's firewall); --remove undoes both."""
    with Lab() as lab:
        net = home_net(lab)
        net.pc.nft(DEBIAN_DROP)
        env = {"REVERSEPROBE_STATE_DIR": str(lab.tmp / "state")}
        refl = net.inet.python_popen(
            ["-m", "reverseprobe", "reflector", "--listen", "0.0.0.0:8470"], name="reflector"
        )
        net.inet.wait_tcp_listen(8470, proc=refl)
        url = f"http://{net.inet_ip}:8470"
        before = ruleset(net)

        def fwd(*args: str) -> tuple[int, dict[str, Any], str]:
            argv = ["-m", "reverseprobe", "forward", "--upnp", "--port", str(PORT), "--json"]
            res = net.pc.python([*argv, "--timeout", "20", *args], check=False, timeout=60, env=env)
            doc = json.loads(res.stdout)
            assert_valid(doc, "forward")
            return res.returncode, doc, res.stderr

        rc, doc, err = fwd("--verify", "--reflector", url)
        codes = {f["code"] for f in doc["findings"]}
        assert rc == 1 and "UPNP_MAPPING_OK" in codes and "INBOUND_TIMEOUT" in codes, (codes, err)

        rc, doc, err = fwd("--firewall", "--verify", "--reflector", url)
        codes = {f["code"] for f in doc["findings"]}
        assert rc == 0, (codes, err, refl.log())
        assert {"UPNP_MAPPING_OK", "INBOUND_OK"} <= codes
        assert doc["probes"]["host_firewall"]["changed"]
        assert doc["probes"]["inbound"]["nonce_seen"] is True

        rc, doc, err = fwd("--firewall", "--remove")
        assert rc == 0, err
        assert doc["probes"]["mapping"]["action"] == "removed"
        assert ruleset(net) == before
