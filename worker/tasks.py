"""Celery tasks: thin wrappers that take ids, call worker.sync, and decide on retries.

Only ids travel in messages; a task re-reads its rows, and the database's conditional UPDATEs make
a second delivery of the same message a no-op.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import Connector
from connectors.errors import ConnectorError, DailyQuotaError, RetryableError
from connectors.ratelimit import RateLimiter, rate_limiter
from models.connections import Connection, resolve_secrets
from models.db import make_engine, make_session_factory
from models.orchestrations import Orchestration
from models.runs import SyncBatch, SyncRun
from worker.app import app
from worker.connector_factory import apply_rate_limits, build_connector
from worker.scheduling import (
    claim_due_runs,
    mark_enqueued,
    recover_stalled_plans,
    resume_deferred_runs,
    stalled_work,
)
from worker.settings import Settings
from worker.sync import defer_run, fail_run, give_up_batch, plan_run, write_batch

# After this many attempts a batch's records are counted as failed (the cap lives in the database).
MAX_BATCH_ATTEMPTS = 8
MAX_PLAN_RETRIES = 5
# The longest a task waits in the worker before a retry; longer waits are deferred in the database.
MAX_RETRY_COUNTDOWN = 60.0


@lru_cache(maxsize=1)
def settings() -> Settings:
    """This worker process's settings."""
    return Settings()


@lru_cache(maxsize=1)
def sessions() -> sessionmaker[Session]:
    """One engine per worker process."""
    return make_session_factory(make_engine(settings().database_url))


@lru_cache(maxsize=1)
def shared_limiter() -> RateLimiter:
    """Rate limits shared by every worker through Redis (per process without Redis)."""
    return rate_limiter(settings().shared_redis_url())


# connection id -> (its updated_at, a logged-in connector): reused so each batch does not log in.
_connectors: dict[int, tuple[Any, Connector]] = {}


def connector_for(session: Session, orchestration: Orchestration) -> Connector:
    """A connector for the orchestration's connection, behind the shared rate limit."""
    connection = session.get_one(Connection, orchestration.connection_id)
    cached = _connectors.get(connection.id)
    if cached is not None and cached[0] == connection.updated_at:
        return cached[1]
    secrets = resolve_secrets(connection, settings().secret_key_text())
    connector = build_connector(connection.system, dict(connection.settings), secrets)
    apply_rate_limits(
        connector, connection.system, f"{connection.system}:{connection.id}", shared_limiter()
    )
    _connectors[connection.id] = (connection.updated_at, connector)
    return connector


def _countdown(exc: RetryableError, attempt: int) -> float:
    return min(exc.retry_after or 2.0 ** min(attempt, 6), MAX_RETRY_COUNTDOWN)


def _run_label(session: Session, run: SyncRun) -> str:
    orchestration = session.get_one(Orchestration, run.orchestration_id)
    connection = session.get_one(Connection, orchestration.connection_id)
    return (
        f"run {run.id} of {orchestration.name!r} "
        f"({connection.system} {orchestration.object_type}.{orchestration.field})"
    )


def enqueue_run(run_id: int, factory: sessionmaker[Session] | None = None) -> None:
    """Send the task that plans run `run_id` (labelled for Flower).

    `factory`: the caller's database (the CLI's); workers use their own process-wide one.
    """
    factory = factory or sessions()
    with factory() as session:
        label = _run_label(session, session.get_one(SyncRun, run_id))
    run_orchestration.apply_async(args=[run_id], argsrepr=label)
    mark_enqueued(factory, [run_id], [])


def enqueue_batches(batch_ids: list[int]) -> None:
    """Send one write task per batch: they fan out across every worker (no chord)."""
    if not batch_ids:
        return
    with sessions()() as session:
        rows = session.execute(
            select(SyncBatch.id, SyncBatch.number, SyncRun)
            .join(SyncRun, SyncRun.id == SyncBatch.run_id)
            .where(SyncBatch.id.in_(batch_ids))
        ).all()
        labels = {
            batch_id: f"batch {number}/{run.batches_total} of {_run_label(session, run)}"
            for batch_id, number, run in rows
        }
    for batch_id in batch_ids:
        write_batch_task.apply_async(args=[batch_id], argsrepr=labels.get(batch_id))
    mark_enqueued(sessions(), [], batch_ids)


def plan_kill_margin() -> float:
    """Planning gets SEGSYNC_PLAN_TIME_LIMIT_SECONDS (soft: the run fails saying so), then this
    much more before the worker kills it (hard): a minute, or a tenth of a shorter limit."""
    return min(60.0, settings().plan_time_limit_seconds / 10)


def planning_lease() -> timedelta:
    """How long after a run's planning began its planner is surely gone (killed at the hard
    limit), with the same margin again before the sweeper plans the run anew."""
    return timedelta(seconds=settings().plan_time_limit_seconds + 2 * plan_kill_margin())


@app.task(
    name="segsync.run_orchestration",
    bind=True,
    soft_time_limit=settings().plan_time_limit_seconds,
    time_limit=settings().plan_time_limit_seconds + plan_kill_margin(),
)
def run_orchestration(self: Any, run_id: int) -> None:
    """Plan run `run_id` (read, match, diff, store batches), then fan its batches out."""
    factory = sessions()
    with factory() as session:
        run = session.get(SyncRun, run_id)
        if run is None or run.status != "queued":
            return  # already planned by another delivery, or finished
        connector = connector_for(session, session.get_one(Orchestration, run.orchestration_id))
    try:
        batch_ids = plan_run(factory, run_id, connector)
    except SoftTimeLimitExceeded:
        limit = settings().plan_time_limit_seconds
        fail_run(
            factory,
            run_id,
            f"planning took longer than {limit:g} s (reading every record and comparing); "
            "raise SEGSYNC_PLAN_TIME_LIMIT_SECONDS or narrow the orchestration's scope",
        )
        return
    except RetryableError as exc:
        if self.request.retries >= MAX_PLAN_RETRIES:
            fail_run(
                factory, run_id, f"gave up planning after {self.request.retries} retries: {exc}"
            )
            return
        # max_retries=None: MAX_PLAN_RETRIES above decides (Celery's own default of 3 would raise
        # MaxRetriesExceededError first and leave the run queued until the sweeper finds it).
        raise self.retry(
            countdown=_countdown(exc, self.request.retries), max_retries=None
        ) from None
    except ConnectorError:
        return  # plan_run recorded the run as failed or deferred
    enqueue_batches(batch_ids)


@app.task(name="segsync.write_batch", bind=True)
def write_batch_task(self: Any, batch_id: int) -> None:
    """Write one batch of record updates under the shared rate limit."""
    factory = sessions()
    with factory() as session:
        batch = session.get(SyncBatch, batch_id)
        if batch is None or batch.status == "done":
            return
        run = session.get_one(SyncRun, batch.run_id)
        if run.status != "running":
            return
        attempts = batch.attempts
        connector = connector_for(session, session.get_one(Orchestration, run.orchestration_id))
        run_id = run.id
    try:
        write_batch(factory, batch_id, connector, timedelta(seconds=settings().batch_lease_seconds))
    except RetryableError as exc:
        if attempts + 1 >= MAX_BATCH_ATTEMPTS:
            give_up_batch(factory, batch_id, f"still failing after {attempts + 1} attempts: {exc}")
            return
        raise self.retry(countdown=_countdown(exc, attempts), max_retries=None) from None
    except DailyQuotaError as exc:
        defer_run(factory, run_id, str(exc))
    except ConnectorError as exc:
        fail_run(factory, run_id, str(exc))


@app.task(name="segsync.dispatch_due")
def dispatch_due() -> None:
    """Every minute (beat): start due scheduled runs and resume deferred runs whose day came."""
    factory = sessions()
    for run_id in claim_due_runs(factory):
        enqueue_run(run_id)
    resumed = resume_deferred_runs(factory)
    for run_id in resumed.runs:
        enqueue_run(run_id)
    enqueue_batches(resumed.batches)


@app.task(name="segsync.sweep")
def sweep() -> None:
    """Every minute (beat): send again the work whose message was lost or whose worker died."""
    for run_id in recover_stalled_plans(sessions(), planning_lease()):
        enqueue_run(run_id)
    work = stalled_work(sessions(), stale_after=timedelta(seconds=settings().stale_after_seconds))
    for run_id in work.runs:
        enqueue_run(run_id)
    enqueue_batches(work.batches)
