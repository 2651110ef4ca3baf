"""The reflector on several --listen addresses, dialling back over the family the request
came in on (issue 15): loopback only, IPv4 and IPv6."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from conftest import REPO
from reflector_helpers import RecordingDialer, free_port, probe, reflector, request
from reverseprobe.config.validate import parse_cidr
from reverseprobe.dicom.echo import quiet_pynetdicom
from reverseprobe.dicom.scp import VerificationScp
from reverseprobe.reflector.dialback import dial_address, family

quiet_pynetdicom()


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_v6 = pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback")


def test_an_ipv4_mapped_address_is_dialled_over_ipv4() -> None:
    assert dial_address("::ffff:192.0.2.7") == "192.0.2.7"
    assert family("::ffff:192.0.2.7") == "ipv4"
    assert family("2a0c:1::5") == "ipv6" and dial_address("2a0c:1::5") == "2a0c:1::5"
    assert family("198.51.100.1") == "ipv4"


@needs_v6
def test_both_listen_addresses_serve_and_each_dials_back_its_own_family() -> None:
    dialer = RecordingDialer()
    with (
        VerificationScp(0, host="::") as scp,  # dual-stack: IPv4 and IPv6 on one socket
        reflector(dialer, listen=(("127.0.0.1", 0), ("::1", 0))) as r,
    ):
        v4, v6 = r.urls
        assert v6.startswith("http://[::1]:") and v4.startswith("http://127.0.0.1:")
        assert r.bound[0][1] != 0 and r.bound[1][1] != 0
        assert request(v4, path="/v1/ip").json() == {"ip": "127.0.0.1"}
        assert request(v6, path="/v1/ip").json() == {"ip": "::1"}
        a6 = probe(v6, {"ports": [scp.port], "calling_aet": "RPV6"}).json()
        a4 = probe(v4, {"ports": [scp.port], "calling_aet": "RPV4"}).json()
    assert a6["observed_ip"] == "::1" and a4["observed_ip"] == "127.0.0.1"
    assert a6["results"][0]["dicom"]["result"] == "accepted", a6
    assert a4["results"][0]["dicom"]["result"] == "accepted", a4
    assert [c[0] for c in dialer.calls] == ["::1", "127.0.0.1"]
    seen6 = scp.wait_for("RPV6", 5)
    assert seen6 is not None and seen6.address == "::1"


@needs_v6
def test_an_ipv6_dial_back_to_an_ipv4_only_receiver_is_refused() -> None:
    """The issue's case on loopback: the receiver listens on 0.0.0.0 only, so the IPv6
    dial-back is refused while the same probe over IPv4 is accepted."""
    with (
        VerificationScp(0, host="0.0.0.0") as scp,
        reflector(listen=(("127.0.0.1", 0), ("::1", 0))) as r,
    ):
        v4, v6 = r.urls
        a6 = probe(v6, {"ports": [scp.port]}).json()
        a4 = probe(v4, {"ports": [scp.port]}).json()
    assert a6["results"][0]["tcp"] == "refused", a6
    assert a4["results"][0]["dicom"]["result"] == "accepted", a4


def test_a_mapped_forwarded_for_is_dialled_over_ipv4() -> None:
    dialer = RecordingDialer(real=False)
    trust = (parse_cidr("127.0.0.1/32"),)
    with reflector(dialer, trust_proxy=trust) as r:
        resp = probe(r.url, {"ports": [11112]}, headers={"X-Forwarded-For": "::ffff:127.0.0.7"})
    assert resp.json()["observed_ip"] == "127.0.0.7"
    assert [c[0] for c in dialer.calls] == ["127.0.0.7"]


def _cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "reverseprobe", "reflector", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )


@needs_v6
def test_the_cli_listens_on_every_listen_address_and_logs_each() -> None:
    p4 = free_port()
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        p6 = s.getsockname()[1]
    proc = _cli("--listen", f"127.0.0.1:{p4}", "--listen", f"[::1]:{p6}")
    try:
        assert proc.stderr is not None
        lines = [proc.stderr.readline(), proc.stderr.readline()]
        assert f"listening on http://127.0.0.1:{p4} " in lines[0], lines
        assert f"listening on http://[::1]:{p6} " in lines[1], lines
        assert request(f"http://[::1]:{p6}", path="/v1/ip").json() == {"ip": "::1"}
        assert request(f"http://127.0.0.1:{p4}").json() == {"status": "ok"}
    finally:
        proc.terminate()
        proc.communicate(timeout=15)
    assert proc.returncode == 0


def test_a_taken_second_address_is_exit_1_naming_it_and_frees_the_first() -> None:
    p1 = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        proc = _cli("--listen", f"127.0.0.1:{p1}", "--listen", f"127.0.0.1:{taken}")
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"reverseprobe: error: cannot listen on 127.0.0.1:{taken}"), err
    assert "Traceback" not in err
    with socket.socket() as again:  # the first address was given back
        again.bind(("127.0.0.1", p1))


def test_a_bad_second_listen_is_exit_2_in_one_line() -> None:
    proc = _cli("--listen", "127.0.0.1:8470", "--listen", "127.0.0.1:99999")
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert err.count("\n") == 1 and "99999" in err
