"""Signing in and out of the web app.

The sign-in form is protected from cross-site posting by a double-submitted token: a random
value in a short-lived cookie that the form must repeat (there is no session to hold it yet).
"""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from models.db import transaction
from models.sign_in_sessions import SESSION_HOURS, end_session, start_session
from models.users import authenticate
from web.ratelimit import retry_after_header
from web.ui.signed_in import (
    CSRF_REFUSAL,
    SESSION_COOKIE,
    FormPoster,
    NotSignedIn,
    UiError,
    current_user,
    tokens_match,
)
from web.ui.templating import HOME, render
from worker.request_limits import SIGN_IN_LIMIT, LimitStoreUnavailable, take_sign_in_attempt

router = APIRouter(include_in_schema=False)
SIGN_IN_COOKIE = "segsync_sign_in"
# The sign-in form's token lives as long as someone may take to type a password.
SIGN_IN_COOKIE_SECONDS = 30 * 60


def safe_next(path: str | None) -> str:
    """`path` if it is a page of this site (never another host), else the home page."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return HOME
    parts = urlsplit(path)
    if parts.scheme or parts.netloc:
        return HOME
    return path


def _secure(request: Request) -> bool:
    # Behind a proxy, uvicorn takes the scheme from X-Forwarded-Proto (trusted from 127.0.0.1).
    return request.url.scheme == "https"


def _sign_in_page(
    request: Request, next_path: str, error: str | None, status: int, name: str = ""
) -> Response:
    token = request.cookies.get(SIGN_IN_COOKIE) or secrets.token_urlsafe(32)
    response = render(
        request,
        "sign_in.html",
        None,
        status_code=status,
        sign_in_token=token,
        next_path=safe_next(next_path),
        error=error,
        name=name,
    )
    response.set_cookie(
        SIGN_IN_COOKIE,
        token,
        max_age=SIGN_IN_COOKIE_SECONDS,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/sign-in",
    )
    return response


def _too_many_attempts(request: Request, name: str) -> str | None:
    """Why this attempt is refused before its password is checked, or None to check it."""
    try:
        wait = take_sign_in_attempt(request.app.state.database.settings, name)
    except LimitStoreUnavailable as error:
        raise UiError(503, f"sign-in is unavailable: {error}") from None
    if wait <= 0:
        return None
    attempts = SIGN_IN_LIMIT.calls
    return (
        f"too many sign-in attempts for {name.strip()!r} ({attempts} in "
        f"{SIGN_IN_LIMIT.per_seconds:g} s); try again in {retry_after_header(wait)} s"
    )


@router.get("/sign-in")
def sign_in_form(request: Request, next: str = HOME) -> Response:
    """The sign-in form (a signed-in user goes straight on)."""
    try:
        current_user(request)
    except NotSignedIn:
        return _sign_in_page(request, next, None, 200)
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/sign-in")
def sign_in(
    request: Request,
    name: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=2048)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = HOME,
) -> Response:
    """Check the name and password; on success start a session and go to `next`."""
    expected = request.cookies.get(SIGN_IN_COOKIE, "")
    if not expected or not tokens_match(csrf_token, expected):
        return _sign_in_page(request, next, CSRF_REFUSAL, 403)
    refusal = _too_many_attempts(request, name)
    if refusal is not None:
        return _sign_in_page(request, next, refusal, 429, name)
    with transaction(request.app.state.sessions) as session:
        user = authenticate(session, name, password)
        token = start_session(session, user) if user is not None else None
    if token is None:
        return _sign_in_page(request, next, "wrong name or password", 401, name)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_HOURS * 3600,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )
    response.delete_cookie(SIGN_IN_COOKIE, path="/sign-in")
    return response


@router.post("/sign-out")
def sign_out(request: Request, _who: FormPoster) -> Response:
    """End the session and go back to the sign-in form."""
    with transaction(request.app.state.sessions) as session:
        end_session(session, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
