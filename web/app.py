"""The FastAPI application of `segsync api`: /v1, /healthz, /readyz and the OpenAPI document."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from web.errors import ErrorResponse, install_error_handlers
from web.ui.pages import install_web_app
from web.v1 import accounts, publications, published, runs, segments
from worker.database import Database

# How long /readyz waits for the database and the broker together.
READY_TIMEOUT_SECONDS = 3.0
# Every /v1 route may answer these; each route adds its own.
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "A value of the request is refused; says which."},
    401: {
        "model": ErrorResponse,
        "description": "No API key, or an unknown or revoked one.",
        "headers": {
            "WWW-Authenticate": {
                "description": "The scheme to use: Bearer.",
                "schema": {"type": "string"},
            }
        },
    },
    403: {"model": ErrorResponse, "description": "The key's scope does not allow this."},
    422: {"model": ErrorResponse, "description": "The request does not fit the schema."},
    429: {
        "model": ErrorResponse,
        "description": "Too many requests for this key (SEGSYNC_API_RATE_LIMIT).",
        "headers": {
            "Retry-After": {
                "description": "Whole seconds until the key may ask again.",
                "required": True,
                "schema": {"type": "integer", "minimum": 1},
            }
        },
    },
    503: {
        "model": ErrorResponse,
        "description": "The database or the rate limits' Redis does not answer.",
    },
}


class CheckResult(BaseModel):
    """One dependency's answer."""

    ok: bool
    detail: str


class Readiness(BaseModel):
    """Whether the database and the broker answer, and what each check found."""

    status: Literal["ready", "not ready"]
    checks: dict[str, CheckResult]


def create_app(database: Database) -> FastAPI:
    """The API on `database` (its schema must be current: sessions are refused otherwise)."""
    app = FastAPI(
        title="segsync",
        version="1",
        summary="Segments published to api, account details, publishing and runs of segsync.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.database = database
    app.state.sessions = database.sessions()
    install_error_handlers(app)
    app.include_router(accounts.router, prefix="/v1", responses=COMMON_ERRORS)
    app.include_router(segments.router, prefix="/v1", responses=COMMON_ERRORS)
    app.include_router(published.router, prefix="/v1", responses=COMMON_ERRORS)
    app.include_router(publications.router, prefix="/v1", responses=COMMON_ERRORS)
    app.include_router(runs.router, prefix="/v1", responses=COMMON_ERRORS)
    install_web_app(app)

    @app.get("/healthz", tags=["health"], summary="The process is up (no dependency checked).")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["health"],
        summary="The database and the broker answer.",
        response_model=Readiness,
        responses={
            503: {"model": Readiness, "description": "A dependency does not answer; each says why."}
        },
    )
    def readyz() -> JSONResponse:
        from worker.health import run_checks

        settings = database.settings
        names = ["database", "broker"] if settings.broker_url else ["database"]
        results = run_checks(settings, names, READY_TIMEOUT_SECONDS)
        ready = all(result.ok for result in results)
        body = {
            "status": "ready" if ready else "not ready",
            "checks": {
                result.name: {"ok": result.ok, "detail": result.detail} for result in results
            },
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    return app


def app_from_environment() -> FastAPI:
    """The app on the environment's settings (SEGSYNC_*): what `segsync api` serves."""
    from worker.logs import configure_logging

    # In each server process: uvicorn's own workers start without the command's logging.
    configure_logging("api")
    return create_app(Database())
