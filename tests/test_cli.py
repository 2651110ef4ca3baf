"""The CLI in-process: exit codes, JSON on stdout only, one-line errors for bad input."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys

import pytest

from conftest import SRC, free_port
from reverseprobe.cli import main
from reverseprobe.environment import Environment


def run(*argv: str, environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Environment(
        stdout=out, stderr=err, environ=environ or {}, stdout_isatty=False, stderr_isatty=False
    )
    code = main(list(argv), env)
    return code, out.getvalue(), err.getvalue()


LOCAL = ("--no-upnp", "--no-public-ip")


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["check", "--port", "0"], "'0'"),
        (["check", "--port", "70000"], "'70000'"),
        (["check", "--port", "eleven"], "'eleven'"),
        (["check", "--aet", "WAY-TOO-LONG-AE-TITLE"], "'WAY-TOO-LONG-AE-TITLE'"),
        (["check", "--aet", "A\\B"], "backslash"),
        (["check", "--reflector", "ftp://x"], "'ftp://x'"),
        (["check", "--ip-service", "notaurl"], "'notaurl'"),
        (["check", "--timeout", "-3"], "'-3'"),
        (["move-test", "--pacs", "pacs", "--pacs-aet", "A", "--aet", "B"], "'pacs'"),
        (["reflector", "--allow-ports", "10-5"], "backwards"),
        (["check", "--bogus"], "--bogus"),
        (["nosuchcommand"], "nosuchcommand"),
    ],
)
def test_bad_input_is_exit_2_with_one_line(argv: list[str], needle: str) -> None:
    code, out, err = run(*argv)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert needle in lines[0]
    assert "Traceback" not in err


def test_bad_env_url_is_exit_2() -> None:
    code, _, err = run("check", *LOCAL, environ={"REVERSEPROBE_REFLECTOR": "gopher://x"})
    assert code == 2 and "REVERSEPROBE_REFLECTOR" in err and "gopher://x" in err


def test_check_nothing_listening_json(port: int) -> None:
    code, out, err = run("check", "--port", str(port), "--aet", "MYSCU", *LOCAL, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["command"] == "check" and doc["schema"] == 1
    assert doc["verdict"] == "pass"
    found = {f["code"]: f for f in doc["findings"]}
    assert found["LISTENER_NONE"]["severity"] == "info"
    assert not any(f["severity"] in ("fail", "warn") for f in doc["findings"])
    assert found["INBOUND_NOT_TESTED"]["severity"] == "info"  # no reflector: said, not passed
    assert doc["probes"]["public_ip"]["status"] == "skipped"
    assert doc["probes"]["router"]["status"] == "skipped"
    assert doc["probes"]["listeners"]["status"] == "ok"
    assert doc["probes"]["listeners"]["sockets"] == []
    assert doc["probes"]["interfaces"]["status"] == "ok"
    assert doc["pacs_entry"]["aet"] == "MYSCU" and doc["pacs_entry"]["port"] == port


def test_require_listener_fails(port: int) -> None:
    code, out, _ = run("check", "--port", str(port), *LOCAL, "--require-listener", "--json")
    assert code == 1
    assert json.loads(out)["verdict"] == "fail"


def test_privileged_port_strict(port: int) -> None:
    code, out, _ = run("check", "--port", "104", *LOCAL)
    assert "PORT_PRIVILEGED" in out
    assert code in (0, 1)  # 1 only when something else on this host holds port 104
    code, _, _ = run("check", "--port", "104", *LOCAL, "--strict")
    assert code == 1


def test_text_report_is_plain_when_not_a_tty(port: int) -> None:
    code, out, err = run("check", "--port", str(port), *LOCAL, environ={"NO_COLOR": "1"})
    assert code == 0
    assert "\x1b[" not in out and "\x1b[" not in err
    lines = out.strip().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("Verdict:"))
    assert "LISTENER_NONE" in out and lines[at].startswith("Verdict: PASS")
    assert all(line.startswith(" " * 9) for line in lines[at + 1 :])  # wrapped under its words


def test_help_and_version() -> None:
    code, out, _ = run("--help")
    assert code == 0 and "check" in out and "move-test" in out
    code, out, _ = run("check", "--help")
    assert code == 0 and "--require-listener" in out and "--timeout" in out
    code, out, _ = run("--version")
    assert code == 0 and "reverseprobe" in out


def test_python_dash_m_entry_point() -> None:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "reverseprobe",
            "check",
            "--port",
            str(free_port()),
            *LOCAL,
            "--json",
        ],
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
        env=env,
    )
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["command"] == "check"


# --- issue 12: CLI words ------------------------------------------------------------------


def test_every_option_and_command_has_help_and_an_example() -> None:
    import argparse

    from reverseprobe.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        assert p.description and p.epilog and "example:" in p.epilog, name
        for action in p._actions:
            assert action.help, (name, action.option_strings or action.dest)


def test_reflector_timeout_help_names_the_dial_back() -> None:
    from reverseprobe.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    text = sub.choices["reflector"].format_help()
    assert "dial-back" in text and "global deadline" not in text


def test_short_timeout_clamps_the_default_grace_instead_of_complaining() -> None:
    import argparse

    from reverseprobe import config as c
    from reverseprobe.config.move import move_test_config

    args = argparse.Namespace(
        pacs=("127.0.0.1", 104), pacs_aet="P", aet="A", port=11112, study=None, try_cget=False,
        save=None, grace=None, ip_services=None, no_public_ip=True, strict=False, timeout=3.0,
    )  # fmt: skip
    cfg = move_test_config(args, {})
    assert 0 < cfg.grace < 3.0
    args.grace = 3.0
    with pytest.raises(c.BadInput, match="--grace 3"):
        move_test_config(args, {})
