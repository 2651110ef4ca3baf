"""watch's comparison of two rounds (pure) and its bad input (exit 2 before anything runs)."""

from __future__ import annotations

import io

import pytest

from reverseprobe import config as c
from reverseprobe.cli import main
from reverseprobe.commands.watch import Snapshot, _merge, changes
from reverseprobe.environment import Environment

CFG = c.WatchConfig(port=11112, aet="MYSCU")
BASE = Snapshot(
    public_ip="203.0.113.5",
    mapping="192.168.2.2:11112",
    lan="192.168.2.2",
    listener=("42 storescp",),
    inbound="ok",
)


def whats(new: Snapshot) -> dict[str, str]:
    return {ch.what: ch.message for ch in changes(BASE, new, CFG)}


def test_nothing_changed_and_unmeasured_is_no_change() -> None:
    assert changes(BASE, BASE, CFG) == []
    assert changes(BASE, Snapshot(), CFG) == []  # a round that measured nothing


def test_each_change_is_named() -> None:
    got = whats(Snapshot(public_ip="198.51.100.7", mapping="", listener=(), inbound="fail"))
    assert "MYSCU @ 198.51.100.7:11112" in got["public_ip"]
    assert "gone" in got["mapping"]
    assert "nothing listens" in got["listener"]
    assert "fails now" in got["inbound"]
    other = whats(Snapshot(mapping="192.168.2.3:11112", lan="192.168.2.2"))
    assert "another host, 192.168.2.3:11112" in other["mapping"]
    replaced = whats(Snapshot(listener=("77 dcmrecv",)))
    assert "42 storescp -> 77 dcmrecv" in replaced["listener"]


def test_a_missed_round_keeps_the_last_value() -> None:
    """A flaky IP service must not make the next good answer look like a change."""
    merged = _merge(BASE, Snapshot(listener=("42 storescp",)))
    assert merged.public_ip == BASE.public_ip
    assert changes(merged, Snapshot(public_ip=BASE.public_ip), CFG) == []


@pytest.mark.parametrize(
    ("argv", "bad"),
    [
        (["--interval", "0.5"], "0.5"),
        (["--interval", "x"], "x"),
        (["--count", "0"], "0"),
        (["--metrics", "nohost:"], "nohost:"),
        (["--metrics", "70000"], "70000"),
    ],
)
def test_bad_input_exits_2_naming_the_value(argv: list[str], bad: str) -> None:
    err = io.StringIO()
    env = Environment(stdout=io.StringIO(), stderr=err, environ={}, stdout_isatty=False,
                      stderr_isatty=False)  # fmt: skip
    assert main(["watch", "--no-upnp", "--no-public-ip", *argv], env) == 2
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and bad in lines[0]
