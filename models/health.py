"""The rules `segsync health` holds the stored state to: beat's heartbeat is fresh, and no run
waits longer than the sweeper's limits allow.

The sweeper (beat's `sweep`, every beat interval) sends again a queued run or a pending batch whose
task was sent longer ago than SEGSYNC_STALE_AFTER_SECONDS, gives a batch whose lease has passed to
another worker, and plans again a run whose planner outlived its planning lease. So a run found
waiting past one of those limits, plus a margin for the sweep to come round, means the sweeper,
beat, the broker or every worker is not doing its part: that is what an operator must hear about.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from models.base import as_utc, utcnow
from models.observability import ServiceHeartbeat
from models.orchestrations import Orchestration
from models.runs import SyncBatch, SyncRun

# Beat records a heartbeat on every tick, and ticks at least once per beat interval: three
# intervals without one is not a slow tick but a beat that is gone (or cannot reach the database).
HEARTBEAT_STALE_AFTER_INTERVALS = 3
# Sweeps the margin allows for: one for the next sweep to come round after a limit passed, one
# for that sweep's task to wait behind others on busy workers and do its work.
MARGIN_SWEEPS = 2


@dataclass(frozen=True)
class Heartbeat:
    """The newest heartbeat of one kind of program, and how old it is."""

    component: str
    hostname: str
    pid: int
    age: timedelta


def heartbeat_stale_after(interval: timedelta) -> timedelta:
    """How old a heartbeat recorded every `interval` may be before its program counts as gone."""
    return interval * HEARTBEAT_STALE_AFTER_INTERVALS


def latest_heartbeat(
    session: Session, component: str, now: datetime | None = None
) -> Heartbeat | None:
    """The newest heartbeat of `component` on any host (None when none was ever recorded)."""
    now = now or utcnow()
    row = session.scalars(
        select(ServiceHeartbeat)
        .where(ServiceHeartbeat.component == component)
        .order_by(ServiceHeartbeat.seen_at.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return Heartbeat(row.component, row.hostname, row.pid, now - as_utc(row.seen_at))


@dataclass(frozen=True)
class RunLimits:
    """The sweeper's limits, from the settings of the workers and beat that apply them."""

    # A queued run or pending batch whose task was sent longer ago is sent again.
    stale_after: timedelta
    # A run still being planned this long after its planning began is planned again.
    planning_lease: timedelta
    # How often the sweeper runs (beat's interval).
    sweep_interval: timedelta

    @property
    def margin(self) -> timedelta:
        """How long past a limit the sweeper surely has acted."""
        return self.sweep_interval * MARGIN_SWEEPS


@dataclass(frozen=True)
class OverdueRun:
    """A run waiting longer than the sweeper's limits allow, and why it counts as overdue."""

    run_id: int
    orchestration: str
    status: str
    # How long it has been in its status: since its task was last sent (queued), since its
    # planning or writing began (running).
    age: timedelta
    why: str


def overdue_runs(
    session: Session, limits: RunLimits, now: datetime | None = None
) -> list[OverdueRun]:
    """Every queued or running run the sweeper should long since have acted on, oldest first."""
    now = now or utcnow()
    rows = session.execute(
        select(SyncRun, Orchestration.name)
        .join(Orchestration, Orchestration.id == SyncRun.orchestration_id)
        .where(SyncRun.status.in_(("queued", "running")))
        .order_by(SyncRun.id)
    ).all()
    overdue: list[OverdueRun] = []
    writing: dict[int, tuple[SyncRun, str]] = {}
    for run, name in rows:
        if run.status == "queued":
            found = _overdue_queued(run, name, limits, now)
        elif run.batches_total == 0:
            found = _overdue_planning(run, name, limits, now)
        else:
            writing[run.id] = (run, name)
            continue
        if found is not None:
            overdue.append(found)
    overdue.extend(_overdue_writing(session, writing, limits, now))
    return sorted(overdue, key=lambda run: run.age, reverse=True)


def _overdue_queued(run: SyncRun, name: str, limits: RunLimits, now: datetime) -> OverdueRun | None:
    # A queued run not taken by a worker is sent again each time stale_after passes, which
    # refreshes enqueued_at; so only a run nobody sent again for longer (no sweeper, no broker)
    # is overdue. A run waiting behind a long queue on busy but live workers is not.
    sent_at = as_utc(run.enqueued_at or run.created_at)
    waited = now - sent_at
    if waited <= limits.stale_after + limits.margin:
        return None
    why = (
        f"not sent again for {duration(waited)}; the sweeper sends a queued run again after "
        f"{duration(limits.stale_after)}"
    )
    return OverdueRun(run.id, name, run.status, waited, why)


def _overdue_planning(
    run: SyncRun, name: str, limits: RunLimits, now: datetime
) -> OverdueRun | None:
    # Running with no batch stored: being planned. Past its planning lease its planner has been
    # killed, and the sweeper queues the run again (or fails it): it cannot still be planning.
    started = as_utc(run.started_at or run.created_at)
    planning = now - started
    if planning <= limits.planning_lease + limits.margin:
        return None
    why = (
        f"planning for {duration(planning)}; the sweeper plans a run again after "
        f"{duration(limits.planning_lease)}"
    )
    return OverdueRun(run.id, name, run.status, planning, why)


def _overdue_writing(
    session: Session,
    runs: dict[int, tuple[SyncRun, str]],
    limits: RunLimits,
    now: datetime,
) -> list[OverdueRun]:
    # A run being written is as late as its latest batch: one running past its lease (its writer
    # died; the sweeper gives it to another worker) or one pending whose task was not sent again.
    if not runs:
        return []
    lease_passed = and_(SyncBatch.status == "running", SyncBatch.lease_until < now - limits.margin)
    sent_at = func.coalesce(SyncBatch.enqueued_at, SyncRun.started_at)
    unsent = and_(
        SyncBatch.status == "pending", sent_at < now - (limits.stale_after + limits.margin)
    )
    late = session.execute(
        select(SyncBatch.run_id, SyncBatch.number, SyncBatch.status, SyncBatch.lease_until, sent_at)
        .join(SyncRun, SyncRun.id == SyncBatch.run_id)
        .where(SyncBatch.run_id.in_(list(runs)), or_(lease_passed, unsent))
        .order_by(SyncBatch.run_id, SyncBatch.number)
    ).all()
    by_run: dict[int, list[str]] = {}
    for run_id, number, status, lease_until, batch_sent_at in late:
        total = runs[run_id][0].batches_total
        if status == "running":
            assert lease_until is not None  # lease_passed compared it
            past = now - as_utc(lease_until)
            why = (
                f"batch {number}/{total} running {duration(past)} past its lease; the sweeper "
                "gives such a batch to another worker"
            )
        else:
            waited = now - as_utc(batch_sent_at)
            why = (
                f"batch {number}/{total} pending, not sent again for {duration(waited)}; the "
                f"sweeper sends a pending batch again after {duration(limits.stale_after)}"
            )
        by_run.setdefault(run_id, []).append(why)
    overdue: list[OverdueRun] = []
    for run_id, reasons in by_run.items():
        run, name = runs[run_id]
        more = f" (and {len(reasons) - 1} more batches)" if len(reasons) > 1 else ""
        age = now - as_utc(run.started_at or run.created_at)
        overdue.append(OverdueRun(run_id, name, run.status, age, reasons[0] + more))
    return overdue


def duration(span: timedelta) -> str:
    """A span as a person reads it: `412 s`, `25 min`, `3 h 12 min`, `2 d 4 h`."""
    seconds = max(0, round(span.total_seconds()))
    if seconds < 600:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
