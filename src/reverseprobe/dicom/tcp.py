"""A bare TCP connect, classified the way a diagnosis needs it: open / refused / timeout /
unreachable. Refused is an instant RST (nothing listens, or no port mapping); timeout is a
dropping firewall or a black hole; unreachable is an ICMP error or no route."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from reverseprobe.model.dicom import TcpState as TcpState


@dataclass(frozen=True)
class TcpResult:
    state: TcpState
    elapsed_ms: float
    error: str | None = None


def tcp_connect(host: str, port: int, timeout: float, *, source: str | None = None) -> TcpResult:
    """Open and immediately close one TCP connection to host:port within `timeout` seconds."""
    t0 = time.monotonic()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(max(0.01, timeout))
        if source:
            sock.bind((source, 0))
        sock.connect((host, port))
        state, err = TcpState.OPEN, None
    except ConnectionRefusedError as exc:
        state, err = TcpState.REFUSED, str(exc)
    except TimeoutError as exc:
        state, err = TcpState.TIMEOUT, str(exc) or "timed out"
    except OSError as exc:
        # EHOSTUNREACH/ENETUNREACH (ICMP or no route) and the rarer local errors alike
        state, err = TcpState.UNREACHABLE, str(exc)
    finally:
        sock.close()
    return TcpResult(state, round((time.monotonic() - t0) * 1000, 1), err)
