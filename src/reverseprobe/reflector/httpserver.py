"""aiohttp's own errors as the contract's JSON errors (SPEC.md: bad requests get a 4xx with a
JSON error, never a traceback).

A request aiohttp's parser refuses (a header holding a control character, a bad request line,
a header over `max_field_size`; RFC 9112 2.2, 5) never reaches the application, so neither its
middleware nor `on_response_prepare` sees it: `RequestHandler.handle_error` answers it with
text/plain echoing the request bytes, `Server: Python/3.x aiohttp/3.x`, and logs a traceback.
`_Handler` overrides `handle_error` and `log_exception`: a JSON error, our Server header, and
one (rate-limited) log line through `on_error`. `Runner` is an `AppRunner` whose server makes
`_Handler`s.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from reverseprobe.reflector import protocol as p

OnError = Callable[[str | None, int, str], None]  # (peer, status, why)

_WHY = {
    "BadHttpMethod": "not an HTTP request",
    "BadStatusLine": "a malformed request line",
    "InvalidHeader": "a malformed header",
    "LineTooLong": "a request line or header is too long",
    "InvalidURLError": "a malformed request target",
    "BadHttpMessage": "a malformed HTTP message",
    "TransferEncodingError": "a malformed Transfer-Encoding",
    "ContentLengthError": "a malformed Content-Length",
    "ContentEncodingError": "a malformed Content-Encoding",
}


def why(exc: BaseException | None, status: int) -> str:
    """A fixed phrase for a parser error: the request bytes are never echoed or logged."""
    if exc is None:
        return "the request could not be handled" if status >= 500 else "a malformed request"
    for cls in type(exc).__mro__:
        if cls.__name__ in _WHY:
            return _WHY[cls.__name__]
    return "a malformed HTTP request" if status < 500 else "internal error"


def json_error(status: int, code: p.ErrorCode, message: str) -> web.Response:
    resp = web.Response(
        status=status,
        text=json.dumps(p.error_body(code, message)) + "\n",
        content_type="application/json",
    )
    resp.headers["Server"] = p.SERVER_HEADER
    resp.headers["Cache-Control"] = "no-store"
    return resp


class _Handler(RequestHandler):
    on_error: OnError

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp's low-level error answer (parser errors, 500/504 from outside the app)."""
        del message  # it quotes the request bytes
        text = why(exc, status)
        self.on_error(request.remote, status, text)
        if request.writer.output_size > 0:  # as aiohttp does: a response is half sent
            raise ConnectionError("response already sent, cannot send an error")
        if status >= 500:
            resp = json_error(status, p.ErrorCode.INTERNAL, "internal error")
        elif status == 413:
            resp = json_error(status, p.ErrorCode.BODY_TOO_LARGE, text)
        else:
            resp = json_error(status, p.ErrorCode.BAD_REQUEST, text)
        resp.force_close()
        return resp

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """One line, no traceback (aiohttp's "Unhandled exception" paths)."""
        exc = kw.get("exc_info")
        msg = str(args[0]) % args[1:] if args else "error"
        self.on_error(None, 500, f"{msg}: {type(exc).__name__ if exc else 'error'}")


class _Server(web.Server):
    def __init__(self, handler: Any, *, on_error: OnError, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._on_error = on_error
        self._handler_kwargs = {
            k: v
            for k, v in kwargs.items()
            if k not in ("request_factory", "handler_cancellation", "loop")
        }

    def __call__(self) -> RequestHandler:
        h = _Handler(self, loop=self._loop, **self._handler_kwargs)
        h.on_error = self._on_error
        return h


class Runner(web.AppRunner):
    """`web.AppRunner` whose connections are `_Handler`s; `handler_kwargs` go to each."""

    def __init__(
        self,
        app: web.Application,
        *,
        on_error: OnError,
        shutdown_timeout: float,
        **handler_kwargs: Any,
    ) -> None:
        super().__init__(app, shutdown_timeout=shutdown_timeout, **handler_kwargs)
        self._on_error = on_error
        self._handler_kw = handler_kwargs

    async def _make_server(self) -> web.Server:
        inner = await super()._make_server()  # the app's startup, as AppRunner does it
        return _Server(
            inner.request_handler,
            request_factory=inner.request_factory,
            handler_cancellation=inner.handler_cancellation,
            on_error=self._on_error,
            **self._handler_kw,
        )
