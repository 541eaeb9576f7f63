"""Requests per API key for `segsync api`, counted on the rate limiter the sync workers share.

Through Redis (Settings.shared_redis_url) every server process counts one key's requests
together; without Redis each process counts its own, so N processes allow N times the limit.
"""

from __future__ import annotations

from connectors.errors import RetryableError
from connectors.ratelimit import RateLimit, rate_limiter
from worker.settings import Settings

# Limiter keys of API keys start with this, apart from the vendor accounts' ones.
KEY_PREFIX = "api-key:"


class LimitStoreUnavailable(Exception):
    """The Redis holding the shared limits does not answer (the message names no URL)."""


def request_limit(settings: Settings) -> RateLimit:
    """SEGSYNC_API_RATE_LIMIT as a RateLimit."""
    calls, seconds = settings.api_rate()
    return RateLimit(calls, seconds)


def take_request(settings: Settings, who: str) -> float:
    """Count one request of `who` and return 0, or the seconds until one fits (not counted).

    `who` names the caller in the limiter's store: a key's digest or id, never the key itself.
    """
    limiter = rate_limiter(settings.shared_redis_url())
    try:
        # A zero timeout never sleeps: a request over the limit is refused with the wait.
        limiter.acquire(KEY_PREFIX + who, request_limit(settings), timeout=0)
    except RetryableError as error:
        if error.code == "RATE_LIMITED" and error.retry_after is not None:
            return error.retry_after
        raise LimitStoreUnavailable(str(error)) from None
    return 0.0
