"""hostfw's pure argv builders and the open/remove logic with a fake runner (issue 14).

The real firewalls are in tests/integration/test_hostfw_lab.py; here the parts that need a
Windows or macOS host, firewalld or a listing we write ourselves."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from reverseprobe.hostfw import apply
from reverseprobe.hostfw import builders as b
from reverseprobe.model import Status
from reverseprobe.model.firewall import FirewallResult, Reading, Verdict
from reverseprobe.probes.firewall import CommandOutput

MARK = b.mark(11112)


class Fake:
    """A runner that answers listings from a table and records every command it is given."""

    def __init__(self, answers: dict[tuple[str, ...], CommandOutput] | None = None) -> None:
        self.answers = answers or {}
        self.ran: list[tuple[str, ...]] = []

    def __call__(self, argv: Sequence[str], timeout: float) -> CommandOutput:
        self.ran.append(tuple(argv))
        return self.answers.get(tuple(argv), CommandOutput(0, ""))


def fw(
    reading: Reading, verdict: Verdict | None = None, managers: tuple[str, ...] = ()
) -> FirewallResult:
    return FirewallResult(
        status=Status.OK,
        port=11112,
        platform="linux",
        readings=(reading,),
        verdict=verdict or reading.verdict,
        deciding=reading,
        managers=managers,
    )


def test_nft_open_and_find_ours_by_comment() -> None:
    argv = b.nft_open("inet filter input", 11112, "192.0.2.7/32")
    assert b.show(argv) == (
        "nft insert rule inet filter input ip saddr 192.0.2.7/32 tcp dport 11112 accept "
        "comment '\"reverseprobe DICOM 11112\"'"
    )
    listing = {"nftables": [
        {"metainfo": {}},
        {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 7,
                  "comment": MARK}},
        {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 8,
                  "comment": "reverseprobe DICOM 104"}},  # ours, for another port
        {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 9}},
    ]}  # fmt: skip
    assert b.nft_ours(json.dumps(listing), 11112) == [
        ("nft", "delete", "rule", "inet", "filter", "input", "handle", "7")
    ]
    assert b.nft_ours("not json", 11112) == []


def test_iptables_ours_turns_our_append_into_a_delete() -> None:
    listing = (
        "-P INPUT DROP\n"
        '-A INPUT -p tcp -m tcp --dport 11112 -m comment --comment "reverseprobe DICOM 11112" '
        "-j ACCEPT\n"
        '-A INPUT -p tcp -m tcp --dport 22 -m comment --comment "ssh" -j ACCEPT\n'
    )
    assert b.iptables_ours("iptables", "filter", listing, 11112) == [
        ("iptables", "-t", "filter", "-D", "INPUT", "-p", "tcp", "-m", "tcp", "--dport", "11112",
         "-m", "comment", "--comment", MARK, "-j", "ACCEPT"),
    ]  # fmt: skip


def test_ufw_ours_deletes_highest_number_first() -> None:
    numbered = (
        "Status: active\n\n     To                         Action      From\n"
        "     --                         ------      ----\n"
        "[ 1] 22/tcp                     ALLOW IN    Anywhere\n"
        f"[ 2] 11112/tcp                  ALLOW IN    Anywhere                   # {MARK}\n"
        f"[ 3] 11112/tcp (v6)             ALLOW IN    Anywhere (v6)              # {MARK}\n"
    )
    assert b.ufw_ours(numbered, 11112) == [
        ("ufw", "--force", "delete", "3"),
        ("ufw", "--force", "delete", "2"),
    ]
    assert b.ufw_open(11112, first=True)[:3] == ("ufw", "insert", "1")


def test_firewalld_runtime_and_permanent_recorded_then_removed(tmp_path: Path) -> None:
    r = Reading("firewalld", True, Verdict.DEFAULT_DROP, where="zone public")
    run = Fake({
        ("firewall-cmd", "--zone=public", "--query-port=11112/tcp"): CommandOutput(1, "no"),
        ("firewall-cmd", "--permanent", "--zone=public", "--query-port=11112/tcp"):
            CommandOutput(1, "no"),
    })  # fmt: skip
    req = apply.Request(11112, permanent=True)
    res = apply.open_port(req, fw(r, managers=("firewalld",)), run, tmp_path)
    assert res.status is Status.OK and res.changed
    assert res.commands == (
        "firewall-cmd --zone=public --add-port=11112/tcp",
        "firewall-cmd --permanent --zone=public --add-port=11112/tcp",
    )
    rm = apply.remove_port(apply.Request(11112), Fake(), tmp_path, platform="linux")
    assert "firewall-cmd --zone=public --remove-port=11112/tcp" in rm.commands
    assert "firewall-cmd --permanent --zone=public --remove-port=11112/tcp" in rm.commands
    again = apply.remove_port(apply.Request(11112), Fake(), tmp_path, platform="linux")
    assert not any("firewall-cmd" in c for c in again.commands)  # forgotten once removed


def test_firewalld_port_already_open_is_not_ours(tmp_path: Path) -> None:
    """A port somebody else opened is never recorded, so --remove never takes it out."""
    r = Reading("firewalld", True, Verdict.DEFAULT_DROP, where="zone public")
    res = apply.open_port(apply.Request(11112), fw(r, managers=("firewalld",)), Fake(), tmp_path)
    assert res.commands == () and not res.changed
    rm = apply.remove_port(apply.Request(11112), Fake(), tmp_path, platform="linux")
    assert not any("firewall-cmd" in c for c in rm.commands)


def test_windows_rule_named_by_our_mark(tmp_path: Path) -> None:
    r = Reading("windows", True, Verdict.DEFAULT_DROP, where="Private profile")
    run = Fake()
    res = apply.open_port(apply.Request(11112, source="192.0.2.0/24"), fw(r), run, tmp_path)
    assert res.status is Status.OK
    assert run.ran[-1] == (
        "netsh", "advfirewall", "firewall", "add", "rule", f"name={MARK}", "dir=in",
        "action=allow", "protocol=TCP", "localport=11112", "remoteip=192.0.2.0/24",
    )  # fmt: skip
    rm = apply.remove_port(apply.Request(11112), run, tmp_path, platform="win32")
    assert run.ran[-1] == b.netsh_remove(11112) and rm.status is Status.OK


def test_windows_block_rule_is_not_worked_around(tmp_path: Path) -> None:
    r = Reading(
        "windows", True, Verdict.BLOCKED, rule="Block legacy DICOM", where="Private profile"
    )
    run = Fake()
    res = apply.open_port(apply.Request(11112), fw(r), run, tmp_path)
    assert res.status is Status.FAIL and "block rule wins" in (res.reason or "") and run.ran == []


def test_macos_allows_the_listener_program_and_removes_only_it(tmp_path: Path) -> None:
    r = Reading("macos", True, Verdict.DEFAULT_DROP, where="application firewall")
    run = Fake()
    res = apply.open_port(apply.Request(11112), fw(r), run, tmp_path, "/opt/bin/storescp")
    assert res.status is Status.OK and run.ran == [
        (b.SOCKETFILTERFW, "--add", "/opt/bin/storescp"),
        (b.SOCKETFILTERFW, "--unblockapp", "/opt/bin/storescp"),
    ]
    nolistener = apply.open_port(apply.Request(11112), fw(r), Fake(), tmp_path)
    assert nolistener.status is Status.FAIL and "start the receiver" in (nolistener.reason or "")
    rm = apply.remove_port(apply.Request(11112), Fake(), tmp_path, platform="darwin")
    assert rm.commands == (b.show(b.alf_remove("/opt/bin/storescp")),)


def test_dry_run_runs_no_change_and_already_allowed_does_nothing(tmp_path: Path) -> None:
    r = Reading("nftables", True, Verdict.DEFAULT_DROP, where="inet filter input")
    run = Fake()
    res = apply.open_port(apply.Request(11112, dry_run=True), fw(r), run, tmp_path)
    assert res.status is Status.SKIPPED and run.ran == [] and len(res.commands) == 1
    ok = Reading("nftables", True, Verdict.ALLOWED, "tcp dport 11112 accept", "inet filter input")
    res = apply.open_port(apply.Request(11112), fw(ok), run, tmp_path)
    assert res.status is Status.OK and not res.changed and run.ran == []


def test_a_failing_command_is_a_failure_naming_it(tmp_path: Path) -> None:
    r = Reading("nftables", True, Verdict.DEFAULT_DROP, where="inet filter input")
    argv = b.nft_open("inet filter input", 11112)
    run = Fake({argv: CommandOutput(1, "", "Error: Could not process rule: No such file")})
    res = apply.open_port(apply.Request(11112), fw(r), run, tmp_path)
    assert res.status is Status.FAIL and "No such file" in (res.reason or "")
