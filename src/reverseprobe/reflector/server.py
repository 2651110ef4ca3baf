"""`reverseprobe reflector`: configuration, serving until a signal, and a background runner.

HTTP is served by aiohttp (`app.Reflector`): one asyncio loop holds any number of idle or
slow connections cheaply; idle ones, and ones that never finish their headers, are closed
after `KEEPALIVE_S` (slowloris). Bad input (a token file, a budget) is exit 2 with one line;
a port it cannot listen on is exit 1; SIGINT/SIGTERM stop it cleanly (exit 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from reverseprobe.config import MAX_TOKEN_BYTES as MAX_TOKEN_BYTES
from reverseprobe.config import ReflectorConfig
from reverseprobe.config.reflector import read_token as read_token
from reverseprobe.config.reflector import reflector_config
from reverseprobe.environment import Environment
from reverseprobe.exitcodes import CommandFailed
from reverseprobe.reflector import protocol as p
from reverseprobe.reflector.app import LOG, READ_BODY_S, Reflector
from reverseprobe.reflector.dialback import Dialer, dial_back

__all__ = ["BackgroundReflector", "Dialer", "Reflector", "dial_back", "reflector_config", "serve"]

KEEPALIVE_S = 15.0  # idle connections, and ones still sending headers, are closed after this


# --- the service ---------------------------------------------------------------------------


async def start(reflector: Reflector) -> tuple[Any, str, int]:
    """Bind and serve; returns (runner, host, port) of the first --listen address, with the
    port actually bound."""
    runner, bound = await start_all(reflector)
    return runner, bound[0][0], bound[0][1]


async def start_all(reflector: Reflector) -> tuple[Any, list[tuple[str, int]]]:
    """Bind every --listen address (one TCP site each, all on one runner) and serve; returns
    the runner and the (host, port) pairs actually bound, in --listen order. An IPv6 address
    is bound IPV6_V6ONLY (asyncio's default), so 0.0.0.0:P and [::]:P can be given together.
    Nothing stays bound when one address fails."""
    from aiohttp import web

    from reverseprobe.reflector.httpserver import Runner

    cfg = reflector.cfg
    runner = Runner(
        reflector.app(),
        on_error=reflector.on_http_error,
        access_log=None,
        keepalive_timeout=KEEPALIVE_S,
        max_line_size=4096,
        max_field_size=4096,
        auto_decompress=False,  # no gzip bombs: a compressed body is simply not JSON
        shutdown_timeout=2.0,
    )
    await runner.setup()
    bound: list[tuple[str, int]] = []
    try:
        for host, port in cfg.addresses:
            site = web.TCPSite(runner, host, port, backlog=512, reuse_address=True)
            try:
                await site.start()
            except OSError as exc:
                raise ListenError(host, port, exc) from None
            server = getattr(site, "_server", None)
            socks = list(getattr(server, "sockets", None) or ())
            bound.append((host, int(socks[0].getsockname()[1]) if socks else port))
    except BaseException:
        await runner.cleanup()
        raise
    return runner, bound


class ListenError(OSError):
    """One --listen address could not be bound: which one, and the OS's reason."""

    def __init__(self, host: str, port: int, exc: OSError) -> None:
        super().__init__(exc.errno, exc.strerror or str(exc))
        self.host, self.port = host, port


async def _serve(
    cfg: ReflectorConfig, log: logging.Logger, on_ready: Callable[[str, int], None]
) -> None:
    reflector = Reflector(cfg, log=log)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    runner, bound = await start_all(reflector)
    for host, port in bound:
        on_ready(host, port)
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        await runner.cleanup()
        reflector.close()


@contextlib.contextmanager
def _logger(stream: Any, json_log: bool) -> Iterator[logging.Logger]:
    """The service log on `stream` (one line per event) while serving; restored afterwards,
    so an in-process run (tests) leaves the logging setup as it found it."""
    log = logging.getLogger("reverseprobe.reflector")
    saved = (log.handlers[:], log.level, log.propagate)
    handler = logging.StreamHandler(stream)
    fmt = "%(message)s" if json_log else "%(asctime)s reflector %(message)s"
    handler.setFormatter(logging.Formatter(fmt))
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        yield log
    finally:
        log.handlers[:] = saved[0]
        log.setLevel(saved[1])  # not `log.level =`: setLevel also clears the level cache
        log.propagate = saved[2]


def serve(cfg: ReflectorConfig, env: Environment | None = None) -> None:
    """Run until SIGINT/SIGTERM, then return; CommandFailed (exit 1) when it cannot listen."""
    env = env or Environment()
    with _logger(env.stderr, cfg.json_log) as log:
        _run(cfg, log)


def _run(cfg: ReflectorConfig, log: logging.Logger) -> None:

    def ready(host: str, port: int) -> None:
        where = f"[{host}]" if ":" in host else host
        log.info(
            "listening on http://%s:%d allow-ports=%s rate=%g/min burst=%d max-concurrent=%d "
            "token=%s trust-proxy=%s",
            where,
            port,
            p.format_ranges(cfg.allow_ports),
            cfg.rate_per_minute,
            cfg.burst,
            cfg.max_concurrent,
            "yes" if cfg.token else "no",
            ",".join(str(n) for n in cfg.trust_proxy) or "none",
        )

    try:
        asyncio.run(_serve(cfg, log, ready))
    except ListenError as exc:
        where = f"[{exc.host}]" if ":" in exc.host else exc.host
        raise CommandFailed(f"cannot listen on {where}:{exc.port}: {exc.strerror}") from None
    except OSError as exc:
        raise CommandFailed(
            f"cannot listen on {cfg.host}:{cfg.port}: {exc.strerror or exc}"
        ) from None


class BackgroundReflector:
    """The service in a thread with its own loop (tests, benchmarks): `with ... as r: r.url`."""

    def __init__(
        self,
        cfg: ReflectorConfig,
        *,
        dialer: Dialer = dial_back,
        log: logging.Logger = LOG,
        clock: Callable[[], float] = time.monotonic,
        read_body_s: float = READ_BODY_S,
        **limits: Any,
    ) -> None:
        """`limits`: more `Reflector` keywords (overrun_s, max_stuck, summary_s, own)."""
        self.reflector = Reflector(
            cfg, dialer=dialer, log=log, clock=clock, read_body_s=read_body_s, **limits
        )
        self.port = 0
        self.bound: list[tuple[str, int]] = []  # every (host, port) bound, in --listen order
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="reflector", daemon=True)

    @property
    def url(self) -> str:
        host = self.reflector.cfg.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    @property
    def urls(self) -> list[str]:
        """One URL per bound --listen address."""
        return [f"http://{f'[{h}]' if ':' in h else h}:{p}" for h, p in self.bound]

    def __enter__(self) -> BackgroundReflector:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the reflector did not start within 10 s")
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self.reflector.close()

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            try:
                runner, self.bound = await start_all(self.reflector)
                self.port = self.bound[0][1]
            except BaseException as exc:  # noqa: BLE001 - handed to __enter__
                self._error = exc
                self._ready.set()
                return
            self._ready.set()
            try:
                await self._stop.wait()
            finally:
                await runner.cleanup()

        asyncio.run(main())
