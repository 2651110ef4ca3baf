"""scripts/preflight on a "fresh workstation": no virtual environment yet, then a second run.

The environment is made from the base interpreter with --system-site-packages, so pip finds the
dependencies already installed and only builds reverseprobe from this checkout (its build
backend comes from the package index, as on a real workstation). The checklist runs on loopback
only: no UPnP, no public-IP services, no reflector, no PACS.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import REPO

PREFLIGHT = REPO / "scripts" / "preflight"
BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)
DEPS = "pynetdicom, pydicom, miniupnpc, psutil, netifaces, requests, rich, jinja2"


def _base_has_deps() -> str | None:
    res = subprocess.run(
        [BASE_PYTHON, "-c", f"import {DEPS}"], capture_output=True, text=True, check=False
    )
    return None if res.returncode == 0 else f"{BASE_PYTHON} lacks a dependency: {res.stderr[-200:]}"


# A base Python without the dependencies (CI's, which installs them into .venv only) gets this
# test environment's site-packages on PYTHONPATH, and pip installs no dependencies (only the
# build backend, from the registry): the script's own steps (venv, editable install, report
# folder, exit code) are still the real ones.
_BORROW = _base_has_deps() is not None

pytestmark = [
    pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "REVERSEPROBE_VENV": str(tmp / "venv"),
        "REVERSEPROBE_REPORTS": str(tmp / "reports"),
        "PYTHON": BASE_PYTHON,
        "REVERSEPROBE_VENV_ARGS": "--system-site-packages",
        "NO_COLOR": "1",
    }
    env.pop("VIRTUAL_ENV", None)
    if _BORROW:
        env["PYTHONPATH"] = sysconfig.get_paths()["purelib"]
        env["REVERSEPROBE_PIP_ARGS"] = "--no-deps"
    return subprocess.run(
        ["bash", str(PREFLIGHT), *args],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_fresh_workstation_then_second_run(tmp_path: Path) -> None:
    site = tmp_path / "ward 7.toml"
    site.write_text(
        f'[site]\naet = "MYSCU"\nport = {_free_port()}\nupnp = false\npublic_ip = false\n'
    )
    first = run(tmp_path, str(site), "--timeout", "30")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "creating a virtual environment" in first.stderr
    assert "installing reverseprobe" in first.stderr
    m = re.search(r"^Reports written to: (.+)$", first.stdout, re.MULTILINE)
    assert m, first.stdout
    out = Path(m.group(1))
    assert out.parent == tmp_path / "reports"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}_\d{6}-ward 7", out.name), out.name
    assert sorted(p.name for p in out.iterdir()) == [
        "report.html",
        "report.json",
        "report.txt",
        "report.xml",
    ]
    assert "Verdict: PASS" in first.stdout
    assert (tmp_path / "venv" / "bin" / "reverseprobe").exists()

    # Second run: nothing to install, a new folder, and the checklist's exit code (1).
    site.write_text(site.read_text() + "require_listener = true\n")
    second = run(tmp_path, str(site), "--timeout", "30")
    assert second.returncode == 1, second.stdout + second.stderr
    assert "installing" not in second.stderr and "creating" not in second.stderr
    m2 = re.search(r"^Reports written to: (.+)$", second.stdout, re.MULTILINE)
    assert m2 and Path(m2.group(1)) != out and Path(m2.group(1)).is_dir()
    assert "LISTENER_NONE" in (Path(m2.group(1)) / "report.txt").read_text()

    # Bad input: exit 2, one line naming the key, and no empty report folder left behind.
    site.write_text('[site]\naet = "MYSCU"\nprot = 104\n')
    bad = run(tmp_path, str(site))
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert ':3: key "prot" in [site]: unknown key' in bad.stderr
    assert len(list((tmp_path / "reports").iterdir())) == 2


def test_missing_site_file_and_help(tmp_path: Path) -> None:
    res = run(tmp_path, str(tmp_path / "nope.toml"))
    assert res.returncode == 2 and "cannot read site file" in res.stderr
    assert not (tmp_path / "venv").exists()  # nothing installed for a typo
    usage = run(tmp_path)
    assert usage.returncode == 2 and "scripts/preflight SITE.toml" in usage.stdout
    assert run(tmp_path, "--help").returncode == 0
