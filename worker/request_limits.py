"""Requests per API key and sign-in attempts per user name for `segsync api`, counted on the
rate limiter the sync workers share.

Through Redis (Settings.shared_redis_url) every server process counts one key's requests
together; without Redis each process counts its own, so N processes allow N times the limit.
"""

from __future__ import annotations

import hashlib

from connectors.errors import RetryableError
from connectors.ratelimit import RateLimit, rate_limiter
from worker.settings import Settings

# Limiter keys of API keys start with this, apart from the vendor accounts' ones.
KEY_PREFIX = "api-key:"
# ... and those of sign-in attempts with this.
SIGN_IN_PREFIX = "sign-in:"
# Sign-in attempts per user name: plenty for typing mistakes, far too few to guess a password.
SIGN_IN_LIMIT = RateLimit(10, 300)


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
    return _take(settings, KEY_PREFIX + who, request_limit(settings))


def take_sign_in_attempt(settings: Settings, name: str) -> float:
    """Count one sign-in attempt for user `name`: 0, or the seconds until one is allowed."""
    digest = hashlib.sha256(name.strip().casefold().encode("utf-8", "surrogatepass")).hexdigest()
    return _take(settings, SIGN_IN_PREFIX + digest, SIGN_IN_LIMIT)


def _take(settings: Settings, key: str, limit: RateLimit) -> float:
    limiter = rate_limiter(settings.shared_redis_url())
    try:
        # A zero timeout never sleeps: a request over the limit is refused with the wait.
        limiter.acquire(key, limit, timeout=0)
    except RetryableError as error:
        if error.code == "RATE_LIMITED" and error.retry_after is not None:
            return error.retry_after
        raise LimitStoreUnavailable(str(error)) from None
    return 0.0
