"""probes/firewall.py with an injected command runner: which tools run, how unreadable ones are
reported, and that nothing is claimed from what could not be read."""

from __future__ import annotations

from collections.abc import Sequence

from conftest import TESTS
from reverseprobe.config import CheckConfig
from reverseprobe.model import Status
from reverseprobe.probes.firewall import CommandOutput, FirewallResult, check_probe, probe_firewall
from reverseprobe.probes.fwparse.model import Verdict
from reverseprobe.runner import Deadline

SAMPLES = TESTS / "samples" / "firewall"
NOT_INSTALLED = CommandOutput(None, "", "not installed")


class FakeRunner:
    def __init__(self, outputs: dict[str, CommandOutput]):
        self.outputs = outputs
        self.calls: list[str] = []

    def __call__(self, argv: Sequence[str], timeout: float) -> CommandOutput:
        assert timeout > 0
        key = " ".join(argv)
        self.calls.append(key)
        for prefix, out in self.outputs.items():
            if key.startswith(prefix):
                return out
        return NOT_INSTALLED


def ok(text: str) -> CommandOutput:
    return CommandOutput(0, text)


def probe(run: FakeRunner, platform: str = "linux", **kw: str) -> FirewallResult:
    return probe_firewall(11112, Deadline.after(5), run=run, platform=platform, iface="eth0", **kw)


def test_ufw_is_asked_only_when_its_rules_are_loaded() -> None:
    run = FakeRunner(
        {
            "nft": ok('{"nftables": []}'),
            "iptables-save": ok((SAMPLES / "ufw_iptables_save.txt").read_text()),
            "ufw status": ok((SAMPLES / "ufw_status_verbose.txt").read_text()),
        }
    )
    r = probe(run)
    assert "ufw status verbose" in run.calls
    assert r.status is Status.OK and r.verdict is Verdict.BLOCKED and r.managers == ("ufw",)
    assert {x.source for x in r.readings} == {"iptables", "nftables", "ufw"}
    quiet = FakeRunner({"nft": ok('{"nftables": []}'), "ufw status": ok("Status: active\n")})
    assert probe(quiet).verdict is Verdict.OPEN
    assert "ufw status verbose" not in quiet.calls  # inactive ufw leaves no chains: not asked


def test_iptables_nft_tables_are_not_read_twice() -> None:
    run = FakeRunner(
        {
            "nft": ok((SAMPLES / "iptables_nft_custom.json").read_text()),
            "iptables-save": ok((SAMPLES / "iptables_nft_custom.txt").read_text()),
        }
    )
    r = probe(run)
    by = {x.source: x for x in r.readings}
    assert by["nftables"].verdict is Verdict.OPEN  # its ip filter table was left to iptables
    assert by["iptables"].verdict is Verdict.DEFAULT_DROP and r.verdict is Verdict.DEFAULT_DROP


def test_unprivileged_user_gets_nothing_claimed_and_told_why() -> None:
    denied = CommandOutput(1, "", "Error: Operation not permitted (you must be root)")
    run = FakeRunner({"nft": denied, "iptables-save": denied, "iptables-legacy-save": denied})
    r = probe(run)
    assert r.status is Status.ERROR and r.verdict is None and r.readings == ()
    assert r.reason and "not checked" in r.reason and "run as administrator/root" in r.reason
    assert "firewall-cmd --list-all-zones" in run.calls  # polkit may let firewalld answer


def test_no_tool_at_all_is_skipped() -> None:
    r = probe(FakeRunner({}))
    assert r.status is Status.SKIPPED and r.reason and "no firewall tool" in r.reason


def test_garbage_and_timeouts_are_unread_not_claims() -> None:
    run = FakeRunner(
        {
            "nft": ok("{not json"),
            "iptables-save": CommandOutput(None, "", "no answer within 3.0 s"),
        }
    )
    r = probe(run)
    assert r.status is Status.ERROR and r.verdict is None
    assert r.reason and "nftables: not JSON" in r.reason and "no answer within" in r.reason


def test_firewalld_table_asks_firewall_cmd() -> None:
    nft_json = '{"nftables": [{"table": {"family": "inet", "name": "firewalld", "handle": 1}}]}'
    run = FakeRunner(
        {
            "nft": ok(nft_json),
            "firewall-cmd --list-all-zones": ok(
                (SAMPLES / "firewalld_list_all_zones.txt").read_text()
            ),
        }
    )
    r = probe(run)
    assert r.managers == ("firewalld",) and r.verdict is Verdict.ALLOWED  # 11112/tcp in public


def test_windows_and_macos_dispatch() -> None:
    win = FakeRunner(
        {
            "netsh advfirewall show": ok(
                (SAMPLES / "netsh_currentprofile_private.txt").read_text()
            ),
            "netsh advfirewall firewall": ok((SAMPLES / "netsh_rules_in_verbose.txt").read_text()),
        }
    )
    r = probe(win, platform="win32", program=r"C:\dcmtk\storescp.exe")
    assert r.verdict is Verdict.DEFAULT_DROP and r.program == r"C:\dcmtk\storescp.exe"
    mac = FakeRunner(
        {"/usr/libexec/ApplicationFirewall/socketfilterfw": ok(
            (SAMPLES / "macos_alf_blockall.txt").read_text())}
    )  # fmt: skip
    r = probe(mac, platform="darwin", program="/usr/local/bin/storescp")
    assert r.verdict is Verdict.BLOCKED
    assert r.reason and "pf: not read" in r.reason
    other = probe(FakeRunner({}), platform="sunos5")
    assert other.status is Status.SKIPPED


def test_check_probe_uses_the_configured_port() -> None:
    r = check_probe(CheckConfig(port=4242))(Deadline.after(3))
    assert isinstance(r, FirewallResult) and r.port == 4242
