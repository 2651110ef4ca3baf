"""The hairpin measurement and the checklist's per-PACS entry rule (issue 13), on loopback:
a connection that reaches our own listener is a hairpin; one refused is not."""

from __future__ import annotations

import socket

from reverseprobe.config.validate import parse_pacs_entry
from reverseprobe.diagnosis.pacs_entry_check import move_rules
from reverseprobe.model import PacsEntry, Severity
from reverseprobe.probes.hairpin import probe_hairpin


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_reaching_our_own_listener_is_a_hairpin() -> None:
    ans = probe_hairpin("127.0.0.1", _free_port(), timeout=5.0)
    assert ans.hairpins is True and "our listener" in ans.how


def test_refused_is_no_hairpin() -> None:
    # the port is held (bound, not listening): our listener cannot take it and the
    # connection is refused, as miniupnpd refuses a hairpin
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        ans = probe_hairpin("127.0.0.1", port, timeout=5.0)
    assert ans.hairpins is False and "refused" in ans.how


def test_no_time_is_not_measured() -> None:
    assert probe_hairpin("127.0.0.1", _free_port(), timeout=0).hairpins is None


LAN, PUBLIC = "192.168.2.10", "203.0.113.20"
INSIDE = {"lan": LAN, "toward_pacs": LAN, "pacs_ip": "192.168.2.50", "public": PUBLIC}
OUTSIDE = {**INSIDE, "pacs_ip": "203.0.113.99"}


def test_move_rules_pacs_inside_given_public_is_hairpin() -> None:
    fs = move_rules(
        parse_pacs_entry(f"MYSCU@{PUBLIC}:11112"),
        PacsEntry("MYSCU", LAN, 11112),
        INSIDE,
        aet="MYSCU",
        hairpin=False,
        target="archive",
    )
    assert [f.code for f in fs] == ["NAT_HAIRPIN"]
    assert fs[0].severity is Severity.WARN and fs[0].target == "archive"
    assert "does not hairpin" in fs[0].summary and LAN in fs[0].fix


def test_move_rules_pacs_outside_given_lan_fails() -> None:
    fs = move_rules(
        parse_pacs_entry(f"MYSCU@{LAN}:11112"),
        PacsEntry("MYSCU", PUBLIC, 11112),
        OUTSIDE,
        aet="MYSCU",
    )
    assert [f.code for f in fs] == ["PACS_ENTRY_WRONG"]
    assert fs[0].severity is Severity.FAIL and "outside" in fs[0].summary


def test_move_rules_pacs_inside_given_lan_passes() -> None:
    fs = move_rules(
        parse_pacs_entry(f"MYSCU@{LAN}:11112"), PacsEntry("MYSCU", LAN, 11112), INSIDE, aet="MYSCU"
    )
    assert [f.code for f in fs] == ["PACS_ENTRY_OK"]
