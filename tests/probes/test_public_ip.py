"""probes/public_ip.py: answer parsing, voting, and hostile services on loopback.

The services are a real HTTP server (http.server in a thread) whose paths misbehave on purpose:
malformed, huge, slow-dripping, redirecting, black-holed. Nothing here leaves loopback.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reverseprobe.config import CheckConfig
from reverseprobe.model import Status
from reverseprobe.probes.public_ip import (
    DEFAULT_SERVICES,
    MAX_BODY,
    AnswerError,
    PublicIpResult,
    SourceAnswer,
    check_probe,
    fetch_one,
    parse_answer,
    probe_public_ip,
    vote,
)
from reverseprobe.runner import Deadline

# --- parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "address"),
    [
        (b"203.0.113.5", "203.0.113.5"),
        (b"203.0.113.5\n", "203.0.113.5"),
        (b'{"ip":"203.0.113.5"}', "203.0.113.5"),  # ipify ?format=json, the reflector /v1/ip
        (b'{"query": "203.0.113.5", "status": "success"}', "203.0.113.5"),
        (b"fl=1f1\nh=www.cloudflare.com\nip=203.0.113.5\nts=1.2\n", "203.0.113.5"),  # trace
        (b"  \r\n203.0.113.5\r\n\r\n", "203.0.113.5"),
    ],
)  # fmt: skip
def test_parse_answer(body: bytes, address: str) -> None:
    assert parse_answer(body) == address


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"", "empty"),
        (b"<html><body>Your IP is 203.0.113.5</body></html>", "not an IP"),
        (b"2001:db8::1", "IPv6"),
        (b"203.0.113.5\n198.51.100.1", "2 lines"),
        (b"\xff\xfe\x00garbage", "UTF-8"),
        (b'{"ip": 12}', "no address field"),
        (b'{"ip": "nope"}', "not an IP"),
        (b"[1,2]", "not an IP"),
        (b'{"ip": ', "invalid JSON"),
        (b"1" * (MAX_BODY + 1), "longer than"),
        (b"999.1.1.1", "not an IP"),
    ],
)
def test_parse_answer_rejects(body: bytes, why: str) -> None:
    with pytest.raises(AnswerError, match=why):
        parse_answer(body)


@given(st.binary(max_size=600))
def test_parse_answer_never_raises_anything_else(body: bytes) -> None:
    with contextlib.suppress(AnswerError):
        parse_answer(body)


def a(src: str, addr: str | None) -> SourceAnswer:
    return SourceAnswer(src, addr, None if addr else "x", 1.0)


def test_vote() -> None:
    assert vote([]) == (None, None)
    assert vote([a("s1", None)]) == (None, None)
    assert vote([a("s1", "1.1.1.1")]) == ("1.1.1.1", None)
    assert vote([a("s1", "1.1.1.1"), a("s2", "1.1.1.1")]) == ("1.1.1.1", True)
    assert vote([a("s1", "2.2.2.2"), a("s2", "1.1.1.1"), a("s3", "1.1.1.1")]) == ("1.1.1.1", False)
    assert vote([a("s1", "2.2.2.2"), a("s2", "1.1.1.1")]) == ("2.2.2.2", False)  # tie: first


def test_default_services_are_https_and_check_probe_skips() -> None:
    assert len(DEFAULT_SERVICES) >= 4
    assert all(u.startswith("https://") for u in DEFAULT_SERVICES)
    r = check_probe(CheckConfig(public_ip=False))(Deadline.after(1))
    assert isinstance(r, PublicIpResult) and r.status is Status.SKIPPED and r.answers == ()


# --- hostile services on loopback -----------------------------------------------------------


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, body: bytes, *, status: int = 200, length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        p = self.path
        if p == "/ip":
            self._send(b"198.51.100.20\n")
        elif p == "/json":
            self._send(b'{"ip": "198.51.100.20"}')
        elif p == "/other":
            self._send(b"198.51.100.99")
        elif p == "/html":
            self._send(b"<html>198.51.100.20</html>")
        elif p == "/v6":
            self._send(b"2001:db8::5")
        elif p == "/500":
            self._send(b"oops", status=500)
        elif p == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:1/")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif p == "/huge-declared":
            self._send(b"1" * 10, length=50_000_000)
        elif p == "/huge-chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"1" * 65536
            with_size = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
            try:
                for _ in range(200):
                    self.wfile.write(with_size)
            except OSError:
                pass
        elif p == "/drip":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                for _ in range(400):
                    self.wfile.write(b"1")
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                pass
        elif p == "/slow-headers":
            time.sleep(30)
        else:
            self._send(b"not found", status=404)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def blackhole() -> Iterator[str]:
    """Accepts connections and never says a byte."""
    srv = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}/"
    stop.set()
    for c in held:
        c.close()
    srv.close()


@pytest.mark.parametrize(
    ("path", "address", "error"),
    [
        ("/ip", "198.51.100.20", None),
        ("/json", "198.51.100.20", None),
        ("/html", None, "not an IP"),
        ("/v6", None, "IPv6"),
        ("/500", None, "HTTP 500"),
        ("/redirect", None, "redirect (not followed)"),
        ("/huge-declared", None, "longer than"),
        ("/huge-chunked", None, "longer than"),
        ("/nothing", None, "HTTP 404"),
    ],
)
def test_fetch_one(server: str, path: str, address: str | None, error: str | None) -> None:
    got = fetch_one(server + path, Deadline.after(5))
    assert got.address == address
    if error is None:
        assert got.error is None
    else:
        assert got.error is not None and error in got.error


def test_refused_port_is_an_answer_not_an_exception() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    got = fetch_one(f"http://127.0.0.1:{port}/", Deadline.after(2))
    assert got.address is None and got.error and "connection failed" in got.error


def _run_with_watchdog(services: list[str], seconds: float) -> PublicIpResult:
    """probe_public_ip under a deadline; fails the test if it does not come back at all."""
    box: list[PublicIpResult] = []
    t = threading.Thread(
        target=lambda: box.append(probe_public_ip(services, Deadline.after(seconds))), daemon=True
    )
    t.start()
    t.join(seconds + 10)  # a hang, not a timing: the probe must return near its deadline
    assert box, "probe_public_ip did not return"
    return box[0]


def test_vote_over_services_agreeing_and_one_broken(server: str) -> None:
    r = _run_with_watchdog([server + "/ip", server + "/json", server + "/html"], 5)
    assert r.status is Status.OK and r.address == "198.51.100.20" and r.consistent is True
    assert [x.address for x in r.answers] == ["198.51.100.20", "198.51.100.20", None]


def test_disagreeing_services(server: str) -> None:
    r = _run_with_watchdog([server + "/ip", server + "/other"], 5)
    assert r.address == "198.51.100.20" and r.consistent is False


def test_slow_and_silent_services_end_at_the_deadline(server: str, blackhole: str) -> None:
    services = [blackhole, server + "/drip", server + "/slow-headers", server + "/ip"]
    r = _run_with_watchdog(services, 1.0)
    by = {x.source: x for x in r.answers}
    assert r.status is Status.OK and r.address == "198.51.100.20"
    for slow in services[:3]:
        assert by[slow].address is None
        assert by[slow].error in ("no answer by the deadline", "timed out") or "deadline" in str(
            by[slow].error
        )


def test_nothing_answers(blackhole: str) -> None:
    r = _run_with_watchdog([blackhole], 0.5)
    assert r.status is Status.FAIL and r.address is None and r.consistent is None
    assert r.reason and blackhole in r.reason


def test_environment_proxy_is_ignored(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:1")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert fetch_one(server + "/ip", Deadline.after(5)).address == "198.51.100.20"


class _V6Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6


class _Fixed(http.server.BaseHTTPRequestHandler):
    answer = b""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.answer)))
        self.end_headers()
        self.wfile.write(self.answer)


def test_ipv4_is_forced_on_a_dual_stack_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name with an AAAA record first: the service is asked over IPv4 all the same."""
    import requests

    v6h = type("V6", (_Fixed,), {"answer": b"2001:db8::77"})
    v4h = type("V4", (_Fixed,), {"answer": b"198.51.100.44"})
    v6 = _V6Server(("::1", 0), v6h)
    port = v6.server_address[1]
    v4 = http.server.ThreadingHTTPServer(("127.0.0.1", port), v4h)
    for srv in (v6, v4):
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    real = socket.getaddrinfo

    def dual(host: Any, *args: Any, **kw: Any) -> list[tuple[Any, ...]]:
        if host == "dualstack.test":
            family = args[1] if len(args) > 1 else kw.get("family", 0)
            both = [
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
            ]
            return [a for a in both if family in (0, a[0])]
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", dual)
    try:
        # the test can fail: a plain requests call takes the IPv6 address first
        plain = requests.get(f"http://dualstack.test:{port}/", timeout=5)
        assert plain.text == "2001:db8::77"
        got = fetch_one(f"http://dualstack.test:{port}/", Deadline.after(5))
        assert got.address == "198.51.100.44", got
    finally:
        for srv in (v6, v4):
            srv.shutdown()
            srv.server_close()


# --- per family (issue 15) ------------------------------------------------------------------


def test_a_dual_stack_name_is_asked_over_both_families(monkeypatch: pytest.MonkeyPatch) -> None:
    """One service name with A and AAAA: asked once per family, each answer in its family."""
    v6h = type("V6", (_Fixed,), {"answer": b"2a0c:5::77"})
    v4h = type("V4", (_Fixed,), {"answer": b"198.51.100.44"})
    v6 = _V6Server(("::1", 0), v6h)
    port = v6.server_address[1]
    v4 = http.server.ThreadingHTTPServer(("127.0.0.1", port), v4h)
    for srv in (v6, v4):
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    real = socket.getaddrinfo

    def dual(host: Any, *args: Any, **kw: Any) -> list[tuple[Any, ...]]:
        if host == "dualstack.test":
            family = args[1] if len(args) > 1 else kw.get("family", 0)
            both = [
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
            ]
            return [a for a in both if family in (0, a[0])]
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", dual)
    try:
        r = _run_with_watchdog([f"http://dualstack.test:{port}/"], 5)
    finally:
        for srv in (v6, v4):
            srv.shutdown()
            srv.server_close()
    assert r.status is Status.OK and r.address == "198.51.100.44"  # the IPv4 view as before
    assert [a.address for a in r.answers] == ["198.51.100.44"]
    fam4, fam6 = r.of("ipv4"), r.of("ipv6")
    assert fam4 is not None and fam4.address == "198.51.100.44" and fam4.status is Status.OK
    assert fam6 is not None and fam6.address == "2a0c:5::77" and fam6.status is Status.OK


def test_an_ip_literal_is_asked_over_its_own_family_only(server: str) -> None:
    v6h = type("V6", (_Fixed,), {"answer": b"2a0c:5::78"})
    v6 = _V6Server(("::1", 0), v6h)
    threading.Thread(target=v6.serve_forever, daemon=True).start()
    try:
        r = _run_with_watchdog([server + "/ip", f"http://[::1]:{v6.server_address[1]}/"], 5)
    finally:
        v6.shutdown()
        v6.server_close()
    assert r.status is Status.OK and r.address == "198.51.100.20"
    assert [a.source for a in r.answers] == [server + "/ip"]
    fam6 = r.of("ipv6")
    assert fam6 is not None and fam6.address == "2a0c:5::78"
    assert [a.source for a in fam6.answers] == [f"http://[::1]:{v6.server_address[1]}/"]


def test_no_ipv6_answer_fails_the_ipv6_family_only(server: str) -> None:
    """A service reachable over IPv4 only: the IPv6 family fails, the probe stays ok."""
    v4only = server.replace("127.0.0.1", "localhost") + "/ip"
    r = _run_with_watchdog([v4only], 5)
    assert r.status is Status.OK and r.address == "198.51.100.20"
    fam6 = r.of("ipv6")
    assert fam6 is not None and fam6.status is Status.FAIL and fam6.address is None
    assert fam6.reason and "over IPv6" in fam6.reason


def test_an_ipv4_answer_over_ipv6_is_refused() -> None:
    assert parse_answer(b"2a0c:5::1", "ipv6") == "2a0c:5::1"
    with pytest.raises(AnswerError, match="IPv4 address"):
        parse_answer(b"198.51.100.1", "ipv6")
