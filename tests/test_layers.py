"""The pure rules load no probe or protocol code: importing diagnosis.local, .network and
.inbound loaded 40 reverseprobe modules before result types moved to model/ (probes.firewall,
reflector.client, portmap.ssdp, dicom.scp among them) and 17 after (issue 10)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
ABOVE = ("probes", "dicom", "portmap", "reflector", "commands", "render", "cli")
LIBRARIES = ("pynetdicom", "pydicom", "aiohttp", "requests", "miniupnpc", "rich")

_PROG = """
import json, sys
import reverseprobe.diagnosis.local, reverseprobe.diagnosis.network, reverseprobe.diagnosis.inbound
print(json.dumps(sorted(sys.modules)))
"""


def _loaded() -> list[str]:
    """The modules a fresh interpreter holds after importing the three rule modules."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run(
        [sys.executable, "-c", _PROG],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    mods: list[str] = json.loads(out.stdout)
    return mods


def test_rules_load_no_probe_or_protocol_module() -> None:
    mods = _loaded()
    ours = [m.split(".") for m in mods if m.startswith("reverseprobe.")]
    above = [".".join(p) for p in ours if p[1] in ABOVE]
    assert above == []
    assert "reverseprobe.model.check" in mods  # the results they read do load
    assert len(ours) <= 26  # 23 measured (17 + the six words modules); 40 before the move


def test_rules_load_no_network_or_dicom_library() -> None:
    mods = _loaded()
    assert [m for m in mods if m.split(".")[0] in LIBRARIES] == []
