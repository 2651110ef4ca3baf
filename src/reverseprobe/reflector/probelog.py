"""The reflector's log: one line a probe (text or JSON), refusals at a bounded rate with a
periodic "N more refused" summary (limits.BoundedLog), and every quoted byte escaped so a
peer's text cannot forge a line. A mixin of app.Reflector, whose attributes it reads."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from reverseprobe.config import ReflectorConfig
from reverseprobe.dicom.echo import EchoResult
from reverseprobe.reflector import answers as a
from reverseprobe.reflector import protocol as p
from reverseprobe.reflector.limits import BoundedLog

if TYPE_CHECKING:
    from aiohttp import web

REFUSAL_LOG_PER_S = 5.0  # refusal lines a second at most, after a burst of REFUSAL_LOG_BURST
REFUSAL_LOG_BURST = 20
SUMMARY_S = 10.0  # how often the "N more refused" summary is written (when there is one)


class ProbeLog:
    """The log lines of a Reflector (its `cfg`, `log`, `refusals` and `summary_s`)."""

    cfg: ReflectorConfig
    log: logging.Logger
    refusals: BoundedLog
    summary_s: float

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
