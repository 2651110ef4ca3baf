"""The reflector's dial-backs: one daemon thread per port behind the global cap
(limits.DialSlots) and a few "active" permits; a slot comes back at the dial-back's deadline
whatever the peer does, and a thread still running then counts as stuck. A mixin of
app.Reflector, whose attributes it reads."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from reverseprobe.dicom.echo import DicomResult, EchoResult
from reverseprobe.dicom.tcp import TcpState
from reverseprobe.reflector import protocol as p
from reverseprobe.reflector.dialback import Dialer
from reverseprobe.reflector.limits import DialSlots
from reverseprobe.reflector.probelog import ProbeLog

OVERRUN_S = 2.0  # beyond a dial-back's budget before its result is given up for lost
ACTIVE_DIALS = max(4, 4 * (os.cpu_count() or 1))  # associations set up at once (see _admit)
ACTIVE_HOLD_S = 0.25


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


class _Job:
    """One dial-back thread: "running", then "done" (its slot given back by the thread) or
    "abandoned" (its slot given back at the deadline; the thread counts as stuck until it
    ends)."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = "running"


class DialBacks(ProbeLog):
    """The dial-back jobs of a Reflector (its limits, dialer and stuck count)."""

    dialer: Dialer
    slots: DialSlots
    max_stuck: int
    stuck: int
    overrun_s: float
    _lock: threading.Lock
    _closed: bool
    _active: asyncio.Semaphore

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
