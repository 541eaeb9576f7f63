"""The per-key request limit of the API (SEGSYNC_API_RATE_LIMIT): 429 with Retry-After past it."""

from __future__ import annotations

import math

from fastapi import Request

from models.api_keys import ApiKey
from web.errors import ApiError
from worker.request_limits import LimitStoreUnavailable, take_request
from worker.settings import Settings


def retry_after_header(seconds: float) -> str:
    """Retry-After in whole seconds, rounded up and at least 1 (clients may not retry at 0)."""
    return str(max(1, math.ceil(seconds)))


def check_rate(request: Request, key: ApiKey) -> None:
    """Count one request of `key`; ApiError 429 (with Retry-After) when it is over the limit."""
    settings: Settings = request.app.state.database.settings
    try:
        # The digest names the key in Redis: unique across databases, and useless to a reader.
        wait = take_request(settings, key.digest)
    except LimitStoreUnavailable as error:
        raise ApiError(503, str(error)) from None
    if wait > 0:
        calls, seconds = settings.api_rate()
        retry_after = retry_after_header(wait)
        raise ApiError(
            429,
            f"API key {key.name!r} made {calls} requests in {seconds:g} s "
            f"(SEGSYNC_API_RATE_LIMIT); retry after {retry_after} s",
            headers={"Retry-After": retry_after},
        )
