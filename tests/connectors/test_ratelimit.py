"""The shared API limits: Redis across processes (a real server), the in-process one across threads.

Each call or hold is timed by the test's own clock just before and just after the limiter answers,
so the limiter certainly counted it inside that interval. A window is proven over the limit only by
calls whose whole intervals fit in it: scheduling delays never fail a correct limiter, and without
a limiter every check here fails.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable
from multiprocessing.synchronize import Barrier as ProcessBarrier
from multiprocessing.synchronize import Event as ProcessEvent
from typing import Any

import pytest
import redis

from connectors import ratelimit
from connectors.errors import RetryableError
from connectors.ratelimit import (
    VENDOR_LIMITS,
    LocalRateLimiter,
    RateLimit,
    RateLimiter,
    RedisRateLimiter,
    VendorLimits,
    rate_limiter,
    vendor_limits,
)
from tests.services import free_port

RATE = RateLimit(10, 0.3)
MAX_CONCURRENT = 2
PARALLEL = 4
# 4 x 6 = 24 calls against 10 per 0.3 s: the last ones must wait for two windows to pass.
CALLS_EACH = 6
HOLDS_EACH = 3

Interval = tuple[float, float]
Barrier = threading.Barrier | ProcessBarrier
_spawn = multiprocessing.get_context("spawn")


def _calls_over_rate(calls: list[Interval], limit: RateLimit) -> list[Interval]:
    """The largest set of calls certainly made within one window of `limit`."""
    worst: list[Interval] = []
    for start, _ in calls:
        inside = [c for c in calls if c[0] >= start and c[1] < start + limit.per_seconds]
        worst = max(worst, inside, key=len)
    return worst


def _most_at_once(holds: list[Interval]) -> int:
    """The most holds certainly in progress at one same moment."""
    # At equal times an end (-1) sorts before a start (+1): touching holds do not overlap.
    events = sorted([(start, 1) for start, _ in holds] + [(end, -1) for _, end in holds])
    most = running = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def _make_calls(limiter: RateLimiter, key: str, barrier: Barrier) -> list[Interval]:
    barrier.wait()
    calls = []
    for _ in range(CALLS_EACH):
        before = time.monotonic()
        limiter.acquire(key, RATE, timeout=30)
        calls.append((before, time.monotonic()))
    return calls


def _hold_slots(limiter: RateLimiter, key: str, barrier: Barrier) -> list[Interval]:
    barrier.wait()
    holds = []
    for _ in range(HOLDS_EACH):
        with limiter.concurrent(key, MAX_CONCURRENT, lease=30, timeout=30):
            start = time.monotonic()
            time.sleep(0.05)
            holds.append((start, time.monotonic()))
    return holds


Work = Callable[[RateLimiter, str, Barrier], list[Interval]]


def _process_main(work: Work, url: str, key: str, barrier: ProcessBarrier, results: Any) -> None:
    results.put(work(RedisRateLimiter(url), key, barrier))


def _in_processes(work: Work, url: str, key: str) -> list[Interval]:
    # CLOCK_MONOTONIC is system-wide, so the processes' readings compare with each other.
    barrier, results = _spawn.Barrier(PARALLEL), _spawn.Queue()
    processes = [
        _spawn.Process(target=_process_main, args=(work, url, key, barrier, results))
        for _ in range(PARALLEL)
    ]
    for process in processes:
        process.start()
    try:
        return [interval for _ in processes for interval in results.get(timeout=60)]
    finally:
        for process in processes:
            process.join(timeout=10)


def _in_threads(work: Work, limiter: RateLimiter, key: str) -> list[Interval]:
    barrier = threading.Barrier(PARALLEL)
    found: list[list[Interval]] = []
    threads = [
        threading.Thread(target=lambda: found.append(work(limiter, key, barrier)))
        for _ in range(PARALLEL)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(found) == PARALLEL
    return [interval for intervals in found for interval in intervals]


def _hold_until_killed(url: str, key: str, held: ProcessEvent) -> None:
    with RedisRateLimiter(url).concurrent(key, 1, lease=0.5, timeout=5):
        held.set()
        time.sleep(60)


@pytest.fixture(params=["local", "redis"])
def limiter(request: pytest.FixtureRequest) -> RateLimiter:
    """Each kind of limiter: the in-process one and one on the test Redis."""
    if request.param == "local":
        return LocalRateLimiter()
    return RedisRateLimiter(request.getfixturevalue("redis_url"))


@pytest.fixture
def key() -> str:
    """A key no other test uses, so tests sharing one Redis never meet."""
    return f"test:{uuid.uuid4().hex}"


def _assert_rate_held(calls: list[Interval]) -> None:
    assert len(calls) == PARALLEL * CALLS_EACH
    assert len(_calls_over_rate(calls, RATE)) <= RATE.calls
    # 24 calls at 10 per window: the 21st came at least two windows after the first.
    assert max(end for _, end in calls) - min(start for start, _ in calls) >= 2 * RATE.per_seconds


def test_rate_limit_holds_across_processes(redis_url: str, key: str) -> None:
    _assert_rate_held(_in_processes(_make_calls, redis_url, key))


def test_rate_limit_holds_across_threads(limiter: RateLimiter, key: str) -> None:
    _assert_rate_held(_in_threads(_make_calls, limiter, key))


def test_concurrency_cap_holds_across_processes(redis_url: str, key: str) -> None:
    holds = _in_processes(_hold_slots, redis_url, key)
    assert len(holds) == PARALLEL * HOLDS_EACH
    assert _most_at_once(holds) <= MAX_CONCURRENT


def test_concurrency_cap_holds_across_threads(limiter: RateLimiter, key: str) -> None:
    holds = _in_threads(_hold_slots, limiter, key)
    assert len(holds) == PARALLEL * HOLDS_EACH
    assert _most_at_once(holds) <= MAX_CONCURRENT


def test_the_slot_of_a_killed_process_frees_when_its_lease_ends(redis_url: str, key: str) -> None:
    held = _spawn.Event()
    holder = _spawn.Process(target=_hold_until_killed, args=(redis_url, key, held))
    holder.start()
    try:
        assert held.wait(timeout=30)
        taken_by = time.monotonic()
        limiter = RedisRateLimiter(redis_url)
        with pytest.raises(RetryableError), limiter.concurrent(key, 1, lease=5, timeout=0):
            pass
    finally:
        holder.kill()  # SIGKILL: no finally block runs, nothing is released
        holder.join(timeout=10)
    with limiter.concurrent(key, 1, lease=5, timeout=5):
        waited = time.monotonic() - taken_by
    assert 0.3 < waited < 2.0


def test_an_expired_lease_frees_its_slot(limiter: RateLimiter, key: str) -> None:
    abandoned = limiter.concurrent(key, 1, lease=0.3, timeout=0)
    abandoned.__enter__()  # entered and never left, as by a thread that died holding it
    start = time.monotonic()
    with limiter.concurrent(key, 1, lease=5, timeout=5):
        assert 0.2 < time.monotonic() - start < 1.5


def test_a_released_slot_is_free_at_once(limiter: RateLimiter, key: str) -> None:
    for _ in range(3):
        with limiter.concurrent(key, 1, lease=30, timeout=0):
            pass


def test_no_rate_slot_within_the_timeout_is_retryable_at_once(
    limiter: RateLimiter, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = RateLimit(2, 30.0)
    limiter.acquire(key, limit, timeout=0)
    limiter.acquire(key, limit, timeout=0)
    slept: list[float] = []
    monkeypatch.setattr(ratelimit, "_sleep", slept.append)
    with pytest.raises(RetryableError, match="2 calls per 30 s") as raised:
        limiter.acquire(key, limit, timeout=1)
    assert slept == []  # the slot is 30 s away: no point sleeping first
    assert raised.value.retry_after is not None and 29 < raised.value.retry_after <= 30
    assert raised.value.code == "RATE_LIMITED"


def test_a_full_window_waits_for_its_oldest_call(limiter: RateLimiter, key: str) -> None:
    limit = RateLimit(2, 0.3)
    start = time.monotonic()
    for _ in range(3):
        limiter.acquire(key, limit, timeout=5)
    assert 0.28 < time.monotonic() - start < 1.0


def test_no_concurrency_slot_within_the_timeout_is_retryable(
    limiter: RateLimiter, key: str
) -> None:
    with limiter.concurrent(key, 1, lease=30, timeout=0):
        start = time.monotonic()
        with pytest.raises(RetryableError, match="1 concurrent") as raised:  # noqa: SIM117
            with limiter.concurrent(key, 1, lease=30, timeout=0.2):
                pass
        assert 0.2 <= time.monotonic() - start < 1.0
    assert raised.value.retry_after is not None and 0 < raised.value.retry_after <= 1
    assert raised.value.code == "CONCURRENCY_LIMITED"


def test_a_slot_takes_both_limits_and_gives_back_the_concurrency_one(
    limiter: RateLimiter, key: str
) -> None:
    limits = VendorLimits(rate=RateLimit(1, 30.0), max_concurrent=1)
    with limiter.slot(key, limits, timeout=0, lease=30):
        with pytest.raises(RetryableError) as busy, limiter.slot(key, limits, timeout=0, lease=30):
            pass
        assert busy.value.code == "CONCURRENCY_LIMITED"
    with pytest.raises(RetryableError) as spent, limiter.slot(key, limits, timeout=0, lease=30):
        pass
    assert spent.value.code == "RATE_LIMITED"
    # The refused call released the concurrency slot it had taken before failing on the rate.
    with limiter.concurrent(key, 1, lease=30, timeout=0):
        pass


def test_redis_keys_are_prefixed_and_expire(redis_url: str, key: str) -> None:
    limiter = RedisRateLimiter(redis_url)
    limiter.acquire(key, RateLimit(5, 10.0), timeout=0)
    with limiter.concurrent(key, 3, lease=20, timeout=0):
        client = redis.Redis.from_url(redis_url)
        assert 9_000 < client.pttl(f"segsync:ratelimit:{key}:rate") <= 10_000
        assert 19_000 < client.pttl(f"segsync:ratelimit:{key}:concurrency") <= 20_000
    assert client.zcard(f"segsync:ratelimit:{key}:concurrency") == 0


def test_an_unreachable_redis_is_a_retryable_error_without_the_url(key: str) -> None:
    url = f"redis://:secret-password@127.0.0.1:{free_port()}/0"
    with pytest.raises(RetryableError, match="rate limit store unavailable") as raised:
        RedisRateLimiter(url).acquire(key, RateLimit(1, 1.0), timeout=5)
    assert "secret" not in str(raised.value) and raised.value.code == "REDIS"


def test_the_factory_shares_one_limiter_per_process(redis_url: str) -> None:
    assert isinstance(rate_limiter(None), LocalRateLimiter)
    assert rate_limiter(None) is rate_limiter(None)
    assert isinstance(rate_limiter(redis_url), RedisRateLimiter)
    assert rate_limiter(redis_url) is rate_limiter(redis_url)


def test_vendor_defaults_and_tier_overrides() -> None:
    assert VENDOR_LIMITS["hubspot"] == VendorLimits(RateLimit(100, 10.0), None)
    assert VENDOR_LIMITS["marketo"] == VendorLimits(RateLimit(100, 20.0), 10)
    assert VENDOR_LIMITS["pardot"].max_concurrent == 5
    assert VENDOR_LIMITS["salesforce"] == VendorLimits(None, 25)
    professional = vendor_limits("hubspot", rate=RateLimit(190, 10.0))
    assert professional == VendorLimits(RateLimit(190, 10.0), None)
    assert vendor_limits("marketo", max_concurrent=4).rate == RateLimit(100, 20.0)
    with pytest.raises(ValueError, match="'dynamics'"):
        vendor_limits("dynamics")
    with pytest.raises(ValueError):
        RateLimit(0, 1.0)
    with pytest.raises(ValueError):
        RateLimit(1, 0.0)
