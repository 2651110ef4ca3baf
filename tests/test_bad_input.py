"""Bad input (issue 16): every bad CLI value or site file is exit 2 with one line naming it.

CLI cases run in-process on `check --no-upnp --no-public-ip` and `reflector` (refused at
parse time, before any socket). Site files that could block (a FIFO) or exhaust (/dev/zero,
a 2 MB file) run in a subprocess with a hang guard.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reverseprobe import config as c
from reverseprobe.cli import main
from reverseprobe.config.validate import (
    parse_digits,
    parse_host_port,
    parse_port,
    parse_timeout,
    parse_url,
)
from reverseprobe.environment import Environment
from reverseprobe.sitefile import MAX_SITE_BYTES, load_site

REPO = Path(__file__).resolve().parents[1]
SAFE = ["--no-upnp", "--no-public-ip"]
SITE = """\
[site]
name = "room"
aet = "MYSCU"
upnp = false
public_ip = false
"""


def run_cli(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    code = main(argv, Environment(stdout=io.StringIO(), stderr=err, environ={}))
    return code, err.getvalue()


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["check", *SAFE, "--port", "１１１１２"], "１１１１２"),  # fullwidth digits
        (["check", *SAFE, "--port", "٣"], "٣"),  # Arabic-Indic three
        (["check", *SAFE, "--port", "1_1112"], "1_1112"),
        (["check", *SAFE, "--port", "+5"], "+5"),
        (["check", *SAFE, "--port", "0"], "'0'"),
        (["check", *SAFE, "--port", "99999999999"], "99999999999"),
        (["check", *SAFE, "--timeout", "1_0"], "1_0"),
        (["check", *SAFE, "--timeout", "١٠"], "١٠"),
        (["check", *SAFE, "--timeout", "nan"], "nan"),
        (["check", *SAFE, "--timeout", "1e3"], "1e3"),
        (["check", *SAFE, "--timeout", "+5"], "+5"),
        (["check", *SAFE, "--reflector", "http://10.0.0.1/\nX-Evil: 1"], r"\nX-Evil"),
        (["check", *SAFE, "--reflector", "http://10.0.0.1/\x1b[2J"], r"\x1b[2J"),
        (["check", *SAFE, "--ip-service", "http://a b/"], "a b"),
        (["reflector", "--listen", "[127.0.0.1]:104"], "'[127.0.0.1]': brackets are for IPv6"),
        (["reflector", "--listen", "127.0.0.1:1_04"], "1_04"),
        (["reflector", "--listen", "127.0.0.1:0"], "--listen HOST:PORT '0'"),
        (["reflector", "--burst", "1_0"], "1_0"),
        (["reflector", "--max-concurrent", "+5"], "+5"),
        (["reflector", "--rate", "inf"], "inf"),
        (["reflector", "--connect-timeout", "٣"], "٣"),
    ],
)
def test_bad_cli_values_are_exit_2_one_line_naming_the_value(argv: list[str], names: str) -> None:
    code, err = run_cli(argv)
    assert code == 2, err
    assert err.count("\n") == 1, err
    assert names in err, err
    assert "\x1b" not in err  # the bad value is quoted, not replayed to the terminal


@pytest.mark.parametrize(
    "value", ["1_1112", "+5", "１１１１２", "٣", "0x10", "1e3", "", " ", "-1", True]
)
def test_digits_only(value: object) -> None:
    with pytest.raises(c.BadInput):
        parse_digits(value)  # type: ignore[arg-type]


def test_good_values_still_pass() -> None:
    assert parse_port("104") == 104
    assert parse_port(" 11112 ") == 11112
    assert parse_port(65535) == 65535
    assert parse_timeout("2.5") == 2.5
    assert parse_timeout(".5") == 0.5
    assert parse_timeout(10) == 10.0
    assert parse_host_port("[::1]:104") == ("::1", 104)
    assert parse_host_port("127.0.0.1:104") == ("127.0.0.1", 104)
    assert parse_url("http://[2001:db8::1]:8470/x?y=1") == "http://[2001:db8::1]:8470/x?y=1"


def _checklist(path: Path) -> tuple[int, str, float]:
    """`checklist PATH` in a subprocess; a hang is a test failure after 30 s, not a stuck run."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    t0 = time.monotonic()
    p = subprocess.run(
        [sys.executable, "-m", "reverseprobe", "checklist", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )
    return p.returncode, p.stderr, time.monotonic() - t0


def test_a_fifo_as_site_file_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "site.toml"
    os.mkfifo(fifo)
    code, err, _ = _checklist(fifo)
    assert code == 2 and err.count("\n") == 1 and "not a regular file" in err, err


def test_dev_zero_as_site_file_is_refused() -> None:
    code, err, _ = _checklist(Path("/dev/zero"))
    assert code == 2 and err.count("\n") == 1 and "/dev/zero" in err, err


def test_a_2mb_site_file_is_refused_by_its_size(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(SITE + "# padding\n" * 200_000)
    assert path.stat().st_size > MAX_SITE_BYTES
    code, err, elapsed = _checklist(path)
    assert code == 2 and err.count("\n") == 1 and "more than" in err, err
    assert elapsed < 30  # hang guard (subprocess.run's timeout also stops it)


def test_the_error_line_of_a_big_site_file_is_found(tmp_path: Path) -> None:
    # ~900 KB, the key named 40,000 times in comments and the bad value last: the key-line
    # lookup used to re-parse the file once per occurrence (quadratic: 54 KB took 48 s).
    pad = "".join(f"# port = {i} was the old port\n" for i in range(30_000))
    text = SITE + pad + '[[pacs]]\nname = "bad"\nhost = "10.0.0.1"\nport = 0\naet = "A"\n'
    path = tmp_path / "site.toml"
    path.write_text(text)
    assert 500_000 < path.stat().st_size < MAX_SITE_BYTES
    bad_line = text.count("\n") - 1  # the line of `port = 0`
    t0 = time.monotonic()
    with pytest.raises(c.BadInput) as e:
        load_site(path)
    assert time.monotonic() - t0 < 30  # hang guard
    assert f"{path}:{bad_line}:" in str(e.value) and "port" in str(e.value), e.value


def test_deep_nesting_is_a_syntax_error_not_an_internal_error(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(SITE + "x = " + "[" * 50_000 + "]" * 50_000 + "\n")
    code, err, _ = _checklist(path)
    assert code == 2 and err.count("\n") == 1, err
    assert "nested too deeply" in err and "internal error" not in err, err


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_bytes(b"\xef\xbb\xbf" + SITE.encode())
    site = load_site(path)
    assert site.name == "room" and site.aet == "MYSCU"


@pytest.mark.parametrize(
    ("line", "names"),
    [
        ('port = "1_1112"', 'key "port"'),
        ('reflector = "http://10.0.0.1/\\nX: y"', "reflector"),
        ("check_timeout = nan", "check_timeout"),
    ],
)
def test_bad_site_values_are_one_line_naming_key(tmp_path: Path, line: str, names: str) -> None:
    path = tmp_path / "site.toml"
    path.write_text(SITE + line + "\n")
    with pytest.raises(c.BadInput) as e:
        load_site(path)
    assert "\n" not in str(e.value) and names in str(e.value), e.value


def test_token_file_fifo_and_dev_zero_are_refused(tmp_path: Path) -> None:
    from reverseprobe.reflector.server import read_token

    fifo = tmp_path / "token"
    os.mkfifo(fifo)
    for path in (str(fifo), "/dev/zero"):
        with pytest.raises(c.BadInput, match="not a regular file"):
            read_token(path)
