"""Time-to-verdict of `reverseprobe check` in the namespace lab, against the peer way of getting
the same facts (`upnpc -s`, `upnpc -l`, then `curl` to the lab IP service, in sequence), and the
deadline with a router that never answers and IP services that black-hole. Run on demand, as
root:

    python bench/bench_check_lab.py [--runs 7]

Targets (issue 3): healthy router under 0.5 s and under 0.3x the peer sequence; silent router
and black-holed services: `check --timeout 3` finishes within 3.3 s.

Every time is the wall time of the whole command as a user runs it (process start, imports,
`ip netns exec`), measured from the host; the median over the runs is reported.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

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


def timed(ns: Namespace, argv: Sequence[str], *, python: bool = False) -> tuple[float, int]:
    env = {"PYTHONPATH": str(SRC)} if python else None
    t0 = time.perf_counter()
    res = ns.run(list(argv), check=False, timeout=120, env=env)
    return time.perf_counter() - t0, res.returncode


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
    args = ap.parse_args()
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


if __name__ == "__main__":
    raise SystemExit(main())
