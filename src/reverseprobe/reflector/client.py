"""Asking a reflector for a dial-back (what `check` and `forward --verify` use).

The reflector is somebody else's server on the internet: its answer is read with a size
limit and validated (`protocol.parse_probe_answer`); whatever it does becomes a
`ReflectorError` with a kind, never a crash. A token travels in the URL's user-info
(`https://:TOKEN@host:8470/`, or in the environment variable), and is sent as a bearer token
(RFC 6750), never as the user-info itself.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from reverseprobe.reflector import protocol as p


class ErrorKind(str, Enum):
    UNREACHABLE = "unreachable"  # no connection, TLS failure, no answer in time
    REFUSED = "refused"  # answered with a 4xx/5xx (bad token, rate limit, port not allowed)
    GARBAGE = "garbage"  # answered something that is not the contract


class ReflectorError(Exception):
    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        http_status: int | None = None,
        error: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.http_status = http_status
        self.error = error  # the reflector's error word, e.g. "rate-limited"


@dataclass(frozen=True)
class Endpoint:
    """A reflector URL split into where to send (without credentials) and the token."""

    base: str
    token: str | None

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        token = parts.password or parts.username or None
        netloc = parts.hostname or ""
        if ":" in netloc:
            netloc = f"[{netloc}]"
        if parts.port:
            netloc = f"{netloc}:{parts.port}"
        path = parts.path if parts.path.endswith("/") else parts.path + "/"
        base = urlunsplit((parts.scheme, netloc, path, "", ""))
        return cls(base=base, token=unquote(token) if token else None)

    def url(self, path: str) -> str:
        return self.base + path.lstrip("/")

    @property
    def display(self) -> str:
        """The URL as shown in reports: never with the token."""
        return self.base


def ask_probe(
    url: str,
    ports: Sequence[int],
    *,
    called_aet: str,
    calling_aet: str,
    dial_timeout: float,
    http_timeout: float,
) -> p.ProbeAnswer:
    """POST /v1/probe; the reflector dials `ports` back on the address it sees us at."""
    ep = Endpoint.parse(url)
    body = p.probe_request_body(ports, called_aet, calling_aet, dial_timeout)
    doc = _request(ep, "POST", p.PATH_PROBE, body, http_timeout)
    try:
        return p.parse_probe_answer(doc, ports)
    except p.AnswerError as exc:
        raise ReflectorError(
            ErrorKind.GARBAGE, f"the reflector's answer is invalid: {exc}"
        ) from exc


def ask_ip(url: str, *, timeout: float) -> str:
    """GET /v1/ip: the address the reflector sees us at."""
    ep = Endpoint.parse(url)
    doc = _request(ep, "GET", p.PATH_IP, None, timeout)
    try:
        return p.parse_ip_answer(doc)
    except p.AnswerError as exc:
        raise ReflectorError(
            ErrorKind.GARBAGE, f"the reflector's answer is invalid: {exc}"
        ) from exc


def _request(ep: Endpoint, method: str, path: str, body: Any, timeout: float) -> Any:
    """The whole exchange within `timeout`: requests' timeouts bound each socket operation,
    not the total, so it runs in a daemon thread that is abandoned when time is up."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["doc"] = _exchange(ep, method, path, body, timeout)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="reflector-http", daemon=True).start()
    if not done.wait(timeout + 0.2):
        raise ReflectorError(
            ErrorKind.UNREACHABLE, f"no complete answer from {ep.display} within {timeout:.1f} s"
        )
    if "error" in box:
        raise box["error"]
    return box["doc"]


def _exchange(ep: Endpoint, method: str, path: str, body: Any, timeout: float) -> Any:
    import requests

    headers = {"Accept": "application/json", "User-Agent": "reverseprobe"}
    if ep.token:
        headers["Authorization"] = f"Bearer {ep.token}"
    connect = max(0.1, min(3.0, timeout))
    try:
        with requests.request(
            method,
            ep.url(path),
            json=body,
            headers=headers,
            timeout=(connect, max(0.1, timeout)),
            stream=True,
            allow_redirects=False,
        ) as resp:
            raw = _read_limited(resp, p.ANSWER_LIMIT, time.monotonic() + timeout)
            status = resp.status_code
    except requests.Timeout:
        raise ReflectorError(
            ErrorKind.UNREACHABLE, f"no answer from {ep.display} within {timeout:.1f} s"
        ) from None
    except requests.RequestException as exc:
        raise ReflectorError(ErrorKind.UNREACHABLE, f"{ep.display}: {_why(exc)}") from None
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        doc = None
    if status != 200:
        err = p.parse_error_answer(doc)
        word, msg = err if err else (None, "")
        raise ReflectorError(
            ErrorKind.REFUSED,
            f"the reflector answered HTTP {status}" + (f" ({word}: {msg})" if word else ""),
            http_status=status,
            error=word,
        )
    if doc is None:
        raise ReflectorError(ErrorKind.GARBAGE, f"{ep.display} did not answer JSON")
    return doc


def _read_limited(resp: Any, limit: int, until: float) -> bytes:
    buf = bytearray()
    for chunk in resp.iter_content(chunk_size=8192):
        buf += chunk
        if len(buf) > limit:
            raise ReflectorError(ErrorKind.GARBAGE, f"the answer is larger than {limit} bytes")
        if time.monotonic() > until:
            raise ReflectorError(ErrorKind.UNREACHABLE, "the answer trickles in too slowly")
    return bytes(buf)


def _why(exc: BaseException) -> str:
    """The innermost reason of a requests error, on one line."""
    inner: BaseException = exc
    while inner.__context__ is not None and inner.__context__ is not inner:
        inner = inner.__context__
    text = str(inner) or type(inner).__name__
    return text.splitlines()[0][:200]
