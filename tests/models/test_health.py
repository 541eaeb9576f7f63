"""The rules `segsync health` holds stored state to: overdue runs and beat's heartbeat."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from models.base import utcnow
from models.connections import ConnectionSpec, add_connection
from models.health import (
    RunLimits,
    duration,
    heartbeat_stale_after,
    latest_heartbeat,
    overdue_runs,
)
from models.observability import record_heartbeat
from models.orchestrations import OrchestrationSpec, Scope, create_orchestration
from models.runs import SyncBatch, SyncRun

NOW = utcnow()
# The margin is two sweeps: 2 min.
LIMITS = RunLimits(
    stale_after=timedelta(minutes=30),
    planning_lease=timedelta(minutes=56),
    sweep_interval=timedelta(minutes=1),
)


def minutes_ago(minutes: float) -> Any:
    return NOW - timedelta(minutes=minutes)


def add_run(session: Session, orchestration: str, **fields: Any) -> SyncRun:
    """A run of a new orchestration named `orchestration` (one active run per orchestration)."""
    connection = add_connection(
        session,
        ConnectionSpec(f"hs-{orchestration}", "hubspot", {}, {}, {"access_token": "HS"}),
        None,
    )
    spec = OrchestrationSpec(
        orchestration, connection.id, "contacts", "segment_names", Scope("all")
    )
    created = create_orchestration(session, spec)
    run = SyncRun(orchestration_id=created.id, trigger="manual", **fields)
    session.add(run)
    session.flush()
    return run


def add_batch(session: Session, run: SyncRun, number: int, **fields: Any) -> None:
    session.add(SyncBatch(run_id=run.id, number=number, updates=[], **fields))
    session.flush()


def test_a_queued_run_sent_again_by_the_sweeper_is_not_overdue(session: Session) -> None:
    # Triggered hours ago, but sent again 31 min ago: past stale_after, within the margin.
    add_run(
        session, "Leads", status="queued", created_at=minutes_ago(300), enqueued_at=minutes_ago(31)
    )
    assert overdue_runs(session, LIMITS, NOW) == []


def test_a_queued_run_nobody_sent_again_past_the_limit_and_margin_is_overdue(
    session: Session,
) -> None:
    run = add_run(session, "Leads", status="queued", created_at=minutes_ago(33))
    (overdue,) = overdue_runs(session, LIMITS, NOW)
    assert (overdue.run_id, overdue.orchestration, overdue.status) == (run.id, "Leads", "queued")
    assert overdue.age == timedelta(minutes=33)
    assert overdue.why == (
        "not sent again for 33 min; the sweeper sends a queued run again after 30 min"
    )


def test_a_run_planning_longer_than_its_lease_and_margin_is_overdue(session: Session) -> None:
    add_run(session, "Fresh", status="running", started_at=minutes_ago(57))  # within the margin
    late = add_run(session, "Late", status="running", started_at=minutes_ago(59))
    (overdue,) = overdue_runs(session, LIMITS, NOW)
    assert (overdue.run_id, overdue.status, overdue.age) == (
        late.id,
        "running",
        timedelta(minutes=59),
    )
    assert overdue.why == "planning for 59 min; the sweeper plans a run again after 56 min"


def test_a_batch_running_past_its_lease_and_margin_makes_its_run_overdue(
    session: Session,
) -> None:
    run = add_run(session, "Leads", status="running", started_at=minutes_ago(90), batches_total=3)
    add_batch(session, run, 1, status="done")
    add_batch(session, run, 2, status="running", lease_until=minutes_ago(1))  # within the margin
    assert overdue_runs(session, LIMITS, NOW) == []
    add_batch(session, run, 3, status="running", lease_until=minutes_ago(15))
    (overdue,) = overdue_runs(session, LIMITS, NOW)
    assert (overdue.run_id, overdue.age) == (run.id, timedelta(minutes=90))
    assert overdue.why == (
        "batch 3/3 running 15 min past its lease; the sweeper gives such a batch to another worker"
    )


def test_a_pending_batch_nobody_sent_again_makes_its_run_overdue(session: Session) -> None:
    run = add_run(session, "Leads", status="running", started_at=minutes_ago(90), batches_total=2)
    add_batch(session, run, 1, status="pending", enqueued_at=minutes_ago(20))
    assert overdue_runs(session, LIMITS, NOW) == []
    add_batch(session, run, 2, status="pending")  # never sent: counted from the run's start
    (overdue,) = overdue_runs(session, LIMITS, NOW)
    assert overdue.why == (
        "batch 2/2 pending, not sent again for 90 min; "
        "the sweeper sends a pending batch again after 30 min"
    )


def test_ended_and_deferred_runs_are_never_overdue(session: Session) -> None:
    long_ago = {"created_at": minutes_ago(10_000), "started_at": minutes_ago(10_000)}
    add_run(session, "Done", status="succeeded", **long_ago)
    add_run(session, "Failed", status="failed", **long_ago)
    # Waiting for tomorrow's API budget is what a deferred run is for.
    add_run(session, "Deferred", status="deferred", resume_at=minutes_ago(-600), **long_ago)
    assert overdue_runs(session, LIMITS, NOW) == []


def test_overdue_runs_come_oldest_first(session: Session) -> None:
    newer = add_run(session, "Newer", status="queued", created_at=minutes_ago(40))
    older = add_run(session, "Older", status="queued", created_at=minutes_ago(400))
    assert [run.run_id for run in overdue_runs(session, LIMITS, NOW)] == [older.id, newer.id]


def test_the_latest_heartbeat_of_any_host_counts(session: Session) -> None:
    assert latest_heartbeat(session, "beat") is None
    record_heartbeat(session, "beat", "h1", 11)
    record_heartbeat(session, "beat", "h2", 22)
    record_heartbeat(session, "worker", "h3", 33)
    session.commit()
    heartbeat = latest_heartbeat(session, "beat", utcnow() + timedelta(seconds=5))
    assert heartbeat is not None
    assert (heartbeat.component, heartbeat.hostname, heartbeat.pid) == ("beat", "h2", 22)
    assert heartbeat.age >= timedelta(seconds=5)
    assert heartbeat_stale_after(timedelta(seconds=60)) == timedelta(seconds=180)


def test_durations_read_as_a_person_says_them() -> None:
    spans = [0, 59, 412, 599, 600, 7199, 7200, 11_520, 172_799, 187_200, 172_800]
    assert [duration(timedelta(seconds=s)) for s in spans] == [
        "0 s",
        "59 s",
        "412 s",
        "599 s",
        "10 min",
        "119 min",
        "2 h",
        "3 h 12 min",
        "47 h 59 min",
        "2 d 4 h",
        "2 d",
    ]
