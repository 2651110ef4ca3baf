"""The hops toward the reflector or an IP service: TTL-limited UDP datagrams, each router that
drops one for TTL 0 answers ICMP Time Exceeded (RFC 792; RFC 1812 4.3.2.1), the destination
answers Port Unreachable. On Linux a plain UDP socket with IP_RECVERR receives those ICMP
errors on its error queue (ip(7)): no raw socket, no privileges. Elsewhere the probe is skipped
with the reason. Every socket is non-blocking and polled only until the deadline.
"""

from __future__ import annotations

import ipaddress
import select
import socket
import struct
import sys
import time
from urllib.parse import urlsplit

from reverseprobe.addresses import classify
from reverseprobe.concurrent import call_with_timeout
from reverseprobe.config import CheckConfig
from reverseprobe.model import Status
from reverseprobe.model.virtual import PathHop, PathResult
from reverseprobe.runner import Deadline, Probe

MAX_HOPS = 8  # enough to pass the PC's NATs and the ISP's first routers
BUDGET_S = 2.5
RESOLVE_S = 1.0
BASE_PORT = 33434  # traceroute's customary base port (nothing listens there)
_IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
_MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0x2000)
_SO_EE_ORIGIN_ICMP = 2
_ICMP_TIME_EXCEEDED = 11
_ICMP_DEST_UNREACH = 3
_EE = struct.Struct("=IBBBBII")  # struct sock_extended_err (linux/errqueue.h)


def parse_errqueue(cmsg_data: bytes) -> tuple[int, int, str | None] | None:
    """(ICMP type, code, offender address) from an IP_RECVERR control message (pure)."""
    if len(cmsg_data) < _EE.size:
        return None
    _errno, origin, icmp_type, code, _pad, _info, _data = _EE.unpack_from(cmsg_data)
    if origin != _SO_EE_ORIGIN_ICMP:
        return None
    off = cmsg_data[_EE.size : _EE.size + 16]  # SO_EE_OFFENDER: a sockaddr_in follows
    addr = None
    if len(off) >= 8 and struct.unpack_from("=H", off)[0] == socket.AF_INET:
        addr = socket.inet_ntoa(off[4:8])
    return icmp_type, code, addr


def target_host(cfg: CheckConfig) -> str | None:
    """The reflector's host, else the first IP service's (None: nothing outside to trace to)."""
    urls: list[str] = []
    if cfg.reflector:
        urls.append(cfg.reflector)
    if cfg.public_ip:
        from reverseprobe.probes.public_ip import DEFAULT_SERVICES

        urls.extend(cfg.ip_services or DEFAULT_SERVICES)
    for u in urls:
        host = urlsplit(u).hostname
        if host:
            return host
    return None


def _resolve(host: str, timeout: float) -> str:
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    infos = call_with_timeout(
        lambda: socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_DGRAM),
        timeout,
        name="path-resolve",
    )
    return str(infos[0][4][0])


def probe_path(host: str | None, deadline: Deadline, *, max_hops: int = MAX_HOPS) -> PathResult:
    if host is None:
        return PathResult(
            status=Status.SKIPPED, reason="no reflector or IP service to trace the path to"
        )
    if not sys.platform.startswith("linux"):
        return PathResult(
            status=Status.SKIPPED,
            target=host,
            reason="needs Linux IP_RECVERR; elsewhere tracing hops needs administrator rights",
        )
    t0 = time.monotonic()
    try:
        ip = _resolve(host, deadline.share(RESOLVE_S))
    except Exception as exc:  # noqa: BLE001 - a name that does not resolve is a result
        return PathResult(status=Status.ERROR, target=host, reason=f"cannot resolve {host}: {exc}")
    hops = _trace(ip, deadline, max_hops)
    reached = any(h.reached for h in hops)
    last = min((h.ttl for h in hops if h.reached), default=max_hops)
    hops = [h for h in hops if h.ttl <= last]
    answered = any(h.address for h in hops)
    return PathResult(
        status=Status.OK if answered else Status.TIMEOUT,
        reason=None if answered else "no hop answered (ICMP filtered)",
        target=ip,
        method="udp-recverr",
        hops=tuple(hops),
        reached=reached,
        elapsed_s=time.monotonic() - t0,
    )


def _trace(ip: str, deadline: Deadline, max_hops: int) -> list[PathHop]:
    socks: dict[int, tuple[int, socket.socket]] = {}
    sent: dict[int, float] = {}
    found: dict[int, PathHop] = {}
    poller = select.poll()
    try:
        for ttl in range(1, max_hops + 1):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks[s.fileno()] = (ttl, s)
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_IP, _IP_RECVERR, 1)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
            s.connect((ip, BASE_PORT + ttl))
            poller.register(s.fileno(), select.POLLIN | select.POLLERR)
        end = time.monotonic() + deadline.share(BUDGET_S, reserve=0.1)
        resend_at = time.monotonic() + (end - time.monotonic()) / 2
        resent = False
        for _ttl, s in socks.values():
            _send(s, sent, _ttl)
        while True:
            left = end - time.monotonic()
            if left <= 0 or _complete(found, max_hops):
                break
            if not resent and time.monotonic() >= resend_at:  # one retry for silent hops
                resent = True
                for ttl, s in socks.values():
                    if ttl not in found:
                        _send(s, sent, ttl)
            wait = min(left, max(0.0, resend_at - time.monotonic()) if not resent else left)
            for fd, _ev in poller.poll(max(1, int(wait * 1000))):
                ttl, s = socks[fd]
                hop = _read(s, ttl, ip, sent.get(ttl))
                if hop is not None and ttl not in found:
                    found[ttl] = hop
    finally:
        for _ttl, s in socks.values():
            s.close()
    return [found.get(t, PathHop(ttl=t, address=None, klass=None)) for t in range(1, max_hops + 1)]


def _send(s: socket.socket, sent: dict[int, float], ttl: int) -> None:
    try:
        s.send(b"reverseprobe path probe")
        sent[ttl] = time.monotonic()
    except OSError:
        pass  # an earlier ICMP error pending on the socket: read on the error queue


def _complete(found: dict[int, PathHop], max_hops: int) -> bool:
    reached = [t for t, h in found.items() if h.reached]
    top = min(reached) if reached else max_hops
    return all(t in found for t in range(1, top + 1))


def _read(s: socket.socket, ttl: int, ip: str, sent: float | None) -> PathHop | None:
    try:
        _data, anc, _flags, _addr = s.recvmsg(512, 512, _MSG_ERRQUEUE)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        try:  # a plain datagram (something answered on the port): the destination
            s.recv(512)
        except OSError:
            return None
        return PathHop(ttl=ttl, address=ip, klass=classify(ip).value, reached=True)
    for level, kind, data in anc:
        if level != socket.IPPROTO_IP or kind != _IP_RECVERR:
            continue
        parsed = parse_errqueue(data)
        if parsed is None:
            continue
        icmp_type, _code, addr = parsed
        rtt = (time.monotonic() - sent) * 1000 if sent is not None else None
        reached = icmp_type == _ICMP_DEST_UNREACH and addr == ip
        if icmp_type in (_ICMP_TIME_EXCEEDED, _ICMP_DEST_UNREACH) and addr:
            return PathHop(
                ttl=ttl, address=addr, klass=classify(addr).value, reached=reached, rtt_ms=rtt
            )
    return None


def check_probe(cfg: CheckConfig) -> Probe:
    """The `path` probe of `check`: toward the reflector, else the first IP service."""
    host = target_host(cfg)
    return lambda d: probe_path(host, d)
