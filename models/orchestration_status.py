"""What an orchestration looks like to an operator: its target, schedule, when it next runs, and
how its last run ended (for `segsync orchestrations list` and `show`, and the web API)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.base import as_utc
from models.connections import Connection
from models.orchestrations import Orchestration, scope_text
from models.runs import SyncRun
from models.segments import Segment


@dataclass(frozen=True)
class LastRun:
    """The newest run of an orchestration that was not skipped (a skipped one did nothing)."""

    id: int
    status: str
    trigger: str
    started_at: datetime | None
    finished_at: datetime | None
    reason: str | None


@dataclass(frozen=True)
class OrchestrationStatus:
    """One orchestration's settings, next run and last run, with names in place of ids."""

    name: str
    connection: str
    system: str
    object_type: str
    field: str
    scope: str
    schedule: str | None
    # None when it runs only on demand or is disabled.
    next_run_at: datetime | None
    delimiter: str
    max_length: int | None
    keep_when_empty: bool
    daily_api_budget: int | None
    reconcile_days: int
    enabled: bool
    last_run: LastRun | None


def orchestration_statuses(session: Session, name: str | None = None) -> list[OrchestrationStatus]:
    """Every orchestration by name (or the one called `name`), with its last run."""
    query = (
        select(Orchestration, Connection.name, Connection.system, Segment.name)
        .join(Connection, Connection.id == Orchestration.connection_id)
        .outerjoin(Segment, Segment.id == Orchestration.scope_segment_id)
        .order_by(Orchestration.name)
    )
    if name is not None:
        query = query.where(Orchestration.name == name.strip())
    rows = session.execute(query).all()
    last = _last_runs(session, [orchestration.id for orchestration, *_ in rows])
    return [
        OrchestrationStatus(
            name=orchestration.name,
            connection=connection_name,
            system=system,
            object_type=orchestration.object_type,
            field=orchestration.field,
            scope=scope_text(orchestration, segment_name),
            schedule=orchestration.schedule,
            next_run_at=_next_run(orchestration),
            delimiter=orchestration.delimiter,
            max_length=orchestration.max_length,
            keep_when_empty=orchestration.keep_when_empty,
            daily_api_budget=orchestration.daily_api_budget,
            reconcile_days=orchestration.reconcile_days,
            enabled=orchestration.enabled,
            last_run=last.get(orchestration.id),
        )
        for orchestration, connection_name, system, segment_name in rows
    ]


def _next_run(orchestration: Orchestration) -> datetime | None:
    if not orchestration.enabled or not orchestration.schedule or not orchestration.next_run_at:
        return None
    return as_utc(orchestration.next_run_at)


def _last_runs(session: Session, orchestration_ids: list[int]) -> dict[int, LastRun]:
    if not orchestration_ids:
        return {}
    newest = (
        select(func.max(SyncRun.id))
        .where(SyncRun.orchestration_id.in_(orchestration_ids), SyncRun.status != "skipped")
        .group_by(SyncRun.orchestration_id)
    )
    return {
        run.orchestration_id: LastRun(
            id=run.id,
            status=run.status,
            trigger=run.trigger,
            started_at=as_utc(run.started_at) if run.started_at else None,
            finished_at=as_utc(run.finished_at) if run.finished_at else None,
            reason=run.reason,
        )
        for run in session.scalars(select(SyncRun).where(SyncRun.id.in_(newest)))
    }
