"""Run `python -m reverseprobe ...` under cProfile in every thread, and print where the wall
time went: one timeline of the main thread (interpreter, imports, probes, rendering, exit) and
each thread's top functions. Used by bench/profile_check.py; by hand:

    PYTHONPATH=src python bench/profiled.py OUT.txt check --port 11112 --no-upnp --no-public-ip

The profile of each thread is written to OUT.txt (stdout stays the command's own).
"""

from __future__ import annotations

import atexit
import contextlib
import cProfile
import io
import os
import pstats
import sys
import threading
import time

T0 = time.perf_counter()
_MARKS: list[tuple[float, str]] = []
_PROFILES: list[tuple[str, float, float, cProfile.Profile]] = []


def mark(what: str) -> None:
    _MARKS.append((time.perf_counter() - T0, what))


PROFILE = os.environ.get("RP_PROFILE", "1") != "0"  # 0: the timeline only, at full speed


def _patch_threads() -> None:
    """Every thread started from now on runs under its own profiler (or is only timed)."""
    original = threading.Thread.run

    def run(self: threading.Thread) -> None:
        prof = cProfile.Profile()
        t0 = time.perf_counter() - T0
        try:
            if PROFILE:
                prof.runcall(original, self)
            else:
                original(self)
        finally:
            _PROFILES.append((self.name, t0, time.perf_counter() - T0, prof))

    threading.Thread.run = run  # type: ignore[method-assign]


def _wrap_shutdown() -> None:
    """Time the interpreter's join of non-daemon threads at exit (before atexit), to stderr:
    the profile file is already written by then."""
    original = threading._shutdown  # type: ignore[attr-defined]

    def shutdown() -> None:
        t0 = time.perf_counter()
        names = [t.name for t in threading.enumerate() if not t.daemon and t.is_alive()]
        original()
        took = (time.perf_counter() - t0) * 1000
        print(f"profiled: exit joined {names} in {took:.1f} ms", file=sys.stderr)

    threading._shutdown = shutdown  # type: ignore[attr-defined]


def _wrap_marks() -> None:
    """Mark the main thread's phases: probes started, probes done, rendering."""
    import reverseprobe.cli as cli
    import reverseprobe.runner as runner

    def wrapped(fn, what):  # type: ignore[no-untyped-def]
        def inner(*a, **kw):  # type: ignore[no-untyped-def]
            mark(f"{what} begins")
            try:
                return fn(*a, **kw)
            finally:
                mark(f"{what} ends")

        return inner

    runner.run_probes = wrapped(runner.run_probes, "run_probes")  # type: ignore[no-untyped-call]
    cli._render = wrapped(cli._render, "render")  # type: ignore[no-untyped-call]
    cli._dispatch = wrapped(cli._dispatch, "dispatch")  # type: ignore[no-untyped-call]


def _process_age() -> float:
    """Seconds from the process's start (exec) to now, from /proc (Linux)."""
    import os

    with open(f"/proc/{os.getpid()}/stat", encoding="ascii") as f:
        start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime", encoding="ascii") as f:
        uptime = float(f.read().split()[0])
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def _dump(out: str, main: cProfile.Profile, interp: float) -> None:
    mark("atexit (after main() returned, threads abandoned)")
    buf = io.StringIO()
    buf.write(
        f"interpreter start before this script: ~{interp * 1000:.0f} ms (/proc, 10 ms ticks)\n"
    )
    for t, what in _MARKS:
        buf.write(f"{t * 1000:8.1f} ms  {what}\n")
    for name, t0, t1, prof in [("MainThread", 0.0, _MARKS[-1][0], main), *_PROFILES]:
        buf.write(f"\n=== thread {name}: {t0 * 1000:.0f} -> {t1 * 1000:.0f} ms\n")
        if PROFILE:
            st = pstats.Stats(prof, stream=buf)
            st.sort_stats("cumulative").print_stats(35)
    if PROFILE:  # every thread together: where the CPU went (the GIL makes it one budget)
        merged = pstats.Stats(main, stream=buf)
        for *_, prof in _PROFILES:
            with contextlib.suppress(TypeError):  # a thread that never ran under the profiler
                merged.add(prof)
        buf.write("\n=== all threads, by own time\n")
        merged.sort_stats("tottime").print_stats(40)
        buf.write("\n=== all threads, by cumulative time\n")
        merged.sort_stats("cumulative").print_stats(60)
    with open(out, "w", encoding="utf-8") as f:
        f.write(buf.getvalue())


def main() -> None:
    interp = _process_age() - (time.perf_counter() - T0)
    out, argv = sys.argv[1], sys.argv[2:]
    _patch_threads()
    main_prof = cProfile.Profile()
    atexit.register(_dump, out, main_prof, interp)
    mark("harness ready")
    if PROFILE:
        main_prof.enable()
    import reverseprobe.cli as cli

    mark("import reverseprobe.cli")
    _wrap_marks()
    _wrap_shutdown()
    sys.argv = ["reverseprobe", *argv]
    try:
        rc = cli.main()
    finally:
        main_prof.disable()
        mark("main() returned")
    sys.stdout.flush()
    raise SystemExit(rc)


if __name__ == "__main__":
    main()
