"""Receiving a study by C-MOVE: `reverseprobe move-test` against dcmtk `movescu +P`, in one run,
from the same lab PACS (dcmtk dcmqrscp on loopback). Run on demand:

    python bench/bench_move.py [--images 2000] [--small 200] [--runs 3]
    python bench/bench_move.py --figure [--runs 9]

--figure is issue 10's figure: a two-image study that moves fine, `reverseprobe move-test`
(echo, find, C-MOVE and the C-GET probe; again with --try-cget, a real C-GET) against
`movescu +P` doing the same C-MOVE, whole commands as a user runs them, wall-clock median of
--runs interleaved runs and the ratio to movescu (goal: at most 1.2x).

For each receiver it reports, as the median over the runs:
  - images/s over the whole command (process start to exit, as a user runs it),
  - images/s over the transfer (move-test: from C-MOVE-RQ to the final response, from its own
    timeline; movescu: the whole command minus nothing, it has no timeline),
  - peak memory (VmHWM of the child process, polled from /proc).
move-test runs twice more with a study of `--small` images: its peak memory must not grow with
the study (images are discarded unless --save; nothing per image is kept).

dcmqrscp, storescu and movescu run with TCP_NODELAY=1: Debian's dcmtk leaves Nagle's algorithm
on, and then every image waits for a 40 ms delayed ACK (~20 images/s), whoever receives.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from dicom_fixtures import (  # noqa: E402
    DCMQRIDX,
    DCMQRSCP,
    MOVESCU,
    dcmqrscp_config,
    make_study,
    write_study,
)

SRC = REPO / "src"
MEASURED = [SRC]  # --src: the tree whose move-test is timed (e.g. `git archive` of a base commit)
AET = "MYSCU"
NODELAY = {"TCP_NODELAY": "1"}
# As installed (pip compiles bytecode): a shell with PYTHONDONTWRITEBYTECODE would make every
# run compile our ~70 modules again. `--no-bytecode` measures that way.
BYTECODE = {
    "PYTHONDONTWRITEBYTECODE": "",
    "PYTHONPYCACHEPREFIX": str(Path(tempfile.gettempdir()) / "reverseprobe-bench-pycache"),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def run_measured(argv: list[str], env: dict[str, str]) -> tuple[int, float, int, str, float]:
    """(exit status, wall seconds, peak RSS in KiB, stdout, user CPU seconds) of one child.

    Peak RSS is VmHWM of the child's own address space, polled from /proc while it runs:
    wait4's ru_maxrss would report the (larger) forking parent's, which the child inherits
    until exec."""
    u0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime, time.monotonic()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.DEVNULL)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _hwm_kib(proc.pid))
            time.sleep(0.005)
        wall = time.monotonic() - t0
        cpu = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - u0
        out.seek(0)
        return proc.returncode, wall, peak, out.read().decode(), cpu


def _hwm_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def move_test(
    pacs_port: int,
    port: int,
    study: str,
    extra: tuple[str, ...] = ("--grace", "0.5"),
    src: Path | None = None,
) -> dict[str, Any]:
    argv = [sys.executable, "-m", "reverseprobe", "move-test", "--json", "--pacs",
            f"127.0.0.1:{pacs_port}", "--pacs-aet", "DQ", "--aet", AET, "--port", str(port),
            "--study", study, "--no-public-ip", "--timeout", "300", *extra]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(src or MEASURED[0]), **BYTECODE)
    rc, wall, rss, out, cpu = run_measured(argv, env)
    d = json.loads(out)
    move = d["probes"]["move"]
    assert "timeline" in move, d
    rq = next(e["t"] for e in move["timeline"] if e["event"] == "c-move-rq")
    return {
        "rc": rc,
        "received": move["received"],
        "wall": wall,
        "cpu": cpu,
        "transfer": (move["final_t"] or rq) - rq,
        "rss_kib": rss,
        "codes": [f["code"] for f in d["findings"]],
        "timeline": move["timeline"],
        "elapsed": d.get("elapsed_s"),
    }


def movescu(pacs_port: int, port: int, study: str) -> dict[str, Any]:
    argv = [MOVESCU, "-dhl", "-aet", AET, "-aem", AET, "-aec", "DQ", "+P", str(port), "-S",
            "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}", "--ignore",
            "127.0.0.1", str(pacs_port)]  # fmt: skip
    rc, wall, rss, _, cpu = run_measured(argv, dict(os.environ, **NODELAY))
    return {"rc": rc, "wall": wall, "cpu": cpu, "transfer": wall, "rss_kib": rss}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--small", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--figure", action="store_true", help="issue 10's two-image figure only")
    ap.add_argument("--no-bytecode", action="store_true", help="compile our modules every run")
    ap.add_argument("--src", type=Path, help="time the reverseprobe of this src/ tree instead")
    ap.add_argument("--versus", type=Path, help="with --figure: also this src/ tree, interleaved")
    args = ap.parse_args()
    if args.src:
        MEASURED[0] = args.src.resolve()
    if args.no_bytecode:
        BYTECODE.clear()
    if args.figure:
        args.images, args.small = 2, 0
    for tool in (DCMQRSCP, DCMQRIDX, MOVESCU):
        if not Path(tool).exists():
            print(f"needs {tool} (Debian package dcmtk)", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="rp-bench-move-") as tmp:
        root = Path(tmp)
        big, small = make_study(args.images), make_study(args.small)
        files = write_study(root / "big", big) + write_study(root / "small", small)
        pacs_port, port = free_port(), free_port()
        cfg, db = dcmqrscp_config(
            root / "pacs", aet="DQ", port=pacs_port, hosts={"me": (AET, "127.0.0.1", port)}
        )
        t0 = time.monotonic()
        for i in range(0, len(files), 500):  # dcmqridx: a few hundred paths per call
            subprocess.run([DCMQRIDX, str(db), *map(str, files[i : i + 500])], check=True)
        print(f"indexed {len(files)} images in {time.monotonic() - t0:.1f} s")
        pacs = subprocess.Popen(
            [DCMQRSCP, "-dhl", "-c", str(cfg)],
            env=dict(os.environ, **NODELAY),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_listening(pacs_port)
            if args.figure:
                return _figure(args, pacs_port, port, str(big[0].StudyInstanceUID))
            return _bench(args, pacs_port, port, big, small)
        finally:
            pacs.terminate()
            pacs.wait(10)


def _bench(args: argparse.Namespace, pacs_port: int, port: int, big: Any, small: Any) -> int:
    big_uid, small_uid = str(big[0].StudyInstanceUID), str(small[0].StudyInstanceUID)
    rows: dict[str, list[dict[str, Any]]] = {"move-test": [], "movescu +P": [], "small": []}
    for _ in range(args.runs):  # interleaved, so drift hits both alike
        rows["move-test"].append(move_test(pacs_port, port, big_uid))
        rows["movescu +P"].append(movescu(pacs_port, port, big_uid))
        rows["small"].append(move_test(pacs_port, port, small_uid))
    n = args.images
    for r in rows["move-test"]:
        assert r["received"] == n and "MOVE_OK" in r["codes"], r
    print(f"\nC-MOVE of {n} images ({len(big[0].PixelData)}-byte pixels) from dcmqrscp on "
          f"loopback, median of {args.runs} runs:")  # fmt: skip
    print(f"  {'receiver':<12} {'img/s (whole)':>14} {'img/s (transfer)':>17} {'peak RSS':>10}")
    for name in ("move-test", "movescu +P"):
        rs = rows[name]
        whole = statistics.median(n / r["wall"] for r in rs)
        xfer = statistics.median(n / r["transfer"] for r in rs if r["transfer"] > 0)
        rss = statistics.median(r["rss_kib"] for r in rs) / 1024
        print(f"  {name:<12} {whole:>14.0f} {xfer:>17.0f} {rss:>8.1f} MB")
    big_rss = statistics.median(r["rss_kib"] for r in rows["move-test"]) / 1024
    small_rss = statistics.median(r["rss_kib"] for r in rows["small"]) / 1024
    print(f"  move-test peak RSS: {small_rss:.1f} MB for {args.small} images, "
          f"{big_rss:.1f} MB for {n} images (flat: images are not kept)")  # fmt: skip
    return 0


def _figure(args: argparse.Namespace, pacs_port: int, port: int, study: str) -> int:
    """Issue 10's figure: whole-command wall time of move-test (default grace: a working
    move must not wait it) against movescu +P, median of interleaved runs."""
    variants: dict[str, tuple[str, ...] | None] = {
        "movescu +P": None,
        "move-test": (),
        "move-test --try-cget": ("--try-cget",),
    }
    other: Path | None = args.versus.resolve() if args.versus else None
    if other is not None:
        variants["versus move-test"] = ()
        variants["versus --try-cget"] = ("--try-cget",)
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    move_test(pacs_port, port, study, ())  # compile the bytecode, warm the page cache
    if other is not None:
        move_test(pacs_port, port, study, (), src=other)
    for _ in range(args.runs):  # interleaved, so drift hits all alike
        for name, extra in variants.items():
            if extra is None:
                r = movescu(pacs_port, port, study)
                assert r["rc"] == 0, r
            else:
                src = other if name.startswith("versus") else None
                r = move_test(pacs_port, port, study, extra, src=src)
                assert r["received"] == args.images and "MOVE_OK" in r["codes"], r
            rows[name].append(r)
    base = statistics.median(r["wall"] for r in rows["movescu +P"])
    print(f"\nC-MOVE of a {args.images}-image study from dcmqrscp on loopback (TCP_NODELAY=1), "
          f"whole command, median of {args.runs} runs:")  # fmt: skip
    print(f"  {'command':<22} {'wall ms':>8} {'ratio':>6} {'user CPU ms':>12}")
    for name, rs in rows.items():
        wall = statistics.median(r["wall"] for r in rs)
        cpu = statistics.median(r["cpu"] for r in rs)
        print(f"  {name:<22} {wall * 1000:>8.0f} {wall / base:>5.2f}x {cpu * 1000:>12.0f}")
    print("  move-test timeline of the last run (ms from the start of its run(), after imports):")
    last = rows["move-test"][-1]["timeline"]
    for e in last:
        print(f"    {e['t'] * 1000:>8.1f}  {e['event']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
