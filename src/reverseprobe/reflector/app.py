"""The reflector's routes and limits as an aiohttp application (docs/reference.md "reverseprobe
reflector"): GET /healthz, GET /v1/ip, POST /v1/probe.

The per-source token bucket is taken before anything else is done for a probe, then the
per-source cap on probes in progress. The dial-backs are blocking pynetdicom calls, so each
runs in a daemon thread behind a global cap (`limits.DialSlots`). A slot is given back at the
dial-back's deadline whatever the peer does: a thread still stuck then (a peer that announced
a huge PDU and holds the connection) is counted as stuck against a cap of its own, and
/healthz says "degraded" when they pile up. The dial-back goes to the address the request
came from and nowhere else (`targets.refusal`: never unspecified, loopback, multicast,
broadcast, link-local or its own); `X-Forwarded-For` counts only from `--trust-proxy`
networks. Every refusal is a 4xx with a JSON body, never a traceback; every probe is one log
line, refusals are logged at a bounded rate with a periodic "N more refused" summary, and what
a line quotes is escaped (or the line is JSON).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from reverseprobe.config import ReflectorConfig
from reverseprobe.reflector import answers as a
from reverseprobe.reflector import protocol as p
from reverseprobe.reflector.dialback import Dialer, dial_back
from reverseprobe.reflector.dialjobs import ACTIVE_DIALS, OVERRUN_S, DialBacks
from reverseprobe.reflector.limits import BoundedLog, DialSlots, PerSource, RateLimiter, rate_key
from reverseprobe.reflector.probelog import REFUSAL_LOG_BURST, REFUSAL_LOG_PER_S, SUMMARY_S
from reverseprobe.reflector.targets import OwnAddresses, refusal

if TYPE_CHECKING:
    from aiohttp import web

LOG = logging.getLogger("reverseprobe.reflector")
READ_BODY_S = 5.0  # to receive a request body once the headers are in
_STATUS_CODES = {
    400: p.ErrorCode.BAD_REQUEST,
    401: p.ErrorCode.UNAUTHORIZED,
    404: p.ErrorCode.NOT_FOUND,
    405: p.ErrorCode.METHOD_NOT_ALLOWED,
    408: p.ErrorCode.REQUEST_TIMEOUT,
    413: p.ErrorCode.BODY_TOO_LARGE,
    431: p.ErrorCode.BAD_REQUEST,
    415: p.ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    429: p.ErrorCode.RATE_LIMITED,
    503: p.ErrorCode.BUSY,
}


class Reflector(DialBacks):
    """The routes and their limits; `app()` builds the aiohttp application."""

    def __init__(  # noqa: PLR0913 - keyword-only injection points (dialer, clock, limits) for tests
        self,
        cfg: ReflectorConfig,
        *,
        dialer: Dialer = dial_back,
        log: logging.Logger = LOG,
        clock: Callable[[], float] = time.monotonic,
        read_body_s: float = READ_BODY_S,
        overrun_s: float = OVERRUN_S,
        max_stuck: int | None = None,
        summary_s: float = SUMMARY_S,
        own: OwnAddresses | None = None,
    ) -> None:
        self.cfg = cfg
        self.read_body_s = read_body_s
        self.overrun_s = overrun_s
        self.dialer = dialer
        self.log = log
        self.limiter = RateLimiter(cfg.rate_per_minute, cfg.burst, clock=clock)
        self.slots = DialSlots(cfg.max_concurrent)
        self.per_source = PerSource(cfg.max_per_source)
        self.max_stuck = max_stuck if max_stuck is not None else 4 * cfg.max_concurrent
        self.stuck = 0  # dial-back threads still running past their deadline
        self.refusals = BoundedLog(REFUSAL_LOG_PER_S, REFUSAL_LOG_BURST, clock=clock)
        self.summary_s = summary_s
        self.own = own or OwnAddresses()
        self._lock = threading.Lock()
        self._closed = False
        self._active = asyncio.Semaphore(ACTIVE_DIALS)
        self._token = hashlib.sha256(cfg.token.encode()).digest() if cfg.token else None

    def app(self) -> web.Application:
        from aiohttp import web

        app = web.Application(client_max_size=p.BODY_LIMIT, middlewares=[self._errors])
        app.router.add_get(p.PATH_HEALTH, self.healthz)
        app.router.add_get(p.PATH_IP, self.ip)
        app.router.add_post(p.PATH_PROBE, self.probe)
        app.on_response_prepare.append(_server_header)
        app.cleanup_ctx.append(self._summaries)
        return app

    def close(self) -> None:
        """Refuse new dial-backs; threads still running are daemons and end by themselves."""
        self._closed = True
        self.flush_refusals()

    # -- routes --

    async def healthz(self, request: web.Request) -> web.StreamResponse:
        """ok; "degraded" (200) when stuck dial-backs reach half their cap, 503 at the cap
        (every probe is refused then)."""
        del request
        stuck = self.stuck
        if stuck * 2 < self.max_stuck:
            return _json(200, {"status": "ok"})
        return _json(
            503 if stuck >= self.max_stuck else 200,
            {
                "status": "degraded",
                "stuck_dial_backs": stuck,
                "max_stuck": self.max_stuck,
                "dial_backs_in_progress": self.slots.in_use,
            },
        )

    async def ip(self, request: web.Request) -> web.StreamResponse:
        client = self._client(request)
        self._authorize(request, client)
        return _json(200, {"ip": client})

    async def probe(self, request: web.Request) -> web.StreamResponse:
        t0 = time.monotonic()
        client = self._client(request)
        key = rate_key(client)
        wait = self.limiter.take(key)
        if wait > 0:
            raise p.RequestError(
                429, p.ErrorCode.RATE_LIMITED, f"too many probes from {client}; retry later"
            ).with_retry(wait)
        self._authorize(request, client, charged=True)
        self._check_target(request, client)
        if not self.per_source.try_acquire(key):
            raise p.RequestError(
                429,
                p.ErrorCode.RATE_LIMITED,
                f"{self.cfg.max_per_source} probes from {client} are already in progress",
            ).with_retry(1.0)
        try:
            req = await self._read_request(request)
            self._take_slots(len(req.ports))
            results = await self._dial_all(client, req)
        finally:
            self.per_source.release(key)
        self._log_probe(client, req, results, time.monotonic() - t0)
        return _json(200, a.probe_answer(client, results, req.ignored))

    # -- helpers --

    async def _read_request(self, request: web.Request) -> p.ProbeRequest:
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
        return p.parse_probe_request(body, self.cfg.allow_ports)

    def _check_target(self, request: web.Request, client: str) -> None:
        """Never dial an address that is no single remote machine, or is this one."""
        sock = request.transport.get_extra_info("sockname") if request.transport else None
        own = [str(sock[0])] if sock else []
        why = refusal(client, self.own.get(), allow_loopback=self.cfg.allow_loopback, extra_own=own)
        if why is not None:
            raise p.RequestError(
                403, p.ErrorCode.ADDRESS_NOT_ALLOWED, f"will not dial {client}: {why}"
            )

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
                self._log_refusal(request.remote or "?", exc.status, exc.reason)
                resp = _json(exc.status, p.error_body(code, exc.reason))
                if "Allow" in exc.headers:
                    resp.headers["Allow"] = exc.headers["Allow"]
                return resp
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - one line in the log, never a traceback out
                self._emit(
                    "internal error on %s %s: %r",
                    request.method,
                    request.path,
                    exc,
                    level=logging.ERROR,
                )
                return _json(500, p.error_body(p.ErrorCode.INTERNAL, "internal error"))

        return errors


def _too_large() -> p.RequestError:
    return p.RequestError(413, p.ErrorCode.BODY_TOO_LARGE, f"the body exceeds {p.BODY_LIMIT} bytes")


def _json(status: int, body: dict[str, Any]) -> web.StreamResponse:
    from aiohttp import web

    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o) + "\n")


async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
    del request
    response.headers["Server"] = p.SERVER_HEADER
    response.headers["Cache-Control"] = "no-store"


# --- running it ----------------------------------------------------------------------------
