"""The path probe's pure parts (issue 13): the IP_RECVERR control message (struct
sock_extended_err + SO_EE_OFFENDER, linux/errqueue.h), the target and the hop classes."""

from __future__ import annotations

import socket
import struct

from reverseprobe import config as c
from reverseprobe.model import Status
from reverseprobe.model.virtual import PathHop, PathResult
from reverseprobe.probes.path import parse_errqueue, probe_path, target_host
from reverseprobe.runner import Deadline


def _ee(origin: int, icmp_type: int, code: int, offender: str | None) -> bytes:
    head = struct.pack("=IBBBBII", 113, origin, icmp_type, code, 0, 0, 0)
    if offender is None:
        return head
    sin = struct.pack("=HH4s8x", socket.AF_INET, 0, socket.inet_aton(offender))
    return head + sin


def test_time_exceeded_names_the_router() -> None:
    assert parse_errqueue(_ee(2, 11, 0, "192.168.2.1")) == (11, 0, "192.168.2.1")


def test_port_unreachable_from_the_destination() -> None:
    assert parse_errqueue(_ee(2, 3, 3, "203.0.113.9")) == (3, 3, "203.0.113.9")


def test_local_origin_is_not_an_icmp_answer() -> None:
    assert parse_errqueue(_ee(1, 11, 0, "10.0.0.1")) is None  # SO_EE_ORIGIN_LOCAL


def test_short_or_offenderless_messages() -> None:
    assert parse_errqueue(b"") is None
    assert parse_errqueue(_ee(2, 11, 0, None)[:10]) is None
    assert parse_errqueue(_ee(2, 11, 0, None)) == (11, 0, None)
    v6 = _ee(2, 11, 0, None) + struct.pack("=H", socket.AF_INET6) + bytes(26)
    assert parse_errqueue(v6) == (11, 0, None)  # not an IPv4 offender: no address invented


def test_target_is_the_reflector_else_an_ip_service() -> None:
    cfg = c.CheckConfig(reflector="http://198.51.100.7:8080/r", ip_services=("http://x.example",))
    assert target_host(cfg) == "198.51.100.7"
    cfg = c.CheckConfig(public_ip=True, ip_services=("http://192.0.2.5:8080/ip",))
    assert target_host(cfg) == "192.0.2.5"
    assert target_host(c.CheckConfig(public_ip=False)) is None


def test_no_target_is_skipped_with_the_reason() -> None:
    r = probe_path(None, Deadline.after(1.0))
    assert r.status is Status.SKIPPED and r.reason and "reflector" in r.reason


def test_private_before_public_and_shared_hops() -> None:
    hops = (
        PathHop(1, "172.17.0.1", "private"),
        PathHop(2, None, None),
        PathHop(3, "100.64.0.1", "shared"),
        PathHop(4, "198.51.100.1", "public"),
        PathHop(5, "10.9.9.9", "private"),
    )
    r = PathResult(status=Status.OK, hops=hops)
    assert r.private_before_public == ("172.17.0.1", "100.64.0.1")
    assert r.shared_hops == ("100.64.0.1",)
