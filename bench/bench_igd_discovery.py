"""IGD discovery time with a lab miniupnpd answering, and without any: reverseprobe's
`portmap.ssdp.discover_igd` (+ `connect_igd`) against miniupnpc's own `discover()` +
`selectigd()`, in one run, in the pc namespace of the lab (tests/lab/). Also the wall time of a
whole `reverseprobe forward` (add, then the no-op re-run) against `upnpc -a` (which discovers
with miniupnpc). Run on demand, as root:

    python bench/bench_igd_discovery.py [--runs 20]

Targets (issue 3/4): discovery in tens of ms (miniupnpc: ~1 s with a router, ~4 s without).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from lab import Lab, home_net  # noqa: E402

_CODE = r"""
import json, sys, time
import miniupnpc
from reverseprobe.portmap.ssdp import discover_igd
from reverseprobe.portmap.igd import connect_igd
runs, gw, timeout = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
out = {"ours": [], "ours_connect": [], "miniupnpc": [], "miniupnpc_select": []}
for _ in range(runs):
    t0 = time.perf_counter()
    r = discover_igd(gw, timeout)
    t1 = time.perf_counter()
    if r is not None:
        connect_igd(r.location, 3.0)
    t2 = time.perf_counter()
    out["ours"].append(t1 - t0)
    out["ours_connect"].append(t2 - t0)
    time.sleep(0.2)  # let miniupnpd drain the answers it still has queued for this run
for _ in range(max(1, runs // 4)):  # ~1-4 s each
    u = miniupnpc.UPnP(discoverdelay=10)
    t0 = time.perf_counter()
    try:
        u.discover()
        t1 = time.perf_counter()
        u.selectigd()
    except Exception:
        t1 = time.perf_counter()
    t2 = time.perf_counter()
    out["miniupnpc"].append(t1 - t0)
    out["miniupnpc_select"].append(t2 - t0)
print(json.dumps(out))
"""


def _ms(xs: list[float]) -> str:
    xs_ms = sorted(x * 1000 for x in xs)
    return (
        f"median {statistics.median(xs_ms):7.1f} ms  min {xs_ms[0]:7.1f}  max {xs_ms[-1]:7.1f}"
        f"  (n={len(xs_ms)})"
    )


def _wall(ns, argv: list[str], runs: int, env: dict[str, str]) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        ns.run(argv, check=False, env=env, timeout=60)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    runs = ap.parse_args().runs
    cases: tuple[tuple[str, dict[str, Any]], ...] = (
        ("router answering", {}),
        ("no UPnP daemon", {"upnp": False, "natpmp": False}),
    )
    for label, kw in cases:
        with Lab() as lab:
            net = home_net(lab, **kw)
            timeout = "2.0"
            r = net.pc.python(["-c", _CODE, str(runs), net.router_lan_ip, timeout], timeout=600)
            res = json.loads(r.stdout.strip().splitlines()[-1])
            print(f"== {label} (discover_igd timeout {timeout} s)")
            print(f"  reverseprobe discover_igd          {_ms(res['ours'])}")
            if kw == {}:
                print(f"  reverseprobe discover+connect_igd  {_ms(res['ours_connect'])}")
            print(f"  miniupnpc discover()               {_ms(res['miniupnpc'])}")
            if kw == {}:
                print(f"  miniupnpc discover()+selectigd()   {_ms(res['miniupnpc_select'])}")
            if kw == {}:
                env = {"REVERSEPROBE_STATE_DIR": str(lab.tmp / "state")}
                py = [sys.executable, "-m", "reverseprobe", "forward", "--json"]
                first = _wall(net.pc, [*py, "--port", "12000"], 1, env)
                again = _wall(net.pc, [*py, "--port", "12000"], max(3, runs // 4), env)
                upnpc = _wall(
                    net.pc,
                    ["upnpc", "-e", "bench", "-a", net.pc_ip, "12001", "12001", "TCP"],
                    max(3, runs // 4),
                    {},
                )
                print(f"  `reverseprobe forward` (add)       {_ms(first)}  (process wall time)")
                print(f"  `reverseprobe forward` (no-op)     {_ms(again)}")
                print(f"  `upnpc -a` (discover + add)        {_ms(upnpc)}")


if __name__ == "__main__":
    main()
