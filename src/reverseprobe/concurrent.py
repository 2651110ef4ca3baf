"""The one thread helper: start a blocking call, wait for it with a timeout, gather many.

Threads cannot be killed, so every call run here must carry its own socket or subprocess
timeouts; what this module guarantees is that the *caller* never waits past its deadline. A
call still running then is abandoned (a daemon thread) and reported as not finished.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

from reverseprobe.deadline import Deadline

T = TypeVar("T")


class CallTimeout(TimeoutError):
    """A call did not finish within its timeout; `what` names it for the report."""

    def __init__(self, what: str, timeout: float) -> None:
        super().__init__(f"{what}: no answer within {timeout:.1f} s")
        self.what = what
        self.timeout = timeout


class Call(Generic[T]):
    """A call running in a daemon thread: its value, its exception, or not finished yet."""

    def __init__(
        self,
        fn: Callable[[], T],
        *,
        name: str,
        done: threading.Condition | None = None,
        autostart: bool = True,
    ):
        self._fn = fn
        self._cancelled = False
        self._event = threading.Event()
        self._cond = done
        self._value: T | None = None
        self._error: BaseException | None = None
        self.name = name
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        if autostart:
            self._thread.start()

    def begin(self) -> None:
        """Start a call made with autostart=False: the caller holds the Call before its thread
        runs, so a Ctrl-C that lands while it starts can still interrupt it."""
        self._thread.start()

    def _run(self) -> None:
        try:
            if self._cancelled:  # interrupted before the thread ran
                raise KeyboardInterrupt
            self._value = self._fn()
        except BaseException as exc:  # noqa: BLE001 - handed to whoever collects the call
            self._error = exc
        finally:
            self._event.set()
            if self._cond is not None:
                with self._cond:
                    self._cond.notify_all()

    @property
    def done(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        """True when the call ended within `timeout` (an Event wait: Ctrl-C still lands)."""
        return self._event.wait(max(0.0, timeout))

    def outcome(self) -> T | BaseException | None:
        """The value or the exception; None while it still runs."""
        if not self.done:
            return None
        return self._error if self._error is not None else self._value

    def interrupt(self, wait: float) -> bool:
        """Raise KeyboardInterrupt inside the call (Ctrl-C reaches the main thread only), so
        that its own `finally` blocks release what it holds; True if it ended within `wait`."""
        import ctypes

        self._cancelled = True
        ident = self._thread.ident
        if ident is not None and not self.done:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(ident), ctypes.py_object(KeyboardInterrupt)
            )
        if ident is None:  # never started: nothing runs, nothing to clean up
            return True
        return self.wait(wait)

    def result(self, timeout: float) -> T:
        """The value within `timeout`; the call's own exception; or CallTimeout."""
        if not self.wait(timeout):
            raise CallTimeout(self.name, timeout)
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


def start(fn: Callable[[], T], *, name: str) -> Call[T]:
    """Start `fn` now; collect it later with `Call.result` or `Call.outcome`."""
    return Call(fn, name=name)


def call_with_timeout(fn: Callable[[], T], timeout: float, *, name: str) -> T:
    """`fn()` within `timeout`, its exception, or CallTimeout (for calls without a timeout of
    their own, e.g. getaddrinfo or a library that keeps reading)."""
    return Call(fn, name=name).result(timeout)


def gather(
    calls: Mapping[str, Callable[[], T]],
    deadline: Deadline,
    *,
    name: str = "call",
    on_done: Callable[[str, T | BaseException], None] | None = None,
) -> dict[str, T | BaseException]:
    """Run every call concurrently; by the deadline, each name's value or exception. A name
    missing from the answer did not finish in time."""
    cond = threading.Condition()
    reported: set[str] = set()
    started = {key: Call(fn, name=f"{name}-{key}", done=cond) for key, fn in calls.items()}

    def report_new() -> None:
        if on_done is None:
            return
        for key, call in started.items():
            if key not in reported and call.done:
                reported.add(key)
                on_done(key, call.outcome())  # type: ignore[arg-type]

    while True:
        with cond:
            if all(c.done for c in started.values()) or deadline.expired:
                break
            cond.wait(deadline.remaining())
        report_new()
    report_new()
    return {key: c.outcome() for key, c in started.items() if c.done}  # type: ignore[misc]
