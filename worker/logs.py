"""segsync's log lines: human-readable text (the default) or, with SEGSYNC_LOG_FORMAT=json, one
JSON object a line, each carrying the run, batch, orchestration, system and object it is about.

`log_context(...)` says what the code inside it works on; a filter on every handler copies that
onto each record, with the program's name, and the formatter hides known secret shapes. Celery's
worker and beat are wired to this in worker/celery_logging.py; the CLI calls configure_logging.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from models.errors import InputError

if TYPE_CHECKING:
    from pythonjsonlogger.json import JsonFormatter

FORMAT_VARIABLE = "SEGSYNC_LOG_FORMAT"
# The keys a log line may carry about its work; nothing else can be put in the context, so a
# secret cannot ride along by mistake.
CONTEXT_KEYS = (
    "run_id",
    "batch_id",
    "orchestration",
    "system",
    "object",
    "refresh_id",
    "segment_id",
)

_context: ContextVar[Mapping[str, Any]] = ContextVar(
    "segsync_log_context", default=MappingProxyType({})
)
# Which program logs: cli, worker or beat (set by configure_logging and the Celery wiring).
_program = "segsync"


def log_format() -> str:
    """`text` or `json`, from SEGSYNC_LOG_FORMAT; InputError, in one line, for anything else."""
    if os.environ.get(FORMAT_VARIABLE, "text") == "text":
        return "text"  # the default: no need to load the settings for it
    from pydantic import ValidationError

    from worker.settings import Settings

    try:
        return Settings().log_format
    except ValidationError as error:
        if any(problem["loc"] == ("log_format",) for problem in error.errors()):
            raise InputError(
                f"{FORMAT_VARIABLE} must be text or json, not {os.environ[FORMAT_VARIABLE]!r}"
            ) from None
        raise


def set_program(program: str) -> None:
    """Name the program every later line of this process carries (cli, worker, beat)."""
    global _program
    _program = program


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Within it, every log line of this thread or task carries these fields (None: left out).

    Fields: CONTEXT_KEYS; nested contexts add to the outer one.
    """
    unknown = set(fields) - set(CONTEXT_KEYS)
    if unknown:
        raise TypeError(f"log_context takes {', '.join(CONTEXT_KEYS)}; not {sorted(unknown)}")
    merged = {**_context.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(MappingProxyType(merged))
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> Mapping[str, Any]:
    """The fields log lines carry here and now."""
    return _context.get()


class ContextFilter(logging.Filter):
    """Puts the program, the work's fields and the Celery task (if any) on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.program = _program
        for key, value in _context.get().items():
            setattr(record, key, value)
        # Only when Celery is loaded already: the CLI never imports it for this.
        celery_state = sys.modules.get("celery._state")
        task = celery_state.get_current_task() if celery_state is not None else None
        if task is not None and getattr(task.request, "id", None):
            record.task_id = task.request.id
            record.task_name = task.name
        return True


# Shapes of secrets that must never reach a log line, should one slip into a message or an error.
_SECRET_SHAPES = [
    # key=value and "key": "value" where the key names a secret (password, client_secret, ...)
    (
        re.compile(
            r"(?i)([\w-]*(?:password|passwd|secret|token|api[_-]?key)[\w-]*"
            r"(?:\\?[\"'])?\s*[:=]\s*(?:\\?[\"'])?)[^\s\"'&,;}\\]+"
        ),
        r"\1***",
    ),
    # Authorization header values
    (re.compile(r"(?i)\b(bearer|oauth|basic)\s+[\w.~+/=!-]{16,}"), r"\1 ***"),
    # credentials inside a URL: scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@\"]*):[^\s/@\"]+@"), r"\1:***@"),
    # Salesforce session ids (org id, "!", token) and HubSpot private-app tokens
    (re.compile(r"\b00D[A-Za-z0-9]{12,15}![\w.-]+"), "***"),
    (re.compile(r"\bpat-[a-z0-9]+-[0-9a-f]{8}-[0-9a-f-]{27}\b"), "***"),
    # JSON Web Tokens
    (re.compile(r"\beyJ[\w-]+\.[\w-]+\.[\w-]+"), "***"),
]


def redact(text: str) -> str:
    """`text` with every known secret shape replaced by ***."""
    for pattern, replacement in _SECRET_SHAPES:
        text = pattern.sub(replacement, text)
    return text


class RedactingFormatter(logging.Formatter):
    """Another formatter's output with known secret shapes hidden (whatever the format)."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record))


def json_formatter() -> logging.Formatter:
    """One JSON object a line: timestamp, level, logger, message, program, context, exception."""
    return RedactingFormatter(
        _json_lines_formatter()(
            ["levelname", "name", "message", "processName"],
            rename_fields={
                "levelname": "level",
                "name": "logger",
                "processName": "process",
                "exc_info": "exception",
            },
        )
    )


@cache
def _json_lines_formatter() -> type[JsonFormatter]:
    # Imported on first use: a CLI logging text never loads it.
    from pythonjsonlogger.json import JsonFormatter

    class JsonLines(JsonFormatter):
        def add_fields(
            self, log_data: dict[str, Any], record: logging.LogRecord, message: dict[str, Any]
        ) -> None:
            # First on the line, ISO 8601 in UTC, as log collectors expect.
            created = datetime.fromtimestamp(record.created, UTC)
            log_data["timestamp"] = created.isoformat(timespec="milliseconds")
            super().add_fields(log_data, record, message)

    return JsonLines


def json_line(logger: str, level: int, message: str) -> str:
    """A line as a JSON handler would write it, for code that must write without logging."""
    record = logging.LogRecord(logger, level, __file__, 0, message, None, None)
    ContextFilter().filter(record)
    return json_formatter().format(record)


class StderrHandler(logging.Handler):
    """Writes to whatever sys.stderr is when a line comes (a test runner may swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def use_segsync_lines(handler: logging.Handler, json: bool) -> None:
    """Make `handler` write segsync's lines: the context filter, redaction, JSON if asked."""
    if not any(isinstance(f, ContextFilter) for f in handler.filters):
        handler.addFilter(ContextFilter())
    current = handler.formatter
    if json:
        handler.setFormatter(json_formatter())
    elif not isinstance(current, RedactingFormatter):
        handler.setFormatter(RedactingFormatter(current or logging.Formatter()))


# The CLI's commands that run a program rather than a command: their lines carry its name.
_SERVERS = ("worker", "beat", "flower", "metrics")


def _served_program(program: str) -> str:
    """`segsync worker` (and beat, flower, metrics) logs as that program; other commands as cli."""
    if program != "cli" or "click" not in sys.modules:
        return program
    import click

    context = click.get_current_context(silent=True)
    command = context.invoked_subcommand if context is not None else None
    return command if command in _SERVERS else program


def configure_logging(program: str) -> None:
    """Set up this process's logging as SEGSYNC_LOG_FORMAT says.

    text (the default) leaves the process's output as it always was; json sends every line at
    INFO and above to stderr as one JSON object.
    """
    set_program(_served_program(program))
    if log_format() != "json":
        return
    root = logging.getLogger()
    # Called again (a test runner invoking the CLI twice): one handler of ours, not two.
    root.handlers = [h for h in root.handlers if not isinstance(h, StderrHandler)]
    handler = StderrHandler()
    use_segsync_lines(handler, json=True)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # Alembic narrates its machinery at INFO on every schema check; `db upgrade` reports itself.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # A warning (Python's warnings module) becomes a JSON line too, not a bare stderr line.
    logging.captureWarnings(True)
