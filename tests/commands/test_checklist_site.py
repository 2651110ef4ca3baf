"""The site file: what it accepts, and errors that name the file, the line and the key."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from conftest import REPO
from reverseprobe.config import BadInput
from reverseprobe.sitefile import Site, key_line, load_site, parse_site

GOOD = """\
# comment
[site]
name = "Reading room"
aet = "MYSCU"
port = 11112
reflector = "http://10.0.0.1:8470"
ip_services = ["http://10.0.0.1:8080/"]
upnp = false

[[pacs]]
name = "main archive"
host = "pacs.example.org"
port = 104
aet = "ARCHIVE"
study = "1.2.840.10008.1"
try_cget = true

[[pacs]]
name = "second"
host = "2001:db8::5"
port = 11112
aet = "SECOND"
timeout = 30
"""


def load(tmp_path: Path, text: str, name: str = "site.toml") -> Site:
    p = tmp_path / name
    p.write_text(text)
    return load_site(p)


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(BadInput) as exc:
        load(tmp_path, text)
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_good_file(tmp_path: Path) -> None:
    s = load(tmp_path, GOOD)
    assert (s.name, s.aet, s.port, s.upnp, s.public_ip) == (
        "Reading room",
        "MYSCU",
        11112,
        False,
        True,
    )
    assert s.reflector == "http://10.0.0.1:8470"
    assert s.ip_services == ("http://10.0.0.1:8080/",)
    assert [p.name for p in s.pacs] == ["main archive", "second"]
    assert s.pacs[0].try_cget and s.pacs[0].study == "1.2.840.10008.1"
    assert s.pacs[1].host == "2001:db8::5" and s.pacs[1].timeout == 30.0


def test_defaults_and_name_from_file(tmp_path: Path) -> None:
    s = load(tmp_path, '[site]\naet = "A"\n', name="ward7.toml")
    assert (s.name, s.port, s.reflector, s.ip_services, s.pacs) == ("ward7", 11112, None, None, ())


def test_example_file_is_valid() -> None:
    s = load_site(REPO / "examples" / "site.toml")
    assert s.aet == "MYSCU" and len(s.pacs) == 2


@pytest.mark.parametrize(
    ("old", "new", "line", "key"),
    [
        ("upnp = false", "upnpp = false", 8, '"upnpp"'),  # unknown key
        ("port = 104", "port = 70000", 13, '"port" in [[pacs]] #1'),  # bad value
        (
            'port = 11112\naet = "SECOND"',
            'port = "11112"\naet = "SECOND"',
            21,
            '"port" in [[pacs]] #2',
        ),
        ('aet = "ARCHIVE"', 'aet = "ARCHIVE\\\\X"', 14, '"aet" in [[pacs]] #1'),
        ('aet = "MYSCU"', 'aet = "WAY_TOO_LONG_AE_TITLE"', 4, '"aet" in [site]'),
        ('host = "pacs.example.org"', 'host = "pacs..example"', 12, '"host"'),
        ('study = "1.2.840.10008.1"', 'study = "1.2.abc"', 15, '"study"'),
        ("try_cget = true", 'try_cget = "yes"', 16, '"try_cget"'),
        ("timeout = 30", "timeout = -1", 23, '"timeout" in [[pacs]] #2'),
        ('reflector = "http://10.0.0.1:8470"', 'reflector = "ftp://x"', 6, '"reflector"'),
        (
            'ip_services = ["http://10.0.0.1:8080/"]',
            'ip_services = "http://x/"',
            7,
            '"ip_services"',
        ),
        ('name = "second"', 'name = "MAIN ARCHIVE"', 19, '"name" in [[pacs]] #2'),  # duplicate
        ('name = "second"', 'name = "site"', 19, '"name" in [[pacs]] #2'),  # reserved
    ],
)
def test_errors_name_file_line_and_key(
    tmp_path: Path, old: str, new: str, line: int, key: str
) -> None:
    assert old in GOOD
    msg = error(tmp_path, GOOD.replace(old, new, 1))
    assert msg.startswith(f"{tmp_path / 'site.toml'}:{line}: "), msg
    assert key in msg, msg


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    msg = error(tmp_path, GOOD.replace('aet = "ARCHIVE"', 'ae_title = "ARCHIVE"'))
    assert ":14: " in msg and '"ae_title"' in msg and 'did you mean "aet"' in msg


def test_missing_key_points_at_its_table(tmp_path: Path) -> None:
    msg = error(tmp_path, GOOD.replace('host = "2001:db8::5"\n', ""))
    assert re.search(
        r"site\.toml:18: \[\[pacs\]\] #2 \(\"second\"\): the key \"host\" is missing", msg
    ), msg
    msg = error(tmp_path, GOOD.replace('aet = "MYSCU"\n', ""))
    assert ':2: key "site": the key "aet" is missing' in msg, msg


def test_missing_site_table(tmp_path: Path) -> None:
    assert "[site] table is missing" in error(tmp_path, "[[pacs]]\nname = 'x'\n")


def test_unknown_table(tmp_path: Path) -> None:
    msg = error(tmp_path, GOOD + "\n[sites]\nx = 1\n")
    assert ':25: key "sites": unknown key; did you mean "site"?' in msg, msg


def test_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    msg = error(tmp_path, GOOD.replace("port = 104", "port = = 104"))
    assert re.match(
        rf"{re.escape(str(tmp_path / 'site.toml'))}:13:\d+: TOML syntax error: ", msg
    ), msg


def test_duplicate_key_is_a_syntax_error(tmp_path: Path) -> None:
    msg = error(tmp_path, GOOD.replace("port = 104", "port = 104\nport = 105"))
    assert ":14:" in msg and "TOML syntax error" in msg, msg


def test_not_utf8_and_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "bad.toml"
    p.write_bytes(b'[site]\naet = "\xff"\n')
    with pytest.raises(BadInput, match=r"bad\.toml:2: not UTF-8"):
        load_site(p)
    with pytest.raises(BadInput, match="cannot read site file"):
        load_site(tmp_path / "nope.toml")


def test_key_line_ignores_look_alikes_in_strings_and_comments(tmp_path: Path) -> None:
    text = '[site]\nname = """\nport = 1\n"""\n# port = 2\naet = "A"\nport = 0\n'
    msg = error(tmp_path, text)
    assert ":7: " in msg and '"port"' in msg, msg


def test_key_line_inline_and_dotted_keys() -> None:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # as sitefile.py does on 3.10
        tomllib = pytest.importorskip("tomli")

    text = (
        'site.aet = "A"\nsite.port = 5\n'
        'pacs = [{name = "x", host = "h", aet = "A", port = 9}, '
        '{name = "y", host = "h", aet = "B", port = 0}]\n'
    )
    doc = tomllib.loads(text)
    assert key_line(text, doc, ("site", "port")) == 2
    assert key_line(text, doc, ("pacs", 1, "port")) == 3
    assert key_line(text, doc, ("pacs", 1)) == 3  # inline array: the line of `pacs`
    with pytest.raises(BadInput, match=r"x\.toml:3: key \"port\" in \[\[pacs\]\] #2"):
        parse_site(text, Path("x.toml"))


ENTRY_SITE = """\
[site]
aet = "MYSCU"

[[pacs]]
name = "archive"
host = "192.168.2.50"
port = 104
aet = "ARCHIVE"
entry = "{entry}"
"""


def test_pacs_entry_key(tmp_path: Path) -> None:
    s = load(tmp_path, ENTRY_SITE.format(entry="MYSCU@192.168.2.10:11112"))
    e = s.pacs[0].entry
    assert e is not None and (e.aet, e.host, e.port) == ("MYSCU", "192.168.2.10", 11112)
    assert load(tmp_path, GOOD).pacs[0].entry is None


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        ("192.168.2.10:11112", "AET@HOST:PORT"),
        ("MYSCU@192.168.2.10:70000", "70000"),
        ("MYSCU@192.168.2.10", "192.168.2.10"),
        ("WAY_TOO_LONG_AE_TITLE_X@192.168.2.10:11112", "AE title"),
    ],
)
def test_bad_pacs_entry_names_file_line_and_value(tmp_path: Path, entry: str, said: str) -> None:
    msg = error(tmp_path, ENTRY_SITE.format(entry=entry))
    assert msg.startswith(f"{tmp_path / 'site.toml'}:9:"), msg
    assert said in msg


def test_receive_port_per_pacs(tmp_path: Path) -> None:
    """Each PACS may send to its own receive port on this PC (issue 14); the site's is the
    default, and move-test listens on the PACS's own."""
    from reverseprobe.commands.checklist_run import move_config_for

    text = GOOD.replace('aet = "ARCHIVE"', 'aet = "ARCHIVE"\nreceive_port = 11113', 1)
    assert text != GOOD
    s = load(tmp_path, text)
    assert s.pacs[0].receive_port == 11113 and s.pacs[1].receive_port is None
    assert move_config_for(s, s.pacs[0], 30).port == 11113
    assert move_config_for(s, s.pacs[1], 30).port == s.port
    bad = GOOD.replace('aet = "ARCHIVE"', 'aet = "ARCHIVE"\nreceive_port = 70000', 1)
    with pytest.raises(BadInput, match="receive_port"):
        load(tmp_path, bad)
