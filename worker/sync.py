"""One orchestration run (DESIGN.md §3): claim, desired values, read, match, diff, plan, write.

Every step moves database rows by conditional UPDATE, so the same functions serve the foreground
`segsync sync` and the Celery tasks, and a step delivered twice does nothing the second time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, delete, insert, select, update
from sqlalchemy import Update as UpdateStatement
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import Connector, QuotaUsage, Update, WriteResult
from connectors.errors import ConnectorError
from models.base import utcnow
from models.db import transaction
from models.observability import record_quota
from models.orchestrations import Orchestration
from models.record_states import advance_watermark, choose_read, store_written
from models.runs import (
    ACTIVE_RUN_STATUSES,
    ApiUsage,
    RecordFailure,
    RecordState,
    SyncBatch,
    SyncRun,
    partial_reason,
)
from worker.failure_policy import (
    FOREGROUND,
    TASK_PLANNING,
    Decision,
    Defer,
    FailBatch,
    Limits,
    Phase,
    Refused,
    Retry,
    budget_spent,
    decide,
)
from worker.planning import Progress, describe_target, diff, format_for
from worker.settings import Settings

log = logging.getLogger(__name__)

# A batch claimed by a worker that then vanished is taken again after this long.
BATCH_LEASE = timedelta(minutes=10)


def start_run(
    session: Session, orchestration: Orchestration, trigger: str, *, full_read: bool = False
) -> SyncRun:
    """Record a queued run (`full_read`: reading every record, whatever the watermark says);
    when one is already active, record this one as skipped instead."""
    run = SyncRun(
        orchestration_id=orchestration.id, status="queued", trigger=trigger, full_read=full_read
    )
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except IntegrityError:
        active = session.scalars(
            select(SyncRun).where(
                SyncRun.orchestration_id == orchestration.id,
                SyncRun.status.in_(("queued", "running", "deferred")),
            )
        ).first()
        run = SyncRun(
            orchestration_id=orchestration.id,
            status="skipped",
            trigger=trigger,
            reason=_still_active(active),
            finished_at=utcnow(),
        )
        session.add(run)
        session.flush()
    return run


def _still_active(active: SyncRun | None) -> str:
    """Why a new run is skipped; a deferred run says when it resumes (it is not stuck)."""
    if active is None:  # finished between the insert and this look: try again
        return "another run of this orchestration was active"
    reason = f"run {active.id} of this orchestration is still active ({active.status})"
    if active.status == "deferred" and active.resume_at is not None:
        when = active.resume_at.strftime("%Y-%m-%d %H:%M UTC")
        reason += f": it resumes at {when} ({active.reason})"
    return reason


def _claim_run(
    factory: sessionmaker[Session], run_id: int
) -> tuple[Orchestration, int, bool] | None:
    """Take a queued run for planning: its orchestration, this planner's attempt number, and
    whether a full read was asked for."""
    with transaction(factory) as session:
        claimed = session.execute(
            update(SyncRun)
            .where(SyncRun.id == run_id, SyncRun.status == "queued")
            .values(
                status="running",
                started_at=utcnow(),
                plan_attempts=SyncRun.plan_attempts + 1,
                records_read=0,
            )
        )
        if not getattr(claimed, "rowcount", 0):
            return None
        run = session.get_one(SyncRun, run_id)
        orchestration = session.get_one(Orchestration, run.orchestration_id)
        return orchestration, run.plan_attempts, run.full_read


def _planning(run_id: int, attempt: int) -> ColumnElement[bool]:
    """The run is still being planned by attempt `attempt` (not given to another planner)."""
    return and_(SyncRun.id == run_id, SyncRun.status == "running", SyncRun.plan_attempts == attempt)


def _note_read(factory: sessionmaker[Session], run_id: int, attempt: int, records: int) -> bool:
    """Store how many records planning attempt `attempt` has read; False once the run is no
    longer its own (cancelled, or given to another planner), so it stops reading."""
    with transaction(factory) as session:
        noted = session.execute(
            update(SyncRun).where(_planning(run_id, attempt)).values(records_read=records)
        )
        return bool(getattr(noted, "rowcount", 0))


def _held(run_id: int, attempt: int | None, statuses: tuple[str, ...]) -> ColumnElement[bool]:
    """The run in one of `statuses`, or, given a planning attempt, still held by that attempt."""
    if attempt is not None:
        return _planning(run_id, attempt)
    return and_(SyncRun.id == run_id, SyncRun.status.in_(statuses))


@dataclass(frozen=True)
class VendorUse:
    """What a connector spent on one plan or batch: what its run and connection are charged."""

    calls: int
    # Answers of "too many requests" among those calls.
    throttled: int
    # The vendor's report of the connection's quota, when it sent one meanwhile.
    quota: QuotaUsage | None


def metered(connector: Connector) -> Callable[[], VendorUse]:
    """What `connector` spends from now on, asked for later (it is reused across runs)."""
    calls, throttled, quota = connector.api_calls, connector.throttled, connector.quota

    def spent() -> VendorUse:
        latest = connector.quota
        return VendorUse(
            connector.api_calls - calls,
            connector.throttled - throttled,
            latest if latest is not quota else None,
        )

    return spent


def _charged(spent: VendorUse) -> dict[str, Any]:
    """The run's counts with `spent` added, for an UPDATE of its row."""
    return {
        "api_calls": SyncRun.api_calls + spent.calls,
        "throttled": SyncRun.throttled + spent.throttled,
    }


def _count_use(session: Session, orchestration_id: int | None, spent: VendorUse) -> None:
    """Charge `spent` to the orchestration's usage of today, and keep the vendor's quota report
    for its connection."""
    count_api_usage(session, orchestration_id, spent.calls)
    if spent.quota is None or orchestration_id is None:
        return
    connection_id = session.scalar(
        select(Orchestration.connection_id).where(Orchestration.id == orchestration_id)
    )
    if connection_id is not None:
        quota = spent.quota
        record_quota(session, connection_id, quota.period, quota.used, quota.limit)


def _charge_run(factory: sessionmaker[Session], run_id: int, spent: VendorUse) -> None:
    # Calls of a failed plan attempt still count against the vendor's quota and the budget.
    if spent.calls or spent.quota is not None:
        with transaction(factory) as session:
            session.execute(update(SyncRun).where(SyncRun.id == run_id).values(**_charged(spent)))
            _count_use(session, _orchestration_of(session, run_id), spent)


def _orchestration_of(session: Session, run_id: int) -> int | None:
    return session.scalar(select(SyncRun.orchestration_id).where(SyncRun.id == run_id))


def count_api_usage(session: Session, orchestration_id: int | None, calls: int) -> None:
    """Add `calls` to the orchestration's usage of today (UTC), which its daily budget counts."""
    if orchestration_id is None or calls <= 0:
        return
    dialect = session.get_bind().dialect.name
    upsert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = upsert(ApiUsage).values(
        orchestration_id=orchestration_id, day=utcnow().date(), calls=calls
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["orchestration_id", "day"],
            set_={"calls": ApiUsage.calls + statement.excluded.calls},
        )
    )


def _requeue_run(factory: sessionmaker[Session], run_id: int, attempt: int) -> None:
    # Planning stored nothing yet, so the whole plan can simply be tried again later.
    with transaction(factory) as session:
        session.execute(
            update(SyncRun)
            .where(_planning(run_id, attempt))
            .values(status="queued", started_at=None)
        )


def _settle_plan(
    factory: sessionmaker[Session], run_id: int, attempt: int, decision: Decision
) -> None:
    """Record `decision` on a run whose planning attempt `attempt` the vendor refused."""
    if isinstance(decision, Retry):
        _requeue_run(factory, run_id, attempt)
    elif isinstance(decision, Defer):
        defer_run(factory, run_id, decision, attempt=attempt)
    else:
        fail_run(factory, run_id, decision.reason, attempt=attempt)


def settle_batch(
    factory: sessionmaker[Session], run_id: int, batch_id: int, decision: Decision
) -> None:
    """Record `decision` on the run of batch `batch_id`, which the vendor refused."""
    if isinstance(decision, Retry):
        count_batch_retry(factory, batch_id)
    elif isinstance(decision, Defer):
        defer_run(factory, run_id, decision)
    else:
        # The run fails first, so that this batch, given up, cannot close it as done.
        fail_run(factory, run_id, decision.reason)
        if isinstance(decision, FailBatch):
            give_up_batch(factory, batch_id, decision.reason)


def fail_run(
    factory: sessionmaker[Session], run_id: int, reason: str, *, attempt: int | None = None
) -> None:
    """End an active run as failed with a one-line reason (only while planning attempt
    `attempt` holds it, when given)."""
    condition = _held(run_id, attempt, ("queued", "running", "deferred"))
    with transaction(factory) as session:
        session.execute(
            update(SyncRun)
            .where(condition)
            .values(status="failed", reason=reason, finished_at=utcnow())
        )


def plan_run(
    factory: sessionmaker[Session],
    run_id: int,
    connector: Connector,
    progress: Progress | None = None,
    *,
    retry: int = 0,
    limits: Limits = TASK_PLANNING,
    read_overlap: timedelta | None = None,
) -> list[int]:
    """Claim a queued run, compute what to write, and store it as batches; returns batch ids.

    Refused (worker.failure_policy), its decision recorded, when the vendor refused the plan;
    `retry`: how many times the caller has retried this plan already, under `limits`.
    `read_overlap`: how far back of this read the next incremental one starts (default: the
    SEGSYNC_READ_OVERLAP_SECONDS setting).
    """
    claimed = _claim_run(factory, run_id)
    if claimed is None:
        return []
    orchestration, attempt, full_requested = claimed
    if read_overlap is None:
        read_overlap = timedelta(seconds=Settings().read_overlap_seconds)
    spent = metered(connector)
    read_started = utcnow()
    with factory() as session:
        read = choose_read(
            session,
            orchestration,
            now=read_started,
            full_requested=full_requested,
            reads_modified=connector.reads_modified,
        )
    log.info("run %d reads %s: %s", run_id, read.mode, read.reason)
    try:
        # An incremental run formats with the length the last full read described.
        field_length = (
            describe_target(orchestration, connector) if read.full else read.field_max_length
        )
        fmt = format_for(orchestration, field_length)
        plan = diff(
            factory,
            orchestration,
            connector,
            fmt,
            progress,
            lambda records: _note_read(factory, run_id, attempt, records),
            read=read,
            remember=True,
        )
    except ConnectorError as exc:
        _charge_run(factory, run_id, spent())
        decision = decide(exc, Phase.PLANNING, retry + 1, limits)
        _settle_plan(factory, run_id, attempt, decision)
        raise Refused(exc, decision) from exc
    if plan is None:
        log.info(
            "run %d: planning attempt %d stopped: the run is no longer its own", run_id, attempt
        )
        _charge_run(factory, run_id, spent())
        return []
    planned = spent()
    with transaction(factory) as session:
        # Spent whether or not this planner still holds the run.
        _count_use(session, orchestration.id, planned)
        size = connector.planned_batch_size(len(plan.updates))
        # Counts first, on condition that this planner still holds the run: when the sweeper
        # gave it to another planner (this one was presumed dead), nothing is stored here, so
        # the run is planned, and written, once.
        owned = session.execute(
            update(SyncRun)
            .where(_planning(run_id, attempt))
            .values(
                **_charged(planned),
                field_max_length=fmt.max_length,
                records_read=plan.records_read,
                eligible=plan.eligible,
                unchanged=plan.unchanged,
                unmatched=plan.unmatched,
                truncated=plan.truncated,
                batches_total=-(-len(plan.updates) // size),
                read_mode=read.mode,
                read_since=read.since,
            )
        )
        if not getattr(owned, "rowcount", 0):
            log.warning(
                "run %d: planning attempt %d was superseded; nothing stored", run_id, attempt
            )
            return []
        # With the plan, in its transaction: the next read starts from this one.
        advance_watermark(session, orchestration.id, read, read_started, read_overlap, field_length)
        batch_ids = _store_batches(session, run_id, plan.updates, size)
        _finish_if_complete(session, run_id)
    return batch_ids


def _chunks(items: list[tuple[str, str]], size: int) -> Iterator[list[tuple[str, str]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _store_batches(
    session: Session, run_id: int, updates: list[tuple[str, str]], size: int
) -> list[int]:
    rows = [
        {
            "run_id": run_id,
            "number": number,
            "status": "pending",
            "updates": [list(u) for u in chunk],
        }
        for number, chunk in enumerate(_chunks(updates, size), start=1)
    ]
    if rows:
        session.execute(insert(SyncBatch), rows)
    return list(
        session.scalars(
            select(SyncBatch.id).where(SyncBatch.run_id == run_id).order_by(SyncBatch.number)
        )
    )


def write_batch(
    factory: sessionmaker[Session],
    batch_id: int,
    connector: Connector,
    lease: timedelta = BATCH_LEASE,
) -> bool:
    """Claim a pending (or lease-expired) batch, write it, store each record's outcome.

    Returns False when the batch was not claimable (done, or running under a live lease).
    """
    now = utcnow()
    with transaction(factory) as session:
        batch = session.get(SyncBatch, batch_id)
        if batch is None:
            return False  # the run was deleted with its orchestration
        run = session.get_one(SyncRun, batch.run_id)
        orchestration = session.get_one(Orchestration, run.orchestration_id)
        over_budget = _over_budget(session, orchestration, now) if run.status == "running" else None
        if over_budget is not None:
            session.execute(_deferring(run.id, None, over_budget))
            return False
        # Only a batch of a running run is written: a failed or deferred run writes nothing more.
        claimed = session.execute(
            update(SyncBatch)
            .where(
                SyncBatch.id == batch_id,
                SyncBatch.run_id.in_(select(SyncRun.id).where(SyncRun.status == "running")),
                (SyncBatch.status == "pending")
                | ((SyncBatch.status == "running") & (SyncBatch.lease_until < now)),
            )
            .values(status="running", attempts=SyncBatch.attempts + 1, lease_until=now + lease)
        )
        if not getattr(claimed, "rowcount", 0):
            return False
        session.refresh(batch)
        attempts = batch.attempts
        updates = [Update(record_id, value) for record_id, value in batch.updates]
        object_type, field, orchestration_id = (
            orchestration.object_type,
            orchestration.field,
            orchestration.id,
        )
    spent = metered(connector)
    try:
        with _lease_kept(factory, batch_id, attempts, lease):
            already = _already_written(connector, object_type, field, updates, attempts)
            pending = [u for u in updates if u.record_id not in already]
            results = [WriteResult(record_id, ok=True) for record_id in already]
            if pending:
                results.extend(connector.write_planned(object_type, field, pending))
            gone = _gone(connector, object_type, field, [r.record_id for r in results if not r.ok])
    except ConnectorError:
        _release_batch(factory, batch_id, spent())
        raise
    values = {u.record_id: u.value for u in updates}
    written = [r for r in results if r.ok]
    failures = [r for r in results if not r.ok and r.record_id not in gone]
    used = spent()
    with transaction(factory) as session:
        _count_use(session, orchestration_id, used)
        done = session.execute(
            update(SyncBatch)
            .where(SyncBatch.id == batch_id, SyncBatch.status == "running")
            .values(
                status="done",
                written=len(written),
                failed=len(failures),
                api_calls=used.calls,
                finished_at=utcnow(),
                lease_until=None,
            )
        )
        if not getattr(done, "rowcount", 0):
            return False
        store_written(
            session,
            orchestration_id,
            [(r.record_id, values[r.record_id]) for r in written],
            utcnow(),
        )
        if gone:
            session.execute(
                delete(RecordState).where(
                    RecordState.orchestration_id == orchestration_id,
                    RecordState.record_id.in_(gone),
                )
            )
        session.add_all(
            RecordFailure(run_id=run.id, record_id=r.record_id, code=r.code, message=r.message)
            for r in failures
        )
        session.execute(
            update(SyncRun)
            .where(SyncRun.id == run.id)
            .values(
                batches_done=SyncRun.batches_done + 1,
                # A record deleted in the CRM since it was known is no longer a target.
                eligible=SyncRun.eligible - len(gone),
                enriched=SyncRun.enriched + len(written),
                failed=SyncRun.failed + len(failures),
                **_charged(used),
            )
        )
        _finish_if_complete(session, run.id)
    return True


def _current_values(
    connector: Connector, object_type: str, field: str, ids: list[str]
) -> dict[str, str | None]:
    """The field's value of each of `ids` that still exists, read a batch at a time (a bulk
    batch holds more ids than one read takes)."""
    current: dict[str, str | None] = {}
    for start in range(0, len(ids), connector.batch_size):
        current.update(
            connector.read_values(object_type, field, ids[start : start + connector.batch_size])
        )
    return current


def _gone(connector: Connector, object_type: str, field: str, failed: list[str]) -> set[str]:
    """Of the records the vendor refused, those that no longer exist (deleted or merged away
    since they were read or known): one read of their values, which leaves them out."""
    found = _current_values(connector, object_type, field, failed)
    return {record_id for record_id in failed if record_id not in found}


def _already_written(
    connector: Connector, object_type: str, field: str, updates: list[Update], attempts: int
) -> set[str]:
    """On a retried batch, the records that already hold their value (written just before a
    worker died, or by a call whose answer was lost): writing them again would write twice."""
    if attempts <= 1:
        return set()
    current = _current_values(connector, object_type, field, [u.record_id for u in updates])
    return {
        u.record_id
        for u in updates
        if u.record_id in current and (current[u.record_id] or "") == u.value
    }


@contextmanager
def _lease_kept(
    factory: sessionmaker[Session], batch_id: int, attempt: int, lease: timedelta
) -> Iterator[None]:
    """Renew the batch's lease every third of it while the block runs (a bulk job may take
    longer than the lease), so no other worker takes a batch whose writer is alive. A writer
    that dies stops renewing, and the lease then runs out as before."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(lease.total_seconds() / 3):
            try:
                with transaction(factory) as session:
                    kept = session.execute(
                        update(SyncBatch)
                        .where(
                            SyncBatch.id == batch_id,
                            SyncBatch.status == "running",
                            SyncBatch.attempts == attempt,
                        )
                        .values(lease_until=utcnow() + lease)
                    )
            except SQLAlchemyError:
                # The write goes on; should the database stay away, the lease runs out.
                log.warning("batch %d: lease not renewed", batch_id, exc_info=True)
                continue
            if not getattr(kept, "rowcount", 0):
                return  # finished, or taken by another worker after all

    renewer = threading.Thread(target=renew, name=f"lease-batch-{batch_id}", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()


def _release_batch(factory: sessionmaker[Session], batch_id: int, spent: VendorUse) -> None:
    # The vendor refused the whole call, so nothing of this batch was written: it is pending
    # again for whoever retries it (cancelled, if its run was cancelled meanwhile: nobody will),
    # and the calls it cost still count against the run.
    with transaction(factory) as session:
        batch = session.get_one(SyncBatch, batch_id)
        run_status = session.scalar(select(SyncRun.status).where(SyncRun.id == batch.run_id))
        session.execute(
            update(SyncBatch)
            .where(SyncBatch.id == batch_id, SyncBatch.status == "running")
            .values(
                status="cancelled" if run_status == "cancelled" else "pending",
                lease_until=None,
                api_calls=SyncBatch.api_calls + spent.calls,
            )
        )
        session.execute(update(SyncRun).where(SyncRun.id == batch.run_id).values(**_charged(spent)))
        _count_use(session, _orchestration_of(session, batch.run_id), spent)


def count_batch_retry(factory: sessionmaker[Session], batch_id: int) -> None:
    """Count on its run that batch `batch_id`, refused for now, goes back to be written again."""
    with transaction(factory) as session:
        session.execute(
            update(SyncRun)
            .where(
                SyncRun.id
                == select(SyncBatch.run_id).where(SyncBatch.id == batch_id).scalar_subquery()
            )
            .values(batches_retried=SyncRun.batches_retried + 1)
        )


def _over_budget(session: Session, orchestration: Orchestration, now: datetime) -> Defer | None:
    """The deferral of the orchestration's run when it spent its daily API budget."""
    budget = orchestration.daily_api_budget
    if budget is None:
        return None
    used = session.scalar(
        select(ApiUsage.calls).where(
            ApiUsage.orchestration_id == orchestration.id, ApiUsage.day == now.date()
        )
    )
    return budget_spent(budget, now) if int(used or 0) >= budget else None


def _deferring(run_id: int, attempt: int | None, deferral: Defer) -> UpdateStatement:
    """The UPDATE that parks a running run as `deferral` says (only while planning attempt
    `attempt` holds it, when given)."""
    return (
        update(SyncRun)
        .where(_held(run_id, attempt, ("running",)))
        .values(status="deferred", resume_at=deferral.until, reason=deferral.reason)
    )


def defer_run(
    factory: sessionmaker[Session], run_id: int, deferral: Defer, *, attempt: int | None = None
) -> None:
    """Park a running run until the day its daily quota or budget resets (only while planning
    attempt `attempt` holds it, when given)."""
    with transaction(factory) as session:
        session.execute(_deferring(run_id, attempt, deferral))


def _finish_if_complete(session: Session, run_id: int) -> None:
    # Only the batch that completes the count closes the run; the condition makes it exactly once.
    # A run in which records failed is partial, not succeeded: its reason says how many and
    # where they are listed. A cancelled run stays cancelled (it is no longer running).
    failed = session.scalar(
        update(SyncRun)
        .where(
            SyncRun.id == run_id,
            SyncRun.status == "running",
            SyncRun.batches_done >= SyncRun.batches_total,
        )
        .values(
            status=case((SyncRun.failed > 0, "partial"), else_="succeeded"), finished_at=utcnow()
        )
        .returning(SyncRun.failed)
    )
    if failed:
        session.execute(
            update(SyncRun)
            .where(SyncRun.id == run_id)
            .values(reason=partial_reason(run_id, failed))
        )


def cancel_run(
    factory: sessionmaker[Session], run_id: int, reason: str, *, writer_gone: bool = False
) -> bool:
    """Cancel a queued, running or deferred run: no batch of it is written from now on.

    Its pending batches are marked cancelled; a batch being written finishes and its result is
    stored, but the run stays cancelled. `writer_gone`: the caller was the run's only writer
    and stopped (a foreground run interrupted), so its batch in flight is cancelled too.
    Returns False when the run had already ended.
    """
    unwritten = ("pending", "running") if writer_gone else ("pending",)
    now = utcnow()
    with transaction(factory) as session:
        cancelled = session.execute(
            update(SyncRun)
            .where(SyncRun.id == run_id, SyncRun.status.in_(ACTIVE_RUN_STATUSES))
            .values(status="cancelled", reason=reason, finished_at=now, resume_at=None)
        )
        if not getattr(cancelled, "rowcount", 0):
            return False
        session.execute(
            update(SyncBatch)
            .where(
                SyncBatch.run_id == run_id,
                SyncBatch.status.in_(unwritten)
                # A batch whose writer died (its lease passed) is written by nobody now.
                | ((SyncBatch.status == "running") & (SyncBatch.lease_until < now)),
            )
            .values(status="cancelled", lease_until=None, finished_at=now)
        )
    return True


def _plan_in_foreground(
    factory: sessionmaker[Session],
    run_id: int,
    connector: Connector,
    progress: Progress | None,
    limits: Limits,
) -> list[int] | None:
    """plan_run with the vendor's waits between retries; None when the run did not get planned."""
    retry = 0
    while True:
        try:
            return plan_run(factory, run_id, connector, progress, retry=retry, limits=limits)
        except Refused as refused:
            if not isinstance(refused.decision, Retry):
                return None  # plan_run failed or deferred the run
            time.sleep(refused.decision.wait)
        retry += 1


def _write_in_foreground(
    factory: sessionmaker[Session],
    run_id: int,
    batch_id: int,
    connector: Connector,
    limits: Limits,
) -> bool:
    """write_batch with the vendor's waits between retries; False when the run stopped."""
    attempt = 1
    while True:
        try:
            if write_batch(factory, batch_id, connector):
                return True
            # Deferred (budget spent), failed or cancelled meanwhile, or else written already.
            return _load_run(factory, run_id).status == "running"
        except ConnectorError as exc:
            decision = decide(exc, Phase.WRITING, attempt, limits)
            settle_batch(factory, run_id, batch_id, decision)
            if not isinstance(decision, Retry):
                return False
            time.sleep(decision.wait)
        attempt += 1


def run_in_foreground(
    factory: sessionmaker[Session],
    run_id: int,
    connector: Connector,
    progress: Progress | None = None,
    planned: list[int] | None = None,
    limits: Limits = FOREGROUND,
) -> SyncRun:
    """Plan and write a run in this process (no broker); returns the run as it ended.

    `planned`: the batches still to write of a run planned before (one resumed after its
    deferral), which is then not planned again.
    A refused plan or batch is retried, deferred or failed as worker.failure_policy decides
    under `limits`.
    """
    if planned is None:
        batch_ids = _plan_in_foreground(factory, run_id, connector, progress, limits)
        if batch_ids is None:
            return _load_run(factory, run_id)  # planning failed, deferred or gave up
    else:
        batch_ids = planned
    total = _load_run(factory, run_id).batches_total
    if progress is not None and batch_ids:
        progress("write", total - len(batch_ids), total)
    # A cancel (`segsync runs cancel`) is seen at the next batch: write_batch claims none of a
    # run that is no longer running.
    for done, batch_id in enumerate(batch_ids, start=total - len(batch_ids) + 1):
        if not _write_in_foreground(factory, run_id, batch_id, connector, limits):
            break
        if progress is not None:
            progress("write", done, total)
    return _load_run(factory, run_id)


def _load_run(factory: sessionmaker[Session], run_id: int) -> SyncRun:
    with factory() as session:
        return session.get_one(SyncRun, run_id)


def give_up_batch(factory: sessionmaker[Session], batch_id: int, reason: str) -> None:
    """Count a batch that kept failing as failed records, so its run can still finish."""
    with transaction(factory) as session:
        batch = session.get_one(SyncBatch, batch_id)
        closed = session.execute(
            update(SyncBatch)
            .where(SyncBatch.id == batch_id, SyncBatch.status.in_(("pending", "running")))
            .values(status="failed", failed=len(batch.updates), finished_at=utcnow())
        )
        if not getattr(closed, "rowcount", 0):
            return
        session.add_all(
            RecordFailure(run_id=batch.run_id, record_id=record_id, code="GAVE_UP", message=reason)
            for record_id, _value in batch.updates
        )
        session.execute(
            update(SyncRun)
            .where(SyncRun.id == batch.run_id)
            .values(
                batches_done=SyncRun.batches_done + 1,
                failed=SyncRun.failed + len(batch.updates),
            )
        )
        _finish_if_complete(session, batch.run_id)
