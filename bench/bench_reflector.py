"""The reflector under load, on loopback only. Run on demand:

    python bench/bench_reflector.py [--clients 32] [--seconds 10] [--idle 1000]

1. Dial-backs: `reverseprobe reflector` (its own process, rate limit opened up: every client
   is 127.0.0.1) and a pynetdicom Verification SCP (its own process) on loopback; N clients
   (one asyncio loop, keep-alive connections) each POST /v1/probe in a loop and the reflector
   associates + C-ECHOes back every time. Reports dial-backs/s, p50/p99 latency, errors, and
   the CPU of each process. Target (issue 5): >= 100 dial-backs/s on 2 cores, p99 < 0.5 s.
2. The same with stalling peers mixed in (`--stall-share`, default 25% of the clients): those
   clients ask for a port where a listener answers with only a PDU header announcing 1 GiB
   and holds the connection. Their dial-backs end at the deadline (the reflector gives the
   slot back whatever the peer does); the figure is dial-backs/s and p99 of the healthy ones.
3. Slowloris: M connections each send half a request header and then nothing, held open
   while /healthz is timed; the reflector's memory (RSS) before and with them. Target:
   /healthz under 1 s, memory bounded. The reflector drops such connections after its
   keep-alive timeout (15 s); the bench reports how many it had dropped when it ends.

Bounded in count and time; everything stops by itself (processes killed at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO / "src")}

_SCP = r"""
import logging, sys, time
from pynetdicom import AE
logging.getLogger("pynetdicom").setLevel(logging.CRITICAL + 1)
ae = AE(ae_title="BENCHSCP")
ae.add_supported_context("1.2.840.10008.1.1")
ae.maximum_associations = 512
ae.acse_timeout = 5
srv = ae.start_server(("127.0.0.1", 0), block=False)
srv.socket.listen(512)  # socketserver's default backlog of 5 drops SYNs under load
print(srv.server_address[1], flush=True)
time.sleep(float(sys.argv[1]))
ae.shutdown()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_s(pid: int) -> float:
    import psutil

    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


def rss_mib(pid: int) -> float:
    import psutil

    return float(psutil.Process(pid).memory_info().rss) / 2**20


def start_reflector(port: int, *extra: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "reverseprobe", "reflector", "--listen", f"127.0.0.1:{port}",
            *extra]  # fmt: skip
    proc = subprocess.Popen(argv, env=ENV, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "listening on" in line, line
    return proc


def drain(proc: subprocess.Popen[str]) -> None:
    """Keep reading the reflector's log so it never blocks on a full pipe."""
    import threading

    def run() -> None:
        assert proc.stderr is not None
        for _ in proc.stderr:
            pass

    threading.Thread(target=run, daemon=True).start()


def stalling_listener() -> tuple[socket.socket, int]:
    """Answers each A-ASSOCIATE-RQ with `02 00 40 00 00 00` (a 1 GiB A-ASSOCIATE-AC header)
    and holds the connection; closing the socket returned ends it."""
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(512)
    held: list[socket.socket] = []

    def serve(conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            conn.recv(4096)
            conn.sendall(bytes.fromhex("020040000000"))
        except OSError:
            pass
        held.append(conn)

    def run() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                for c in held:
                    c.close()
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=run, daemon=True).start()
    return srv, int(srv.getsockname()[1])


async def dial_backs(
    url: str, scp_port: int, clients: int, seconds: float, stall_port: int = 0, stallers: int = 0
) -> dict[str, Any]:
    import aiohttp

    lat: list[float] = []
    errors: dict[str, int] = {}
    stalled: list[float] = []
    body = {"ports": [scp_port], "called_aet": "BENCHSCP", "calling_aet": "RPBENCH"}
    stall_body = {"ports": [stall_port], "calling_aet": "RPSTALL", "timeout": 1.0}
    stop_at = time.monotonic() + seconds
    warm_until = time.monotonic() + min(2.0, seconds / 5)

    async def staller(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < stop_at:
            t0 = time.monotonic()
            try:
                async with session.post(url + "/v1/probe", json=stall_body) as resp:
                    await resp.read()
                    key = "ok" if resp.status == 200 else f"stall-{resp.status}"
            except Exception as exc:  # counted, the bench goes on
                key = f"stall-{type(exc).__name__}"
            if key == "ok":
                stalled.append(time.monotonic() - t0)
            else:
                errors[key] = errors.get(key, 0) + 1

    async def client(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < stop_at:
            t0 = time.monotonic()
            try:
                async with session.post(url + "/v1/probe", json=body) as resp:
                    doc = await resp.json()
                    ok = resp.status == 200 and doc["results"][0]["dicom"]["result"] == "accepted"
                    why = "ok" if ok else f"{resp.status}:{json.dumps(doc)[:80]}"
            except Exception as exc:  # counted, the bench goes on
                why = type(exc).__name__
            if why != "ok":
                errors[why] = errors.get(why, 0) + 1
            elif t0 >= warm_until:
                lat.append(time.monotonic() - t0)

    conn = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
        t_start = time.monotonic()
        await asyncio.gather(
            *(client(session) for _ in range(clients - stallers)),
            *(staller(session) for _ in range(stallers)),
        )
        measured = time.monotonic() - max(warm_until, t_start)
    lat.sort()
    n = len(lat)
    return {
        "dial_backs": n,
        "per_s": n / measured if measured > 0 else 0.0,
        "p50_ms": 1000 * lat[n // 2] if n else None,
        "p99_ms": 1000 * lat[min(n - 1, int(n * 0.99))] if n else None,
        "max_ms": 1000 * lat[-1] if n else None,
        "errors": errors,
        "stalled": len(stalled),
        "stalled_max_ms": 1000 * max(stalled) if stalled else None,
    }


def bench_dial_backs(clients: int, seconds: float, stall_share: float = 0.0) -> None:
    scp = subprocess.Popen(
        [sys.executable, "-c", _SCP, str(seconds + 30)], env=ENV, stdout=subprocess.PIPE, text=True
    )
    rport = free_port()
    refl = None
    try:
        assert scp.stdout is not None
        scp_port = int(scp.stdout.readline())
        refl = start_reflector(
            rport, "--rate", "100000000", "--burst", "100000", "--max-concurrent", "64",
            "--max-per-source", "100000", "--allow-loopback", "--timeout", "2",
        )  # fmt: skip
        drain(refl)
        stallers = round(clients * stall_share)
        stall_srv, stall_port = stalling_listener() if stallers else (None, 0)
        c_refl, c_scp, c_self = cpu_s(refl.pid), cpu_s(scp.pid), time.process_time()
        t0 = time.monotonic()
        url = f"http://127.0.0.1:{rport}"
        res = asyncio.run(dial_backs(url, scp_port, clients, seconds, stall_port, stallers))
        wall = time.monotonic() - t0
        if stall_srv is not None:
            stall_srv.close()
        print(f"dial-backs: {clients} clients ({stallers} of them to a stalling peer), "
              f"{seconds:g} s (first {min(2.0, seconds / 5):g} s are warm-up)")  # fmt: skip
        if stallers:
            worst = res["stalled_max_ms"] or 0.0
            print(f"  stalled      {res['stalled']} dial-backs to the stalling peer, all ended "
                  f"(max {worst:.0f} ms; budget 1 s + 2 s)")  # fmt: skip
        print(f"  throughput   {res['per_s']:.1f} dial-backs/s ({res['dial_backs']} measured)")
        print(f"  latency      p50 {res['p50_ms']:.0f} ms, p99 {res['p99_ms']:.0f} ms, "
              f"max {res['max_ms']:.0f} ms")  # fmt: skip
        print(f"  errors       {res['errors'] or 'none'}")
        print(
            f"  CPU          reflector {(cpu_s(refl.pid) - c_refl) / wall:.2f} cores, "
            f"SCP {(cpu_s(scp.pid) - c_scp) / wall:.2f}, "
            f"clients {(time.process_time() - c_self) / wall:.2f} (of {os.cpu_count()})"
        )
        target = res["per_s"] >= 100 and (res["p99_ms"] or 1e9) < 500
        print(f"  target >= 100/s and p99 < 500 ms: {'met' if target else 'NOT met'}")
    finally:
        for p in (refl, scp):
            if p is not None:
                p.kill()
                p.wait()


async def slowloris(port: int, idle: int, pid: int) -> None:
    rss0 = rss_mib(pid)
    held: list[asyncio.StreamWriter] = []
    readers: list[asyncio.StreamReader] = []
    for _ in range(idle):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"POST /v1/probe HTTP/1.1\r\nHost: x\r\nContent-Type: appl")  # and then nothing
        held.append(w)
        readers.append(r)
    await asyncio.gather(*(w.drain() for w in held))
    await asyncio.sleep(0.5)  # let the server take them all in before measuring
    rss1 = rss_mib(pid)
    times = []
    for _ in range(50):
        t0 = time.monotonic()
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = await asyncio.wait_for(r.read(), 10)
        times.append(time.monotonic() - t0)
        assert data.startswith(b"HTTP/1.1 200"), data[:80]
        w.close()
    rss2 = rss_mib(pid)
    print(f"slowloris: {idle} connections holding half a header")
    print(f"  /healthz     p50 {1000 * statistics.median(times):.1f} ms, "
          f"max {1000 * max(times):.1f} ms over {len(times)} requests")  # fmt: skip
    print(
        f"  reflector RSS {rss0:.1f} MiB idle -> {rss1:.1f} MiB with them "
        f"({1024 * (rss1 - rss0) / idle:.1f} KiB each) -> {rss2:.1f} MiB after the probes"
    )
    await asyncio.sleep(16)  # past the 15 s keep-alive timeout
    closed = sum(r.at_eof() or w.is_closing() for r, w in zip(readers, held, strict=True))
    print(f"  after 16 s   {closed} of {idle} dropped by the reflector (keep-alive timeout 15 s)")
    target = max(times) < 1.0
    print(f"  target /healthz < 1 s: {'met' if target else 'NOT met'}")
    for w in held:
        w.close()


def bench_slowloris(idle: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, idle + 512))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < idle + 64:
        print(f"slowloris: skipped, only {want} file descriptors allowed")
        return
    port = free_port()
    refl = start_reflector(port)
    drain(refl)
    try:
        asyncio.run(slowloris(port, idle, refl.pid))
    finally:
        refl.kill()
        refl.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--stall-share", type=float, default=0.25)
    args = ap.parse_args()
    if not 1 <= args.clients <= 256 or not 1 <= args.seconds <= 120 or not 1 <= args.idle <= 5000:
        ap.error("bounded runs only: --clients 1-256, --seconds 1-120, --idle 1-5000")
    if not 0 <= args.stall_share < 1:
        ap.error("--stall-share is a fraction 0-0.99")
    bench_dial_backs(args.clients, args.seconds)
    print()
    if args.stall_share > 0:
        bench_dial_backs(args.clients, args.seconds, args.stall_share)
        print()
    bench_slowloris(args.idle)


if __name__ == "__main__":
    main()
