"""The miniupnpc wrapper: error translation, timeouts, result shapes (a fake UPnP object).

The real router is in tests/integration/test_igd_lab.py; the fake is only for what
miniupnpd cannot be made to answer (725, 728) and for a router that never answers.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from reverseprobe.portmap import errors, igd
from reverseprobe.portmap.errors import UpnpError, UpnpTimeout
from reverseprobe.portmap.igd import Igd, PortMapping
from reverseprobe.runner import Deadline


class FakeUpnp:
    """Stands in for miniupnpc.UPnP: raises plain Exception('<name>') like the C module."""

    def __init__(self, add_errors: list[str] | None = None) -> None:
        self.add_errors = list(add_errors or [])
        self.added: list[tuple[Any, ...]] = []
        self.block = threading.Event()

    def addportmapping(self, *args):
        if self.add_errors:
            raise Exception(self.add_errors.pop(0))
        self.added.append(args)
        return True

    def statusinfo(self):
        return ("Connected", 42, "ERROR_NONE")

    def externalipaddress(self):
        return ""

    def getspecificportmapping(self, eport, proto):
        return ("192.168.2.2", 11112, "reverseprobe", True, 0) if eport == 11112 else None

    def getgenericportmapping(self, i):
        rows = [
            (11112, "TCP", ("192.168.2.2", 11112), "rp", "1", "", 0),
            (5000, "UDP", ("192.168.2.3", 5000), "other", "0", "", 300),
        ]
        return rows[i] if i < len(rows) else None

    def deleteportmapping(self, eport, proto, rhost=""):
        self.block.wait()  # a router that never answers
        return True


def make(fake: FakeUpnp, timeout: float = 1.0) -> Igd:
    return Igd(
        fake,
        location="http://192.168.2.1:5000/rootDesc.xml",
        control_url="/ctl/IPConn",
        lan_address="192.168.2.2",
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("Action not authorized", 606),
        ("ConflictInMappingEntry", 718),
        ("OnlyPermanentLeasesSupported", 725),
        ("NoPortMapsAvailable", 728),
        ("Action Failed", 501),
        ("Invalid Args", 402),
        ("NoSuchEntryInArray", 714),
        ("SamePortValuesRequired", 724),
        ("WildCardNotPermittedInExtPort", 716),
    ],
)
def test_miniupnpc_names_map_back_to_codes(name, code):
    e = errors.from_miniupnpc(Exception(name))
    assert e.code == code and e.name == name and e.meaning and e.fix
    assert str(e).startswith(str(code))


def test_unknown_and_local_errors_keep_their_text():
    e = errors.from_miniupnpc(Exception("Miniupnpc HTTP error"))
    assert e.code is None and "HTTP" in e.meaning
    e = errors.from_miniupnpc(Exception("something new"))
    assert e.code is None and e.name == "something new"
    assert errors.from_miniupnpc(Exception()).name == "Exception"
    assert UpnpError.for_code(799).name == "UnknownError"


def test_specific_fixes_say_what_to_do():
    assert "1024" in errors.BY_CODE[606].fix and "11112" in errors.BY_CODE[606].fix
    assert "double NAT" in errors.BY_CODE[501].meaning
    assert "--list" in errors.BY_CODE[728].fix
    assert "--lease 0" in errors.BY_CODE[725].fix


def test_add_mapping_translates_errors():
    fake = FakeUpnp(["NoPortMapsAvailable"])
    g = make(fake)
    with pytest.raises(UpnpError) as ei:
        g.add_mapping(11112, "192.168.2.2", 11112, "rp", lease=3600)
    assert ei.value.code == 728
    g.add_mapping(11112, "192.168.2.2", 11112, "rp", lease=3600)
    assert fake.added == [(11112, "TCP", "192.168.2.2", 11112, "rp", "", 3600)]


def test_add_mapping_refuses_bad_arguments():
    g = make(FakeUpnp())
    with pytest.raises(ValueError):
        g.add_mapping(0, "192.168.2.2", 1, "x")
    with pytest.raises(ValueError):
        g.add_mapping(1, "192.168.2.2", 1, "x", protocol="XYZ")
    with pytest.raises(ValueError):
        g.add_mapping(1, "192.168.2.2", 1, "x", lease=-1)


def test_reads():
    g = make(FakeUpnp())
    assert g.status() == ("Connected", 42, "ERROR_NONE")
    assert g.external_ip() is None  # '' from a router with a reserved WAN address
    assert g.get_mapping(11112) == PortMapping(
        11112, "TCP", "192.168.2.2", 11112, "reverseprobe", True, 0
    )
    assert g.get_mapping(1) is None
    rows = g.list_mappings()
    assert [r.external_port for r in rows] == [11112, 5000]
    assert rows[1].enabled is False and rows[1].protocol == "UDP" and rows[1].lease == 300
    assert len(g.list_mappings(limit=1)) == 1


def test_a_silent_router_times_out_and_the_igd_is_then_unusable():
    fake = FakeUpnp()
    g = make(fake, timeout=0.2)
    try:
        with pytest.raises(UpnpTimeout):
            g.delete_mapping(11112)
        with pytest.raises(UpnpTimeout) as ei:
            g.status()
        assert "earlier DeletePortMapping" in ei.value.meaning
    finally:
        fake.block.set()


def test_calls_are_bounded_by_the_deadline():
    fake = FakeUpnp()
    g = make(fake, timeout=30.0)
    g.deadline = Deadline.after(0.2)
    try:
        with pytest.raises(UpnpTimeout) as ei:
            g.delete_mapping(11112)
        assert ei.value.timeout <= 0.25
    finally:
        fake.block.set()


def test_connect_igd_to_nothing_raises_upnp_error():
    # A loopback port where nothing listens: miniupnpc cannot read a description.
    with pytest.raises(UpnpError):
        igd.connect_igd("http://127.0.0.1:9/rootDesc.xml", 3.0)


# --- hostile IGDs on loopback: a description that never comes, or is garbage ----------------


def _serve(handler):
    import socket

    srv = socket.create_server(("127.0.0.1", 0))
    held = []

    def loop():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            held.append(conn)
            threading.Thread(target=handler, args=(conn,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return srv, held


def test_a_silent_description_server_times_out_within_the_budget():
    srv, held = _serve(lambda conn: None)  # accepts, never answers
    try:
        port = srv.getsockname()[1]
        with pytest.raises(UpnpTimeout):
            igd.connect_igd(f"http://127.0.0.1:{port}/rootDesc.xml", 0.5)
    finally:
        srv.close()
        for c in held:
            c.close()


@pytest.mark.parametrize(
    "body",
    [
        b"\x00\xff" * 5000,
        b"<?xml version='1.0'?><root><device><deviceType>x</deviceType></device></root>",
        b"<root>" * 20000,
    ],
)
def test_garbage_descriptions_are_upnp_errors(body):
    def answer(conn):
        conn.recv(4096)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        conn.close()

    srv, _ = _serve(answer)
    try:
        port = srv.getsockname()[1]
        try:
            g = igd.connect_igd(f"http://127.0.0.1:{port}/rootDesc.xml", 3.0)
        except UpnpError:
            return  # refused as no IGD: fine
        # miniupnpc may accept a description without a WAN service: calls must still fail cleanly
        with pytest.raises(UpnpError):
            g.status()
    finally:
        srv.close()
