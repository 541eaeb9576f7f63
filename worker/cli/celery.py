"""`segsync worker`, `segsync beat`, `segsync flower`: the Celery programs with segsync's app."""

from __future__ import annotations

import os
from pathlib import Path

import click

from worker.cli.database import Database
from worker.cli.output import fail

# Celery (and worker.state_files, which needs it) is imported inside each command, not here:
# `segsync worker --help` need not load it.

_PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}


def _require_broker(database: Database) -> None:
    if not database.settings.broker_url:
        fail("no broker: set SEGSYNC_BROKER_URL (e.g. redis://localhost:6379/0)")
    database.sessions()  # refuses, in one line, a database that is not upgraded


def _state_folder(database: Database) -> Path:
    """The state folder (SEGSYNC_STATE_DIR), created now; refused in one line if it cannot be."""
    from worker.state_files import StateFolderError, ensure_state_folder

    folder = database.settings.state_dir
    try:
        ensure_state_folder(folder)
    except StateFolderError as error:
        fail(str(error))
    return folder


@click.command("worker", context_settings=_PASS_THROUGH)
@click.option("--concurrency", type=int, help="Worker processes (default: one per core).")
@click.pass_context
def worker_command(context: click.Context, concurrency: int | None) -> None:
    """Run a Celery worker (extra arguments go to `celery worker`)."""
    _require_broker(context.obj)
    from worker.app import app

    argv = ["worker", "--loglevel=INFO"]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    app.worker_main([*argv, *context.args])


@click.command("beat", context_settings=_PASS_THROUGH)
@click.pass_context
def beat_command(context: click.Context) -> None:
    """Run Celery beat: it fires dispatch_due and sweep every minute (a second beat is harmless)."""
    _require_broker(context.obj)
    _state_folder(context.obj)  # celeryconfig puts the schedule file there
    from worker.app import app

    app.start(["beat", "--loglevel=INFO", *context.args])


@click.command("flower", context_settings=_PASS_THROUGH)
@click.option("--port", default=5555, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True)
@click.pass_context
def flower_command(context: click.Context, port: int, address: str) -> None:
    """Run Flower with basic authentication from SEGSYNC_FLOWER_BASIC_AUTH (user:password)."""
    database: Database = context.obj
    _require_broker(database)
    credentials = database.settings.flower_basic_auth
    if credentials is None or ":" not in credentials.get_secret_value():
        fail("Flower needs SEGSYNC_FLOWER_BASIC_AUTH=user:password; it never runs unauthenticated")
    assert credentials is not None
    from worker.state_files import FLOWER_DB_NAME

    # Flower's database (kept only with --persistent=True) goes to the state folder too.
    flower_db = _state_folder(database) / FLOWER_DB_NAME
    # Through the environment, not argv: a password in argv shows in every process listing.
    os.environ["FLOWER_BASIC_AUTH"] = credentials.get_secret_value()
    from worker.app import app
    from worker.flower_gate import close_open_flower_handlers

    close_open_flower_handlers()
    argv = ["flower", f"--port={port}", f"--address={address}", f"--db={flower_db}"]
    app.start([*argv, *context.args])
