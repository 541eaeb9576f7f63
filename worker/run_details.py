"""One run in detail, as data: what `segsync runs show ID` prints and `GET /v1/runs/{id}` answers.

Times are UTC datetimes here; each caller writes them its own way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.errors import NotFoundError
from models.orchestrations import Orchestration
from models.record_states import read_description
from models.runs import RUN_COUNTS, RecordFailure, SyncRun


@dataclass(frozen=True)
class FailedRecord:
    """A record the run could not write, with the vendor's code and message."""

    record_id: str
    code: str | None
    message: str | None


@dataclass(frozen=True)
class RunDetails:
    """A run's outcome, times, progress and counts, and the records it could not write."""

    run_id: int
    orchestration: str
    status: str
    reason: str | None
    trigger: str
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    resume_at: datetime | None
    records_read: int
    # "full", or "incremental: records changed since ..." (models.record_states).
    read: str | None
    batches_done: int
    batches_total: int
    counts: dict[str, int]
    failures: list[FailedRecord]

    @property
    def seconds(self) -> float | None:
        """How long the run took, from when it began (or was triggered, if it never began)."""
        began = self.started_at or self.created_at
        if self.finished_at is None or began is None:
            return None
        return max(0.0, (self.finished_at - began).total_seconds())


def as_utc(moment: datetime | None) -> datetime | None:
    """`moment` as an aware UTC datetime (SQLite hands back naive ones; segsync stores UTC)."""
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def details_of(session: Session, run: SyncRun) -> RunDetails:
    """`run` in detail, with each record it could not write in the order they failed."""
    failures = [
        FailedRecord(failure.record_id, failure.code, failure.message)
        for failure in session.scalars(
            select(RecordFailure).where(RecordFailure.run_id == run.id).order_by(RecordFailure.id)
        )
    ]
    return RunDetails(
        run_id=run.id,
        orchestration=session.get_one(Orchestration, run.orchestration_id).name,
        status=run.status,
        reason=run.reason,
        trigger=run.trigger,
        created_at=as_utc(run.created_at),
        started_at=as_utc(run.started_at),
        finished_at=as_utc(run.finished_at),
        resume_at=as_utc(run.resume_at),
        records_read=run.records_read,
        read=read_description(run.read_mode, run.read_since),
        batches_done=run.batches_done,
        batches_total=run.batches_total,
        counts={key: getattr(run, key) for key in RUN_COUNTS},
        failures=failures,
    )


def run_details(session: Session, run_id: int) -> RunDetails:
    """Run `run_id` in detail; NotFoundError when there is none."""
    run = session.get(SyncRun, run_id)
    if run is None:
        raise NotFoundError(f"no run {run_id}")
    return details_of(session, run)
