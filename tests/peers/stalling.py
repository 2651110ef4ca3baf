"""In-process hostile DICOM listeners on loopback: they accept and then stall.

"header": answers the A-ASSOCIATE-RQ with only a PDU header announcing a 1 GiB A-ASSOCIATE-AC
(`02 00 40 00 00 00`, PS3.8 9.3.3) and holds the connection; "silent": accepts and never reads.
Closing the listener closes every held connection, which frees whoever is stuck reading.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

STALLED_AC = bytes.fromhex("020040000000")


class StallingListener:
    def __init__(self, mode: str = "header", host: str = "127.0.0.1") -> None:
        if mode not in ("header", "silent"):
            raise ValueError(mode)
        self.mode = mode
        self._srv = socket.socket()
        self._srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._srv.bind((host, 0))
        self._srv.listen(64)
        self.port = int(self._srv.getsockname()[1])
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True, name="stalling")

    def __enter__(self) -> StallingListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def accepted(self) -> int:
        with self._lock:
            return len(self._held)

    def wait_accepted(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.accepted < n:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def close(self) -> None:
        self._srv.close()
        with self._lock:
            held, self._held = self._held, []
        for c in held:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()
        self._thread.join(5)

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self._srv.accept()
            except OSError:
                return
            if self.mode == "header":
                try:
                    conn.settimeout(5)
                    conn.recv(4096)  # the A-ASSOCIATE-RQ, so the requestor is waiting for AC
                    conn.sendall(STALLED_AC)
                except OSError:
                    pass
            with self._lock:
                self._held.append(conn)
