"""Which runs to start or resume now: due schedules, deferred runs, lost or stalled work.

Every claim is a compare-and-set UPDATE, so two beats (or a beat and a sweeper) racing for the same
orchestration start it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from models.base import utcnow
from models.db import transaction
from models.orchestrations import Orchestration
from models.runs import SyncBatch, SyncRun
from models.schedules import next_fire
from worker.sync import start_run

# A queued run or a pending batch whose task was sent longer ago than this has most likely lost
# its broker message (a Redis restart without persistence); sending it again is harmless.
STALE_AFTER = timedelta(minutes=30)
# A run whose planner was found dead this many times is failed rather than planned again.
MAX_PLAN_ATTEMPTS = 3


@dataclass(frozen=True)
class Work:
    """What the dispatcher or the sweeper wants enqueued."""

    runs: list[int]
    batches: list[int]


def claim_due_runs(factory: sessionmaker[Session], now: datetime | None = None) -> list[int]:
    """Start a run of every enabled orchestration whose schedule is due; returns queued run ids."""
    now = now or utcnow()
    started: list[int] = []
    with factory() as session:
        due = session.execute(
            select(Orchestration.id, Orchestration.schedule, Orchestration.next_run_at).where(
                Orchestration.enabled.is_(True),
                Orchestration.schedule.is_not(None),
                Orchestration.next_run_at <= now,
            )
        ).all()
    for orchestration_id, schedule, fired_at in due:
        with transaction(factory) as session:
            claimed = session.execute(
                update(Orchestration)
                .where(Orchestration.id == orchestration_id, Orchestration.next_run_at == fired_at)
                .values(next_run_at=next_fire(str(schedule), now))
            )
            if not getattr(claimed, "rowcount", 0):
                continue  # another beat claimed this firing
            run = start_run(session, session.get_one(Orchestration, orchestration_id), "schedule")
            if run.status == "queued":
                started.append(run.id)
    return started


def resume_deferred_runs(factory: sessionmaker[Session], now: datetime | None = None) -> Work:
    """Set deferred runs whose day has come running again; returns their pending batches."""
    now = now or utcnow()
    runs: list[int] = []
    batches: list[int] = []
    with factory() as session:
        waiting = list(
            session.scalars(
                select(SyncRun.id).where(SyncRun.status == "deferred", SyncRun.resume_at <= now)
            )
        )
    for run_id in waiting:
        work = _resume(factory, run_id)
        if work is not None:
            runs.extend(work.runs)
            batches.extend(work.batches)
    return Work(runs, batches)


def resume_due_run(
    factory: sessionmaker[Session], orchestration_id: int, now: datetime | None = None
) -> tuple[int, Work] | None:
    """The orchestration's deferred run, set going again if its day has come: its id and what
    is left (to plan, or batches to write). For `segsync sync`, which needs no beat."""
    now = now or utcnow()
    with factory() as session:
        run_id = session.scalar(
            select(SyncRun.id).where(
                SyncRun.orchestration_id == orchestration_id,
                SyncRun.status == "deferred",
                SyncRun.resume_at <= now,
            )
        )
    if run_id is None:
        return None
    work = _resume(factory, run_id)
    return (run_id, work) if work is not None else None


def _resume(factory: sessionmaker[Session], run_id: int) -> Work | None:
    """Set one deferred run going again (compare-and-set); None if another did first."""
    with transaction(factory) as session:
        resumed = session.execute(
            update(SyncRun)
            .where(SyncRun.id == run_id, SyncRun.status == "deferred")
            .values(status="running", resume_at=None, reason=None)
        )
        if not getattr(resumed, "rowcount", 0):
            return None
        run = session.get_one(SyncRun, run_id)
        if run.batches_total == 0 and run.batches_done == 0:
            # Deferred while planning: nothing stored yet, so plan again.
            run.status = "queued"
            return Work([run_id], [])
        return Work([], _pending_batches(session, run_id))


def recover_stalled_plans(
    factory: sessionmaker[Session], planning_lease: timedelta, now: datetime | None = None
) -> list[int]:
    """Runs whose planner died (killed, or past its hard time limit): queued again, or failed
    once MAX_PLAN_ATTEMPTS planners of it died. Returns the run ids to send again.

    A run being planned is `running` with no batches stored; no planner outlives
    `planning_lease` (the planning task's hard time limit plus a margin), so one that started
    before that is gone. Should it still be alive, it stores nothing when it ends (sync.plan_run
    stores only for the attempt that holds the run).
    """
    now = now or utcnow()
    stalled = and_(
        SyncRun.status == "running",
        SyncRun.batches_total == 0,
        SyncRun.started_at < now - planning_lease,
    )
    with factory() as session:
        found = session.execute(
            select(SyncRun.id, SyncRun.plan_attempts, SyncRun.plans_lost).where(stalled)
        ).all()
    requeued: list[int] = []
    for run_id, attempts, lost_before in found:
        this = and_(SyncRun.id == run_id, SyncRun.plan_attempts == attempts, stalled)
        lost = lost_before + 1
        with transaction(factory) as session:
            if lost >= MAX_PLAN_ATTEMPTS:
                reason = (
                    f"planning did not finish in {lost} attempts (the worker died or ran "
                    f"past SEGSYNC_PLAN_TIME_LIMIT_SECONDS)"
                )
                values: dict[str, object] = {
                    "status": "failed",
                    "reason": reason,
                    "finished_at": now,
                    "plans_lost": lost,
                }
            else:
                values = {"status": "queued", "started_at": None, "plans_lost": lost}
            changed = session.execute(update(SyncRun).where(this).values(**values))
            if getattr(changed, "rowcount", 0) and values["status"] == "queued":
                requeued.append(run_id)
    return requeued


def mark_enqueued(factory: sessionmaker[Session], runs: list[int], batches: list[int]) -> None:
    """Record that tasks for these runs and batches were just sent."""
    now = utcnow()
    with transaction(factory) as session:
        if runs:
            session.execute(update(SyncRun).where(SyncRun.id.in_(runs)).values(enqueued_at=now))
        if batches:
            session.execute(
                update(SyncBatch).where(SyncBatch.id.in_(batches)).values(enqueued_at=now)
            )


def _pending_batches(session: Session, run_id: int) -> list[int]:
    return list(
        session.scalars(
            select(SyncBatch.id)
            .where(SyncBatch.run_id == run_id, SyncBatch.status == "pending")
            .order_by(SyncBatch.number)
        )
    )


def stalled_work(
    factory: sessionmaker[Session],
    now: datetime | None = None,
    stale_after: timedelta = STALE_AFTER,
) -> Work:
    """Runs and batches whose task message was probably lost or whose worker died."""
    now = now or utcnow()
    with factory() as session:
        runs = list(
            session.scalars(
                select(SyncRun.id).where(
                    SyncRun.status == "queued",
                    func.coalesce(SyncRun.enqueued_at, SyncRun.created_at) < now - stale_after,
                )
            )
        )
        batches = list(
            session.scalars(
                select(SyncBatch.id)
                .join(SyncRun, SyncRun.id == SyncBatch.run_id)
                .where(
                    SyncRun.status == "running",
                    ((SyncBatch.status == "running") & (SyncBatch.lease_until < now))
                    | (
                        (SyncBatch.status == "pending")
                        & (
                            func.coalesce(SyncBatch.enqueued_at, SyncRun.started_at)
                            < now - stale_after
                        )
                    ),
                )
                .order_by(SyncBatch.id)
            )
        )
    return Work(runs, batches)
