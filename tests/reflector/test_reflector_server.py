"""The reflector served for real (aiohttp on loopback) against real DICOM peers, and abused.

Every security rule of SPEC.md's reflector section has a test here that tries to break it.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reflector_helpers import (
    RecordingDialer,
    free_port,
    probe,
    reflector,
    request,
)
from reverseprobe.config.validate import parse_cidr, parse_port_ranges
from reverseprobe.dicom.echo import quiet_pynetdicom
from reverseprobe.dicom.scp import VerificationScp
from reverseprobe.reflector.protocol import BODY_LIMIT

quiet_pynetdicom()


@pytest.fixture
def scp() -> Iterator[VerificationScp]:
    with VerificationScp(0, host="127.0.0.1") as s:
        yield s


def assert_json_error(resp: Any, status: int, error: str) -> dict[str, Any]:
    assert resp.status == status, resp.body
    assert resp.headers["content-type"].startswith("application/json")
    doc: dict[str, Any] = resp.json()
    assert doc["error"] == error
    assert "Traceback" not in resp.body.decode()
    return doc


# --- the good path, against real peers ----------------------------------------------------


def test_healthz_and_ip() -> None:
    with reflector() as r:
        assert request(r.url).json() == {"status": "ok"}
        assert request(r.url, path="/v1/ip").json() == {"ip": "127.0.0.1"}
        resp = request(r.url, path="/v1/ip", source="127.0.0.2")
        assert resp.json() == {"ip": "127.0.0.2"}
        assert resp.headers["server"] == "reverseprobe-reflector"


def test_probe_reaches_a_pynetdicom_scp_with_the_asked_aets(scp: VerificationScp) -> None:
    with reflector() as r:
        resp = probe(r.url, {"ports": [scp.port], "called_aet": "MYSCU", "calling_aet": "RPNONCE1"})
    assert resp.status == 200, resp.body
    doc = resp.json()
    assert doc["observed_ip"] == "127.0.0.1"
    (res,) = doc["results"]
    assert res["port"] == scp.port and res["tcp"] == "open"
    assert res["dicom"]["result"] == "accepted"
    assert res["dicom"]["implementation_version_name"].startswith("PYNETDICOM")
    seen = scp.wait_for("RPNONCE1", 2)
    assert seen is not None and seen.called_aet == "MYSCU" and seen.address == "127.0.0.1"
    assert len(scp.connections()) == 1  # no bare TCP connect before the association


@pytest.mark.skipif(not shutil.which("/usr/bin/storescp"), reason="dcmtk not installed")
def test_probe_fingerprints_dcmtk() -> None:
    port = free_port()
    proc = subprocess.Popen(
        ["/usr/bin/storescp", "--aetitle", "MYSCU", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listen(port)
        with reflector() as r:
            ok = probe(r.url, {"ports": [port], "called_aet": "MYSCU"}).json()["results"][0]
    finally:
        proc.terminate()
        proc.wait(5)
    assert ok["tcp"] == "open"
    assert ok["dicom"]["result"] == "accepted"
    assert ok["dicom"]["implementation_version_name"].startswith("OFFIS_DCMTK")


def test_probe_decodes_a_rejection() -> None:
    from pynetdicom import AE

    ae = AE(ae_title="MYSCU")
    ae.add_supported_context("1.2.840.10008.1.1")
    ae.require_called_aet = True
    srv: Any = ae.start_server(("127.0.0.1", 0), block=False)
    try:
        with reflector() as r:
            doc = probe(r.url, {"ports": [srv.server_address[1]], "called_aet": "WRONG"}).json()
    finally:
        ae.shutdown()
    res = doc["results"][0]["dicom"]
    assert res["result"] == "rejected"
    assert (res["reject"]["result"], res["reject"]["source"], res["reject"]["reason"]) == (1, 1, 7)


def test_probe_tells_refused_no_answer_and_not_dicom() -> None:
    closed = free_port()
    silent = socket.create_server(("127.0.0.1", 0))  # accepts TCP (backlog), never answers
    http_srv = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def http_like() -> None:
        while not stop.is_set():
            try:
                conn, _ = http_srv.accept()
            except OSError:
                return
            with conn:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    threading.Thread(target=http_like, daemon=True).start()
    try:
        with reflector() as r:
            ports = [closed, silent.getsockname()[1], http_srv.getsockname()[1]]
            doc = probe(r.url, {"ports": ports, "timeout": 1.5}).json()
    finally:
        stop.set()
        silent.close()
        http_srv.close()
    by_port = {x["port"]: x for x in doc["results"]}
    assert by_port[ports[0]]["tcp"] == "refused"
    assert by_port[ports[0]]["dicom"]["result"] == "not-tested"
    assert by_port[ports[1]]["tcp"] == "open"
    assert by_port[ports[1]]["dicom"]["result"] == "no-answer"
    assert by_port[ports[2]]["dicom"]["result"] == "not-dicom"


# --- the security rules, abused ------------------------------------------------------------


def test_a_body_naming_another_host_dials_only_the_requester(scp: VerificationScp) -> None:
    dialer = RecordingDialer()
    with reflector(dialer) as r:
        resp = probe(
            r.url,
            {"ports": [scp.port], "host": "192.0.2.1", "ip": "10.0.0.1", "calling_aet": "RPHOST"},
        )
    assert resp.status == 200
    assert resp.json()["ignored"] == ["host", "ip"]
    assert [c[0] for c in dialer.calls] == ["127.0.0.1"]
    assert scp.wait_for("RPHOST", 2) is not None


def test_dials_the_address_the_request_came_from() -> None:
    dialer = RecordingDialer()
    with VerificationScp(0, host="127.0.0.2") as other, reflector(dialer) as r:
        doc = probe(r.url, {"ports": [other.port], "calling_aet": "RPSRC2"}, source="127.0.0.2")
    assert doc.json()["observed_ip"] == "127.0.0.2"
    assert dialer.calls[0][0] == "127.0.0.2"
    assert doc.json()["results"][0]["dicom"]["result"] == "accepted"
    assert other.wait_for("RPSRC2", 2) is not None  # it listens on 127.0.0.2 only


def test_five_ports_are_refused_without_dialling() -> None:
    dialer = RecordingDialer(real=False)
    with reflector(dialer) as r:
        resp = probe(r.url, {"ports": [2001, 2002, 2003, 2004, 2005]})
    assert_json_error(resp, 400, "too-many-ports")
    assert dialer.calls == []


def test_a_port_outside_the_allow_list_is_refused_without_dialling() -> None:
    dialer = RecordingDialer(real=False)
    with reflector(dialer, allow_ports=parse_port_ranges("11112")) as r:
        resp = probe(r.url, {"ports": [11113]})
        ok = probe(r.url, {"ports": [11112]})
    assert_json_error(resp, 403, "port-not-allowed")
    assert ok.status == 200
    assert [c[1] for c in dialer.calls] == [11112]


@pytest.mark.parametrize(
    "raw", [b"{", b"\xff\xfe", b"[" * 2000, b'{"ports": [11112], "ports": [1]}', b"null"]
)
def test_malformed_json_is_a_400(raw: bytes) -> None:
    dialer = RecordingDialer(real=False)
    with reflector(dialer) as r:
        resp = request(
            r.url, "POST", "/v1/probe", raw, headers={"Content-Type": "application/json"}
        )
        assert resp.status == 400
        assert resp.json()["error"] in ("bad-json", "bad-request")
        assert request(r.url).status == 200
    assert dialer.calls == []


def test_a_one_mib_body_is_a_413() -> None:
    big = b'{"ports": [11112], "x": "' + b"a" * (1 << 20) + b'"}'
    with reflector(RecordingDialer(real=False)) as r:
        resp = request(
            r.url, "POST", "/v1/probe", big, headers={"Content-Type": "application/json"}
        )
        assert_json_error(resp, 413, "body-too-large")
        assert request(r.url).status == 200


def test_a_chunked_body_over_the_limit_is_a_413() -> None:
    with reflector(RecordingDialer(real=False)) as r:
        port = int(r.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(
                b"POST /v1/probe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            )
            chunk = b"a" * 1024
            try:
                for _ in range(2 * BODY_LIMIT // 1024 + 2):
                    s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                s.sendall(b"0\r\n\r\n")
            except OSError:
                pass  # the server may close once it has seen enough
            answer = _read_all(s)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"body-too-large"' in answer


def test_a_body_that_never_arrives_is_a_408() -> None:
    with reflector(RecordingDialer(real=False), read_body_s=0.5) as r:
        port = int(r.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(
                b"POST /v1/probe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n{"
            )
            answer = _read_all(s)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


def test_a_burst_over_the_rate_limit_is_a_429_per_source() -> None:
    dialer = RecordingDialer(real=False)
    with reflector(dialer, rate_per_minute=6, burst=3) as r:
        codes = [probe(r.url, {"ports": [11112]}).status for _ in range(5)]
        limited = probe(r.url, {"ports": [11112]})
        other = probe(r.url, {"ports": [11112]}, source="127.0.0.3")
    assert codes == [200, 200, 200, 429, 429]
    assert_json_error(limited, 429, "rate-limited")
    assert 1 <= int(limited.headers["retry-after"]) <= 10
    assert other.status == 200
    assert len(dialer.calls) == 4


def test_the_rate_limit_is_spent_before_the_body_is_read() -> None:
    with reflector(RecordingDialer(real=False), rate_per_minute=1, burst=1) as r:
        assert request(r.url, "POST", "/v1/probe", b"{").status == 415
        assert probe(r.url, {"ports": [11112]}).status == 429


def test_token_missing_wrong_and_right(tmp_path: Any) -> None:
    dialer = RecordingDialer(real=False)
    token = "s3cret-TOKEN_value.1"
    with reflector(dialer, token=token, burst=20, rate_per_minute=600) as r:
        missing = probe(r.url, {"ports": [11112]})
        wrong = probe(r.url, {"ports": [11112]}, headers={"Authorization": "Bearer nope"})
        prefix = probe(r.url, {"ports": [11112]}, headers={"Authorization": f"Bearer {token}x"})
        basic = probe(r.url, {"ports": [11112]}, headers={"Authorization": f"Basic {token}"})
        ip = request(r.url, path="/v1/ip")
        assert dialer.calls == []
        right = probe(r.url, {"ports": [11112]}, headers={"Authorization": f"Bearer {token}"})
        ip_ok = request(r.url, path="/v1/ip", headers={"Authorization": f"bearer {token}"})
        health = request(r.url)
    for resp in (missing, wrong, prefix, basic, ip):
        assert_json_error(resp, 401, "unauthorized")
        assert resp.headers["www-authenticate"].startswith("Bearer")
    assert right.status == 200 and ip_ok.status == 200 and health.status == 200
    assert len(dialer.calls) == 1


def test_guessing_the_token_is_rate_limited() -> None:
    with reflector(RecordingDialer(real=False), token="abc", burst=2, rate_per_minute=1) as r:
        codes = [
            request(r.url, path="/v1/ip", headers={"Authorization": "Bearer x"}).status
            for _ in range(4)
        ]
    assert codes == [401, 401, 429, 429]


def test_forwarded_for_from_an_untrusted_peer_is_ignored(scp: VerificationScp) -> None:
    dialer = RecordingDialer()
    with reflector(dialer) as r:
        doc = probe(
            r.url, {"ports": [scp.port]}, headers={"X-Forwarded-For": "127.0.0.9, 192.0.2.4"}
        ).json()
        ip = request(r.url, path="/v1/ip", headers={"X-Forwarded-For": "192.0.2.4"}).json()
    assert doc["observed_ip"] == "127.0.0.1" and ip == {"ip": "127.0.0.1"}
    assert [c[0] for c in dialer.calls] == ["127.0.0.1"]


def test_forwarded_for_from_a_trusted_proxy_is_believed() -> None:
    dialer = RecordingDialer()
    trust = (parse_cidr("127.0.0.1/32"),)
    with VerificationScp(0, host="127.0.0.7") as target, reflector(dialer, trust_proxy=trust) as r:
        resp = probe(
            r.url,
            {"ports": [target.port], "calling_aet": "RPPROXY"},
            # the client's own claim (left) is not believed, what our proxy saw (right) is
            headers={"X-Forwarded-For": "127.0.0.99, 127.0.0.7"},
        )
        garbage = probe(r.url, {"ports": [target.port]}, headers={"X-Forwarded-For": "junk"})
    assert resp.json()["observed_ip"] == "127.0.0.7"
    assert [c[0] for c in dialer.calls] == ["127.0.0.7"]
    assert target.wait_for("RPPROXY", 2) is not None
    assert_json_error(garbage, 400, "bad-forwarded-for")


def test_the_cap_on_concurrent_dial_backs_answers_busy() -> None:
    release = threading.Event()
    dialer = RecordingDialer(real=False, block=release)
    with reflector(dialer, max_concurrent=2, burst=10) as r:
        first: list[Any] = []
        t = threading.Thread(target=lambda: first.append(probe(r.url, {"ports": [2000, 2001]})))
        t.start()
        deadline = time.monotonic() + 10
        while len(dialer.calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        busy = probe(r.url, {"ports": [2002]})
        assert request(r.url).status == 200  # /healthz still answers
        release.set()
        t.join(10)
        after = probe(r.url, {"ports": [2003]})
    assert_json_error(busy, 503, "busy")
    assert busy.headers["retry-after"] == "1"
    assert first[0].status == 200 and after.status == 200


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("GET", "/nope", 404, "not-found"),
        ("PUT", "/v1/probe", 405, "method-not-allowed"),
        ("GET", "/v1/probe", 405, "method-not-allowed"),
        ("POST", "/v1/probe", 415, "unsupported-media-type"),
    ],
)
def test_other_requests_get_json_errors(method: str, path: str, status: int, error: str) -> None:
    with reflector(RecordingDialer(real=False)) as r:
        assert_json_error(request(r.url, method, path, b"x"), status, error)


def test_every_probe_and_refusal_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="reverseprobe.reflector")
    with reflector(RecordingDialer(real=False)) as r:
        probe(r.url, {"ports": [11112], "calling_aet": "RPLOG", "host": "192.0.2.1"})
        probe(r.url, {"ports": [22]})
    lines = [rec.getMessage() for rec in caplog.records]
    assert any("probe client=127.0.0.1" in ln and "RPLOG" in ln and "11112:refused" in ln
               and "ignored=host" in ln for ln in lines), lines  # fmt: skip
    assert any("refused client=127.0.0.1 status=403" in ln for ln in lines), lines


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    raw=st.one_of(
        st.binary(max_size=2 * BODY_LIMIT),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
            lambda kids: st.lists(kids, max_size=6) | st.dictionaries(st.text(max_size=10), kids),
            max_leaves=30,
        ).map(lambda d: json.dumps(d).encode()),
        st.fixed_dictionaries(
            {"ports": st.lists(st.integers(-10, 70000), max_size=6)},
            optional={"called_aet": st.text(max_size=20), "calling_aet": st.text(max_size=20)},
        ).map(lambda d: json.dumps(d).encode()),
    ),
    ctype=st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain"]),
)
def test_fuzzed_bodies_never_5xx_never_traceback(
    fuzz_reflector: Any, raw: bytes, ctype: str
) -> None:
    resp = request(fuzz_reflector.url, "POST", "/v1/probe", raw, headers={"Content-Type": ctype})
    assert resp.status < 500, resp.body
    assert b"Traceback" not in resp.body
    assert resp.headers["content-type"].startswith("application/json")
    if resp.status >= 400:
        assert isinstance(resp.json()["error"], str)
    assert request(fuzz_reflector.url).status == 200


@pytest.fixture(scope="module")
def fuzz_reflector() -> Iterator[Any]:
    with reflector(RecordingDialer(real=False), burst=100_000, rate_per_minute=1e9) as r:
        yield r


def _wait_listen(port: int, timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on {port}")


def _read_all(s: socket.socket) -> bytes:
    s.settimeout(10)
    buf = b""
    try:
        while chunk := s.recv(65536):
            buf += chunk
            if b"\r\n\r\n" in buf and b"}" in buf:
                break
    except OSError:
        pass
    return buf
