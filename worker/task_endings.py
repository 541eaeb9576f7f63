"""How a run ends when its Celery task ends some way the task did not handle (DESIGN.md §5: never
stuck in queued/running): failed, with one line saying what was being done and why it stopped.

Celery sends the task_failure signal for every exception a task leaves unhandled, in the pool
process that ran it (a bug, MaxRetriesExceededError, the soft time limit), and from the worker's
main process for a task killed at its hard time limit (Celery 5.7 also calls Task.on_failure
there; earlier versions send only the signal). It sends none for a worker lost outright: that
task's message goes back to the broker (task_reject_on_worker_lost) and another worker takes it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from sqlalchemy import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from models.connections import Connection, resolve_secrets
from models.db import make_engine, make_session_factory
from models.errors import InputError
from models.orchestrations import Orchestration
from models.runs import SyncBatch, SyncRun
from worker.settings import Settings
from worker.sync import fail_run

log = logging.getLogger(__name__)

PLAN_TASK = "segsync.run_orchestration"
WRITE_TASK = "segsync.write_batch"
# A reason is one line an operator reads in `runs show`, not a dump.
MAX_REASON_LENGTH = 500
# A run's row locked by a task that hangs must not hang the worker's main process as well.
_LOCK_TIMEOUT_MS = 10_000


def kill_margin(limit: float) -> float:
    """How long after its soft time limit `limit` a task that did not stop is killed: a tenth of
    the limit, at least 2 s (to record the run's failure) and at most a minute."""
    return min(60.0, max(2.0, limit / 10))


def planning_lease(plan_limit: float) -> timedelta:
    """How long after a run's planning began its planner (soft time limit `plan_limit`) is surely
    gone, killed at the hard limit, with the same margin again before the sweeper plans anew."""
    return timedelta(seconds=plan_limit + 2 * kill_margin(plan_limit))


@dataclass(frozen=True)
class TaskWork:
    """What a failed task was doing for which run, and the setting that limits its time."""

    run_id: int
    doing: str
    limit_setting: str
    limit: float
    # Appended to "took longer than N s" and to the advice to raise the limit.
    detail: str = ""
    advice: str = ""


def one_line(exc: BaseException) -> str:
    """The exception's type and the first line of its message (no traceback)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _soft_limit_behind(exc: BaseException) -> bool:
    """Whether the soft time limit is what `exc` is, or what it was raised while handling.

    The limit arrives as a signal at any instruction: inside a database query it leaves the
    connection mid-command, and the rollback that follows raises its own error (psycopg:
    "another command is already in progress") with the limit as its context.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, SoftTimeLimitExceeded):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def failure_reason(exc: BaseException, work: TaskWork) -> str:
    """Why the run fails, in one line: a time limit passed, or what was raised."""
    raise_it = f"raise {work.limit_setting}{work.advice}"
    if _soft_limit_behind(exc):
        reason = f"{work.doing} took longer than {work.limit:g} s{work.detail}; {raise_it}"
    elif isinstance(exc, TimeLimitExceeded):
        killed = exc.args[0] if exc.args and isinstance(exc.args[0], int | float) else None
        after = f" after {killed:g} s" if killed is not None else ""
        reason = (
            f"{work.doing} did not stop at its time limit of {work.limit:g} s and was killed"
            f"{after}; {raise_it}"
        )
    else:
        reason = f"{work.doing} failed unexpectedly: {one_line(exc)}"
    return reason if len(reason) <= MAX_REASON_LENGTH else reason[: MAX_REASON_LENGTH - 3] + "..."


def task_work(
    session: Session, task_name: str, target_id: int, settings: Settings
) -> TaskWork | None:
    """What task `task_name` did with its argument `target_id` (a run or a batch id); None when
    the row is gone or the task works on no run."""
    if task_name == PLAN_TASK:
        run = session.get(SyncRun, target_id)
        if run is None:
            return None
        return TaskWork(
            run.id,
            "planning",
            "SEGSYNC_PLAN_TIME_LIMIT_SECONDS",
            settings.plan_time_limit_seconds,
            detail=" (reading every record and comparing)",
            advice=" or narrow the orchestration's scope",
        )
    if task_name == WRITE_TASK:
        batch = session.get(SyncBatch, target_id)
        run = session.get(SyncRun, batch.run_id) if batch is not None else None
        if batch is None or run is None:
            return None
        return TaskWork(
            run.id,
            f"writing batch {batch.number}/{run.batches_total}",
            "SEGSYNC_BATCH_TIME_LIMIT_SECONDS",
            settings.batch_time_limit_seconds,
        )
    return None


def _without_secrets(text: str, session: Session, run_id: int, settings: Settings) -> str:
    """`text` with the values of the run's connection secrets blotted out (an unexpected
    exception may carry anything it was given)."""
    run = session.get_one(SyncRun, run_id)
    orchestration = session.get_one(Orchestration, run.orchestration_id)
    connection = session.get_one(Connection, orchestration.connection_id)
    try:
        secrets = resolve_secrets(connection, settings.secret_key_text())
    except InputError:
        return text  # this process cannot know them, nor can the exception have carried them
    for value in sorted(secrets.values(), key=len, reverse=True):
        if len(value) >= 4:
            text = text.replace(value, "[secret]")
    return text


@contextmanager
def _own_sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on an engine of their own, closed after: the worker's main process forks new pool
    processes, which must not inherit its database connections."""
    if make_url(database_url).get_backend_name() == "postgresql":
        options = {"options": f"-c lock_timeout={_LOCK_TIMEOUT_MS}", "connect_timeout": 10}
        engine = make_engine(database_url, poolclass=NullPool, connect_args=options)
    else:
        engine = make_engine(database_url, poolclass=NullPool)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


def end_run_of_failed_task(
    sender: Any = None,
    exception: BaseException | None = None,
    args: Sequence[Any] | None = None,
    **_: Any,
) -> None:
    """task_failure receiver: fail the run of a planning or writing task that ended unhandled."""
    name = getattr(sender, "name", None)
    if name not in (PLAN_TASK, WRITE_TASK) or exception is None or not args:
        return
    try:
        settings = Settings()
        with _own_sessions(settings.database_url) as factory:
            with factory() as session:
                work = task_work(session, name, int(args[0]), settings)
                if work is None:
                    return
                reason = failure_reason(exception, work)
                reason = _without_secrets(reason, session, work.run_id, settings)
            fail_run(factory, work.run_id, reason)
        log.error("run %d failed: %s", work.run_id, reason)
    except Exception:
        # Nothing more to do here: the run stays for the sweeper (lease or planning lease).
        log.exception("%s%s: the run's failure could not be recorded", name, list(args))
