"""Time-to-verdict of `reverseprobe check` in the namespace lab, against the peer way of getting
the same facts (`upnpc -s`, `upnpc -l`, then `curl` to the lab IP service, in sequence), and the
deadline with a router that never answers and IP services that black-hole. Run on demand, as
root:

    python bench/bench_check_lab.py [--runs 7]

Targets (issue 3): healthy router under 0.5 s and under 0.3x the peer sequence; silent router
and black-holed services: `check --timeout 3` finishes within 3.3 s.

Issue 10 (`--full`, the healthy lab with every probe): storescp listening on the PC behind a
miniupnpd router with a mapping, a reflector and two IP services outside; `check` with the
dial-back, as a multiple of `python3 -c pass` in the same namespace (goal: at most 6) and of the
peer sequence `ss -ltn; echoscu; upnpc -l; curl; curl` (goal: at most 0.25x), with each probe's
elapsed_ms from the JSON to say where the time goes.

Every time is the wall time of the whole command as a user runs it (process start, imports,
`ip netns exec`), measured from the host; the median over the runs is reported.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from lab import SRC, HomeNet, Lab, Namespace, home_net, start_blackhole, start_ip_service  # noqa: E402

PORT = 11112
_SILENT_ROUTER = """\
table inet silent {
  chain input {
    type filter hook input priority -10; policy accept;
    udp dport { 1900, 5351 } drop
  }
}
"""


# As a user runs it: an installed package has its bytecode compiled (pip does), while a test
# shell often sets PYTHONDONTWRITEBYTECODE, and then every run compiles ~70 modules of ours
# again (~0.1 s of CPU). `--no-bytecode` measures that way.
PYCACHE = Path(tempfile.gettempdir()) / "reverseprobe-bench-pycache"
BYTECODE = {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(PYCACHE)}
MEASURED = [SRC]  # --src: the tree whose `check` is timed (e.g. `git archive` of a base commit)


def py_env() -> dict[str, str]:
    """The environment of our own Python children (PYTHONPATH=src, bytecode as chosen)."""
    return {"PYTHONPATH": str(MEASURED[0]), **BYTECODE}


def timed(ns: Namespace, argv: Sequence[str], *, python: bool = False) -> tuple[float, int]:
    env = py_env() if python else None
    t0 = time.perf_counter()
    res = ns.run(list(argv), check=False, timeout=120, env=env)
    return time.perf_counter() - t0, res.returncode


def child_cpu() -> float:
    """User CPU seconds of every reaped child so far: the delta around one run is that run's
    (load from other processes stretches wall time far more than it does user CPU)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime


def check_argv(url: str, timeout: float) -> list[str]:
    return [sys.executable, "-m", "reverseprobe", "check", "--port", str(PORT),
            "--ip-service", url, "--json", "--timeout", str(timeout)]  # fmt: skip


def peer_sequence(net: HomeNet, url: str, *, discover: bool) -> float:
    """upnpc -s, upnpc -l, curl: the facts `check` reports about router and public address."""
    where = [] if discover else ["-u", str(net.igd_url)]
    total = 0.0
    for argv in (
        ["upnpc", *where, "-s"],
        ["upnpc", *where, "-l"],
        ["curl", "-s", "--max-time", "5", url],
    ):
        took, _rc = timed(net.pc, argv)
        total += took
    return total


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def healthy(runs: int) -> dict[str, float]:
    with Lab() as lab:
        net = home_net(lab)
        url = start_ip_service(net.inet, 8080)
        net.upnpc(["-e", "bench", "-a", net.pc_ip, str(PORT), str(PORT), "TCP"], check=True)
        timed(net.pc, check_argv(url, 5), python=True)  # warm the page cache once
        ours = [timed(net.pc, check_argv(url, 5), python=True)[0] for _ in range(runs)]
        peer_u = [peer_sequence(net, url, discover=False) for _ in range(runs)]
        peer_d = [peer_sequence(net, url, discover=True) for _ in range(max(1, runs // 2))]
        startup = [
            timed(net.pc, [sys.executable, "-c", "import reverseprobe.cli"], python=True)[0]
            for _ in range(runs)
        ]
        return {
            "check": median(ours),
            "check_min": min(ours),
            "peer_url_known": median(peer_u),
            "peer_discover": median(peer_d),
            "python_start": median(startup),
        }


REFLECTOR_PORT = 8470
# What check cannot avoid importing with the chosen dependencies: C-ECHO needs pynetdicom
# (which imports pydicom), the IP services and reflector an HTTP client.
FLOOR_IMPORTS = "import pynetdicom, reverseprobe.cli"


def full_argv(reflector: str, urls: Sequence[str]) -> list[str]:
    argv = [sys.executable, "-m", "reverseprobe", "check", "--port", str(PORT), "--aet",
            "MYSCU", "--reflector", reflector, "--json", "--timeout", "8"]  # fmt: skip
    for u in urls:
        argv += ["--ip-service", u]
    return argv


def full_peers(net: HomeNet, urls: Sequence[str]) -> float:
    """What a user runs by hand for the same facts: who listens, does it answer C-ECHO, what
    the router maps, what the world sees (twice, as check asks two services)."""
    total = 0.0
    for argv in (
        ["ss", "-ltnp"],
        ["/usr/bin/echoscu", "-aec", "MYSCU", net.pc_ip, str(PORT)],
        ["upnpc", "-u", str(net.igd_url), "-l"],
        *(["curl", "-s", "--max-time", "5", u] for u in urls),
    ):
        took, _rc = timed(net.pc, argv)
        total += took
    return total


@contextlib.contextmanager
def full_lab() -> Iterator[tuple[HomeNet, list[str], list[str]]]:
    """Issue 10's healthy lab: storescp on the PC behind miniupnpd with a mapping, a reflector
    and two IP services outside. Yields the net, check's argv and the IP service URLs."""
    with Lab() as lab:
        net = home_net(lab)
        urls = [start_ip_service(net.inet, 8080), start_ip_service(net.inet, 8081)]
        refl = net.inet.python_popen(
            # repeated runs from one address: the default token bucket (4, 12/min) would
            # answer 429 from the fifth run on
            [
                "-m",
                "reverseprobe",
                "reflector",
                "--listen",
                f"0.0.0.0:{REFLECTOR_PORT}",
                "--burst",
                "100",
                "--rate",
                "600",
            ],
            name="reflector",
        )
        refl.wait_log(r"listening on http://", timeout=20)
        reflector = f"http://{net.inet_ip}:{REFLECTOR_PORT}/"
        scp = net.pc.popen(["/usr/bin/storescp", "-dhl", "--aetitle", "MYSCU", str(PORT)],
                           name="storescp")  # fmt: skip
        net.pc.wait_tcp_listen(PORT, proc=scp)
        net.upnpc(["-e", "bench", "-a", net.pc_ip, str(PORT), str(PORT), "TCP"], check=True)
        yield net, full_argv(reflector, urls), urls


def versus(runs: int, other: Path) -> int:
    """`--full --versus SRC`: this tree's check and another tree's (e.g. a base commit from
    `git archive`), interleaved run by run in the same lab, so that the load of a shared
    machine falls on both alike; wall and user CPU medians."""
    trees = {"this": MEASURED[0], "versus": other.resolve()}
    wall: dict[str, list[float]] = {k: [] for k in trees}
    cpu: dict[str, list[float]] = {k: [] for k in trees}
    with full_lab() as (net, argv, _urls):
        for tree in trees.values():  # compile each tree's bytecode once
            net.pc.run(argv, check=False, timeout=120, env={**py_env(), "PYTHONPATH": str(tree)})
        for _ in range(runs):
            for name, tree in trees.items():
                env = {**py_env(), "PYTHONPATH": str(tree)}
                u0, t0 = child_cpu(), time.perf_counter()
                res = net.pc.run(argv, check=False, timeout=120, env=env)
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(child_cpu() - u0)
                assert '"INBOUND_OK"' in res.stdout, res.stdout[-400:]
    print(f"healthy lab, every probe and the dial-back, interleaved, median of {runs}:")
    for name, tree in trees.items():
        print(f"  {name:<7} {median(wall[name]):.3f} s wall (min {min(wall[name]):.3f}), "
              f"{median(cpu[name]):.3f} s user CPU  {tree}")  # fmt: skip
    return 0


def full(runs: int) -> dict[str, Any]:
    import json

    with full_lab() as (net, argv, urls):
        timed(net.pc, argv, python=True)  # warm the page cache once
        ours: list[float] = []
        cpu: list[float] = []
        probes: dict[str, list[float]] = {}
        codes: set[str] = set()
        for _ in range(runs):
            env = py_env()
            u0, t0 = child_cpu(), time.perf_counter()
            res = net.pc.run(argv, check=False, timeout=120, env=env)
            ours.append(time.perf_counter() - t0)
            cpu.append(child_cpu() - u0)
            doc = json.loads(res.stdout)
            codes |= {f["code"] for f in doc["findings"]}
            for name, pr in doc["probes"].items():
                if isinstance(pr, dict) and isinstance(pr.get("elapsed_s"), (int, float)):
                    probes.setdefault(name, []).append(pr["elapsed_s"] * 1000)
            Path("/tmp/bench_check_full.json").write_text(res.stdout)
            inbound = doc["probes"].get("inbound") or {}
            echo = (inbound.get("echo") or {}) if isinstance(inbound, dict) else {}
            if isinstance(echo, dict) and isinstance(echo.get("elapsed_ms"), (int, float)):
                probes.setdefault("inbound.dial-back", []).append(echo["elapsed_ms"])
        bare = [timed(net.pc, [sys.executable, "-c", "pass"])[0] for _ in range(runs)]
        floor = [
            timed(net.pc, [sys.executable, "-c", FLOOR_IMPORTS], python=True)[0]
            for _ in range(runs)
        ]
        peers = [full_peers(net, urls) for _ in range(runs)]
        return {
            "check": median(ours),
            "check_min": min(ours),
            "check_user_cpu": median(cpu),
            "python_pass": median(bare),
            "floor": median(floor),
            "peers": median(peers),
            "probes": {k: median(v) for k, v in probes.items()},
            "codes": sorted(codes),
        }


def silent(runs: int) -> dict[str, float]:
    with Lab() as lab:
        net = home_net(lab, upnp=False, natpmp=False)
        net.router.nft(_SILENT_ROUTER)  # SSDP and NAT-PMP vanish: no answer, no ICMP
        start_blackhole(net.inet, 8443)
        start_blackhole(net.inet, 8444)
        urls = [f"http://{net.inet_ip}:8443/", f"http://{net.inet_ip}:8444/"]
        argv = [*check_argv(urls[0], 3), "--ip-service", urls[1]]
        times = [timed(net.pc, argv, python=True)[0] for _ in range(runs)]
        return {"check_t3_median": median(times), "check_t3_max": max(times)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--full", action="store_true", help="only issue 10's healthy lab, all probes")
    ap.add_argument("--no-bytecode", action="store_true", help="compile our modules every run")
    ap.add_argument("--src", type=Path, help="time the reverseprobe of this src/ tree instead")
    ap.add_argument("--versus", type=Path, help="with --full: interleave with this src/ tree")
    args = ap.parse_args()
    if args.src:
        MEASURED[0] = args.src.resolve()
    if args.full and args.versus:
        return versus(args.runs, args.versus)
    if args.no_bytecode:
        BYTECODE.clear()
    if args.full:
        return report_full(full(args.runs), args.runs)
    h = healthy(args.runs)
    s = silent(max(3, args.runs // 2))
    print(f"healthy router, median of {args.runs}:")
    print(f"  reverseprobe check                 {h['check']:.3f} s (min {h['check_min']:.3f})")
    print(f"  python start + import cli          {h['python_start']:.3f} s")
    print(f"  upnpc -s; upnpc -l; curl (-u URL)  {h['peer_url_known']:.3f} s")
    print(f"  upnpc -s; upnpc -l; curl (discover){h['peer_discover']:.3f} s")
    print(f"  ratio vs peer with discovery       {h['check'] / h['peer_discover']:.2f}x")
    print(f"  ratio vs peer with known URL       {h['check'] / h['peer_url_known']:.2f}x")
    print("silent router, black-holed IP services, check --timeout 3:")
    print(f"  median {s['check_t3_median']:.3f} s, max {s['check_t3_max']:.3f} s (target <= 3.3)")
    ok = h["check"] < 0.5 and h["check"] < 0.3 * h["peer_discover"] and s["check_t3_max"] <= 3.3
    print("targets met" if ok else "targets NOT met")
    return 0 if ok else 1


def report_full(f: dict[str, Any], runs: int) -> int:
    starts = f["check"] / f["python_pass"]
    ratio = f["check"] / f["peers"]
    print(f"healthy lab, every probe and the dial-back, median of {runs}:")
    print(f"  reverseprobe check                     {f['check']:.3f} s (min {f['check_min']:.3f})")
    print(f"  user CPU of check                      {f['check_user_cpu']:.3f} s")
    print(f"  python3 -c pass (same namespace)       {f['python_pass']:.3f} s")
    print(f"  floor: python -c '{FLOOR_IMPORTS}'  {f['floor']:.3f} s")
    print(f"  ss; echoscu; upnpc -l; curl; curl      {f['peers']:.3f} s")
    print(f"  check / python start                   {starts:.1f}x (goal <= 6)")
    print(f"  check / peer sequence                  {ratio:.2f}x (goal <= 0.25)")
    for name, ms in sorted(f["probes"].items()):
        print(f"    probe {name:<28} {ms:7.0f} ms")
    print(f"  codes: {' '.join(f['codes'])}")
    ok = starts <= 6 and ratio <= 0.25
    print("targets met" if ok else "targets NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
