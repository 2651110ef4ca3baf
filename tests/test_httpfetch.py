"""httpfetch.fetch against loopback peers: honest, endless, huge, dripping, compressed, lying.

Each hostile peer is a raw socket (a real HTTP server would not misbehave this way). Bounds
are behaviour with generous margins (a loaded 2-core machine): the call ends within its
timeout plus a margin, and its peak Python allocation stays far under what the peer sends.
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator

import pytest

from peers.rawhttp import Handler, RawServer
from reverseprobe.httpfetch import FetchError, FetchKind, fetch

MARGIN = 3.0  # seconds on top of a timeout, for a loaded machine


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], RawServer]]:
    started: list[RawServer] = []

    def make(handler: Handler) -> RawServer:
        srv = RawServer(handler)
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


def answer(body: bytes, *extra: bytes, status: bytes = b"200 OK") -> bytes:
    head = [b"HTTP/1.1 " + status, b"Content-Length: %d" % len(body), *extra]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def failing(fn: Callable[[], object]) -> tuple[FetchError, float]:
    """The FetchError `fn` raises and how long it took."""
    t0 = time.monotonic()
    with pytest.raises(FetchError) as e:
        fn()
    return e.value, time.monotonic() - t0


def peak_mib(fn: Callable[[], object]) -> float:
    """Peak Python allocation while `fn` runs (its exception swallowed), in MiB."""
    tracemalloc.start()
    try:
        fn()
    except FetchError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / (1024 * 1024)


# --- honest peers -------------------------------------------------------------------------------


def test_a_plain_answer_with_what_we_sent(serve: Callable[[Handler], RawServer]) -> None:
    srv = serve(lambda c, _r: c.sendall(answer(b"198.51.100.7", b"X-Odd: \x1b[2J")))
    got = fetch("POST", srv.url + "ctl", timeout=5, max_bytes=100, body=b"<x/>", headers={"A": "b"})
    assert got.status == 200 and got.body == b"198.51.100.7"
    assert got.local_address == "127.0.0.1"
    req = srv.requests[0].lower()
    assert req.startswith(b"post /ctl http/1.1")
    assert b"accept-encoding: identity" in req and b"\r\na: b\r\n" in req
    assert b"content-length: 4" in req


def test_a_4xx_is_an_answer_not_an_error(serve: Callable[[Handler], RawServer]) -> None:
    srv = serve(lambda c, _r: c.sendall(answer(b'{"error":"x"}', status=b"403 Forbidden")))
    got = fetch("GET", srv.url, timeout=5, max_bytes=100)
    assert got.status == 403 and got.body == b'{"error":"x"}' and not got.is_redirect


def test_chunked_under_the_cap_reads_whole(serve: Callable[[Handler], RawServer]) -> None:
    def chunked(c: socket.socket, _r: bytes) -> None:
        c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        c.sendall(b"5\r\nhello\r\n1;ext=1\r\n!\r\n0\r\n\r\n")

    got = fetch("GET", serve(chunked).url, timeout=5, max_bytes=6)
    assert got.body == b"hello!"


# --- bytes --------------------------------------------------------------------------------------


def endless_chunks(conn: socket.socket, _req: bytes) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    piece = b"<a>" * 10_000
    chunk = b"%x\r\n%s\r\n" % (len(piece), piece)
    end = time.monotonic() + 20
    while time.monotonic() < end:
        conn.sendall(chunk)


def test_an_endless_chunked_body_is_cut_at_the_cap(serve: Callable[[Handler], RawServer]) -> None:
    srv = serve(endless_chunks)
    err, took = failing(lambda: fetch("GET", srv.url, timeout=5, max_bytes=256 * 1024))
    assert err.kind is FetchKind.TOO_LARGE and "longer than 262144 bytes" in err.reason
    assert took < 5 + MARGIN
    assert peak_mib(lambda: fetch("GET", srv.url, timeout=5, max_bytes=256 * 1024)) < 8


def test_a_huge_content_length_is_refused_unread(serve: Callable[[Handler], RawServer]) -> None:
    sent: list[int] = []

    def huge(c: socket.socket, _r: bytes) -> None:
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 200000000\r\n\r\n")
        for _ in range(2000):
            c.sendall(b"<a>" * 20_000)
            sent.append(1)

    srv = serve(huge)
    err, took = failing(lambda: fetch("GET", srv.url, timeout=10, max_bytes=4096))
    assert err.kind is FetchKind.TOO_LARGE and err.announced == 200_000_000
    assert "announces 200000000 bytes (more than 4096)" in err.reason
    assert took < 10  # refused at the header, not after reading toward the deadline
    assert peak_mib(lambda: fetch("GET", srv.url, timeout=10, max_bytes=4096)) < 8
    assert len(sent) < 2000  # we hung up: the peer could not push its 120 MB


def test_a_gzip_bomb_is_refused_not_inflated(serve: Callable[[Handler], RawServer]) -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)  # 64 MiB in ~64 KiB
    assert len(bomb) < 256 * 1024
    srv = serve(lambda c, _r: c.sendall(answer(bomb, b"Content-Encoding: gzip")))
    err, _ = failing(lambda: fetch("GET", srv.url, timeout=5, max_bytes=256 * 1024))
    assert err.kind is FetchKind.GARBAGE and "compressed answer (Content-Encoding gzip)" in (
        err.reason
    )
    assert peak_mib(lambda: fetch("GET", srv.url, timeout=5, max_bytes=256 * 1024)) < 8


def test_a_body_cut_short_is_garbage(serve: Callable[[Handler], RawServer]) -> None:
    srv = serve(lambda c, _r: c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"))
    err, _ = failing(lambda: fetch("GET", srv.url, timeout=5, max_bytes=1000))
    assert err.kind is FetchKind.GARBAGE and "before the body ended" in err.reason


# --- time ---------------------------------------------------------------------------------------


def test_a_dripping_body_ends_at_the_total_deadline(serve: Callable[[Handler], RawServer]) -> None:
    def drip(c: socket.socket, _r: bytes) -> None:
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(1000):  # a byte every 0.1 s: each read well within a per-read timeout
            c.sendall(b"1")
            time.sleep(0.1)

    srv = serve(drip)
    err, took = failing(lambda: fetch("GET", srv.url, timeout=1.5, max_bytes=4096))
    assert err.kind is FetchKind.TIMEOUT
    assert took < 1.5 + MARGIN


def test_a_dripping_status_line_releases_caller_and_socket(
    serve: Callable[[Handler], RawServer],
) -> None:
    """Blocked inside requests reading the header: the caller returns at its deadline, and the
    socket is shut down, so the peer sees us go (the worker thread does not linger)."""

    def drip(c: socket.socket, _r: bytes) -> None:
        end = time.monotonic() + 30
        while time.monotonic() < end:
            c.sendall(b"H")  # a status line that never ends: http.client reads up to 64 KiB
            time.sleep(0.1)

    srv = serve(drip)
    err, took = failing(lambda: fetch("GET", srv.url, timeout=1.5, max_bytes=4096))
    gone = time.monotonic()
    assert err.kind is FetchKind.TIMEOUT and "1.5 s" in err.reason
    assert took < 1.5 + MARGIN
    until = time.monotonic() + 10
    while not srv.broke_at and time.monotonic() < until:
        time.sleep(0.05)  # polling the peer's record, not a fixed wait
    assert srv.broke_at and srv.broke_at[0] - gone < MARGIN


def test_a_silent_peer_times_out(serve: Callable[[Handler], RawServer]) -> None:
    hold = threading.Event()
    srv = serve(lambda _c, _r: hold.wait(20) and None)
    try:
        err, took = failing(lambda: fetch("GET", srv.url, timeout=1.0, max_bytes=4096))
    finally:
        hold.set()
    assert err.kind is FetchKind.TIMEOUT and took < 1.0 + MARGIN


# --- what is not followed, what is not HTTP ----------------------------------------------------


def test_a_redirect_is_returned_not_followed(serve: Callable[[Handler], RawServer]) -> None:
    def redirect(c: socket.socket, req: bytes) -> None:
        if req.startswith(b"GET /elsewhere"):
            c.sendall(answer(b"203.0.113.9"))
        else:
            c.sendall(answer(b"", b"Location: /elsewhere", status=b"302 Found"))

    srv = serve(redirect)
    got = fetch("GET", srv.url, timeout=5, max_bytes=100)
    assert got.status == 302 and got.is_redirect and got.headers["location"] == "/elsewhere"
    assert len(srv.requests) == 1  # /elsewhere never asked


def test_proxies_from_the_environment_are_ignored(
    serve: Callable[[Handler], RawServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = serve(lambda c, _r: c.sendall(answer(b"the proxy")))
    srv = serve(lambda c, _r: c.sendall(answer(b"the peer")))
    for var in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(var, proxy.url)
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    assert fetch("GET", srv.url, timeout=5, max_bytes=100).body == b"the peer"
    assert proxy.requests == []


def test_a_garbage_status_line(serve: Callable[[Handler], RawServer]) -> None:
    srv = serve(lambda c, _r: c.sendall(b"SSH-2.0-OpenSSH_9.6\x1b[2J\r\n\r\n"))
    err, _ = failing(lambda: fetch("GET", srv.url, timeout=5, max_bytes=100))
    assert err.kind is FetchKind.GARBAGE and "not an HTTP status line" in err.reason
    assert "\x1b" not in err.reason


def test_a_peer_closing_without_an_answer(serve: Callable[[Handler], RawServer]) -> None:
    srv = serve(lambda c, _r: None)
    err, _ = failing(lambda: fetch("GET", srv.url, timeout=5, max_bytes=100))
    assert err.kind is FetchKind.GARBAGE and "before the HTTP header ended" in err.reason


def test_nothing_listening_is_refused() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    err, _ = failing(lambda: fetch("GET", f"http://127.0.0.1:{port}/", timeout=5, max_bytes=1))
    assert err.kind is FetchKind.REFUSED


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "127.0.0.1/x", "http://"])
def test_a_url_that_is_no_http_url_is_garbage(url: str) -> None:
    err, _ = failing(lambda: fetch("GET", url, timeout=5, max_bytes=1))
    assert err.kind is FetchKind.GARBAGE and "not a valid URL" in err.reason
