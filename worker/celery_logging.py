"""Celery's worker and beat log segsync's lines (worker/logs.py): with SEGSYNC_LOG_FORMAT=json,
Celery's own lines (task received, succeeded, retried) are JSON objects too.

Celery builds its log handlers itself (the root logger's, the task logger's); its signals let us
put segsync's filter and formatter on them once they exist. Whichever way the worker or beat is
started (`segsync worker`, `celery -A worker worker`), it loads worker/app.py, which wires this.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import suppress
from typing import Any

import click
from celery import Celery, signals
from celery.utils.log import get_multiprocessing_logger

from worker.logs import (
    configure_logging,
    json_line,
    log_format,
    set_program,
    use_segsync_lines,
)

_PROGRAMS = ("worker", "beat")


def _command_program() -> str | None:
    """worker or beat: the Celery command this process runs, whichever CLI started it."""
    context = click.get_current_context(silent=True)
    name = context.info_name if context is not None else None
    return name if name in _PROGRAMS else None


def _worker_starting(instance: Any, **_: Any) -> None:
    # Before Celery sets up its logging: its first warnings (e.g. about running as root) go
    # through logging as segsync's lines too, not as bare text on stderr.
    configure_logging("worker")
    if log_format() == "json":
        instance.quiet = True  # no banner: every line of the worker's output is one JSON object
        # Celery writes a few notices (e.g. "worker: Warm shutdown") straight to the terminal from
        # its signal handlers, where logging could deadlock; they become JSON lines, still written
        # with a single os.write as Celery's own safe_say does.
        import celery.apps.worker  # loaded already: this signal comes from its Worker

        celery.apps.worker.safe_say = _say_as_json


def _say_as_json(message: str, stream: Any = sys.__stderr__) -> None:
    line = json_line("celery.apps.worker", logging.INFO, message) + "\n"
    with suppress(OSError, ValueError):  # like Celery's: a lost notice never aborts a shutdown
        os.write(stream.fileno(), line.encode())


def _celery_handlers_made(logger: logging.Logger, **_: Any) -> None:
    program = _command_program()
    if program is not None:
        set_program(program)
    as_json = log_format() == "json"
    for handler in logger.handlers:
        use_segsync_lines(handler, as_json)


def _root_handlers_made(logger: logging.Logger, **kwargs: Any) -> None:
    _celery_handlers_made(logger, **kwargs)
    # The pool's own logger (billiard's) has a handler of its own beside the root's.
    _celery_handlers_made(get_multiprocessing_logger())


def log_like_segsync(app: Celery) -> None:
    """Make `app`'s worker and beat write segsync's log lines (text or JSON)."""
    signals.celeryd_init.connect(_worker_starting, weak=False)
    signals.after_setup_logger.connect(_root_handlers_made, weak=False)
    signals.after_setup_task_logger.connect(_celery_handlers_made, weak=False)
    base = app.Beat

    class Beat(base):  # type: ignore[misc,valid-type]
        """Celery beat printing no banner when the logs are JSON (its output is all JSON)."""

        def __init__(self, *args: Any, quiet: bool = False, **kwargs: Any) -> None:
            super().__init__(*args, quiet=quiet or log_format() == "json", **kwargs)

    app.Beat = Beat
