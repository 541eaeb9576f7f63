"""The checks of `segsync health`: each part segsync needs, asked whether it works right now.

Every check is bounded: its own I/O gets a timeout a little under the probe's, and the checks run
at once in threads that the probe stops waiting for at its deadline, so a probe never hangs on a
server that accepts a connection and never answers.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, event, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from models.db import head_revision, make_engine, require_current_schema, safe_url
from models.errors import InputError, SegsyncError
from models.health import (
    RunLimits,
    duration,
    heartbeat_stale_after,
    latest_heartbeat,
    overdue_runs,
)
from worker.settings import Settings

# What beat records its heartbeat as (service_heartbeats.component).
BEAT_COMPONENT = "beat"
# A check's own I/O gets this share of the probe's timeout, so that a server that does not
# answer is usually reported by the check itself, with its reason, before the probe gives up.
_OWN_SHARE = 0.8
# The overdue runs a line names; more are counted.
_RUNS_NAMED = 5


class CheckFailed(Exception):
    """A check does not hold; the message says why in one line."""


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome: whether it holds, why, and how long it took."""

    name: str
    ok: bool
    detail: str
    seconds: float


def bounded_engine(url: str, seconds: float) -> Engine:
    """An engine for `url` that gives up connecting, waiting on a lock or running a statement
    after about `seconds` (a probe or a heartbeat must not hang on a database that hangs)."""
    backend = _parsed(url).get_backend_name()
    milliseconds = max(1, int(seconds * 1000))
    if backend == "postgresql":
        return make_engine(
            url,
            poolclass=NullPool,
            connect_args={
                # libpq counts whole seconds.
                "connect_timeout": max(1, math.ceil(seconds)),
                "options": f"-c statement_timeout={milliseconds} -c lock_timeout={milliseconds}",
            },
        )
    engine = make_engine(url, poolclass=NullPool)
    if backend == "sqlite":

        @event.listens_for(engine, "connect")
        def _busy_timeout(dbapi_connection: Any, _record: Any) -> None:
            # Instead of make_engine's 30 s wait for another writer's lock.
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {milliseconds}")
            cursor.close()

    return engine


def _current_database(settings: Settings, seconds: float) -> Engine:
    """A bounded engine on a database at the latest schema; CheckFailed saying what to run."""
    url = _parsed(settings.database_url)
    if url.get_backend_name() == "sqlite" and _missing_sqlite_file(url.database):
        # Opening it would create an empty file: a probe leaves no trace.
        raise CheckFailed(f"database file {url.database} does not exist: run `segsync db upgrade`")
    engine = bounded_engine(settings.database_url, seconds)
    try:
        require_current_schema(engine)
    except SegsyncError as error:
        engine.dispose()
        raise CheckFailed(str(error)) from None
    return engine


def _parsed(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        # Never the URL itself: it may carry a password.
        raise CheckFailed("SEGSYNC_DATABASE_URL is not a valid SQLAlchemy URL") from None


def _missing_sqlite_file(database: str | None) -> bool:
    if not database or database == ":memory:" or database.startswith("file:"):
        return False
    return not Path(database).exists()


def check_database(settings: Settings, seconds: float) -> str:
    """The database answers and is at the latest migration."""
    engine = _current_database(settings, seconds)
    engine.dispose()
    return f"{safe_url(engine)} at revision {head_revision()} (the latest)"


def check_broker(settings: Settings, seconds: float) -> str:
    """The Celery broker (SEGSYNC_BROKER_URL) accepts a connection."""
    from kombu.connection import Connection

    url = _broker_url(settings)
    transport_options = {"socket_timeout": seconds, "socket_connect_timeout": seconds}
    broker: Any = Connection(  # type: ignore[no-untyped-call]
        url, connect_timeout=seconds, transport_options=transport_options
    )
    where = _sanitized(url)
    with broker:
        try:
            broker.ensure_connection(max_retries=0, timeout=seconds)
        except Exception as error:  # any transport's own errors: the reason is what matters
            raise CheckFailed(f"{where} unreachable: {one_line(error)}") from None
    return f"{where} reachable"


def _sanitized(url: str) -> str:
    """`url` with any password masked, for messages."""
    from kombu.utils.url import maybe_sanitize_url

    return str(maybe_sanitize_url(url))


def _broker_url(settings: Settings) -> str:
    if not settings.broker_url:
        raise CheckFailed("no broker configured: set SEGSYNC_BROKER_URL (e.g. redis://host:6379/0)")
    return settings.broker_url


def check_rate_limits(settings: Settings, seconds: float) -> str:
    """The Redis that holds the rate limits shared by every worker answers PING."""
    import redis

    url = settings.shared_redis_url()
    if url is None:
        raise CheckFailed(
            "no Redis for the shared rate limits (each worker would keep its own): set "
            "SEGSYNC_REDIS_URL, or a redis:// SEGSYNC_BROKER_URL"
        )
    where = _sanitized(url)
    client = redis.Redis.from_url(
        url, socket_connect_timeout=seconds, socket_timeout=seconds, retry=None
    )
    try:
        client.ping()
    except redis.RedisError as error:
        raise CheckFailed(f"{where} does not answer PING: {one_line(error)}") from None
    finally:
        client.close()
    return f"{where} answers PING"


def check_workers(settings: Settings, seconds: float) -> str:
    """At least one Celery worker answers a ping through the broker."""
    from celery import Celery

    url = _broker_url(settings)
    # An app of its own, not worker.app: only the broker matters here, and worker.app's settings
    # were read once, from whatever environment first imported it.
    app = Celery("segsync-health", broker=url, set_as_current=False)
    app.conf.update(
        accept_content=["json"],
        task_serializer="json",
        broker_connection_timeout=seconds,
        broker_transport_options={"socket_timeout": seconds},
    )
    # A ping collects replies until its window closes: half the probe's time, the rest for
    # connecting. A worker busy writing still answers, from its main process.
    window = seconds / 2
    with app.connection_for_write() as broker:
        try:
            broker.ensure_connection(max_retries=0, timeout=seconds)
            replies = app.control.ping(timeout=window, connection=broker)
        except Exception as error:  # any transport's own errors: the reason is what matters
            where = _sanitized(url)
            raise CheckFailed(f"cannot ping workers through {where}: {one_line(error)}") from None
    names = sorted(name for reply in replies for name in reply)
    if not names:
        raise CheckFailed(f"no worker answered a ping within {window:g} s: start `segsync worker`")
    return f"{len(names)} answered: {', '.join(names)}"


def check_beat(settings: Settings, seconds: float) -> str:
    """Beat recorded a heartbeat within the last three beat intervals."""
    engine = _current_database(settings, seconds)
    try:
        with Session(engine) as session:
            heartbeat = latest_heartbeat(session, BEAT_COMPONENT)
    finally:
        engine.dispose()
    if heartbeat is None:
        raise CheckFailed("no heartbeat ever recorded: start `segsync beat`")
    stale_after = heartbeat_stale_after(timedelta(seconds=settings.beat_interval_seconds))
    where = f"{duration(heartbeat.age)} ago on host {heartbeat.hostname}"
    if heartbeat.age > stale_after:
        raise CheckFailed(f"last heartbeat {where} (stale after {duration(stale_after)})")
    return f"last heartbeat {where} (pid {heartbeat.pid})"


def run_limits(settings: Settings) -> RunLimits:
    """The sweeper's limits under `settings` (those of the workers and beat, when shared)."""
    from worker.task_endings import planning_lease

    return RunLimits(
        stale_after=timedelta(seconds=settings.stale_after_seconds),
        # As the sweeper's (worker.tasks.sweep), from these settings rather than a worker's.
        planning_lease=planning_lease(settings.plan_time_limit_seconds),
        sweep_interval=timedelta(seconds=settings.beat_interval_seconds),
    )


def check_runs(settings: Settings, seconds: float) -> str:
    """No queued or running run waits longer than the sweeper's limits allow."""
    engine = _current_database(settings, seconds)
    try:
        with Session(engine) as session:
            overdue = overdue_runs(session, run_limits(settings))
    finally:
        engine.dispose()
    if not overdue:
        return "no queued or running run is overdue"
    named = [
        f"run {run.run_id} of {run.orchestration!r} {run.status} for {duration(run.age)} "
        f"({run.why})"
        for run in overdue[:_RUNS_NAMED]
    ]
    more = f"; and {len(overdue) - _RUNS_NAMED} more" if len(overdue) > _RUNS_NAMED else ""
    raise CheckFailed(f"{len(overdue)} overdue: {'; '.join(named)}{more}")


CHECKS: dict[str, Callable[[Settings, float], str]] = {
    "database": check_database,
    "broker": check_broker,
    "rate_limits": check_rate_limits,
    "workers": check_workers,
    "beat": check_beat,
    "runs": check_runs,
}


# What each check imports on first use. Imported before the checks' threads start: two threads
# importing kombu or celery at once meet each other's half-initialised modules (ImportError).
_MODULES = {
    "broker": ["kombu.connection", "kombu.utils.url"],
    "rate_limits": ["redis", "kombu.utils.url"],
    "workers": ["celery", "kombu.connection", "kombu.utils.url"],
    "runs": ["worker.task_endings"],
}
_DATABASE_CHECKS = ("database", "beat", "runs")


def _import_for(settings: Settings, names: list[str]) -> None:
    """Import, in this thread, the modules the named checks need (the database's driver too)."""
    for name in names:
        for module in _MODULES.get(name, []):
            importlib.import_module(module)
    if any(name in _DATABASE_CHECKS for name in names):
        # A bad URL or a missing driver: the check itself says so.
        with contextlib.suppress(Exception):
            make_url(settings.database_url).get_dialect().import_dbapi()


def run_checks(settings: Settings, names: list[str], timeout: float) -> list[CheckResult]:
    """Run the named checks at once; one that has not ended after `timeout` s fails as timed
    out (its thread is left behind: it is a daemon, and its own I/O is bounded too)."""
    _import_for(settings, names)
    results: dict[str, CheckResult] = {}
    started = time.monotonic()

    def run(name: str) -> None:
        began = time.monotonic()
        try:
            ok, detail = True, CHECKS[name](settings, timeout * _OWN_SHARE)
        except CheckFailed as failure:
            ok, detail = False, str(failure)
        except InputError as error:
            ok, detail = False, str(error)
        except Exception as error:  # a probe reports whatever went wrong, never a traceback
            ok, detail = False, one_line(error)
        results[name] = CheckResult(name, ok, detail, time.monotonic() - began)

    threads = [
        threading.Thread(target=run, args=(name,), name=f"health-{name}", daemon=True)
        for name in names
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, started + timeout - time.monotonic()))
    return [
        results.get(name) or CheckResult(name, False, f"timed out after {timeout:g} s", timeout)
        for name in names
    ]


def one_line(error: BaseException) -> str:
    """The error's type and the first line of its message (no traceback)."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
