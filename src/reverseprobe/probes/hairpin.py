"""Does the router hairpin (RFC 4787 section 6, RFC 5382 REQ-9): a connection from this PC to
the site's own public address and forwarded port, turned around on the router and sent back to
this PC? Measured while our listener holds the port (where it is free), with a short deadline.
miniupnpd and many home routers do not: the connection is refused or times out."""

from __future__ import annotations

import errno
import select
import socket
import time
from dataclasses import dataclass

HAIRPIN_S = 2.0


@dataclass(frozen=True)
class HairpinAnswer:
    """`hairpins`: True (the connection came back to this PC), False (refused or no answer),
    None (not measured: `how` says why)."""

    hairpins: bool | None
    how: str


def probe_hairpin(public_ip: str, port: int, timeout: float = HAIRPIN_S) -> HairpinAnswer:
    """Connect to public_ip:port; with our own listener on the port, only a connection that
    arrives on it is a hairpin (a router answering itself is not)."""
    if timeout <= 0:
        return HairpinAnswer(None, "no time left to measure")
    try:
        lst: socket.socket | None = socket.create_server(("0.0.0.0", port), backlog=4)
    except OSError:
        lst = None  # the user's receiver holds the port: any connection that completes counts
    out = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    out.setblocking(False)
    end = time.monotonic() + timeout
    try:
        if lst is not None:
            lst.setblocking(False)
        err = out.connect_ex((public_ip, port))
        if err not in (0, errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK):
            return HairpinAnswer(False, f"connecting failed at once (errno {err})")
        return _wait(out, lst, end, public_ip, port)
    except OSError as exc:
        return HairpinAnswer(None, f"could not try: {exc}")
    finally:
        out.close()
        if lst is not None:
            lst.close()


def _wait(
    out: socket.socket, lst: socket.socket | None, end: float, ip: str, port: int
) -> HairpinAnswer:
    connected = False
    while (left := end - time.monotonic()) > 0:
        rd = [lst] if lst is not None else []
        r, w, _x = select.select(rd, [] if connected else [out], [], left)
        if lst is not None and lst in r:
            conn, peer = lst.accept()
            conn.close()
            return HairpinAnswer(True, f"{ip}:{port} came back to our listener from {peer[0]}")
        if out in w and not connected:
            err = out.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                name = errno.errorcode.get(err, str(err))
                return HairpinAnswer(False, f"{ip}:{port} refused or unreachable ({name})")
            connected = True
            if lst is None:
                return HairpinAnswer(True, f"{ip}:{port} connected to the receiver on the port")
    if connected:
        return HairpinAnswer(False, f"{ip}:{port} connected, but not to this PC's listener")
    return HairpinAnswer(False, f"{ip}:{port}: no answer within the deadline")
