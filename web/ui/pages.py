"""The web app as one piece: its routes, static files, error pages and security headers."""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.sign_in_sessions import SignedIn
from web.ui import (
    account_details,
    orchestrations,
    published_segments,
    runs,
    segments,
    sign_in,
)
from web.ui.signed_in import NotSignedIn, UiError, current_user
from web.ui.templating import HOME, STATIC, render

_LOG = logging.getLogger(__name__)
# Paths that are not the web app's: the HTTP API, its document and the health checks.
_NOT_UI = ("/v1/", "/openapi.json", "/docs", "/healthz", "/readyz")
# The screens load nothing from elsewhere and run no inline script; no other site may frame them.
_UI_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; "
        "base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def is_ui_path(path: str) -> bool:
    """Whether `path` is a page of the web app (errors there are pages, not JSON)."""
    return not any(path == prefix.rstrip("/") or path.startswith(prefix) for prefix in _NOT_UI)


def error_page(request: Request, status: int, message: str) -> Response:
    """The page for an error on a web app path (the signed-in user's header if there is one)."""
    who: SignedIn | None
    try:
        who = current_user(request)
    # An error page must render even when the database is down or the session is gone.
    except Exception:
        who = None
    return render(request, "error.html", who, status_code=status, status=status, message=message)


async def _error_page_on_ui_paths(request: Request, status: int, message: str) -> Response | None:
    # web/errors.py asks this for every error: a page on the web app's paths, None elsewhere.
    if not is_ui_path(request.url.path):
        return None
    return await run_in_threadpool(error_page, request, status, message)


def _home() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def home() -> Response:
        return RedirectResponse(HOME, status_code=303)

    return router


class _UiHeaders:
    """Adds the web app's security headers to its answers (a plain ASGI middleware: the API's
    hot path pays one string test, where BaseHTTPMiddleware would cost every request a task)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not is_ui_path(path):
            await self.app(scope, receive, send)
            return
        extra = dict(_UI_HEADERS)
        if not path.startswith("/static/"):
            # Pages show account data: no shared cache may keep them.
            extra["Cache-Control"] = "no-store"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_web_app(app: FastAPI) -> None:
    """Add the screens, their static files and their error pages to `app`."""
    app.mount("/static", StaticFiles(directory=STATIC, packages=None), name="static")
    app.include_router(_home())
    app.include_router(sign_in.router)
    app.include_router(account_details.router)
    app.include_router(published_segments.router)
    app.include_router(orchestrations.router)
    app.include_router(runs.router)
    app.include_router(segments.router)
    app.add_middleware(_UiHeaders)
    app.state.html_error = _error_page_on_ui_paths

    @app.exception_handler(NotSignedIn)
    async def needs_sign_in(request: Request, _error: NotSignedIn) -> Response:
        if request.method != "GET":
            message = "you are not signed in (or your session ended): sign in and send it again"
            return await run_in_threadpool(error_page, request, 401, message)
        wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/sign-in?next={quote(wanted, safe='')}", status_code=303)

    @app.exception_handler(UiError)
    async def ui_error(request: Request, error: UiError) -> Response:
        return await run_in_threadpool(error_page, request, error.status, error.message)
