"""Who is asking: the API key of a request (`Authorization: Bearer KEY`) and what it may do."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from models.api_keys import ApiKey, find_key
from web.errors import ApiError
from web.ratelimit import check_rate

# auto_error=False: a missing key is answered in the API's own error shape, not FastAPI's.
_BEARER = HTTPBearer(auto_error=False, description="An API key from `segsync apikeys create`.")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="segsync"'}


def _sessions(request: Request) -> Callable[[], Session]:
    sessions: Callable[[], Session] = request.app.state.sessions
    return sessions


def api_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
) -> ApiKey:
    """The live key the request carries; 401 when there is none or it is unknown or revoked."""
    if credentials is None:
        raise ApiError(401, "missing API key: send `Authorization: Bearer KEY`", headers=_CHALLENGE)
    with _sessions(request)() as session:
        key = find_key(session, credentials.credentials)
        if key is None:
            raise ApiError(401, "unknown or revoked API key", headers=_CHALLENGE)
        session.expunge(key)
    # After authentication: only a known key has a budget, and a 401 costs none.
    check_rate(request, key)
    return key


def requires(scope: str) -> Callable[..., Awaitable[ApiKey]]:
    """A dependency: the request's key, which must allow `scope` (403 naming both otherwise)."""

    # async: no database or I/O here, so no hop to the thread pool (FastAPI runs a plain def
    # dependency there, which costs every request a thread switch).
    async def allowed(key: Annotated[ApiKey, Depends(api_key)]) -> ApiKey:
        if not key.allows(scope):
            raise ApiError(
                403, f"API key {key.name!r} has scope {key.scope}; this needs scope {scope}"
            )
        return key

    return allowed


# The request's key, checked for each scope: a route names the one it needs.
ReadKey = Annotated[ApiKey, Depends(requires("read"))]
PublishKey = Annotated[ApiKey, Depends(requires("publish"))]
TriggerKey = Annotated[ApiKey, Depends(requires("trigger"))]
