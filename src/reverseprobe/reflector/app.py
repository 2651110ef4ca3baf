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
import contextlib
import hashlib
import hmac
import json
import logging
import math
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from reverseprobe.config import ReflectorConfig
from reverseprobe.dicom.echo import DicomResult, EchoResult
from reverseprobe.dicom.tcp import TcpState
from reverseprobe.reflector import answers as a
from reverseprobe.reflector import protocol as p
from reverseprobe.reflector.dialback import Dialer, dial_back
from reverseprobe.reflector.limits import BoundedLog, DialSlots, PerSource, RateLimiter, rate_key
from reverseprobe.reflector.targets import OwnAddresses, refusal

if TYPE_CHECKING:
    from aiohttp import web

LOG = logging.getLogger("reverseprobe.reflector")
READ_BODY_S = 5.0  # to receive a request body once the headers are in
OVERRUN_S = 2.0  # beyond a dial-back's budget before its result is given up for lost
ACTIVE_DIALS = max(4, 4 * (os.cpu_count() or 1))  # associations set up at once (see _admit)
ACTIVE_HOLD_S = 0.25
REFUSAL_LOG_PER_S = 5.0  # refusal lines a second at most, after a burst of REFUSAL_LOG_BURST
REFUSAL_LOG_BURST = 20
SUMMARY_S = 10.0  # how often the "N more refused" summary is written (when there is one)
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


class _Job:
    """One dial-back thread: "running", then "done" (its slot given back by the thread) or
    "abandoned" (its slot given back at the deadline; the thread counts as stuck until it
    ends)."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = "running"


class Reflector:
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

    def _take_slots(self, n: int) -> None:
        if self._closed:
            raise p.RequestError(503, p.ErrorCode.BUSY, "the reflector is stopping")
        if self.stuck >= self.max_stuck:
            raise p.RequestError(
                503, p.ErrorCode.BUSY, "too many dial-backs are stuck; retry later"
            ).with_retry(self.cfg.timeout + self.overrun_s)
        if not self.slots.try_acquire(n):
            raise p.RequestError(
                503, p.ErrorCode.BUSY, "too many dial-backs in progress; retry shortly"
            ).with_retry(1.0)

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

    async def _dial_all(self, client: str, req: p.ProbeRequest) -> list[EchoResult]:
        """Dial every port at once, one thread each. A thread gives its slot back when it
        ends; at the deadline (budget + overrun) whatever still runs gives it back anyway
        and is counted as stuck, so a peer that never lets go cannot hold a slot."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        budget = min(self.cfg.timeout, req.timeout or self.cfg.timeout)
        futures: list[asyncio.Future[EchoResult]] = []
        jobs: list[_Job] = []
        try:
            for port in req.ports:
                release = await self._admit()
                left = max(0.2, budget - (loop.time() - t0))
                job = _Job()
                jobs.append(job)
                futures.append(
                    self._start(loop, job, release, client=client, port=port, req=req, left=left)
                )
            await asyncio.wait(
                futures, timeout=max(0.0, budget + self.overrun_s - (loop.time() - t0))
            )
        finally:
            for job in jobs:
                self._abandon(job)
        out: list[EchoResult] = []
        for port, fut in zip(req.ports, futures, strict=True):
            if not fut.done():
                fut.cancel()
                out.append(_failed(client, port, req, "the dial-back overran its budget"))
            elif fut.exception() is not None:
                exc = fut.exception()
                self._emit("dial-back to %s:%d failed: %r", client, port, exc, level=logging.ERROR)
                out.append(_failed(client, port, req, "internal error in the dial-back"))
            else:
                out.append(fut.result())
        return out

    def _start(  # noqa: PLR0913 - keyword-only fields of one dial-back job
        self,
        loop: asyncio.AbstractEventLoop,
        job: _Job,
        release: Callable[[], None],
        *,
        client: str,
        port: int,
        req: p.ProbeRequest,
        left: float,
    ) -> asyncio.Future[EchoResult]:
        """The dial-back in a daemon thread (a stuck one must not keep the process from
        exiting, as a thread pool's would at interpreter exit)."""
        fut: asyncio.Future[EchoResult] = loop.create_future()

        def run() -> None:
            try:
                # "tls": true (issue 15): the same address and port, over TLS; a dialer
                # without TLS (tests, benchmarks) is called as before
                tls: dict[str, Any] = (
                    {"tls": True, "server_name": req.tls_server_name} if req.tls else {}
                )
                res: EchoResult | None = self.dialer(
                    client,
                    port,
                    called_aet=req.called_aet,
                    calling_aet=req.calling_aet,
                    connect_timeout=min(self.cfg.connect_timeout, left),
                    budget=left,
                    **tls,
                )
                err: BaseException | None = None
            except BaseException as exc:  # noqa: BLE001 - handed to the request, logged there
                res, err = None, exc
            self._ended(job)
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(_settle, fut, res, err, release)

        try:
            threading.Thread(target=run, name=f"dial-back-{port}", daemon=True).start()
        except RuntimeError:  # cannot start a thread (resources exhausted)
            self._ended(job)
            release()
            fut.set_result(_failed(client, port, req, "the reflector could not start a dial-back"))
        return fut

    def _ended(self, job: _Job) -> None:
        """A dial-back thread ended (called in that thread)."""
        with self._lock:
            if job.state == "running":
                job.state = "done"
                self.slots.release(1)
            elif job.state == "abandoned":
                job.state = "done"
                self.stuck -= 1

    def _abandon(self, job: _Job) -> None:
        """The deadline: give the slot back now; a thread still running counts as stuck."""
        with self._lock:
            if job.state != "running":
                return
            job.state = "abandoned"
            self.slots.release(1)
            self.stuck += 1
            stuck = self.stuck
        self._emit("dial-back overran its deadline; %d stuck now", stuck, level=logging.WARNING)

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

    # -- the log --

    def _emit(self, fmt: str, *args: object, level: int = logging.INFO) -> None:
        """One line, whatever it quotes: control characters escaped (a "\\n" in a body key
        or a peer's implementation version name cannot forge a line)."""
        try:
            text = fmt % args
        except (TypeError, ValueError):
            text = fmt
        self.log.log(level, "%s", escape(text))

    def _emit_json(self, rec: dict[str, Any]) -> None:
        self.log.info("%s", json.dumps(rec, separators=(",", ":")))  # ensure_ascii: one line

    def _log_probe(
        self, client: str, req: p.ProbeRequest, results: Sequence[EchoResult], elapsed: float
    ) -> None:
        if self.cfg.json_log:
            self._emit_json(
                {
                    "event": "probe",
                    "client": client,
                    "called_aet": req.called_aet,
                    "calling_aet": req.calling_aet,
                    "results": [_loggable(a.port_result(r)) for r in results],
                    "ignored": list(req.ignored),
                    **({"tls": True, "tls_server_name": req.tls_server_name} if req.tls else {}),
                    "elapsed_ms": round(elapsed * 1000, 1),
                }
            )
            return
        parts = " ".join(
            f"{r.port}:{r.tcp.value}/{r.result.value}"
            + (f"({r.implementation_version_name!r})" if r.implementation_version_name else "")
            + (f"+tls:{r.tls.problem or 'ok'}" if r.tls is not None else "")
            for r in results
        )
        self._emit(
            "probe client=%s called=%r calling=%r %s elapsed_ms=%.0f%s",
            client,
            req.called_aet,
            req.calling_aet,
            parts,
            elapsed * 1000,
            f" ignored={','.join(repr(k)[1:-1] for k in req.ignored)}" if req.ignored else "",
        )

    def _log_refusal(self, client: str, status: int, why: str) -> None:
        """At a bounded rate; the rest is counted for the next summary line."""
        if not self.refusals.allow(status):
            return
        if self.cfg.json_log:
            self._emit_json({"event": "refused", "client": client, "status": status, "why": why})
        else:
            self._emit("refused client=%s status=%d %s", client, status, why)

    def on_http_error(self, peer: str | None, status: int, why: str) -> None:
        """aiohttp's parser refused a request (see `httpserver`)."""
        self._log_refusal(peer or "?", status, why)

    def flush_refusals(self) -> None:
        """Write the "N more refused" summary, if any were left out."""
        summary = self.refusals.take_summary()
        if summary is None:
            return
        by_status, seconds = summary
        total = sum(by_status.values())
        if self.cfg.json_log:
            self._emit_json(
                {
                    "event": "refused-summary",
                    "count": total,
                    "by_status": {str(k): v for k, v in by_status.items()},
                    "seconds": round(seconds, 1),
                }
            )
        else:
            self._emit(
                "refused %d more in the last %.0f s (not logged one by one): %s",
                total,
                max(1.0, seconds),
                " ".join(f"status={k}:{v}" for k, v in by_status.items()),
            )

    async def _summaries(self, app: web.Application) -> AsyncIterator[None]:
        """While serving: the refusal summary every `summary_s`; the last one at shutdown."""
        del app

        async def tick() -> None:
            while True:
                await asyncio.sleep(self.summary_s)
                self.flush_refusals()

        task = asyncio.create_task(tick())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.flush_refusals()


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_CONTROL.update({0x2028: "\\u2028", 0x2029: "\\u2029", ord("\\"): "\\\\"})


def _loggable(result: dict[str, Any]) -> dict[str, Any]:
    """A result for the JSON log: the receiver's certificate is described, not copied."""
    tls = result.get("tls")
    if isinstance(tls, dict) and tls.get("certificate_pem"):
        return {**result, "tls": {**tls, "certificate_pem": "(sent to the client)"}}
    return result


def escape(text: str) -> str:
    """Control characters (C0, DEL, C1, line separators) and backslashes as escapes."""
    return text.translate(_CONTROL)


def _settle(
    fut: asyncio.Future[EchoResult],
    res: EchoResult | None,
    err: BaseException | None,
    release: Callable[[], None],
) -> None:
    release()
    if fut.done():  # given up at the deadline
        return
    if err is not None:
        fut.set_exception(err)
    elif res is not None:
        fut.set_result(res)


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
