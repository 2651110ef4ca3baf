"""Token bucket per source and the global cap on dial-backs."""

from __future__ import annotations

import threading

import pytest

from reverseprobe.reflector.limits import DialSlots, RateLimiter, rate_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refused_then_refilled() -> None:
    clock = Clock()
    rl = RateLimiter(12, 4, clock=clock)  # one token every 5 s
    assert [rl.take("a") for _ in range(4)] == [0.0] * 4
    wait = rl.take("a")
    assert wait == pytest.approx(5.0)
    clock.now += 4.9
    assert rl.take("a") > 0  # a refused attempt spends nothing
    clock.now += 0.2
    assert rl.take("a") == 0.0
    assert rl.take("a") > 0


def test_sources_have_their_own_buckets() -> None:
    rl = RateLimiter(1, 1, clock=Clock())
    assert rl.take("a") == 0.0
    assert rl.take("a") > 0
    assert rl.take("b") == 0.0


def test_refill_never_exceeds_the_burst() -> None:
    clock = Clock()
    rl = RateLimiter(60, 2, clock=clock)
    rl.take("a")
    clock.now += 3600
    assert [rl.take("a") == 0.0 for _ in range(3)] == [True, True, False]


def test_memory_is_bounded() -> None:
    rl = RateLimiter(1, 1, clock=Clock(), max_keys=100)
    for i in range(1000):
        rl.take(f"10.0.{i // 256}.{i % 256}")
    assert len(rl) == 100


def test_ipv6_sources_count_per_64() -> None:
    assert rate_key("2001:db8:1:2:aaaa::1") == rate_key("2001:db8:1:2:bbbb::2")
    assert rate_key("2001:db8:1:2::1") != rate_key("2001:db8:1:3::1")
    assert rate_key("198.51.100.7") == "198.51.100.7"


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0, 1)
    with pytest.raises(ValueError):
        DialSlots(0)


def test_slots_all_or_nothing() -> None:
    s = DialSlots(4)
    assert s.try_acquire(3)
    assert not s.try_acquire(2)  # would exceed: nothing taken
    assert s.in_use == 3
    assert s.try_acquire(1)
    s.release(4)
    assert s.in_use == 0
    s.release(1)
    assert s.in_use == 0


def test_slots_hold_under_threads() -> None:
    s = DialSlots(10)
    got: list[bool] = []
    lock = threading.Lock()

    def grab() -> None:
        ok = s.try_acquire(1)
        with lock:
            got.append(ok)

    threads = [threading.Thread(target=grab) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got.count(True) == 10 and s.in_use == 10
