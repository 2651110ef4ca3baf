"""`reverseprobe reflector` as a user starts it: options, bad input, signals, logs."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from reflector_helpers import free_port, request
from reverseprobe.cli import main
from reverseprobe.environment import Environment


def run_cli(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    code = main(argv, Environment(stdout=io.StringIO(), stderr=err, environ={}))
    return code, err.getvalue()


@pytest.mark.parametrize(
    ("content", "says"),
    [(None, "No such file"), (b"", "one token"), (b"two words", "one token"),
     (b"\xff\xfe", "ASCII"), (b"x" * 5000, "one token")],
)  # fmt: skip
def test_bad_token_files_are_exit_2_naming_the_file(
    tmp_path: Path, content: bytes | None, says: str
) -> None:
    path = tmp_path / "token"
    if content is not None:
        path.write_bytes(content)
    code, err = run_cli(["reflector", "--token-file", str(path)])
    assert code == 2
    assert err.count("\n") == 1 and str(path) in err and says in err


def test_dial_back_budget_over_a_minute_is_exit_2() -> None:
    code, err = run_cli(["reflector", "--timeout", "120"])
    assert code == 2 and "--timeout" in err


def start(*args: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "reverseprobe", "reflector", "--listen", f"127.0.0.1:{port}",
         *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )  # fmt: skip
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "listening on" in line, line + proc.stderr.read()
    return proc, f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serves_until_a_signal_then_exits_0(sig: signal.Signals) -> None:
    proc, url = start("--allow-ports", "11112")
    try:
        assert request(url).json() == {"status": "ok"}
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert out == "" and "stopping" in err and "Traceback" not in err


def test_json_log_lines(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("abc.DEF-123\n")
    proc, url = start("--json", "--token-file", str(token))
    try:
        resp = request(
            url,
            "POST",
            "/v1/probe",
            b'{"ports": [11112]}',
            headers={"Content-Type": "application/json"},
        )
        assert resp.status == 401
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert {k: records[0][k] for k in ("event", "client", "status")} == {
        "event": "refused",
        "client": "127.0.0.1",
        "status": 401,
    }
    assert "abc.DEF-123" not in err  # the token is never logged


def test_a_taken_listen_port_is_exit_1_in_one_line() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        code, err = run_cli(["reflector", "--listen", f"127.0.0.1:{port}"])
    assert code == 1
    assert err.strip().splitlines()[-1].startswith("reverseprobe: error: cannot listen on")
    assert "Traceback" not in err
