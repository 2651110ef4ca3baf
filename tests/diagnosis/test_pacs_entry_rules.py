"""Every PACS_ENTRY_WRONG part, pure (issue 13; SPEC cause 2): the entry the PACS administrator
made against the one entry the measurements give; NAT_HAIRPIN for a PACS inside given the
public address."""

from __future__ import annotations

from typing import Any

import pytest

from reverseprobe.config import PacsEntryGiven
from reverseprobe.config.validate import parse_pacs_entry
from reverseprobe.diagnosis.pacs_entry_check import EntryTruth, entry_rules
from reverseprobe.model import Finding, PacsEntry, Severity

LAN, PUBLIC = "192.168.2.10", "203.0.113.20"


def _truth(**kw: Any) -> EntryTruth:
    outside = kw.pop("pacs_outside", True)
    host = kw.pop("host", LAN if outside is False else PUBLIC)
    base: dict[str, Any] = dict(
        entry=PacsEntry("MYSCU", host, 11112),
        aet="MYSCU",
        lan=LAN,
        public=PUBLIC,
        behind_nat=True,
        pacs_outside=outside,
    )
    base.update(kw)
    return EntryTruth(**base)


def _by_code(fs: list[Finding]) -> dict[str, Finding]:
    return {f.code: f for f in fs}


def _wrong(entry: str, t: EntryTruth) -> Finding:
    fs = _by_code(entry_rules(parse_pacs_entry(entry), t))
    assert "PACS_ENTRY_OK" not in fs
    return fs["PACS_ENTRY_WRONG"]


def test_right_entry_passes() -> None:
    fs = _by_code(entry_rules(parse_pacs_entry(f"MYSCU@{PUBLIC}:11112"), _truth()))
    assert set(fs) == {"PACS_ENTRY_OK"} and fs["PACS_ENTRY_OK"].severity is Severity.PASS


def test_ae_title() -> None:
    f = _wrong(f"OTHERSCU@{PUBLIC}:11112", _truth())
    assert f.severity is Severity.FAIL
    assert f.detail["wrong"] == ["the AE title is 'OTHERSCU', this SCU is 'MYSCU'"]
    assert "AE title MYSCU" in f.fix


def test_port() -> None:
    f = _wrong(f"MYSCU@{PUBLIC}:104", _truth())
    assert f.detail["wrong"] == ["the port is 104, the PACS must dial 11112"]
    assert "port 11112" in f.fix and f"MYSCU @ {PUBLIC}:11112" in f.fix


def test_localhost() -> None:
    f = _wrong("MYSCU@127.0.0.1:11112", _truth())
    assert "loopback" in f.detail["wrong"][0] and f"host {PUBLIC}" in f.fix


def test_container_address() -> None:
    t = _truth(virtual_address="172.17.0.2")
    f = _wrong("MYSCU@172.17.0.2:11112", t)
    assert "container" in f.detail["wrong"][0] and "NAT_VIRTUAL" in f.fix


def test_lan_address_that_changed() -> None:
    f = _wrong("MYSCU@192.168.2.77:11112", _truth(pacs_outside=False))
    assert f.severity is Severity.FAIL
    assert f"not this PC's address ({LAN})" in f.detail["wrong"][0]
    assert f"host {LAN}" in f.fix and "DHCP reservation" in f.fix


def test_lan_address_that_changed_pacs_outside_names_the_public() -> None:
    f = _wrong("MYSCU@192.168.2.77:11112", _truth())
    assert f"a PACS outside must dial {PUBLIC}" in f.detail["wrong"][0]


def test_public_address_that_changed() -> None:
    f = _wrong("MYSCU@81.2.69.160:11112", _truth())
    assert f"not this network's public address ({PUBLIC})" in f.detail["wrong"][0]
    assert f"host {PUBLIC}" in f.fix


def test_lan_address_for_a_pacs_outside_fails() -> None:
    f = _wrong(f"MYSCU@{LAN}:11112", _truth(pacs_outside=True))
    assert f.severity is Severity.FAIL
    assert "the PACS is outside this network" in f.detail["wrong"][0]


def test_lan_address_with_the_pacs_place_unknown_warns() -> None:
    f = _wrong(f"MYSCU@{LAN}:11112", _truth(pacs_outside=None))
    assert f.severity is Severity.WARN  # right for a PACS on this LAN: check cannot tell


def test_every_wrong_part_at_once_is_named() -> None:
    f = _wrong("OTHER@192.168.2.77:104", _truth(pacs_outside=False))
    assert len(f.detail["wrong"]) == 3 and f.severity is Severity.FAIL
    assert f.detail["given"] == {"aet": "OTHER", "host": "192.168.2.77", "port": 104}
    assert f.detail["expected"]["host"] == LAN


def test_lan_entry_for_a_pacs_inside_passes() -> None:
    fs = _by_code(entry_rules(parse_pacs_entry(f"MYSCU@{LAN}:11112"), _truth(pacs_outside=False)))
    assert set(fs) == {"PACS_ENTRY_OK"}


def test_unmeasured_parts_are_never_a_pass() -> None:
    t = _truth(aet=None)
    fs = _by_code(entry_rules(parse_pacs_entry(f"MYSCU@{PUBLIC}:11112"), t))
    assert fs == {}  # the AE title could not be compared: no PACS_ENTRY_OK
    t = _truth(host=None, public=None, lan=None)
    assert _by_code(entry_rules(parse_pacs_entry("MYSCU@10.1.1.1:11112"), t)) == {}
    fs = _by_code(entry_rules(PacsEntryGiven("MYSCU", "pacs.example", 11112), _truth()))
    assert "PACS_ENTRY_OK" not in fs  # a DNS name is not compared here


@pytest.mark.parametrize(
    ("hairpin", "said"),
    [(True, "the router hairpins"), (False, "does not hairpin"), (None, "was not measured")],
)
def test_public_entry_for_a_pacs_inside_is_hairpin(hairpin: bool | None, said: str) -> None:
    t = _truth(pacs_outside=False, hairpin=hairpin)
    fs = _by_code(entry_rules(parse_pacs_entry(f"MYSCU@{PUBLIC}:11112"), t))
    assert set(fs) == {"NAT_HAIRPIN"}
    f = fs["NAT_HAIRPIN"]
    assert f.severity is Severity.WARN and said in f.summary
    assert f"MYSCU @ {LAN}:11112" in f.fix and f.detail["hairpin"] is hairpin


def test_public_entry_for_a_pacs_outside_is_no_hairpin() -> None:
    fs = entry_rules(parse_pacs_entry(f"MYSCU@{PUBLIC}:11112"), _truth(hairpin=False))
    assert "NAT_HAIRPIN" not in _by_code(fs)
