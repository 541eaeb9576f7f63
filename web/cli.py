"""`segsync api`: the HTTP API served by uvicorn."""

from __future__ import annotations

import click

from worker.cli.database import Database
from worker.cli.output import fail

# uvicorn builds the app in each of its processes from this factory (web.app).
APP_FACTORY = "web.app:app_from_environment"


@click.command("api")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Server processes sharing the port.",
)
@click.pass_obj
def api_command(database: Database, host: str, port: int, workers: int) -> None:
    """Serve the HTTP API (/v1) and the web app (/) for people who sign in."""
    import uvicorn

    from models.db import require_current_schema

    # Refuse at once, in one line, what every request would otherwise fail on.
    require_current_schema(database.engine)
    if workers > 1 and port == 0:
        fail("--workers above 1 needs a --port: processes cannot share a port chosen at random")
    from uvicorn.config import LOGGING_CONFIG

    from worker.logs import log_format

    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # Request lines carry no key (keys go in a header), so the access log may stay on.
        access_log=True,
        # Text: uvicorn's own lines ("Uvicorn running on ...", one per request). JSON: none of
        # uvicorn's handlers; its lines reach segsync's JSON handler (web.app configures it in
        # each server process).
        log_config=None if log_format() == "json" else LOGGING_CONFIG,
        server_header=False,
    )
