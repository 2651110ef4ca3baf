"""Wall time of `reverseprobe --help` and of a local `check` with a listener present, against
a bare interpreter start, in one run (issue: foundation). Run on demand:

    python bench/bench_startup.py [--runs 15]

Targets: --help within 2x `python -c pass`; the local check under 0.5 s.
Loopback only: `--no-upnp --no-public-ip`.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PEERS = REPO / "tests" / "peers"


def timed(argv: list[str], runs: int) -> list[float]:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            check=False,
            timeout=60,
        )
        out.append(time.perf_counter() - t0)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    a = ap.parse_args()
    port = free_port()
    scp = subprocess.Popen(
        [sys.executable, str(PEERS / "pyscp.py"), "0.0.0.0", str(port), "BENCH"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert scp.stdout is not None
        scp.stdout.readline()
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.02)
        py = sys.executable
        check = [py, "-m", "reverseprobe", "check", "--port", str(port), "--aet", "BENCH"]
        check += ["--no-upnp", "--no-public-ip"]
        rows = {
            "python -c pass": timed([py, "-c", "pass"], a.runs),
            "reverseprobe --help": timed([py, "-m", "reverseprobe", "--help"], a.runs),
            "check --json (local, listener)": timed([*check, "--json"], a.runs),
            "check text (local, listener)": timed(check, a.runs),
        }
    finally:
        scp.kill()
        scp.wait()
    base = statistics.median(rows["python -c pass"])
    print(f"{'command':36} {'median':>9} {'min':>9} {'max':>9} {'x bare':>7}")
    for name, ts in rows.items():
        med = statistics.median(ts)
        print(
            f"{name:36} {med * 1000:8.1f}ms {min(ts) * 1000:8.1f}ms {max(ts) * 1000:8.1f}ms "
            f"{med / base:6.2f}x"
        )


if __name__ == "__main__":
    main()
