"""Raw-socket DICOM upper-layer peers that no real implementation would be (PS3.8 9.3):
a PDU header announcing 1 GiB and then silence, one byte every half second, an endless PDU,
an A-ASSOCIATE-RJ with undefined values. Loopback only; every thread ends on stop()."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable

GIB = 1 << 30
STALLED_AC = b"\x02\x00\x40\x00\x00\x00"  # A-ASSOCIATE-AC header announcing 1 GiB, no body


def pdu(pdu_type: int, body: bytes) -> bytes:
    return struct.pack(">BBL", pdu_type, 0, len(body)) + body


def bad_rj(result: int = 0x09, source: int = 0x01, reason: int = 0x01) -> bytes:
    """A-ASSOCIATE-RJ (PS3.8 9.3.4) whose result byte is not 1 or 2."""
    return pdu(0x03, bytes([0, result, source, reason]))


Behaviour = Callable[[socket.socket, threading.Event], None]


def reply(data: bytes) -> Behaviour:
    """Wait for the A-ASSOCIATE-RQ's first bytes, send `data`, hold the connection."""

    def run(conn: socket.socket, stop: threading.Event) -> None:
        with contextlib.suppress(OSError):
            conn.recv(65536)
            conn.sendall(data)
        stop.wait()

    return run


def drip(data: bytes, every: float = 0.5) -> Behaviour:
    def run(conn: socket.socket, stop: threading.Event) -> None:
        with contextlib.suppress(OSError):
            conn.recv(65536)
            for b in data:
                conn.sendall(bytes([b]))
                if stop.wait(every):
                    return
        stop.wait()

    return run


def flood(pdu_type: int = 0x02, announced: int = GIB) -> Behaviour:
    """A PDU header announcing `announced` bytes, then zeros as fast as the peer reads."""

    def run(conn: socket.socket, stop: threading.Event) -> None:
        chunk = bytes(65536)
        with contextlib.suppress(OSError):
            conn.recv(65536)
            conn.sendall(struct.pack(">BBL", pdu_type, 0, announced))
            sent = 0
            while not stop.is_set() and sent < announced:
                sent += conn.send(chunk)

    return run


class RawPeer:
    """A listener on 127.0.0.1 running `behaviour` for every connection it accepts."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.stop_event = threading.Event()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.conns: list[socket.socket] = []
        self.threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> RawPeer:
        self._accept.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.conns.append(conn)
            t = threading.Thread(target=self.behaviour, args=(conn, self.stop_event), daemon=True)
            self.threads.append(t)
            t.start()

    def stop(self) -> None:
        self.stop_event.set()
        for c in self.conns:
            with contextlib.suppress(OSError):
                c.close()
        self.sock.close()
        self._accept.join(2)
        for t in self.threads:
            t.join(2)


def send_as_sender(
    port: int, data_source: Callable[[socket.socket, threading.Event], None]
) -> tuple[threading.Thread, threading.Event]:
    """Connect to 127.0.0.1:port and run `data_source` (a hostile Storage SCU) in a thread."""
    stop = threading.Event()
    conn = socket.create_connection(("127.0.0.1", port), timeout=5)

    def run() -> None:
        try:
            data_source(conn, stop)
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, stop


def dripper(
    every: float = 0.5, data: bytes = b"\x01\x00\x00\x00\x01\x00" + bytes(256)
) -> Behaviour:
    """A sender that drips an A-ASSOCIATE-RQ one byte at a time."""

    def run(conn: socket.socket, stop: threading.Event) -> None:
        with contextlib.suppress(OSError):
            for b in data:
                conn.sendall(bytes([b]))
                if stop.wait(every):
                    return

    return run


def streamer(pdu_type: int = 0x01, announced: int = GIB) -> Behaviour:
    """A sender that announces a 1 GiB PDU and streams zeros until cut off."""

    def run(conn: socket.socket, stop: threading.Event) -> None:
        chunk = bytes(65536)
        with contextlib.suppress(OSError):
            conn.sendall(struct.pack(">BBL", pdu_type, 0, announced))
            sent = 0
            deadline = time.monotonic() + 60
            while not stop.is_set() and sent < announced and time.monotonic() < deadline:
                sent += conn.send(chunk)

    return run


class FakePacs:
    """A pynetdicom Q/R SCP on loopback that misbehaves after associating: `mode` is
    "find-silent" (never answers C-FIND), "move-garbage" (a C-MOVE-RSP command set without
    Command Field), or "echo-silent" (never answers C-ECHO)."""

    STUDY = "1.2.826.0.1.3680043.8.498.1"

    def __init__(self, mode: str, aet: str = "PACS") -> None:
        from pynetdicom import AE, evt
        from pynetdicom.sop_class import (  # type: ignore[attr-defined]
            StudyRootQueryRetrieveInformationModelFind,
            StudyRootQueryRetrieveInformationModelMove,
            Verification,
        )

        self.mode, self.aet = mode, aet
        self.stop_event = threading.Event()
        ae = AE(ae_title=aet)
        for cx in (
            Verification,
            StudyRootQueryRetrieveInformationModelFind,
            StudyRootQueryRetrieveInformationModelMove,
        ):
            ae.add_supported_context(cx)
        ae.dimse_timeout = ae.acse_timeout = ae.network_timeout = 60
        handlers: list[evt.EventHandlerType] = [
            (evt.EVT_C_ECHO, self._echo),
            (evt.EVT_C_FIND, self._find),
            (evt.EVT_C_MOVE, self._move),
        ]
        server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=handlers)
        assert server is not None  # block=False always returns the server
        self.server = server
        self.port = int(server.server_address[1])

    def __enter__(self) -> FakePacs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        for a in self.server.active_associations:
            sock = a.dul.socket.socket if a.dul.socket else None
            if sock is not None:
                with contextlib.suppress(Exception):
                    sock.shutdown(socket.SHUT_RDWR)
        self.server.shutdown()

    def _echo(self, event: object) -> int:
        if self.mode == "echo-silent":
            self.stop_event.wait(60)
        return 0x0000

    def _find(self, event: object):  # type: ignore[no-untyped-def]
        from pydicom.dataset import Dataset

        if self.mode == "find-silent":
            self.stop_event.wait(60)
            return
        ds = Dataset()
        ds.QueryRetrieveLevel = "STUDY"
        ds.StudyInstanceUID = self.STUDY
        ds.NumberOfStudyRelatedInstances = 1
        yield 0xFF00, ds

    def _move(self, event):  # type: ignore[no-untyped-def]
        if self.mode == "move-garbage":
            # P-DATA-TF, one PDV: command set, last fragment (PS3.8 E.2), holding only
            # (0000,0900) Status: no (0000,0100) Command Field.
            cmd = struct.pack("<HHL", 0x0000, 0x0900, 2) + struct.pack("<H", 0x0000)
            pdv = struct.pack(">LBB", len(cmd) + 2, event.context.context_id, 0x03) + cmd
            with contextlib.suppress(OSError):
                event.assoc.dul.socket.socket.sendall(pdu(0x04, pdv))
            self.stop_event.wait(60)
        yield None, None
