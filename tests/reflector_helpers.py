"""Helpers for the reflector and inbound tests: a real reflector on loopback, raw HTTP."""

from __future__ import annotations

import dataclasses
import http.client
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from reverseprobe.config import ReflectorConfig
from reverseprobe.dicom.echo import DicomResult, EchoResult
from reverseprobe.dicom.tcp import TcpState
from reverseprobe.reflector.server import BackgroundReflector, Dialer, dial_back


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclasses.dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    url: str,
    method: str = "GET",
    path: str = "/healthz",
    body: bytes | None = None,
    *,
    headers: dict[str, str] | None = None,
    source: str | None = None,
    timeout: float = 15.0,
) -> Response:
    u = urlsplit(url)
    conn = http.client.HTTPConnection(
        u.hostname or "127.0.0.1",
        u.port,
        timeout=timeout,
        source_address=(source, 0) if source else None,
    )
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def probe(url: str, doc: Any, **kw: Any) -> Response:
    headers = {"Content-Type": "application/json", **kw.pop("headers", {})}
    return request(url, "POST", "/v1/probe", json.dumps(doc).encode(), headers=headers, **kw)


class RecordingDialer:
    """The real dial-back (or a canned result), recording every host:port it was asked for."""

    def __init__(self, real: bool = True, block: threading.Event | None = None) -> None:
        self.calls: list[tuple[str, int, str, str]] = []
        self.real = real
        self.block = block
        self._lock = threading.Lock()

    def __call__(
        self,
        host: str,
        port: int,
        *,
        called_aet: str,
        calling_aet: str,
        connect_timeout: float,
        budget: float,
    ) -> EchoResult:
        with self._lock:
            self.calls.append((host, port, called_aet, calling_aet))
        if self.block is not None:
            self.block.wait(budget)
        if self.real:
            return dial_back(
                host,
                port,
                called_aet=called_aet,
                calling_aet=calling_aet,
                connect_timeout=connect_timeout,
                budget=budget,
            )
        return EchoResult(
            host=host,
            port=port,
            tcp=TcpState.REFUSED,
            result=DicomResult.NOT_TESTED,
            called_aet=called_aet,
            calling_aet=calling_aet,
        )


@contextmanager
def reflector(
    dialer: Dialer | None = None, *, read_body_s: float = 5.0, **cfg: Any
) -> Iterator[BackgroundReflector]:
    cfg.setdefault("allow_loopback", True)  # the dial-back targets are on loopback here
    limits = {k: cfg.pop(k) for k in ("overrun_s", "max_stuck", "summary_s", "own") if k in cfg}
    conf = ReflectorConfig(host=cfg.pop("host", "127.0.0.1"), port=0, **cfg)
    with BackgroundReflector(
        conf, dialer=dialer or dial_back, read_body_s=read_body_s, **limits
    ) as r:
        yield r
