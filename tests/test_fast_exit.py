"""A real invocation ends without the interpreter's teardown (issue 10: 70-200 ms after the
report), and still does what exit must: atexit handlers run, output flushed, the exit code kept,
and a live non-daemon thread waited for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from conftest import SRC, free_port
from test_cli import run


def python(code: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, timeout=120, check=False)  # fmt: skip


def test_atexit_handlers_run_and_the_code_is_kept() -> None:
    p = python("""
        import atexit, sys
        atexit.register(lambda: print("atexit ran"))
        from reverseprobe.cli import main
        sys.argv = ["reverseprobe", "check", "--port", "0"]
        main()
        print("main returned")
    """)
    assert p.returncode == 2, p
    assert p.stdout == "atexit ran\n", p  # buffered output flushed; main did not return
    assert len(p.stderr.splitlines()) == 1 and "'0'" in p.stderr, p


def test_a_live_non_daemon_thread_is_waited_for() -> None:
    p = python("""
        import sys, threading, time
        from reverseprobe.cli import main
        def late():
            time.sleep(0.3)
            print("thread done", flush=True)
        threading.Thread(target=late).start()
        sys.argv = ["reverseprobe", "--version"]
        code = main()
        print("main returned", code, flush=True)
    """)
    assert p.returncode == 0, p
    assert "main returned 0" in p.stdout and p.stdout.rstrip().endswith("thread done"), p


def test_a_whole_check_prints_its_json_through_a_pipe() -> None:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    args = ["check", "--port", str(free_port()), "--no-upnp", "--no-public-ip", "--json"]
    argv = [sys.executable, "-m", "reverseprobe", *args]
    p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)
    doc = json.loads(p.stdout)
    assert doc["command"] == "check"
    assert set(doc["probes"]) >= {"listeners", "interfaces"}
    code, out, _err = run(*args)  # in-process: main returns the code instead of exiting
    assert p.returncode == code, p.stderr
    assert {f["code"] for f in json.loads(out)["findings"]} == {f["code"] for f in doc["findings"]}
