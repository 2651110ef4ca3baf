"""Where `check`'s wall time goes in issue 10's healthy lab: one run under bench/profiled.py
(cProfile in every thread, a main-thread timeline) inside the PC's namespace, and one run
under `python -X importtime`. Run on demand, as root:

    python bench/profile_check.py [--out /tmp/check-profile.txt] [--importtime FILE]

Prints the timeline and each thread's start and end; the full per-thread profiles are in
--out. Profiling slows Python code down about 1.5x: read the shares, not the absolute times
(bench/bench_check_lab.py --full measures those).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_check_lab import full_lab, py_env


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/check-profile.txt")
    ap.add_argument("--importtime", default="/tmp/check-importtime.txt")
    args = ap.parse_args()
    here = Path(__file__).resolve().parent
    with full_lab() as (net, argv, _urls):
        net.pc.run(argv, check=False, timeout=120, env=py_env())  # bytecode and page cache
        plain = [sys.executable, str(here / "profiled.py"), args.out + ".timeline", *argv[3:]]
        net.pc.run(plain, check=False, timeout=120, env={**py_env(), "RP_PROFILE": "0"})
        prof = [sys.executable, str(here / "profiled.py"), args.out, *argv[3:]]
        net.pc.run(prof, check=False, timeout=120, env=py_env())
        imp = net.pc.run([sys.executable, "-X", "importtime", *argv[1:]], check=False,
                         timeout=120, env=py_env())  # fmt: skip
        Path(args.importtime).write_text(imp.stderr)
    print("--- timeline at full speed (threads timed, not profiled)")
    print(Path(args.out + ".timeline").read_text(), end="")
    print("--- under cProfile")
    text = Path(args.out).read_text()
    for line in text.splitlines():
        if line.startswith(("interpreter", "=== thread")) or " ms  " in line[:14]:
            print(line)
    print(f"per-thread profiles: {args.out}; import times: {args.importtime}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
