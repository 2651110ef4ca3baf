"""The reflector against hostile and broken peers (issue 16), on loopback only.

Dial-back targets that stall (a PDU header announcing 1 GiB and nothing more; a listener that
never reads) must not hold its slots past their deadline; one source cannot hold many; it never
dials an address that is no single remote machine or is its own; aiohttp's own parser errors
are the contract's JSON errors without a traceback or a version; the log cannot be forged and
a flood of refusals does not become a flood of lines.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from peers.stalling import StallingListener
from reflector_helpers import RecordingDialer, Response, probe, reflector, request
from reverseprobe.config.validate import parse_cidr
from reverseprobe.dicom.echo import quiet_pynetdicom
from reverseprobe.dicom.scp import VerificationScp
from reverseprobe.reflector.probelog import REFUSAL_LOG_BURST, escape
from reverseprobe.reflector.targets import (
    LocalAddresses,
    OwnAddresses,
    read_local_addresses,
    refusal,
)

quiet_pynetdicom()

BUDGET = 1.0  # the dial-back budget of these reflectors
OVERRUN = 0.5
MARGIN = 10.0  # a loaded 2-core machine
OPEN: dict[str, Any] = {
    "burst": 100_000,
    "rate_per_minute": 1e9,
}  # no rate limit: every client is 127.0.0.1
LOGGERS = ("reverseprobe.reflector", "aiohttp")


def wait_until(cond: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def assert_json_error(resp: Response, status: int, error: str) -> dict[str, Any]:
    assert resp.status == status, resp.body
    assert resp.headers["content-type"].startswith("application/json")
    doc: dict[str, Any] = resp.json()
    assert doc["error"] == error, doc
    return doc


def in_parallel(n: int, call: Callable[[], Response]) -> list[Response]:
    out: list[Response] = []
    lock = threading.Lock()

    def run() -> None:
        r = call()
        with lock:
            out.append(r)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(out) == n
    return out


# --- stalling dial-back targets -------------------------------------------------------------


@pytest.mark.parametrize("mode", ["header", "silent"])
def test_stalling_targets_give_their_slots_back_at_the_deadline(mode: str) -> None:
    """8 slots, all taken by dial-backs to stalling listeners: at their deadline they are
    free again and a new requester is served, with a real listener."""
    with (
        StallingListener(mode) as s1,
        StallingListener(mode) as s2,
        VerificationScp(0, host="127.0.0.1") as scp,
        reflector(
            timeout=BUDGET, max_concurrent=8, max_per_source=4, overrun_s=OVERRUN, **OPEN
        ) as r,
    ):
        body = {"ports": [s1.port, s2.port], "timeout": BUDGET}  # 4 requests: all 8 slots
        t0 = time.monotonic()
        stalled = in_parallel(4, lambda: probe(r.url, body, timeout=60))
        took = time.monotonic() - t0
        assert [x.status for x in stalled] == [200] * 4
        assert took < BUDGET + OVERRUN + MARGIN
        assert s1.wait_accepted(4, 10) and s2.wait_accepted(4, 10)
        for x in stalled:
            for res in x.json()["results"]:
                assert res["dicom"]["result"] != "accepted"
        assert r.reflector.slots.in_use == 0
        served = probe(r.url, {"ports": [scp.port], "calling_aet": "RPAFTER"})
        assert served.status == 200, served.body
        assert served.json()["results"][0]["dicom"]["result"] == "accepted"
    # the listeners closed their connections: no thread stays stuck
    assert wait_until(lambda: r.reflector.stuck == 0), r.reflector.stuck


def test_stuck_dial_backs_have_a_cap_and_healthz_says_degraded() -> None:
    with (
        StallingListener("header") as s,
        reflector(
            timeout=BUDGET,
            max_concurrent=8,
            max_per_source=4,
            overrun_s=OVERRUN,
            max_stuck=2,
            **OPEN,
        ) as r,
    ):
        first = probe(r.url, {"ports": [s.port], "timeout": BUDGET}, timeout=60)
        assert first.status == 200
        health = request(r.url)
        stuck = r.reflector.stuck
        print(f"stuck after the first stalled dial-back: {stuck}")
        if stuck == 0:  # the thread ended after all (a fixed DICOM layer): nothing to cap
            assert health.json() == {"status": "ok"}
            return
        assert health.status == 200 and health.json()["status"] == "degraded"
        second = probe(r.url, {"ports": [s.port], "timeout": BUDGET}, timeout=60)
        assert second.status == 200
        assert r.reflector.stuck >= 2
        full = request(r.url)
        assert full.status == 503 and full.json()["status"] == "degraded"
        assert full.json()["stuck_dial_backs"] >= 2
        busy = assert_json_error(probe(r.url, {"ports": [s.port]}), 503, "busy")
        assert "stuck" in busy["message"]
        s.close()  # the peer lets go: the threads end, the reflector is whole again
        assert wait_until(lambda: r.reflector.stuck == 0)
        assert request(r.url).json() == {"status": "ok"}
        assert probe(r.url, {"ports": [s.port]}).status == 200


def test_one_source_holds_at_most_two_probes() -> None:
    release = threading.Event()
    dialer = RecordingDialer(real=False, block=release)
    with reflector(dialer, max_concurrent=64, **OPEN) as r:
        held = [
            threading.Thread(target=probe, args=(r.url, {"ports": [2000 + i]}), daemon=True)
            for i in range(2)
        ]
        for t in held:
            t.start()
        assert wait_until(lambda: len(dialer.calls) == 2)
        third = probe(r.url, {"ports": [2010]})
        other = probe(r.url, {"ports": [2011]}, source="127.0.0.2")  # another source
        release.set()
        for t in held:
            t.join(15)
        after = probe(r.url, {"ports": [2012]})
    doc = assert_json_error(third, 429, "rate-limited")
    assert "in progress" in doc["message"] and third.headers["retry-after"] == "1"
    assert other.status == 200 and after.status == 200
    assert 2010 not in [c[1] for c in dialer.calls]


# --- addresses it must not dial -------------------------------------------------------------

FAKE_OWN = LocalAddresses(
    frozenset({ipaddress.ip_address("198.51.100.7"), ipaddress.ip_address("2001:db8::7")}),
    frozenset({ipaddress.ip_address("198.51.100.255")}),
)


@pytest.mark.parametrize(
    ("xff", "why"),
    [
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("::", "unspecified"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("240.0.0.1", "reserved"),
        ("198.51.100.255", "subnet broadcast"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("198.51.100.7", "itself"),
        ("2001:db8::7", "itself"),
    ],
)
def test_refused_targets_from_a_trusted_proxy(xff: str, why: str) -> None:
    dialer = RecordingDialer(real=False)
    own = OwnAddresses(lambda: FAKE_OWN)
    trust = (parse_cidr("127.0.0.0/8"),)
    with reflector(dialer, trust_proxy=trust, allow_loopback=False, own=own, **OPEN) as r:
        resp = probe(r.url, {"ports": [11112]}, headers={"X-Forwarded-For": xff})
        good = probe(r.url, {"ports": [11112]}, headers={"X-Forwarded-For": "192.0.2.9"})
    doc = assert_json_error(resp, 403, "address-not-allowed")
    assert why in doc["message"]
    assert good.status == 200, good.body
    assert [c[0] for c in dialer.calls] == ["192.0.2.9"]  # the refused one was never dialled


def test_loopback_is_refused_without_the_test_option() -> None:
    dialer = RecordingDialer(real=False)
    with reflector(dialer, allow_loopback=False, **OPEN) as r:
        resp = probe(r.url, {"ports": [11112]})
        ip = request(r.url, path="/v1/ip")
    assert_json_error(resp, 403, "address-not-allowed")
    assert ip.status == 200  # /v1/ip dials nothing
    assert dialer.calls == []


def test_the_address_a_request_arrived_on_is_its_own() -> None:
    assert refusal("203.0.113.5", LocalAddresses(), extra_own=["203.0.113.5"]) is not None
    assert refusal("203.0.113.5", LocalAddresses(), extra_own=["::ffff:203.0.113.5"]) is not None
    assert refusal("203.0.113.6", LocalAddresses(), extra_own=["203.0.113.5"]) is None
    assert (
        refusal("127.0.0.1", LocalAddresses(), allow_loopback=True, extra_own=["127.0.0.1"]) is None
    )


def test_the_interfaces_are_read() -> None:
    local = read_local_addresses()
    assert ipaddress.ip_address("127.0.0.1") in local.unicast
    assert ipaddress.ip_address("127.255.255.255") not in local.broadcast  # loopback has none


# --- malformed HTTP -------------------------------------------------------------------------


def raw_exchange(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            out += chunk
    return out


def parse_raw(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return status, headers, body


HOSTILE = [
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHo\x7fst: x\r\n\r\n",
    b"GARBAGE\r\n\r\n",
    b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET /he\x00althz HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,  # a TLS ClientHello
    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-B: " + b"b" * 9000 + b"\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    + b"".join(b"X-%d: y\r\n" % i for i in range(300))
    + b"\r\n",
    b"POST /v1/probe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    b"POST /v1/probe HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n{}",
    b"POST /v1/probe HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
]


def test_malformed_http_gets_json_4xx_without_traceback_or_version(
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    with reflector(RecordingDialer(real=False), **OPEN) as r:
        answers = [raw_exchange(r.port, data) for data in HOSTILE]
        health = request(r.url)
    assert health.status == 200 and health.headers["server"] == "reverseprobe-reflector"
    for data, raw in zip(HOSTILE, answers, strict=True):
        status, headers, body = parse_raw(raw)
        assert 400 <= status < 500, (data[:60], raw[:200])
        assert headers["content-type"].startswith("application/json"), raw[:200]
        assert headers["server"] == "reverseprobe-reflector"
        doc = json.loads(body)
        assert isinstance(doc["error"], str) and isinstance(doc["message"], str)
        assert b"bbbb" not in body and b"aaaa" not in body and b"\\x01" not in body  # no echo
    text = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "Traceback" not in caplog.text and "aiohttp" not in text
    assert all(rec.exc_info is None for rec in caplog.records)
    assert "refused client=127.0.0.1 status=400" in text


# --- the log --------------------------------------------------------------------------------

FORGED = "x\nrefused client=6.6.6.6 status=200 forged\r\x1b[2J\u2028"


@pytest.mark.parametrize("json_log", [False, True])
def test_a_body_key_cannot_forge_a_log_line(
    caplog: pytest.LogCaptureFixture, json_log: bool
) -> None:
    caplog.set_level(logging.INFO, logger="reverseprobe.reflector")
    with reflector(RecordingDialer(real=False), json_log=json_log, **OPEN) as r:
        resp = probe(r.url, {"ports": [11112], FORGED: 1})
        refused = probe(r.url, {"ports": [11112], "calling_aet": "A\nB"})
    assert resp.status == 200 and refused.status == 400
    messages = [rec.getMessage() for rec in caplog.records]
    for m in messages:
        assert not any(c in m for c in "\n\r\x1b\u2028"), repr(m)
        if json_log:
            json.loads(m)
    line = next(m for m in messages if "11112:" in m or '"probe"' in m)
    assert "6.6.6.6" in line  # still said, escaped
    if not json_log:
        assert "\\x0a" in line or "\\n" in line


def test_escape() -> None:
    assert escape("a\nb\x00\x7f\x85\u2028\\") == "a\\x0ab\\x00\\x7f\\x85\\u2028\\\\"
    assert escape("MYSCU é") == "MYSCU é"


def test_a_flood_of_refusals_is_logged_at_a_bounded_rate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="reverseprobe.reflector")
    n = 500
    with reflector(RecordingDialer(real=False), rate_per_minute=1, burst=1, summary_s=0.3) as r:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", r.port, timeout=15)
        t0 = time.monotonic()
        statuses = []
        for _ in range(n):
            conn.request("GET", "/nope")
            resp = conn.getresponse()
            resp.read()
            statuses.append(resp.status)
        took = time.monotonic() - t0
        conn.close()

        def summarized() -> int:
            total = 0
            for rec in caplog.records:
                m = rec.getMessage()
                if m.startswith("refused ") and " more in the last " in m:
                    total += int(m.split()[1])
            return total

        def logged() -> int:
            return sum(rec.getMessage().startswith("refused client=") for rec in caplog.records)

        assert wait_until(lambda: logged() + summarized() == n), (logged(), summarized())
    assert statuses == [404] * n
    assert logged() <= REFUSAL_LOG_BURST + 5 * took + 2
    assert "status=404:" in caplog.text
