"""The reflector's routes and limits as an aiohttp application (docs/reference.md "reverseprobe
reflector"): GET /healthz, GET /v1/ip, POST /v1/probe.

The per-source token bucket is taken before anything else is done for a probe; the dial-backs
are blocking pynetdicom calls, so they run in a bounded thread pool behind a global cap
(`limits.DialSlots`). The dial-back goes to the address the request came from and nowhere
else; `X-Forwarded-For` counts only from `--trust-proxy` networks. Every refusal is a 4xx
with a JSON body, never a traceback; every probe and refusal is one log line.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import hashlib
import hmac
import json
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from reverseprobe.config import ReflectorConfig
from reverseprobe.dicom.echo import DicomResult, EchoResult
from reverseprobe.dicom.tcp import TcpState
from reverseprobe.reflector import protocol as p
from reverseprobe.reflector.dialback import Dialer, dial_back
from reverseprobe.reflector.limits import DialSlots, RateLimiter, rate_key

if TYPE_CHECKING:
    from aiohttp import web

LOG = logging.getLogger("reverseprobe.reflector")
READ_BODY_S = 5.0  # to receive a request body once the headers are in
OVERRUN_S = 2.0  # beyond a dial-back's budget before its result is given up for lost
ACTIVE_DIALS = max(4, 4 * (os.cpu_count() or 1))  # associations set up at once (see _admit)
ACTIVE_HOLD_S = 0.25
_STATUS_CODES = {
    400: p.ErrorCode.BAD_REQUEST,
    401: p.ErrorCode.UNAUTHORIZED,
    404: p.ErrorCode.NOT_FOUND,
    405: p.ErrorCode.METHOD_NOT_ALLOWED,
    408: p.ErrorCode.REQUEST_TIMEOUT,
    413: p.ErrorCode.BODY_TOO_LARGE,
    415: p.ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    429: p.ErrorCode.RATE_LIMITED,
    503: p.ErrorCode.BUSY,
}


def _failed(host: str, port: int, req: p.ProbeRequest, detail: str) -> EchoResult:
    return EchoResult(
        host=host,
        port=port,
        tcp=TcpState.TIMEOUT,
        result=DicomResult.NOT_TESTED,
        called_aet=req.called_aet,
        calling_aet=req.calling_aet,
        detail=detail,
    )


# --- configuration -------------------------------------------------------------------------


class Reflector:
    """The routes and their limits; `app()` builds the aiohttp application."""

    def __init__(
        self,
        cfg: ReflectorConfig,
        *,
        dialer: Dialer = dial_back,
        log: logging.Logger = LOG,
        clock: Callable[[], float] = time.monotonic,
        read_body_s: float = READ_BODY_S,
    ) -> None:
        self.cfg = cfg
        self.read_body_s = read_body_s
        self.dialer = dialer
        self.log = log
        self.limiter = RateLimiter(cfg.rate_per_minute, cfg.burst, clock=clock)
        self.slots = DialSlots(cfg.max_concurrent)
        self.pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=cfg.max_concurrent, thread_name_prefix="dial-back"
        )
        self._active = asyncio.Semaphore(ACTIVE_DIALS)
        self._token = hashlib.sha256(cfg.token.encode()).digest() if cfg.token else None

    def app(self) -> web.Application:
        from aiohttp import web

        app = web.Application(client_max_size=p.BODY_LIMIT, middlewares=[self._errors])
        app.router.add_get(p.PATH_HEALTH, self.healthz)
        app.router.add_get(p.PATH_IP, self.ip)
        app.router.add_post(p.PATH_PROBE, self.probe)
        app.on_response_prepare.append(_server_header)
        return app

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    # -- routes --

    async def healthz(self, request: web.Request) -> web.StreamResponse:
        del request
        return _json(200, {"status": "ok"})

    async def ip(self, request: web.Request) -> web.StreamResponse:
        client = self._client(request)
        self._authorize(request, client)
        return _json(200, {"ip": client})

    async def probe(self, request: web.Request) -> web.StreamResponse:
        t0 = time.monotonic()
        client = self._client(request)
        wait = self.limiter.take(rate_key(client))
        if wait > 0:
            raise p.RequestError(
                429, p.ErrorCode.RATE_LIMITED, f"too many probes from {client}; retry later"
            ).with_retry(wait)
        self._authorize(request, client, charged=True)
        if request.content_type != "application/json":
            raise p.RequestError(
                415, p.ErrorCode.UNSUPPORTED_MEDIA_TYPE, "send Content-Type: application/json"
            )
        if request.content_length is not None and request.content_length > p.BODY_LIMIT:
            raise _too_large()
        try:
            body = await asyncio.wait_for(request.read(), self.read_body_s)
        except asyncio.TimeoutError:
            raise p.RequestError(
                408, p.ErrorCode.REQUEST_TIMEOUT, "the body did not arrive in time"
            ) from None
        req = p.parse_probe_request(body, self.cfg.allow_ports)
        if not self.slots.try_acquire(len(req.ports)):
            raise p.RequestError(
                503, p.ErrorCode.BUSY, "too many dial-backs in progress; retry shortly"
            ).with_retry(1.0)
        results = await self._dial_all(client, req)
        self._log_probe(client, req, results, time.monotonic() - t0)
        return _json(200, p.probe_answer(client, results, req.ignored))

    # -- helpers --

    def _client(self, request: web.Request) -> str:
        return p.client_address(
            request.remote,
            request.headers.getall("X-Forwarded-For", []),
            self.cfg.trust_proxy,
        )

    def _authorize(self, request: web.Request, client: str, *, charged: bool = False) -> None:
        """Bearer token (RFC 6750 2.1), compared in constant time (digests of equal length).
        A failed attempt costs a token of the source's bucket, so guessing is rate limited."""
        if self._token is None:
            return
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(
            hashlib.sha256(given.strip().encode("utf-8", "replace")).digest(), self._token
        )
        if ok:
            return
        if not charged and self.limiter.take(rate_key(client)) > 0:
            raise p.RequestError(429, p.ErrorCode.RATE_LIMITED, "too many attempts").with_retry(
                60.0 / self.cfg.rate_per_minute
            )
        self._log_refusal(client, 401, "missing or wrong bearer token")
        raise p.RequestError(401, p.ErrorCode.UNAUTHORIZED, "a valid bearer token is required")

    async def _dial_all(self, client: str, req: p.ProbeRequest) -> list[EchoResult]:
        """Dial every port at once in the pool; a slot is released when its thread ends,
        not when we stop waiting, so the cap stays true even for an overrun."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        budget = min(self.cfg.timeout, req.timeout or self.cfg.timeout)
        futures: list[asyncio.Future[EchoResult]] = []
        for port in req.ports:
            release = await self._admit()
            left = max(0.2, budget - (loop.time() - t0))
            try:
                cf = self.pool.submit(
                    self.dialer,
                    client,
                    port,
                    called_aet=req.called_aet,
                    calling_aet=req.calling_aet,
                    connect_timeout=min(self.cfg.connect_timeout, left),
                    budget=left,
                )
            except RuntimeError:  # the pool is shutting down
                release()
                self.slots.release(1)
                futures.append(_done(_failed(client, port, req, "the reflector is stopping")))
                continue
            cf.add_done_callback(functools.partial(self._finished, loop, release))
            futures.append(asyncio.wrap_future(cf))
        await asyncio.wait(futures, timeout=budget + OVERRUN_S)
        out: list[EchoResult] = []
        for port, fut in zip(req.ports, futures, strict=True):
            if not fut.done():
                out.append(_failed(client, port, req, "the dial-back overran its budget"))
            elif fut.exception() is not None:
                exc = fut.exception()
                self.log.error("dial-back to %s:%d failed: %r", client, port, exc)
                out.append(_failed(client, port, req, "internal error in the dial-back"))
            else:
                out.append(fut.result())
        return out

    async def _admit(self) -> Callable[[], None]:
        """Wait for one of the few "active" permits. Associations are CPU work under one GIL:
        fewer at once finish sooner (measured: p99 halves). A dial-back that is merely
        waiting (a filtered port) gives its permit back after `ACTIVE_HOLD_S`, so slow
        peers cannot starve the others; only `DialSlots` caps those."""
        await self._active.acquire()
        loop = asyncio.get_running_loop()
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._active.release()

        handle = loop.call_later(ACTIVE_HOLD_S, release)

        def now() -> None:
            handle.cancel()
            release()

        return now

    def _finished(
        self, loop: asyncio.AbstractEventLoop, release: Callable[[], None], _f: object
    ) -> None:
        """A dial-back thread ended (called in that thread)."""
        self.slots.release(1)
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            loop.call_soon_threadsafe(release)

    @staticmethod
    def _error_response(exc: p.RequestError) -> web.StreamResponse:
        resp = _json(exc.status, exc.body())
        if exc.retry_after is not None:
            resp.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        if exc.status == 401:
            resp.headers["WWW-Authenticate"] = 'Bearer realm="reverseprobe"'
        return resp

    @property
    def _errors(self) -> Any:
        from aiohttp import web

        @web.middleware
        async def errors(
            request: web.Request,
            handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        ) -> web.StreamResponse:
            try:
                return await handler(request)
            except p.RequestError as exc:
                if exc.status not in (401,):  # 401 is logged where it is decided
                    self._log_refusal(request.remote or "?", exc.status, exc.message)
                return self._error_response(exc)
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                code = _STATUS_CODES.get(exc.status, p.ErrorCode.BAD_REQUEST)
                resp = _json(exc.status, p.error_body(code, exc.reason))
                if "Allow" in exc.headers:
                    resp.headers["Allow"] = exc.headers["Allow"]
                return resp
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - one line in the log, never a traceback out
                self.log.error("internal error on %s %s: %r", request.method, request.path, exc)
                return _json(500, p.error_body(p.ErrorCode.INTERNAL, "internal error"))

        return errors

    def _log_probe(
        self, client: str, req: p.ProbeRequest, results: Sequence[EchoResult], elapsed: float
    ) -> None:
        if self.cfg.json_log:
            rec = {
                "event": "probe",
                "client": client,
                "called_aet": req.called_aet,
                "calling_aet": req.calling_aet,
                "results": [p.port_result(r) for r in results],
                "ignored": list(req.ignored),
                "elapsed_ms": round(elapsed * 1000, 1),
            }
            self.log.info("%s", json.dumps(rec, separators=(",", ":")))
            return
        parts = " ".join(
            f"{r.port}:{r.tcp.value}/{r.result.value}"
            + (f"({r.implementation_version_name})" if r.implementation_version_name else "")
            for r in results
        )
        self.log.info(
            "probe client=%s called=%r calling=%r %s elapsed_ms=%.0f%s",
            client,
            req.called_aet,
            req.calling_aet,
            parts,
            elapsed * 1000,
            f" ignored={','.join(req.ignored)}" if req.ignored else "",
        )

    def _log_refusal(self, client: str, status: int, why: str) -> None:
        if self.cfg.json_log:
            rec = {"event": "refused", "client": client, "status": status, "why": why}
            self.log.info("%s", json.dumps(rec, separators=(",", ":")))
        else:
            self.log.info("refused client=%s status=%d %s", client, status, why)


def _done(value: EchoResult) -> asyncio.Future[EchoResult]:
    fut: asyncio.Future[EchoResult] = asyncio.get_running_loop().create_future()
    fut.set_result(value)
    return fut


def _too_large() -> p.RequestError:
    return p.RequestError(413, p.ErrorCode.BODY_TOO_LARGE, f"the body exceeds {p.BODY_LIMIT} bytes")


def _json(status: int, body: dict[str, Any]) -> web.StreamResponse:
    from aiohttp import web

    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o) + "\n")


async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
    del request
    response.headers["Server"] = "reverseprobe-reflector"
    response.headers["Cache-Control"] = "no-store"


# --- running it ----------------------------------------------------------------------------
