"""One bounded HTTP exchange (RFC 9110/9112) on `requests`: a total deadline and a byte cap.

Every peer we ask over HTTP (a router's IGD, a public-IP service, a reflector) is somebody
else's server. requests bounds each socket operation, not the exchange, and reads what it is
sent: a router answering an endless chunked description took `check` to 1.9 GiB. `fetch` adds
what requests lacks and nothing else:

- a total deadline: the body is read in small `read1` steps against a monotonic clock, and the
  exchange runs in `concurrent.call_with_timeout`, so a read that blocks cannot hold the caller;
  at the deadline the sockets of the exchange are shut down, so the worker thread ends too;
- a byte cap: a Content-Length over it is refused unread, a streamed body is cut at it;
- `Accept-Encoding: identity`, and a compressed answer refused rather than decoded (RFC 9110
  12.5.3): no decompression bomb, whatever the ratio;
- no redirects, no proxies or netrc from the environment, optionally IPv4 only.

Errors are one `FetchError` with a `FetchKind`; each caller words them for its own report.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from reverseprobe.concurrent import CallTimeout, call_with_timeout
from reverseprobe.textsafe import clip, printable

if TYPE_CHECKING:
    import requests

STEP = 8192  # bytes per read: the deadline is checked at least this often
STILL_ARRIVING = "answer still arriving at the deadline"  # a TIMEOUT's reason, mid-body
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class FetchKind(str, Enum):
    TIMEOUT = "timeout"  # no complete answer within the deadline
    REFUSED = "refused"  # the peer refused the TCP connection (RST: nothing listens)
    TOO_LARGE = "too large"  # the body announced or sent more than the cap
    GARBAGE = "garbage"  # an answer that is not HTTP, or a broken body encoding
    UNREACHABLE = "unreachable"  # no name, no route, TLS failure, connection reset


class FetchError(Exception):
    """An HTTP exchange that gave no usable answer; `kind` says which way it failed, `reason`
    is a short line safe to show (peer text escaped)."""

    def __init__(self, kind: FetchKind, reason: str, *, announced: int | None = None) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.announced = announced  # the Content-Length refused unread, for TOO_LARGE


@dataclass(frozen=True)
class HttpAnswer:
    """A complete answer: any status (a 4xx is an answer, not an error), at most the cap."""

    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes
    local_address: str  # our end of the connection: the address the peer sees on a LAN

    @property
    def is_redirect(self) -> bool:
        return self.status in _REDIRECTS and "location" in self.headers


def fetch(  # noqa: PLR0913 - keyword-only options of one bounded HTTP request
    method: str,
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    ipv4_only: bool = False,
    name: str = "http",
    ipv6_only: bool = False,
) -> HttpAnswer:
    """`method url` answered completely within `timeout` seconds, body at most `max_bytes`.

    Raises FetchError. Returns by the deadline (plus a thread switch) even if a read blocks."""
    end = time.monotonic() + max(0.0, timeout)
    watch = _Watch()
    try:
        return call_with_timeout(
            lambda: _exchange(
                method, url, end, max_bytes, headers, body, ipv4_only, watch, ipv6_only
            ),
            max(0.0, end - time.monotonic()),
            name=name,
        )
    except CallTimeout:
        watch.cancel()
        raise FetchError(FetchKind.TIMEOUT, f"no complete answer within {timeout:.1f} s") from None


class _Watch:
    """The sockets of one exchange, so that the caller can shut them down at the deadline
    (shutdown, not close: it wakes a blocked recv; the worker closes its own sockets)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._cancelled = False
        self.local_address = ""

    def opened(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._socks.append(sock)
            if not self.local_address:
                with contextlib.suppress(OSError):
                    self.local_address = str(sock.getsockname()[0]).split("%", 1)[0]
            if self._cancelled:
                _shutdown(sock)

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            for sock in self._socks:
                _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    # the plain socket's shutdown even on an SSLSocket: its own one touches the TLS state the
    # worker thread is using
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _session(watch: _Watch, ipv4_only: bool, ipv6_only: bool = False) -> requests.Session:
    """A Session whose connections report their socket to `watch`; no retries, no proxies,
    no netrc (a proxy's address is not ours, and its answer not the peer's)."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class _Conn(HTTPConnection):
        def connect(self) -> None:
            super().connect()
            watch.opened(self.sock)

    class _TlsConn(HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            watch.opened(self.sock)

    class _Pool(HTTPConnectionPool):
        ConnectionCls = _Conn

    class _TlsPool(HTTPSConnectionPool):
        ConnectionCls = _TlsConn

    class _Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            if ipv4_only:
                # urllib3 binds each socket to source_address: 0.0.0.0 fails on an IPv6
                # socket, so create_connection() goes on to the name's IPv4 addresses
                kwargs["source_address"] = ("0.0.0.0", 0)
            elif ipv6_only:  # the same the other way round: "::" fails on an IPv4 socket
                kwargs["source_address"] = ("::", 0)
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _TlsPool}

    s = requests.Session()
    s.trust_env = False
    adapter = _Adapter(max_retries=0)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s


def _exchange(  # noqa: PLR0913, PLR0917 - internal, one call site
    method: str,
    url: str,
    end: float,
    max_bytes: int,
    headers: dict[str, str] | None,
    body: bytes | None,
    ipv4_only: bool,
    watch: _Watch,
    ipv6_only: bool = False,
) -> HttpAnswer:
    import requests

    sent = {"Accept-Encoding": "identity", "Connection": "close", **(headers or {})}
    left = max(0.05, end - time.monotonic())
    try:
        with (
            _session(watch, ipv4_only, ipv6_only) as s,
            s.request(
                method,
                url,
                headers=sent,
                data=body,
                timeout=(left, left),
                stream=True,
                allow_redirects=False,
            ) as resp,
        ):
            got = {k.lower(): v for k, v in resp.headers.items()}
            encoding = got.get("content-encoding", "").strip().lower()
            if encoding not in ("", "identity"):
                raise FetchError(
                    FetchKind.GARBAGE,
                    f"compressed answer (Content-Encoding {_safe(encoding, 30)}) although "
                    "identity was asked",
                )
            length = got.get("content-length", "").strip()
            if length and "chunked" not in got.get("transfer-encoding", "").lower():
                if not length.isdigit() or len(length) > 15:
                    raise FetchError(FetchKind.GARBAGE, f"Content-Length {_safe(length, 30)}")
                if int(length) > max_bytes:
                    raise FetchError(
                        FetchKind.TOO_LARGE,
                        f"announces {int(length)} bytes (more than {max_bytes})",
                        announced=int(length),
                    )
            data = _read_capped(resp, max_bytes, end)
            return HttpAnswer(resp.status_code, got, data, watch.local_address)
    except FetchError:
        raise
    except requests.Timeout:
        raise FetchError(FetchKind.TIMEOUT, "no answer in time") from None
    except (
        requests.exceptions.InvalidURL,
        requests.exceptions.InvalidSchema,
        requests.exceptions.MissingSchema,
    ) as exc:
        raise FetchError(FetchKind.GARBAGE, f"not a valid URL ({_innermost(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - requests, urllib3, http.client: classified here
        raise _classify(exc) from None


def _read_capped(resp: requests.Response, max_bytes: int, end: float) -> bytes:
    """The body, raw (no decoding), at most `max_bytes`, complete by `end`."""
    from urllib3.exceptions import ReadTimeoutError

    buf = bytearray()
    raw = resp.raw
    while True:
        if time.monotonic() > end:
            raise FetchError(FetchKind.TIMEOUT, STILL_ARRIVING)
        try:
            chunk = raw.read1(STEP, decode_content=False)
        except ReadTimeoutError:
            raise FetchError(FetchKind.TIMEOUT, STILL_ARRIVING) from None
        if not chunk:
            return bytes(buf)
        buf += chunk
        if len(buf) > max_bytes:
            raise FetchError(FetchKind.TOO_LARGE, f"answer longer than {max_bytes} bytes")


def _classify(exc: BaseException) -> FetchError:  # noqa: PLR0911 - one return per FetchError kind
    """A requests/urllib3/http.client error as a FetchError, by its innermost cause."""
    import http.client

    from urllib3.exceptions import ProtocolError, ReadTimeoutError

    chain = _chain(exc)
    if any(isinstance(e, (TimeoutError, ReadTimeoutError)) for e in chain):
        return FetchError(FetchKind.TIMEOUT, "no answer in time")
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return FetchError(FetchKind.REFUSED, "connection refused")
    for e in chain:
        if isinstance(e, http.client.RemoteDisconnected):
            return FetchError(FetchKind.GARBAGE, "connection closed before the HTTP header ended")
        if isinstance(e, http.client.BadStatusLine):
            return FetchError(
                FetchKind.GARBAGE,
                f"not an HTTP status line: {_safe(str(e.args[0]) if e.args else '', 60)}",
            )
        if isinstance(e, http.client.IncompleteRead):
            return FetchError(FetchKind.GARBAGE, "connection closed before the body ended")
        if isinstance(e, (http.client.HTTPException, ValueError)):
            return FetchError(FetchKind.GARBAGE, f"broken HTTP answer ({_innermost(exc)})")
    if any(isinstance(e, ProtocolError) for e in chain) and any(
        isinstance(e, OSError) for e in chain[1:]
    ):
        return FetchError(FetchKind.UNREACHABLE, f"connection broken ({_innermost(exc)})")
    return FetchError(FetchKind.UNREACHABLE, _innermost(exc))


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in out and len(out) < 20:
        out.append(cur)
        # urllib3 and requests keep the cause in args (MaxRetryError.reason, ProtocolError(msg,
        # exc)) as well as in __cause__/__context__
        nxt = cur.__cause__ or cur.__context__ or getattr(cur, "reason", None)
        if not isinstance(nxt, BaseException):
            nxt = next((a for a in getattr(cur, "args", ()) if isinstance(a, BaseException)), None)
        cur = nxt
    return out


def _innermost(exc: BaseException) -> str:
    """The innermost reason of an error, on one short line, controls escaped."""
    inner = _chain(exc)[-1]
    text = str(inner)
    if "] " in text:  # "[Errno 111] Connection refused"
        text = text.split("] ", 1)[1]
    lines = text.strip("()' ").splitlines()
    return _safe(lines[0] if lines else type(inner).__name__, 160)


def _safe(text: str, limit: int) -> str:
    return printable(clip(text, limit))
