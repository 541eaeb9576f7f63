"""Every error the API answers, in one shape: `{"error": {"code": ..., "message": ...}}`.

The message is the same one line the command line prints for the same refusal (models raise it);
the code is a stable word a client can branch on.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException

from models.errors import NotFoundError, RuleError, SchemaNotCurrentError, SegsyncError

_LOG = logging.getLogger(__name__)
# Status -> code, for errors raised as HTTPException (routing, methods, auth).
_CODES = {
    400: "invalid",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "invalid",
    429: "rate_limited",
    503: "unavailable",
}


class ErrorBody(BaseModel):
    """What went wrong: a stable code and a one-line message."""

    code: str
    message: str


class ErrorResponse(BaseModel):
    """The body of every error answer."""

    error: ErrorBody


class ApiError(Exception):
    """An answer other than success, with its status, code, message and headers."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message
        self.headers = headers or {}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The JSON answer of one error."""
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


async def _answer(
    request: Request,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> Response:
    """The error as JSON, or as a page when the web app (web/ui) says the path is one of its."""
    html_error = getattr(request.app.state, "html_error", None)
    if html_error is not None:
        page: Response | None = await html_error(request, status, message)
        if page is not None:
            return page
    return error_response(status, code, message, headers)


def _status_of(error: SegsyncError) -> tuple[int, str]:
    if isinstance(error, NotFoundError):
        return 404, "not_found"
    if isinstance(error, RuleError):
        return 409, "conflict"
    if isinstance(error, SchemaNotCurrentError):
        return 503, "unavailable"
    # InputError, and any refusal the request itself caused.
    return 400, "invalid"


def _validation_message(error: RequestValidationError) -> str:
    """The first problem of a request that does not fit the schema, as one line."""
    problems = error.errors()
    if not problems:
        return "invalid request"
    first = problems[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "request"
    return f"{where}: {first.get('msg', 'invalid')}"


def install_error_handlers(app: FastAPI) -> None:
    """Make every error of `app` answer in the one shape."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> Response:
        return await _answer(request, error.status, error.code, error.message, error.headers)

    @app.exception_handler(SegsyncError)
    async def rule_error(request: Request, error: SegsyncError) -> Response:
        status, code = _status_of(error)
        return await _answer(request, status, code, str(error))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        return await _answer(request, 422, "invalid", _validation_message(error))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        message = error.detail if isinstance(error.detail, str) else "request refused"
        # Starlette's own routing answers say only "Not Found" / "Method Not Allowed".
        if error.status_code in (404, 405) and message in ("Not Found", "Method Not Allowed"):
            what = "no such path" if error.status_code == 404 else "method not allowed"
            message = f"{what}: {request.method} {request.url.path}"
            if request.url.path.startswith("/v1/"):
                message += " (see /openapi.json)"
        code = _CODES.get(error.status_code, "error")
        return await _answer(request, error.status_code, code, message, dict(error.headers or {}))

    @app.exception_handler(OperationalError)
    async def database_down(request: Request, error: OperationalError) -> Response:
        first = str(error.orig).strip().splitlines()[0] if error.orig else "unreachable"
        return await _answer(request, 503, "unavailable", f"database error: {first}")

    @app.exception_handler(DataError)
    async def value_refused(request: Request, error: DataError) -> Response:
        # The database refuses a value the request brought (PostgreSQL: a NUL character in a
        # name, a number out of range), where SQLite takes it: the client's input, not a fault.
        first = str(error.orig).strip().splitlines()[0] if error.orig else "invalid value"
        return await _answer(request, 400, "invalid", f"a value of the request is refused: {first}")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        # The trace goes to the log, not to the client (it may name tables, paths, values).
        _LOG.error("%s %s failed", request.method, request.url.path, exc_info=error)
        return await _answer(
            request, 500, "internal", "internal error; the server log has the details"
        )
