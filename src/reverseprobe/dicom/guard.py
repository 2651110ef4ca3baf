"""A read deadline and a byte budget on every DICOM socket we open or accept.

pynetdicom 3.0 clears the socket timeout once connected (AssociationSocket.connect) and an
accepted socket has none; its DUL reader (DULServiceProvider._read_pdu_data) then reads a PDU
as long as its header announces, in one blocking loop. A peer that sends the six bytes of a PDU
header announcing 1 GiB and waits, or drips a byte every half second, holds that thread in
recv() for ever, and an A-ABORT of ours waits behind it; a peer that streams the 1 GiB is
buffered whole. So the raw socket under every association is wrapped here, at one place, for
both roles (guarded_ae.py for our SCUs, guarded_server.py for our SCPs):

- a whole PDU must arrive within `pdu_timeout` of its first byte, the association ends at its
  `deadline`, and it may send us `max_bytes` in all;
- a PDU longer than what we announced (PS3.8 9.3.1, D.1 Maximum Length: P-DATA-TF) or, for the
  association PDUs, than ASSOCIATION_PDU_CAP; a DIMSE command or data set longer than
  `max_message` (pynetdicom reassembles it in memory);
- an A-ASSOCIATE-RJ whose result or source byte PS3.8 9.3.4 does not define (pynetdicom raises
  ValueError in its reader thread, and the caller waits out its whole budget).

Any of these ends the association with an A-ABORT (PS3.8 9.3.8; source 2, service provider)
and a shut socket; pynetdicom sees a closed transport (Evt17) and ends at once. What was cut,
and why, stays on the Guard for the caller to report.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ASSOCIATION_PDU_CAP = 1 << 20  # A-ASSOCIATE-RQ/AC and the rest: real ones are a few KiB
FALLBACK_PDATA_CAP = 4 << 20  # when we announced "no maximum" (Maximum Length 0)
MAX_COMMAND_SET = 64 << 10  # a command set is a few dozen elements (PS3.7 9.3, 10.3)
DEFAULT_MAX_MESSAGE = 1 << 30
ABORT_NOT_SPECIFIED = 0x00  # PS3.8 Table 9-26 reason/diag
ABORT_INVALID_PARAMETER = 0x06


class CutKind:
    TIMEOUT = "timeout"  # a PDU or the association outlasted its time
    OVERSIZE = "oversize"  # a PDU or message larger than allowed
    GARBAGE = "garbage"  # values no DICOM peer sends
    BUDGET = "budget"  # the association sent more bytes than it may
    STOPPED = "stopped"  # we stopped (Ctrl-C, end of the command)
    REFUSED = "refused"  # too many connections: not even accepted
    TLS = "tls"  # TLS where plain DICOM was due, or plain DICOM where TLS was (PS3.15 B.1)


@dataclass(frozen=True)
class Cut:
    kind: str
    detail: str


@dataclass(frozen=True)
class Limits:
    """What one association may cost us."""

    pdu_timeout: float = 10.0
    deadline: float | None = None  # time.monotonic() at which the association ends
    max_bytes: int | None = None
    max_message: int | None = DEFAULT_MAX_MESSAGE


class PeerCutOff(OSError):
    """Raised inside pynetdicom's reader: it treats an OSError as a closed connection."""


class Guard:
    """A socket proxy: pynetdicom calls recv/send/settimeout on it as on the real socket."""

    def __init__(
        self,
        sock: socket.socket,
        limits: Limits,
        local_max_pdu: Callable[[], int | None],
        on_cut: Callable[[Guard, Cut], None] | None = None,
        on_close: Callable[[Guard], None] | None = None,
    ) -> None:
        self._sock = sock
        self.limits = limits
        self._local_max_pdu = local_max_pdu
        self._on_cut = on_cut
        self._on_close = on_close
        self._lock = threading.Lock()
        self.cut: Cut | None = None
        self.bytes_in = 0
        self.assoc: Any = None  # set by the owner, for on_cut
        self.peer: tuple[str, int] | None = None
        # PDU stream state (PS3.8 9.3.1: type, reserved, 4-byte length)
        self._hdr = bytearray()
        self._body_left = 0
        self._pdu_type = 0
        self._pdu_deadline: float | None = None
        self._rj = bytearray()
        # P-DATA-TF PDV items (PS3.8 9.3.5.1: 4-byte length, context ID, control header)
        self._pdv_hdr = bytearray()
        self._pdv_left = 0
        self._pdv_last = False
        self._pdv_command = False
        self._message = {True: 0, False: 0}  # bytes of the command / data set being received
        self._command = bytearray()  # the command set being received (checked when complete)
        self._closed = False
        self.first_bytes: bytes = b""  # what the peer sent first (TLS or DICOM, dicom/tls.py)
        self.head: bytes = b""  # the stream's first 16 bytes, however read (qr.rejection_seen)
        self.connect_error: BaseException | None = None  # e.g. ssl.SSLCertVerificationError

    # --- what pynetdicom calls ------------------------------------------------------------

    def recv(self, bufsize: int) -> bytes:
        if self.cut is not None:
            raise PeerCutOff(self.cut.detail)
        now = time.monotonic()
        if self._pdu_deadline is None:
            self._pdu_deadline = now + self.limits.pdu_timeout
        wait = self._pdu_deadline - now
        if self.limits.deadline is not None:
            wait = min(wait, self.limits.deadline - now)
        if wait <= 0:
            self._timeout()
        try:
            self._sock.settimeout(wait)
            data = self._sock.recv(bufsize)
        except TimeoutError:
            self._timeout()
        except OSError:
            if self.cut is not None:
                raise PeerCutOff(self.cut.detail) from None
            raise
        if self.cut is not None:  # stopped while we waited: the shutdown woke recv()
            raise PeerCutOff(self.cut.detail)
        self._feed(data)
        return data

    def send(self, data: Any, *flags: Any) -> int:
        # A peer that never reads must not hold our sender either.
        left = self.limits.pdu_timeout
        if self.limits.deadline is not None:
            left = min(left, self.limits.deadline - time.monotonic())
        self._sock.settimeout(max(0.05, left))
        return self._sock.send(data, *flags)

    def connect(self, address: Any) -> None:
        """Keep why a connect (with TLS: the handshake) failed; pynetdicom only logs it."""
        try:
            self._sock.connect(address)
        except BaseException as exc:
            self.connect_error = exc
            raise

    def settimeout(self, value: float | None) -> None:
        """pynetdicom sets None after connecting: keep a deadline whatever it asks."""
        if value is not None:
            self._sock.settimeout(value)

    def close(self) -> None:
        with self._lock:
            first, self._closed = not self._closed, True
        self._sock.close()
        if first and self._on_close is not None:
            self._on_close(self)

    def __getattr__(self, name: str) -> Any:  # fileno, connect, shutdown, getsockname, ...
        return getattr(self._sock, name)

    # --- cutting a peer off -----------------------------------------------------------------

    def stop(self, detail: str = "stopped") -> None:
        """End the connection now, from any thread: the shutdown wakes a blocked recv()."""
        self._cut(CutKind.STOPPED, detail, ABORT_NOT_SPECIFIED)

    def _timeout(self) -> Any:
        now = time.monotonic()
        if self.limits.deadline is not None and now >= self.limits.deadline - 0.01:
            detail = "the association outlasted its time"
        elif self._hdr or self._body_left:
            have = len(self._hdr) if len(self._hdr) < 6 else 6
            detail = (
                f"a PDU did not arrive within {self.limits.pdu_timeout:g} s "
                f"({have} header bytes, {self._body_left} body bytes missing)"
            )
        else:
            detail = f"no data within {self.limits.pdu_timeout:g} s"
        self._cut(CutKind.TIMEOUT, detail, ABORT_NOT_SPECIFIED)
        raise PeerCutOff(detail)

    def _cut(self, kind: str, detail: str, reason: int) -> None:
        with self._lock:
            if self.cut is not None:
                return
            self.cut = Cut(kind, detail)
        # A-ABORT, source 2 (service provider), PS3.8 9.3.8; best effort, never blocks long.
        with contextlib.suppress(OSError):
            self._sock.settimeout(0.5)
            self._sock.send(bytes([0x07, 0, 0, 0, 0, 4, 0, 0, 0x02, reason]))
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        if self._on_cut is not None:
            with contextlib.suppress(Exception):
                self._on_cut(self, self.cut)

    def _refuse(self, kind: str, detail: str, reason: int) -> Any:
        self._cut(kind, detail, reason)
        raise PeerCutOff(detail)

    # --- the PDU stream ---------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        if self.bytes_in == 0 and data:
            self._first(data)
        if len(self.head) < 16:
            self.head += bytes(data[: 16 - len(self.head)])
        self.bytes_in += len(data)
        if self.limits.max_bytes is not None and self.bytes_in > self.limits.max_bytes:
            self._refuse(
                CutKind.BUDGET,
                f"sent more than {self.limits.max_bytes} bytes on one association",
                ABORT_NOT_SPECIFIED,
            )
        view = memoryview(data)
        while view:
            if len(self._hdr) < 6:
                take = min(6 - len(self._hdr), len(view))
                self._hdr += view[:take]
                view = view[take:]
                if len(self._hdr) == 6:
                    self._header()
                    if self._body_left == 0:
                        self._end_pdu()
                continue
            take = min(self._body_left, len(view))
            self._body(view[:take])
            self._body_left -= take
            view = view[take:]
            if self._body_left == 0:
                self._end_pdu()

    def _first(self, data: bytes) -> None:
        """A TLS record where a PDU was due: name it (PS3.15 B.1) instead of "not DICOM"."""
        from reverseprobe.dicom.tls import first_bytes_kind

        self.first_bytes = bytes(data[:8])
        kind = first_bytes_kind(data)
        peer = f"{self.peer[0]}:{self.peer[1]}" if self.peer else "the peer"
        if kind == "tls-hello":
            self._refuse(CutKind.TLS, f"TLS ClientHello from {peer}", ABORT_NOT_SPECIFIED)
        elif kind == "tls-alert":
            self._refuse(
                CutKind.TLS,
                f"a TLS alert from {peer}: it expects DICOM over TLS",
                ABORT_NOT_SPECIFIED,
            )

    def _header(self) -> None:
        self._pdu_type, _, length = struct.unpack(">BBL", bytes(self._hdr))
        if self._pdu_type == 0x04:
            local = self._local_max_pdu() or 0
            cap = local if local > 0 else FALLBACK_PDATA_CAP
            what = f"our maximum of {cap} (PS3.8 D.1)"
        else:
            cap, what = ASSOCIATION_PDU_CAP, f"the cap of {ASSOCIATION_PDU_CAP} bytes"
        if 0x01 <= self._pdu_type <= 0x07 and length > cap:
            self._refuse(
                CutKind.OVERSIZE,
                f"announced a {length}-byte {_PDU_NAMES[self._pdu_type]} PDU, over {what}",
                ABORT_INVALID_PARAMETER,
            )
        self._body_left = length
        self._rj.clear()

    def _body(self, chunk: memoryview) -> None:
        if self._pdu_type == 0x03 and len(self._rj) < 4:
            self._rj += chunk[: 4 - len(self._rj)]
        elif self._pdu_type == 0x04:
            self._pdata(chunk)

    def _pdata(self, chunk: memoryview) -> None:
        while chunk:
            if self._pdv_left == 0:
                take = min(6 - len(self._pdv_hdr), len(chunk))
                self._pdv_hdr += chunk[:take]
                chunk = chunk[take:]
                if len(self._pdv_hdr) < 6:
                    return
                length, _ctx, mch = struct.unpack(">LBB", bytes(self._pdv_hdr))
                self._pdv_hdr.clear()
                self._pdv_left = max(0, length - 2)
                self._pdv_command, self._pdv_last = bool(mch & 1), bool(mch & 2)
                total = self._message[self._pdv_command] + self._pdv_left
                self._message[self._pdv_command] = total
                cap = self.limits.max_message or 0
                if self._pdv_command:
                    cap = min(cap, MAX_COMMAND_SET)
                if total > cap:
                    what = "command set" if self._pdv_command else "data set"
                    self._refuse(
                        CutKind.OVERSIZE,
                        f"a DIMSE {what} over {self.limits.max_message} bytes",
                        ABORT_NOT_SPECIFIED,
                    )
                if self._pdv_left == 0 and self._pdv_last:
                    self._fragment_done()
                continue
            take = min(self._pdv_left, len(chunk))
            if self._pdv_command:
                self._command += chunk[:take]
            self._pdv_left -= take
            chunk = chunk[take:]
            if self._pdv_left == 0 and self._pdv_last:
                self._fragment_done()

    def _fragment_done(self) -> None:
        """The last fragment of a command or data set (PS3.8 E.2) has arrived."""
        self._message[self._pdv_command] = 0
        if self._pdv_command:
            command, self._command = bytes(self._command), bytearray()
            problem = command_set_problem(command)
            if problem:
                self._refuse(CutKind.GARBAGE, problem, ABORT_INVALID_PARAMETER)

    def _end_pdu(self) -> None:
        if self._pdu_type == 0x03:
            rj = bytes(self._rj) + b"\0\0\0\0"
            result, source = rj[1], rj[2]
            if result not in (1, 2) or source not in (1, 2, 3):
                self._refuse(
                    CutKind.GARBAGE,
                    f"A-ASSOCIATE-RJ with result 0x{result:02X}, source 0x{source:02X}, "
                    "values PS3.8 9.3.4 does not define",
                    ABORT_INVALID_PARAMETER,
                )
        self._hdr.clear()
        self._pdu_deadline = None


def command_set_problem(data: bytes) -> str | None:
    """What is wrong with a DIMSE command set (PS3.7 6.3.1: group 0000, Implicit VR Little
    Endian) that pynetdicom would choke on in its reader thread; None when it is sound."""
    pos, field = 0, None
    while pos < len(data):
        if pos + 8 > len(data):
            return "a DIMSE command set that ends inside an element"
        group, elem, length = struct.unpack_from("<HHL", data, pos)
        pos += 8
        if group != 0x0000 or pos + length > len(data):
            return f"a DIMSE command set with a bad element ({group:04X},{elem:04X})"
        if elem == 0x0100 and length == 2:
            (field,) = struct.unpack_from("<H", data, pos)
        pos += length
    if field is None:
        return "a DIMSE command set without Command Field (0000,0100)"
    return None


_PDU_NAMES = {
    0x01: "A-ASSOCIATE-RQ",
    0x02: "A-ASSOCIATE-AC",
    0x03: "A-ASSOCIATE-RJ",
    0x04: "P-DATA-TF",
    0x05: "A-RELEASE-RQ",
    0x06: "A-RELEASE-RP",
    0x07: "A-ABORT",
}
