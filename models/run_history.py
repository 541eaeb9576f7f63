"""An orchestration's recent runs, newest first, with their counts: the run history the web app's
Orchestrations screen shows (as `segsync runs NAME` lists it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.base import as_utc
from models.orchestrations import find_orchestration
from models.runs import ACTIVE_RUN_STATUSES, RUN_COUNTS, SyncRun

# A history page shows this many runs unless asked for fewer.
RECENT_RUNS = 50


@dataclass(frozen=True)
class RunSummary:
    """One run of the history: its outcome, times and counts (`RUN_COUNTS` by name)."""

    id: int
    status: str
    trigger: str
    reason: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    counts: dict[str, int]

    @property
    def active(self) -> bool:
        """Whether the run has yet to end (queued, running or deferred)."""
        return self.status in ACTIVE_RUN_STATUSES


def recent_runs(session: Session, name: str, limit: int = RECENT_RUNS) -> list[RunSummary]:
    """The newest `limit` runs of orchestration `name` (skipped triggers included), newest
    first; NotFoundError when there is no such orchestration."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    orchestration = find_orchestration(session, name)
    runs = session.scalars(
        select(SyncRun)
        .where(SyncRun.orchestration_id == orchestration.id)
        .order_by(SyncRun.id.desc())
        .limit(limit)
    )
    return [
        RunSummary(
            id=run.id,
            status=run.status,
            trigger=run.trigger,
            reason=run.reason,
            created_at=as_utc(run.created_at),
            started_at=as_utc(run.started_at) if run.started_at else None,
            finished_at=as_utc(run.finished_at) if run.finished_at else None,
            counts={key: getattr(run, key) for key in RUN_COUNTS},
        )
        for run in runs
    ]
