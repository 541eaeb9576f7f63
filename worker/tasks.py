"""Celery tasks: thin wrappers that take ids, call worker.sync, and decide on retries.

Only ids travel in messages; a task re-reads its rows, and the database's conditional UPDATEs make
a second delivery of the same message a no-op. However a run's task ends (retries spent, a bug, a
secret missing from the worker's environment, a time limit), its run ends `failed` with a one-line
reason (worker.task_endings); only a worker killed outright hands its message back to the broker
(task_reject_on_worker_lost) for another worker to take up.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import lru_cache
from typing import Any

from celery.signals import task_failure
from kombu.exceptions import OperationalError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import Connector
from connectors.errors import ConnectorError
from connectors.ratelimit import RateLimiter, rate_limiter
from models.connections import Connection
from models.db import make_engine, make_session_factory, transaction
from models.errors import InputError
from models.orchestrations import Orchestration
from models.runs import SyncBatch, SyncRun
from models.segment_refreshes import SegmentRefresh, mark_refresh_sent
from models.segments import Segment
from worker.app import app
from worker.connector_factory import connector_of
from worker.failure_policy import (
    MAX_BATCH_ATTEMPTS,
    MAX_PLAN_RETRIES,
    TASK_PLANNING,
    TASK_WRITING,
    Decision,
    Defer,
    Phase,
    Refused,
    Retry,
    decide,
)
from worker.logs import log_context
from worker.scheduling import (
    claim_due_runs,
    mark_enqueued,
    recover_stalled_plans,
    resume_deferred_runs,
    stalled_work,
)
from worker.segment_refresh import run_refresh, start_due_refreshes, sweep_refreshes
from worker.settings import Settings
from worker.sync import fail_run, plan_run, settle_batch, write_batch
from worker.task_endings import (
    PLAN_TASK,
    WRITE_TASK,
    end_run_of_failed_task,
    kill_margin,
    one_line,
    planning_lease,
)

log = logging.getLogger(__name__)

# How a refused plan or batch is retried, deferred or failed: worker.failure_policy. Its caps
# MAX_PLAN_RETRIES and MAX_BATCH_ATTEMPTS are also the tasks' max_retries, which Celery reads
# (retry(max_retries=None) means the task's own, by default 3).
# When the broker is unreachable (Redis restarting), a publish is retried for about a second
# (Celery's task_publish_retry_policy), then kombu raises OperationalError. Whatever a task was
# sending is stored already: a queued run or a pending batch whose message never left is sent
# again by beat's sweeper after SEGSYNC_STALE_AFTER_SECONDS (scheduling.stalled_work). So the
# tasks log one warning and end normally; raising would fail a run whose work is safe
# (worker.task_endings), and a run whose batches are stored cannot be planned again anyway.
_UNSENT = "the sweeper sends them once SEGSYNC_STALE_AFTER_SECONDS have passed"


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


def cached_connector(session: Session, orchestration: Orchestration, worker: str) -> Connector:
    """The orchestration's connection's connector, built once per process and connection version
    (so each batch does not log in again); InputError naming this worker (`worker`, its name)
    when it cannot be built here."""
    return connection_connector(session, orchestration.connection_id, worker)


def connection_connector(session: Session, connection_id: int, worker: str) -> Connector:
    """`cached_connector` of the stored connection `connection_id` (a CRM segment's source)."""
    connection = session.get_one(Connection, connection_id)
    cached = _connectors.get(connection.id)
    if cached is not None and cached[0] == connection.updated_at:
        return cached[1]
    secret_key = settings().secret_key_text()
    connector = connector_of(connection, secret_key, shared_limiter(), where=f"on worker {worker}")
    _connectors[connection.id] = (connection.updated_at, connector)
    return connector


def _connector(
    task: Any, factory: sessionmaker[Session], run_id: int, orchestration_id: int
) -> Connector | None:
    """The connector of the run's orchestration; None, the run failed saying why, when this
    worker cannot build it."""
    try:
        # Its own session, closed before a failure is recorded (SQLite: one writer at a time).
        with factory() as session:
            orchestration = session.get_one(Orchestration, orchestration_id)
            return cached_connector(session, orchestration, task.request.hostname)
    except InputError as exc:
        _fail(factory, run_id, str(exc))
        return None


def _log_fields(session: Session, orchestration_id: int) -> dict[str, Any]:
    """What the log lines of this orchestration's runs carry: its name, system and object."""
    name, system, object_type = session.execute(
        select(Orchestration.name, Connection.system, Orchestration.object_type)
        .join(Connection, Connection.id == Orchestration.connection_id)
        .where(Orchestration.id == orchestration_id)
    ).one()
    return {"orchestration": name, "system": system, "object": object_type}


def _run_label(session: Session, run: SyncRun) -> str:
    orchestration = session.get_one(Orchestration, run.orchestration_id)
    connection = session.get_one(Connection, orchestration.connection_id)
    return (
        f"run {run.id} of {orchestration.name!r} "
        f"({connection.system} {orchestration.object_type}.{orchestration.field})"
    )


# Celery puts the sending process's time limits into each message, and a worker applies those
# before its own: the CLI's settings would then rule a run queued from a shell. Sent as None, the
# limits of the worker that runs the task apply (its task attributes below), and a retry keeps them.
_WORKER_TIME_LIMITS: dict[str, Any] = {"time_limit": None, "soft_time_limit": None}


def enqueue_run(run_id: int, factory: sessionmaker[Session] | None = None) -> None:
    """Send the task that plans run `run_id` (labelled for Flower).

    `factory`: the caller's database (the CLI's); workers use their own process-wide one.
    """
    factory = factory or sessions()
    with factory() as session:
        label = _run_label(session, session.get_one(SyncRun, run_id))
    run_orchestration.apply_async(args=[run_id], argsrepr=label, **_WORKER_TIME_LIMITS)
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
        write_batch_task.apply_async(
            args=[batch_id], argsrepr=labels.get(batch_id), **_WORKER_TIME_LIMITS
        )
    mark_enqueued(sessions(), [], batch_ids)


def _task_options(name: str, max_retries: int, limit: float) -> dict[str, Any]:
    """A run's task: bound, retried at most `max_retries` times, soft time limit `limit`.

    Past the soft limit the run fails saying so (worker.task_endings); a task that does not stop
    is killed kill_margin() later, and the worker's main process fails its run saying that.
    """
    return {
        "name": name,
        "bind": True,
        "max_retries": max_retries,
        "soft_time_limit": limit,
        "time_limit": limit + kill_margin(limit),
    }


@app.task(**_task_options(PLAN_TASK, MAX_PLAN_RETRIES, settings().plan_time_limit_seconds))
def run_orchestration(self: Any, run_id: int) -> None:
    """Plan run `run_id` (read, match, diff, store batches), then fan its batches out."""
    factory = sessions()
    with factory() as session:
        run = session.get(SyncRun, run_id)
        if run is None or run.status != "queued":
            return  # already planned by another delivery, or finished
        orchestration_id = run.orchestration_id
        fields = _log_fields(session, orchestration_id)
    with log_context(run_id=run_id, **fields):
        _plan(self, factory, run_id, orchestration_id)


def _plan(task: Any, factory: sessionmaker[Session], run_id: int, orchestration_id: int) -> None:
    """run_orchestration's work, within its log context."""
    connector = _connector(task, factory, run_id, orchestration_id)
    if connector is None:
        return
    try:
        batch_ids = plan_run(
            factory, run_id, connector, retry=task.request.retries, limits=TASK_PLANNING
        )
    except Refused as refused:
        # plan_run recorded the decision: the run queued again, deferred or failed.
        _follow(task, factory, refused.decision, refused.error, run_id, "planning")
        return
    batches = f"{len(batch_ids)} batch{'es' if len(batch_ids) != 1 else ''}"
    log.info("run %d planned: %s to write", run_id, batches)
    try:
        enqueue_batches(batch_ids)
    except OperationalError as exc:
        log.warning(
            "run %d: %d batches stored but not sent, the broker is unreachable (%s); %s",
            run_id,
            len(batch_ids),
            one_line(exc),
            _UNSENT,
        )


@app.task(**_task_options(WRITE_TASK, MAX_BATCH_ATTEMPTS, settings().batch_time_limit_seconds))
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
        attempts, run_id, orchestration_id = batch.attempts, run.id, run.orchestration_id
        which = f"batch {batch.number}/{run.batches_total}"
        fields = _log_fields(session, orchestration_id)
    with log_context(run_id=run_id, batch_id=batch_id, **fields):
        _write(self, factory, batch_id, run_id, orchestration_id, attempts, which)


def _write(
    task: Any,
    factory: sessionmaker[Session],
    batch_id: int,
    run_id: int,
    orchestration_id: int,
    attempts: int,
    which: str,
) -> None:
    """write_batch_task's work, within its log context (`which`: "batch 2/5")."""
    connector = _connector(task, factory, run_id, orchestration_id)
    if connector is None:
        return
    try:
        lease = timedelta(seconds=settings().batch_lease_seconds)
        written = write_batch(factory, batch_id, connector, lease)
    except ConnectorError as exc:
        # This attempt is the batch's attempts + 1 (write_batch counted it in the database).
        decision = decide(exc, Phase.WRITING, attempts + 1, TASK_WRITING, which=which)
        settle_batch(factory, run_id, batch_id, decision)
        _follow(task, factory, decision, exc, run_id, which, batch_id)
        return
    if written:
        log.info("run %d: %s written", run_id, which)
    else:
        log.info(
            "run %d: %s not taken: done, leased to another worker, or its run stopped",
            run_id,
            which,
        )


def _follow(
    task: Any,
    factory: sessionmaker[Session],
    decision: Decision,
    error: ConnectorError,
    run_id: int,
    what: str,
    batch_id: int | None = None,
) -> None:
    """Log `decision`, already recorded, on run `run_id`'s `what` ("planning", or "batch 2/5",
    batch `batch_id`), and schedule the task's retry when it is one."""
    if isinstance(decision, Retry):
        log.warning("run %d: %s again in %.0f s: %s", run_id, what, decision.wait, error)
        # The retry is on its way: not for the sweeper.
        if batch_id is None:
            mark_enqueued(factory, [run_id], [])
        else:
            mark_enqueued(factory, [], [batch_id])
        raise task.retry(countdown=decision.wait) from None
    if isinstance(decision, Defer):
        at = "" if what == "planning" else f" at {what}"
        log.warning("run %d deferred%s: %s", run_id, at, error)
    else:
        log.error("run %d failed: %s", run_id, decision.reason)


def _fail(factory: sessionmaker[Session], run_id: int, reason: str) -> None:
    """Fail the run, saying why in the log too (the reason is also the run's own)."""
    log.error("run %d failed: %s", run_id, reason)
    fail_run(factory, run_id, reason)


# Every other way a run's task ends (a bug, MaxRetriesExceededError, a time limit) fails its run.
task_failure.connect(end_run_of_failed_task, weak=False)


def _sent(runs: list[int], batches: list[int], refreshes: list[int] | None = None) -> bool:
    """Send the tasks of these runs, batches and CRM segment refreshes; False, with one warning,
    if the broker is unreachable (their rows stay queued or pending, for the sweeper)."""
    refreshes = refreshes or []
    try:
        for run_id in runs:
            enqueue_run(run_id)
        enqueue_batches(batches)
        for refresh_id in refreshes:
            enqueue_refresh(refresh_id)
    except OperationalError as exc:
        unsent = [f"runs {runs}"] if runs else []
        if batches:
            with sessions()() as session:
                of_runs = set(
                    session.scalars(select(SyncBatch.run_id).where(SyncBatch.id.in_(batches)))
                )
            unsent.append(f"{len(batches)} batches of runs {sorted(of_runs)}")
        if refreshes:
            unsent.append(f"refreshes {refreshes}")
        log.warning(
            "%s not sent, the broker is unreachable (%s); %s",
            " and ".join(unsent),
            one_line(exc),
            _UNSENT,
        )
        return False
    return True


@app.task(name="segsync.dispatch_due")
def dispatch_due() -> None:
    """Every minute (beat): start due scheduled runs and resume deferred runs whose day came;
    queue and send the refreshes of CRM segments whose schedule is due."""
    factory = sessions()
    if not _sent(claim_due_runs(factory), []):
        return  # deferred runs stay deferred, due refreshes due, until the broker is back
    resumed = resume_deferred_runs(factory)
    if not _sent(resumed.runs, resumed.batches):
        return
    # Queued first, then sent: one whose message does not leave is sent again by the sweeper.
    _sent([], [], start_due_refreshes(factory))


@app.task(name="segsync.sweep")
def sweep() -> None:
    """Every minute (beat): send again the work whose message was lost or whose worker died."""
    lease = planning_lease(settings().plan_time_limit_seconds)
    stale_after = timedelta(seconds=settings().stale_after_seconds)
    # A refresh task has the planning task's time limits (refresh_segment), so the same lease.
    _sent([], [], sweep_refreshes(sessions(), lease, stale_after))
    if not _sent(recover_stalled_plans(sessions(), lease), []):
        return  # the rest waits for a sweep that finds the broker back
    work = stalled_work(sessions(), stale_after=stale_after)
    _sent(work.runs, work.batches)


# -- CRM segment refreshes (worker.segment_refresh) ----------------------------------------------

REFRESH_TASK = "segsync.refresh_segment"


def enqueue_refresh(refresh_id: int, factory: sessionmaker[Session] | None = None) -> None:
    """Send the task that runs queued refresh `refresh_id` (labelled for Flower).

    `factory`: the caller's database (the CLI's); workers use their own process-wide one.
    """
    factory = factory or sessions()
    with factory() as session:
        name = session.scalar(
            select(Segment.name)
            .join(SegmentRefresh, SegmentRefresh.segment_id == Segment.id)
            .where(SegmentRefresh.id == refresh_id)
        )
    label = f"refresh {refresh_id} of segment {name!r}"
    refresh_segment.apply_async(args=[refresh_id], argsrepr=label, **_WORKER_TIME_LIMITS)
    # After the send: a refresh marked sent whose message never left would wait a whole
    # stale period more for the sweeper, where one sent but not marked is only sent again.
    with transaction(factory) as session:
        mark_refresh_sent(session, refresh_id)


# Reading a report or list is a read like planning's, with its limits; it is not retried by
# Celery: the adapter asked again in place, and the next refresh (on demand, by schedule) reads
# anew. A worker killed mid-read leaves the refresh running, failed by the sweeper past the lease.
@app.task(**_task_options(REFRESH_TASK, 0, settings().plan_time_limit_seconds))
def refresh_segment(self: Any, refresh_id: int) -> None:
    """Refresh a CRM segment: read its report, list view or list, and make the rows its members."""
    factory = sessions()
    with factory() as session:
        refresh = session.get(SegmentRefresh, refresh_id)
        if refresh is None or refresh.status != "queued":
            return  # run by another delivery, or ended
        segment_id = refresh.segment_id
    worker = str(self.request.hostname)
    with log_context(refresh_id=refresh_id, segment_id=segment_id):
        outcome = run_refresh(
            factory,
            refresh_id,
            lambda session, connection_id: connection_connector(session, connection_id, worker),
        )
        if outcome.status == "skipped":
            log.info("refresh %d not run: %s", refresh_id, outcome.reason)
