from __future__ import annotations

import pytest

from reverseprobe import config as c
from reverseprobe.config.validate import (
    parse_aet,
    parse_host,
    parse_host_port,
    parse_port,
    parse_port_ranges,
    parse_timeout,
    parse_url,
    split_env_list,
)


@pytest.mark.parametrize("value", ["1", "104", "11112", "65535", " 80 "])
def test_port_accepts_range(value: str) -> None:
    assert 1 <= parse_port(value) <= 65535


@pytest.mark.parametrize("value", ["0", "65536", "-1", "abc", "", "1.5", "0x50"])
def test_port_rejects_and_names_the_value(value: str) -> None:
    with pytest.raises(c.BadInput) as ei:
        parse_port(value)
    assert repr(value) in str(ei.value)
    assert "\n" not in str(ei.value)


@pytest.mark.parametrize("value", ["MYSCU", "A", "ANY-SCP", "A" * 16, "MY SCU", " PAD "])
def test_aet_accepts_default_repertoire(value: str) -> None:
    assert parse_aet(value) == value.strip()


@pytest.mark.parametrize(
    "value,why",
    [
        ("", "empty"),
        ("    ", "spaces"),
        ("A" * 17, "longer than 16"),
        ("A\\B", "backslash"),
        ("A\tB", "printable"),
        ("ÄRZTE", "printable"),
        ("A\x00", "printable"),
    ],
)
def test_aet_rejects(value: str, why: str) -> None:
    with pytest.raises(c.BadInput, match=why):
        parse_aet(value)


@pytest.mark.parametrize(
    "value,expected",
    [
        ("pacs.example.org", "pacs.example.org"),
        ("10.0.0.1", "10.0.0.1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("localhost", "localhost"),
    ],
)
def test_host(value: str, expected: str) -> None:
    assert parse_host(value) == expected


@pytest.mark.parametrize("value", ["", "-bad.example", "a..b", "under_score.org", "1.2.3.256"])
def test_host_rejects(value: str) -> None:
    with pytest.raises(c.BadInput):
        parse_host(value)


def test_host_port_forms() -> None:
    assert parse_host_port("pacs:104") == ("pacs", 104)
    assert parse_host_port("[2001:db8::1]:11112") == ("2001:db8::1", 11112)
    for bad in ("pacs", "pacs:0", "2001:db8::1:104", ":104", "pacs:"):
        with pytest.raises(c.BadInput):
            parse_host_port(bad)


def test_url() -> None:
    assert parse_url("https://reflector.example.org:8470") == "https://reflector.example.org:8470"
    for bad in ("ftp://x", "reflector.example.org", "http://", "http://x:99999/", "http://a_b/"):
        with pytest.raises(c.BadInput):
            parse_url(bad)


def test_timeout() -> None:
    assert parse_timeout("2.5") == 2.5
    for bad in ("0", "-1", "nan", "inf", "x", "1e9"):
        with pytest.raises(c.BadInput):
            parse_timeout(bad)


def test_port_ranges() -> None:
    assert parse_port_ranges("104,11112,1024-65535") == (
        (104, 104),
        (11112, 11112),
        (1024, 65535),
    )
    for bad in ("", "1,,2", "10-5", "0-10", "70000"):
        with pytest.raises(c.BadInput):
            parse_port_ranges(bad)


def test_default_allow_ranges_are_the_default_allow_ports_parsed() -> None:
    """config/__init__ holds them parsed so that it needs no validator (test_layers)."""
    assert parse_port_ranges(c.DEFAULT_ALLOW_PORTS) == c.DEFAULT_ALLOW_RANGES
    assert c.ReflectorConfig().allow_ports == c.DEFAULT_ALLOW_RANGES


def test_env_list_split() -> None:
    assert split_env_list("http://a, http://b  http://c") == ["http://a", "http://b", "http://c"]
    assert split_env_list(None) == []
