"""A loopback TCP server that reads one HTTP request head per connection and hands the socket
to a handler: the hostile HTTP peer of the httpfetch and UPnP tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

Handler = Callable[[socket.socket, bytes], object]  # its return value is ignored


class RawServer:
    """Loopback TCP: reads one request head per connection, then hands the socket to `handler`.
    Records every request head and the time each connection broke (the client let go)."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1") -> None:
        self.handler = handler
        self.requests: list[bytes] = []
        self.broke_at: list[float] = []
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.create_server((host, 0), family=family)
        self.port = self.sock.getsockname()[1]
        where = f"[{host}]" if ":" in host else host
        self.url = f"http://{where}:{self.port}/"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(30)
            req = b""
            try:
                while b"\r\n\r\n" not in req:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    req += chunk
                self.requests.append(req)
                self.handler(conn, req)
            except OSError:
                self.broke_at.append(time.monotonic())

    def stop(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(5)
