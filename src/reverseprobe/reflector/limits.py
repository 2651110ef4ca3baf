"""The reflector's limits on work: a token bucket per source, a global cap on dial-backs.

A public service that opens connections on request must not become an amplifier. Each
source address gets a token bucket (rate per minute, burst); IPv6 sources count per /64,
since one host usually owns a whole /64. Memory is bounded: the least recently used buckets
are forgotten beyond `max_keys`. The cap on concurrent dial-backs answers "busy" at once
instead of queueing, so a flood cannot build an unbounded backlog.

Both are used from one asyncio event loop; the lock only makes them safe to call from
threads too (tests, benchmarks).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


def rate_key(address: str) -> str:
    """The bucket of a source: the address for IPv4, its /64 for IPv6."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Token buckets keyed by source: `burst` requests at once, then `per_minute` a minute."""

    def __init__(
        self,
        per_minute: float,
        burst: int,
        *,
        clock: Clock = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("rate and burst must be positive")
        self.rate = per_minute / 60.0  # tokens per second
        self.burst = float(burst)
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, cost: float = 1.0) -> float:
        """Spend `cost` tokens of `key`'s bucket. 0.0 when allowed; otherwise the seconds
        until it would be (nothing is spent then)."""
        now = self.clock()
        with self._lock:
            b = self._buckets.get(key)
            if b is None:
                b = _Bucket(self.burst, now)
                self._buckets[key] = b
                while len(self._buckets) > self.max_keys:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(key)
                b.tokens = min(self.burst, b.tokens + (now - b.stamp) * self.rate)
                b.stamp = now
            if b.tokens >= cost:
                b.tokens -= cost
                return 0.0
            return (cost - b.tokens) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)


class DialSlots:
    """A global cap on concurrent dial-backs; a request takes one slot per port or none."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._used = 0
        self._lock = threading.Lock()

    def try_acquire(self, n: int) -> bool:
        with self._lock:
            if self._used + n > self.capacity:
                return False
            self._used += n
            return True

    def release(self, n: int = 1) -> None:
        with self._lock:
            self._used = max(0, self._used - n)

    @property
    def in_use(self) -> int:
        return self._used


class PerSource:
    """At most `limit` probe requests in progress per source (IPv6: per /64), like libp2p
    AutoNAT's 2 concurrent dial-backs per peer: one source cannot hold the global slots."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def try_acquire(self, key: str) -> bool:
        with self._lock:
            n = self._held.get(key, 0)
            if n >= self.limit:
                return False
            self._held[key] = n + 1
            return True

    def release(self, key: str) -> None:
        with self._lock:
            n = self._held.get(key, 0) - 1
            if n > 0:
                self._held[key] = n
            else:
                self._held.pop(key, None)

    def __len__(self) -> int:
        return len(self._held)


class BoundedLog:
    """Lets through at most `burst` lines, then `per_second` a second; counts the rest so a
    periodic summary can say "N more refused". A flood of bad requests must not become a
    flood of log lines (disk, and the lines that matter scrolled away)."""

    def __init__(self, per_second: float, burst: int, *, clock: Clock = time.monotonic) -> None:
        self.rate = per_second
        self.burst = float(burst)
        self.clock = clock
        self._tokens = float(burst)
        self._stamp = clock()
        self._suppressed: dict[int, int] = {}
        self._since = self._stamp
        self._lock = threading.Lock()

    def allow(self, status: int) -> bool:
        """True: log this one. False: counted under `status` for the next summary."""
        now = self.clock()
        with self._lock:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            if not self._suppressed:
                self._since = now
            self._suppressed[status] = self._suppressed.get(status, 0) + 1
            return False

    def take_summary(self) -> tuple[dict[int, int], float] | None:
        """(suppressed count by status, seconds they span) since the last summary, or None."""
        now = self.clock()
        with self._lock:
            if not self._suppressed:
                return None
            out = dict(sorted(self._suppressed.items()))
            self._suppressed.clear()
            return out, now - self._since
