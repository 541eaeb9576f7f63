"""API rate limits shared by every worker process (Redis), with an in-process fallback.

The sync worker waits here before each vendor call. Limits are counted per key, which the caller
chooses (one per vendor account, e.g. "hubspot:<portal id>"), so every orchestration and every
worker writing to one account share that account's budget. Daily quotas are not counted here: the
vendors report them (`Connector.quota`) and the worker defers the run in the database.
"""

from __future__ import annotations

import functools
import random
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import replace
from types import MappingProxyType

import redis
from redis.commands.core import Script

from connectors.errors import RetryableError
from connectors.systems import VENDORS
from connectors.systems import RateLimit as RateLimit
from connectors.systems import VendorLimits as VendorLimits

KEY_PREFIX = "segsync:ratelimit:"
# Longest sleep between two looks for a concurrency slot: holders normally release long before
# their lease runs out, so a waiter looks again often instead of sleeping until the lease ends.
_POLL_SECONDS = 0.05
# Spreads waiters that would otherwise all wake at the same instant and race for one slot.
_JITTER_SECONDS = 0.01
# A busy concurrency slot usually frees within seconds, whatever its lease: retry soon.
_CONCURRENCY_RETRY_AFTER = 1.0


# Each vendor's limits, with the documents they come from, live in its registry entry.
VENDOR_LIMITS: Mapping[str, VendorLimits] = MappingProxyType(
    {name: vendor.limits for name, vendor in VENDORS.items()}
)


def vendor_limits(
    system: str, *, rate: RateLimit | None = None, max_concurrent: int | None = None
) -> VendorLimits:
    """`system`'s default limits, with the account tier's own rate or concurrency cap if given."""
    try:
        limits = VENDOR_LIMITS[system]
    except KeyError:
        raise ValueError(f"no API limits known for system {system!r}") from None
    return replace(
        limits,
        rate=rate or limits.rate,
        max_concurrent=max_concurrent or limits.max_concurrent,
    )


def _sleep(seconds: float) -> None:
    time.sleep(seconds + random.uniform(0, _JITTER_SECONDS))


class RateLimiter(ABC):
    """Waits for room under a call rate and holds concurrency slots, per caller-chosen key."""

    def acquire(self, key: str, limit: RateLimit, *, timeout: float) -> None:
        """Block until one call under `limit` is allowed for `key`, else raise RetryableError."""
        deadline = time.monotonic() + timeout
        while True:
            wait = self._take(key, limit)
            if wait <= 0:
                return
            if wait > deadline - time.monotonic():
                # The next free slot is past the deadline: say when now rather than sleep first.
                raise RetryableError(
                    f"rate limit of {limit.calls} calls per {limit.per_seconds:g} s reached "
                    f"for {key}",
                    code="RATE_LIMITED",
                    retry_after=wait,
                )
            _sleep(wait)

    @contextmanager
    def concurrent(
        self, key: str, max_concurrent: int, *, lease: float, timeout: float
    ) -> Iterator[None]:
        """Hold one of `max_concurrent` slots of `key` for the block; it lapses after `lease` s.

        The lease frees the slot of a process killed while holding it; make it longer than the
        call's own request timeout, or a slow call may lose its slot to another.
        """
        if max_concurrent < 1 or not lease > 0:
            raise ValueError(f"invalid concurrency limit {max_concurrent} with lease {lease}")
        token = uuid.uuid4().hex
        deadline = time.monotonic() + timeout
        while (wait := self._hold(key, max_concurrent, lease, token)) > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RetryableError(
                    f"all {max_concurrent} concurrent call slots are busy for {key}",
                    code="CONCURRENCY_LIMITED",
                    retry_after=min(wait, _CONCURRENCY_RETRY_AFTER),
                )
            _sleep(min(wait, _POLL_SECONDS, remaining))
        try:
            yield
        finally:
            # Failing to release must not hide the call's own outcome: the lease frees it anyway.
            with suppress(RetryableError):
                self._release(key, token)

    @contextmanager
    def slot(
        self, key: str, limits: VendorLimits, *, timeout: float, lease: float
    ) -> Iterator[None]:
        """Wait for room under every limit in `limits`, then hold it for one vendor call."""
        deadline = time.monotonic() + timeout
        with ExitStack() as stack:
            # Concurrency first: waiting for the rate while holding a slot only lowers concurrency,
            # whereas a rate slot taken before a long wait would be wasted.
            if limits.max_concurrent is not None:
                stack.enter_context(
                    self.concurrent(key, limits.max_concurrent, lease=lease, timeout=timeout)
                )
            if limits.rate is not None:
                self.acquire(key, limits.rate, timeout=max(0.0, deadline - time.monotonic()))
            yield

    @abstractmethod
    def _take(self, key: str, limit: RateLimit) -> float:
        """Count one call and return 0 if `limit` allows it now, else the seconds to wait (> 0)."""

    @abstractmethod
    def _hold(self, key: str, max_concurrent: int, lease: float, token: str) -> float:
        """Take a slot for `token` and return 0, else the seconds until the first lease ends."""

    @abstractmethod
    def _release(self, key: str, token: str) -> None:
        """Give back `token`'s slot."""


# Both scripts read the clock with TIME on the server, so skew between worker hosts is harmless
# (Redis 5+ replicates scripts by effects, which allows writes after TIME). Times are in µs.
_TAKE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
return tonumber(oldest[2]) + window - now
"""

_HOLD_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(last[2]) - now) / 1000))
  return 0
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tonumber(first[2]) - now
"""


class RedisRateLimiter(RateLimiter):
    """Limits shared by every process using one Redis: each check is one atomic Lua script."""

    def __init__(self, redis_url: str) -> None:
        # Bounded socket waits: a stalled Redis becomes a RetryableError, not a hung worker.
        self._redis = redis.Redis.from_url(redis_url, socket_connect_timeout=5, socket_timeout=5)
        self._take_script = self._redis.register_script(_TAKE_SCRIPT)
        self._hold_script = self._redis.register_script(_HOLD_SCRIPT)

    def _take(self, key: str, limit: RateLimit) -> float:
        window = max(1, round(limit.per_seconds * 1_000_000))
        args: list[int | str] = [limit.calls, window, uuid.uuid4().hex]
        return self._run(self._take_script, f"{KEY_PREFIX}{key}:rate", args)

    def _hold(self, key: str, max_concurrent: int, lease: float, token: str) -> float:
        args: list[int | str] = [max_concurrent, max(1, round(lease * 1_000_000)), token]
        return self._run(self._hold_script, f"{KEY_PREFIX}{key}:concurrency", args)

    def _release(self, key: str, token: str) -> None:
        try:
            self._redis.zrem(f"{KEY_PREFIX}{key}:concurrency", token)
        except redis.RedisError as exc:
            raise _unavailable(exc) from None

    @staticmethod
    def _run(script: Script, key: str, args: list[int | str]) -> float:
        try:
            micros = int(script(keys=[key], args=args))
        except redis.RedisError as exc:
            raise _unavailable(exc) from None
        return micros / 1_000_000


def _unavailable(exc: redis.RedisError) -> RetryableError:
    # Only the error's class: a Redis message may quote the URL, and that may hold a password.
    return RetryableError(f"rate limit store unavailable ({type(exc).__name__})", code="REDIS")


class LocalRateLimiter(RateLimiter):
    """The same limits for the threads of one process, when no Redis is configured."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, deque[float]] = {}
        self._leases: dict[str, dict[str, float]] = {}

    def _take(self, key: str, limit: RateLimit) -> float:
        with self._lock:
            # Read the clock under the lock so each key's calls stay in time order.
            now = time.monotonic()
            calls = self._calls.setdefault(key, deque())
            while calls and calls[0] <= now - limit.per_seconds:
                calls.popleft()
            if len(calls) < limit.calls:
                calls.append(now)
                return 0.0
            return max(calls[len(calls) - limit.calls] + limit.per_seconds - now, 1e-6)

    def _hold(self, key: str, max_concurrent: int, lease: float, token: str) -> float:
        with self._lock:
            now = time.monotonic()
            leases = self._leases.setdefault(key, {})
            for holder, expiry in list(leases.items()):
                if expiry <= now:
                    del leases[holder]
            if len(leases) < max_concurrent:
                leases[token] = now + lease
                return 0.0
            return max(min(leases.values()) - now, 1e-6)

    def _release(self, key: str, token: str) -> None:
        with self._lock:
            self._leases.get(key, {}).pop(token, None)


@functools.cache
def rate_limiter(redis_url: str | None) -> RateLimiter:
    """The process's shared limiter: through Redis when `redis_url` is given, else in-process."""
    return RedisRateLimiter(redis_url) if redis_url else LocalRateLimiter()
