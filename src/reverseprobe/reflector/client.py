"""Asking a reflector for a dial-back (what `check` and `forward --verify` use).

The reflector is somebody else's server on the internet: its answer is read with a size
limit and validated (`protocol.parse_probe_answer`); whatever it does becomes a
`ReflectorError` with a kind, never a crash. A token travels in the URL's user-info
(`https://:TOKEN@host:8470/`, or in the environment variable), and is sent as a bearer token
(RFC 6750), never as the user-info itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from reverseprobe.httpfetch import FetchError, FetchKind, fetch
from reverseprobe.model.inbound import ProbeAnswer
from reverseprobe.reflector import answers as a
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


def ask_probe(  # noqa: PLR0913 - keyword-only fields of the reflector's probe request
    url: str,
    ports: Sequence[int],
    *,
    called_aet: str,
    calling_aet: str,
    dial_timeout: float,
    http_timeout: float,
    tls: bool = False,
    tls_server_name: str | None = None,
) -> ProbeAnswer:
    """POST /v1/probe; the reflector dials `ports` back on the address it sees us at (with
    `tls`, over DICOM TLS, `tls_server_name` as the SNI)."""
    ep = Endpoint.parse(url)
    body = p.probe_request_body(
        ports, called_aet, calling_aet, dial_timeout, tls=tls, tls_server_name=tls_server_name
    )
    doc = _request(ep, "POST", p.PATH_PROBE, body, http_timeout)
    try:
        return a.parse_probe_answer(doc, ports)
    except a.AnswerError as exc:
        raise ReflectorError(
            ErrorKind.GARBAGE, f"the reflector's answer is invalid: {exc}"
        ) from exc


def ask_ip(url: str, *, timeout: float) -> str:
    """GET /v1/ip: the address the reflector sees us at."""
    ep = Endpoint.parse(url)
    doc = _request(ep, "GET", p.PATH_IP, None, timeout)
    try:
        return a.parse_ip_answer(doc)
    except a.AnswerError as exc:
        raise ReflectorError(
            ErrorKind.GARBAGE, f"the reflector's answer is invalid: {exc}"
        ) from exc


def _request(ep: Endpoint, method: str, path: str, body: Any, timeout: float) -> Any:
    """The whole exchange within `timeout` (`httpfetch.fetch`: a total deadline, not requests'
    per-read one) and at most ANSWER_LIMIT bytes; the JSON document of a 200 answer."""
    headers = {"Accept": "application/json", "User-Agent": "reverseprobe"}
    if ep.token:
        headers["Authorization"] = f"Bearer {ep.token}"
    data = None
    if body is not None:
        data = json.dumps(body, allow_nan=False).encode()
        headers["Content-Type"] = "application/json"
    try:
        ans = fetch(
            method,
            ep.url(path),
            timeout=timeout,
            max_bytes=a.ANSWER_LIMIT,
            headers=headers,
            body=data,
            name="reflector-http",
        )
    except FetchError as exc:
        raise _translate(exc, ep, timeout) from None
    try:
        doc = json.loads(ans.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        doc = None
    if ans.status != 200:
        err = a.parse_error_answer(doc)
        word, msg = err if err else (None, "")
        raise ReflectorError(
            ErrorKind.REFUSED,
            f"the reflector answered HTTP {ans.status}" + (f" ({word}: {msg})" if word else ""),
            http_status=ans.status,
            error=word,
        )
    if doc is None:
        raise ReflectorError(ErrorKind.GARBAGE, f"{ep.display} did not answer JSON")
    return doc


def _translate(exc: FetchError, ep: Endpoint, timeout: float) -> ReflectorError:
    """A failed fetch as this client's error kinds (what `check` reports)."""
    if exc.kind is FetchKind.TIMEOUT:
        return ReflectorError(
            ErrorKind.UNREACHABLE, f"no complete answer from {ep.display} within {timeout:.1f} s"
        )
    if exc.kind is FetchKind.TOO_LARGE:
        return ReflectorError(
            ErrorKind.GARBAGE, f"the answer is larger than {a.ANSWER_LIMIT} bytes"
        )
    if exc.kind is FetchKind.GARBAGE:
        return ReflectorError(ErrorKind.GARBAGE, f"{ep.display}: {exc.reason}")
    return ReflectorError(ErrorKind.UNREACHABLE, f"{ep.display}: {exc.reason}")
