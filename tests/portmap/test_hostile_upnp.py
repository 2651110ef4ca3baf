"""A hostile UPnP IGD on loopback (issue 16): what the router sends is validated at the edge,
bounded in bytes and time, and escaped where it is shown.

The fake IGD is a raw-socket HTTP server on 127.0.0.1 (no SSDP: the Igd is built from the
LOCATION, as after discovery), so nothing leaves the host. Each case asserts the deadline,
the memory bound where it applies, and the finding.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from conftest import REPO
from peers.rawhttp import Handler, RawServer
from reverseprobe.config import CheckConfig
from reverseprobe.diagnosis.network import rules
from reverseprobe.model import Report, Severity, Status
from reverseprobe.portmap.errors import UpnpError, UpnpGarbage, UpnpTimeout
from reverseprobe.portmap.igd import Igd, connect_igd
from reverseprobe.portmap.soap import MAX_DESCRIPTION
from reverseprobe.probes.router import RouterResult
from reverseprobe.render.junit import _x
from reverseprobe.render.terminal import render_text

EVIL = "evil\nhost\x1b[2J"
EVIL_XML = "evil\nhost\u009b2J"  # C1 CSI: an escape sequence that XML 1.0 can carry
DESC = b"""<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0"><device>
<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType><deviceList><device>
<deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType><deviceList><device>
<deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType><serviceList><service>
<serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>
<controlURL>/ctl/IPConn</controlURL></service></serviceList>
</device></deviceList></device></deviceList></device></root>"""


def soap_answer(action: str, **out: str) -> bytes:
    from xml.sax.saxutils import escape

    args = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in out.items())
    body = (
        '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
        f'<s:Body><u:{action}Response xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1">'
        f"{args}</u:{action}Response></s:Body></s:Envelope>"
    ).encode()
    return http_ok(body)


def http_ok(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )


class FakeIgd(RawServer):
    """A loopback IGD: GET serves `desc`, POST calls `soap[action]` (default: a normal answer)."""

    def __init__(self) -> None:
        self.desc: Handler = lambda c, _r: c.sendall(http_ok(DESC))
        self.soap: dict[str, Handler] = {}
        super().__init__(self._dispatch)
        self.location = f"http://127.0.0.1:{self.port}/rootDesc.xml"

    def _dispatch(self, conn: socket.socket, req: bytes) -> None:
        if req.startswith(b"GET"):
            self.desc(conn, req)
            return
        action = req.split(b"#", 1)[1].split(b'"', 1)[0].decode()
        self.soap.get(action, lambda c, _r: c.sendall(soap_answer(action)))(conn, req)


@pytest.fixture
def igd_server() -> Iterator[FakeIgd]:
    srv = FakeIgd()
    try:
        yield srv
    finally:
        srv.stop()


def connect(srv: FakeIgd, timeout: float = 3.0) -> Igd:
    return connect_igd(srv.location, timeout)


def mapping_answer(**over: str) -> Handler:
    out = {
        "NewInternalPort": "11112",
        "NewInternalClient": "192.168.2.50",
        "NewEnabled": "1",
        "NewPortMappingDescription": "reverseprobe",
        "NewLeaseDuration": "0",
        **over,
    }
    return lambda c, _r: c.sendall(soap_answer("GetSpecificPortMappingEntry", **out))


# --- validation at the edge ------------------------------------------------------------------


def garbage(fn: Callable[[], object]) -> str:
    """The one-line description of the UpnpGarbage `fn` raises."""
    with pytest.raises(UpnpGarbage) as e:
        fn()
    return e.value.describe()


def test_an_internal_client_that_is_no_address_is_garbage(igd_server: FakeIgd) -> None:
    igd_server.soap["GetSpecificPortMappingEntry"] = mapping_answer(NewInternalClient=EVIL_XML)
    text = garbage(lambda: connect(igd_server).get_mapping(11112))
    assert "NewInternalClient" in text and "not an IP address" in text
    assert "\x9b" not in text and "\n" not in text and r"evil\nhost\x9b2J" in text


def test_raw_escape_bytes_in_a_soap_answer_are_garbage(igd_server: FakeIgd) -> None:
    # ESC is not an XML 1.0 character: the answer is not XML at all
    raw = soap_answer("GetSpecificPortMappingEntry", NewInternalClient="x").replace(
        b"<NewInternalClient>x", EVIL.encode().join([b"<NewInternalClient>", b""])
    )
    igd_server.soap["GetSpecificPortMappingEntry"] = lambda c, _r: c.sendall(raw)
    text = garbage(lambda: connect(igd_server).get_mapping(11112))
    assert "not XML" in text and "\x1b" not in text


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("NewInternalPort", "99999999999", "99999999999"),  # miniupnpc showed 34463
        ("NewInternalPort", "0", "not a port"),
        ("NewInternalPort", "１１１１２", "not a number"),
        ("NewLeaseDuration", "-5", "not a number"),
        ("NewEnabled", "maybe", "NewEnabled"),
        ("NewInternalClient", "192.168.2.300", "not an IP address"),
    ],
)
def test_junk_mapping_values_are_garbage(
    igd_server: FakeIgd, field: str, value: str, says: str
) -> None:
    igd_server.soap["GetSpecificPortMappingEntry"] = mapping_answer(**{field: value})
    assert says in garbage(lambda: connect(igd_server).get_mapping(11112))


def test_junk_external_ip_is_garbage(igd_server: FakeIgd) -> None:
    igd_server.soap["GetExternalIPAddress"] = lambda c, _r: c.sendall(
        soap_answer("GetExternalIPAddress", NewExternalIPAddress="111111111111111")
    )
    assert "111111111111111" in garbage(lambda: connect(igd_server).external_ip())


def test_a_good_answer_still_reads(igd_server: FakeIgd) -> None:
    igd_server.soap["GetSpecificPortMappingEntry"] = mapping_answer(
        NewPortMappingDescription="x" * 5000
    )
    m = connect(igd_server).get_mapping(11112)
    assert m is not None and m.internal_client == "192.168.2.50" and m.internal_port == 11112
    assert len(m.description) <= 256  # capped at the edge


def test_a_control_url_on_another_host_is_refused(igd_server: FakeIgd) -> None:
    other = DESC.replace(b"<controlURL>/ctl/IPConn", b"<controlURL>http://192.0.2.1/ctl")
    igd_server.desc = lambda c, _r: c.sendall(http_ok(other))
    assert "not on the IGD itself" in garbage(lambda: connect(igd_server))


# --- bytes and time ----------------------------------------------------------------------------


MEASURE = r"""
import json, resource, sys, time
from reverseprobe.portmap.igd import connect_igd
t0 = time.monotonic()
try:
    igd = connect_igd(sys.argv[1], float(sys.argv[2]))
    what = getattr(igd, sys.argv[3])() if len(sys.argv) > 3 else "connected"
    err = None
except Exception as exc:
    what, err = None, f"{type(exc).__name__}: {exc.describe() if hasattr(exc, 'describe') else exc}"
# VmHWM is this process image's own peak; ru_maxrss survives exec() and so can report the
# parent's size (a large pytest process) for a child started from it.
try:
    hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    peak = int(hwm.split()[1]) / 1024
except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"elapsed": time.monotonic() - t0, "err": err, "what": str(what),
                  "maxrss_mib": peak}))
"""


def measure(location: str, timeout: float, call: str | None = None) -> dict[str, object]:
    """Run connect_igd (and `call`) in a fresh process: its peak memory is its own."""
    argv = [sys.executable, "-c", MEASURE, location, str(timeout), *([call] if call else [])]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, check=False)
    assert p.returncode == 0, p.stderr
    out: dict[str, object] = json.loads(p.stdout)
    return out


def endless_chunks(conn: socket.socket, _req: bytes) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n")
    piece = b"<a>" * 10_000
    chunk = b"%x\r\n%s\r\n" % (len(piece), piece)
    end = time.monotonic() + 20
    while time.monotonic() < end:
        conn.sendall(chunk)


def test_an_endless_chunked_description_is_cut_at_the_cap(igd_server: FakeIgd) -> None:
    igd_server.desc = endless_chunks
    r = measure(igd_server.location, 5.0)
    assert r["err"] is not None and "garbage" in str(r["err"])
    assert f"longer than {MAX_DESCRIPTION} bytes" in str(r["err"])
    assert float(r["elapsed"]) < 5.0 + 2.0  # type: ignore[arg-type]
    assert float(r["maxrss_mib"]) < 120  # type: ignore[arg-type]  # was 547 MiB in 5 s


def test_a_huge_announced_description_is_refused_unread(igd_server: FakeIgd) -> None:
    def huge(conn: socket.socket, _req: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 200000000\r\n\r\n")
        for _ in range(2000):
            conn.sendall(b"<a>" * 20_000)

    igd_server.desc = huge
    r = measure(igd_server.location, 5.0)
    assert "announces 200000000 bytes" in str(r["err"])
    assert float(r["maxrss_mib"]) < 120  # type: ignore[arg-type]


def test_a_description_trickled_byte_by_byte_ends_at_the_deadline(igd_server: FakeIgd) -> None:
    def drip(conn: socket.socket, _req: bytes) -> None:
        for b in http_ok(DESC):
            conn.sendall(bytes([b]))
            time.sleep(0.2)

    igd_server.desc = drip
    t0 = time.monotonic()
    with pytest.raises(UpnpTimeout):
        connect(igd_server, timeout=2.0)
    assert time.monotonic() - t0 < 2.0 + 2.0


def test_a_hanging_soap_call_times_out_then_the_igd_is_unusable(igd_server: FakeIgd) -> None:
    hold = threading.Event()
    igd_server.soap["GetStatusInfo"] = lambda c, _r: hold.wait(20)
    igd = connect(igd_server, timeout=1.5)
    t0 = time.monotonic()
    with pytest.raises(UpnpTimeout):
        igd.status()
    assert time.monotonic() - t0 < 1.5 + 2.0
    with pytest.raises(UpnpTimeout) as e:
        igd.external_ip()
    assert "after an earlier GetStatusInfo" in e.value.describe()
    hold.set()


def test_an_endless_soap_answer_is_cut_at_the_cap(igd_server: FakeIgd) -> None:
    igd_server.soap["GetExternalIPAddress"] = endless_chunks
    r = measure(igd_server.location, 5.0, "external_ip")
    assert r["err"] is not None and "longer than" in str(r["err"]), r
    assert float(r["elapsed"]) < 5.0 + 2.0  # type: ignore[arg-type]
    assert float(r["maxrss_mib"]) < 120  # type: ignore[arg-type]


def test_a_soap_error_keeps_its_code(igd_server: FakeIgd) -> None:
    body = (
        b'<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
        b"<s:Body><s:Fault><detail><UPnPError><errorCode>606</errorCode></UPnPError></detail>"
        b"</s:Fault></s:Body></s:Envelope>"
    )
    answer = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )
    igd_server.soap["AddPortMapping"] = lambda c, _r: c.sendall(answer)
    with pytest.raises(UpnpError) as e:
        connect(igd_server).add_mapping(104, "192.168.2.50", 104, "x")
    assert e.value.code == 606 and not isinstance(e.value, UpnpGarbage)


def test_a_dtd_is_refused(igd_server: FakeIgd) -> None:
    laughs = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">]><root>&a;</root>'
    igd_server.desc = lambda c, _r: c.sendall(http_ok(laughs))
    assert "DTD" in garbage(lambda: connect(igd_server))


# --- the finding and what is shown -----------------------------------------------------------


def _router(**kw: object) -> RouterResult:
    base: dict[str, object] = {
        "status": Status.OK,
        "port": 11112,
        "gateway": "192.168.2.1",
        "lan_address": "192.168.2.2",
        "igd_location": "http://192.168.2.1:5000/rootDesc.xml",
        "igd_server": "fake/1.0",
    }
    return RouterResult(**{**base, **kw})  # type: ignore[arg-type]


def test_a_router_that_answered_garbage_is_not_reported_as_absent() -> None:
    from reverseprobe.probes.router import _Upnp

    up = _Upnp(location="http://192.168.2.1:5000/rootDesc.xml")
    msg = up.failed("GetSpecificPortMappingEntry", UpnpGarbage("GetSpecificPortMappingEntry", "x"))
    rt = _router(upnp_error=msg, upnp_fault=up.fault, mapping_checked=False)
    found = rules({"router": rt}, CheckConfig(port=11112))
    f = next(f for f in found if f.code == "UPNP_UNAVAILABLE")
    assert f.severity is Severity.WARN and "answered garbage" in f.summary
    assert "No UPnP IGD answered" not in f.summary and "faulty" in f.fix
    hung = _router(upnp_error="GetStatusInfo: Timeout", upnp_fault="timeout")
    f2 = next(f for f in rules({"router": hung}, CheckConfig(port=11112)))
    assert f2.severity is Severity.WARN and "stopped answering" in f2.summary
    absent = _router(igd_location=None, lan_address=None)
    f3 = next(f for f in rules({"router": absent}, CheckConfig(port=11112)))
    assert f3.code == "UPNP_UNAVAILABLE" and "No UPnP IGD answered" in f3.summary


def test_router_strings_are_escaped_in_the_terminal_and_junit(igd_server: FakeIgd) -> None:
    # A valid address but a hostile description: it reaches the finding and the suggested
    # --force command's neighbourhood; the terminal must show it escaped.
    igd_server.soap["GetSpecificPortMappingEntry"] = mapping_answer(
        NewInternalClient="192.168.2.50", NewPortMappingDescription=f"x{EVIL_XML}\u202e"
    )
    got = connect(igd_server).get_mapping(11112)
    assert got is not None and got.description == f"x{EVIL_XML}\u202e"
    # and ESC itself, as a miniupnpc-style object could hand it over
    m = replace(got, description=f"x{EVIL}\u202e\u009b2J")
    rt = _router(mapping=m, mapping_checked=True, external_ip="100.128.0.2")
    found = rules({"router": rt}, CheckConfig(port=11112))
    f = next(f for f in found if f.code == "UPNP_MAPPING_OTHER_HOST")
    assert "--force" in f.fix
    report = Report(command="check", probes={"router": rt}, findings=found, pacs_entry=None,
                    elapsed_s=1.0)  # fmt: skip
    for color in (False, True):
        text = render_text(report, color=color, width=200)
        assert "\x1b[2J" not in text and "\u202e" not in text and "\x9b" not in text
        assert r"\x1b[2J" in text and r"\u202e" in text
        assert "\nhost" not in text  # no forged line
    xml = _x(f.summary)
    assert "\x1b" not in xml and r"\x1b" in xml
