"""Prometheus metrics of segsync's own figures, read from the database at each scrape.

Nothing is counted in this process: the rows the workers write are the counters, so any number
of workers feed the figures and a restart of any program loses none. Labels are bounded: an
orchestration's or a connection's name, a vendor, a status; never a record or an account.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import ColumnElement, Float, and_, case, cast, func, select
from sqlalchemy.orm import Session, sessionmaker

from models.base import as_utc, utcnow
from models.connections import Connection
from models.observability import ConnectionQuota
from models.orchestrations import Orchestration
from models.runs import ACTIVE_RUN_STATUSES, RUN_STATUSES, ApiUsage, SyncRun

# How a run ended; a run still queued, running or deferred has no outcome yet.
RUN_OUTCOMES = tuple(status for status in RUN_STATUSES if status not in ACTIVE_RUN_STATUSES)
# Runs last from seconds (nothing changed) to hours (a first full write of a large account).
DURATION_BUCKETS = (
    1.0,
    5.0,
    15.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
    7200.0,
    21600.0,
)
# The run counts summed per orchestration: metric name -> (SyncRun column, help).
_RECORD_COUNTS = {
    "segsync_records_written_total": (
        SyncRun.enriched,
        "Records whose field segsync wrote (the vendor confirmed each).",
    ),
    "segsync_records_failed_total": (
        SyncRun.failed,
        "Records the vendor refused, or that kept failing (listed by `segsync runs show`).",
    ),
    "segsync_records_unmatched_total": (
        SyncRun.unmatched,
        "Records read that matched no account.",
    ),
    "segsync_records_truncated_total": (
        SyncRun.truncated,
        "Records whose value was cut to the field's length.",
    ),
}


class SegsyncCollector(Collector):
    """Every segsync metric, computed from the database when Prometheus asks."""

    def __init__(
        self, sessions: sessionmaker[Session], now: Callable[[], datetime] = utcnow
    ) -> None:
        self._sessions = sessions
        self._now = now

    def collect(self) -> Iterable[Metric]:
        """Read every figure, then hand them over: a database error raises before any is sent."""
        now = self._now()
        with self._sessions() as session:
            return [
                *_run_metrics(session),
                *_duration_metric(session),
                *_active_run_metrics(session, now),
                *_connection_metrics(session, now.date()),
                *_quota_metrics(session),
            ]


def _run_metrics(session: Session) -> Iterator[Metric]:
    """Runs by outcome, record counts and batches retried, per orchestration."""
    counts = [func.coalesce(func.sum(column), 0) for column, _ in _RECORD_COUNTS.values()]
    rows = session.execute(
        select(
            Orchestration.name,
            SyncRun.status,
            func.count(SyncRun.id),
            func.coalesce(func.sum(SyncRun.batches_retried), 0),
            *counts,
        )
        .outerjoin(SyncRun, SyncRun.orchestration_id == Orchestration.id)
        .group_by(Orchestration.name, SyncRun.status)
    ).all()
    runs = CounterMetricFamily(
        "segsync_runs",
        "Runs that ended, by orchestration and outcome (skipped: another run was active).",
        labels=["orchestration", "outcome"],
    )
    retried = CounterMetricFamily(
        "segsync_batches_retried",
        "Batches put back to be written again after the vendor refused them for now.",
        labels=["orchestration"],
    )
    records = {
        name: CounterMetricFamily(name.removesuffix("_total"), text, labels=["orchestration"])
        for name, (_, text) in _RECORD_COUNTS.items()
    }
    ended: dict[tuple[str, str], int] = {}
    sums: dict[str, list[int]] = {}
    for name, status, count, batches_retried, *record_sums in rows:
        if status in RUN_OUTCOMES:
            ended[(name, status)] = int(count)
        totals = sums.setdefault(name, [0] * (1 + len(record_sums)))
        for index, value in enumerate((batches_retried, *record_sums)):
            totals[index] += int(value)
    for name, (batches_retried, *record_sums) in sorted(sums.items()):
        for outcome in RUN_OUTCOMES:
            runs.add_metric([name, outcome], ended.get((name, outcome), 0))
        retried.add_metric([name], batches_retried)
        for family, value in zip(records.values(), record_sums, strict=True):
            family.add_metric([name], value)
    yield runs
    yield from records.values()
    yield retried


def _run_seconds(session: Session) -> ColumnElement[float]:
    """A run's finished_at - started_at in seconds, in the database's own arithmetic."""
    start, end = SyncRun.started_at, SyncRun.finished_at
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.extract("epoch", end - start), Float)
    # SQLite keeps times as text; julianday() reads them as days.
    return cast((func.julianday(end) - func.julianday(start)) * 86400.0, Float)


def _duration_metric(session: Session) -> Iterator[Metric]:
    """How long runs that started took to end, bucketed in the database (not one row a run)."""
    seconds = _run_seconds(session)
    buckets = [
        func.coalesce(func.sum(case((seconds <= bound, 1), else_=0)), 0)
        for bound in DURATION_BUCKETS
    ]
    rows = session.execute(
        select(
            Orchestration.name,
            func.count(SyncRun.id),
            func.coalesce(func.sum(seconds), 0.0),
            *buckets,
        )
        .outerjoin(
            SyncRun,
            and_(
                SyncRun.orchestration_id == Orchestration.id,
                SyncRun.started_at.is_not(None),
                SyncRun.finished_at.is_not(None),
            ),
        )
        .group_by(Orchestration.name)
        .order_by(Orchestration.name)
    ).all()
    family = HistogramMetricFamily(
        "segsync_run_duration_seconds",
        "Time from a run's start (a worker took it) to its end, of runs that ended.",
        labels=["orchestration"],
    )
    for name, count, total, *cumulative in rows:
        family.add_metric(
            [name],
            [
                *(
                    (_bound(bound), int(n))
                    for bound, n in zip(DURATION_BUCKETS, cumulative, strict=True)
                ),
                ("+Inf", int(count)),
            ],
            sum_value=float(total),
        )
    yield family


def _bound(bound: float) -> str:
    # As prometheus_client writes `le` itself for these bounds: 1.0, 21600.0.
    return str(bound)


def _active_run_metrics(session: Session, now: datetime) -> Iterator[Metric]:
    """How many runs are active, and how long the oldest queued one has waited and the oldest
    running one has run (0 when there is none, so an alert's series never vanishes)."""
    active = dict(
        session.execute(
            select(SyncRun.status, func.count(SyncRun.id))
            .where(SyncRun.status.in_(ACTIVE_RUN_STATUSES))
            .group_by(SyncRun.status)
        ).all()
    )
    yield _gauge(
        "segsync_active_runs",
        "Runs queued, running, or deferred to the next day (a spent daily budget or quota).",
        ["status"],
        (([status], int(active.get(status, 0))) for status in ACTIVE_RUN_STATUSES),
    )
    since = {"queued": SyncRun.created_at, "running": SyncRun.started_at}
    ages = []
    for status, column in since.items():
        oldest = session.scalar(select(func.min(column)).where(SyncRun.status == status))
        seconds = (now - as_utc(oldest)).total_seconds() if oldest is not None else 0.0
        ages.append(([status], max(seconds, 0.0)))
    yield _gauge(
        "segsync_oldest_active_run_age_seconds",
        "Seconds the oldest queued run has waited since it was created, and the oldest running "
        "run has run since it started; 0 when there is none.",
        ["status"],
        ages,
    )


def _gauge(
    name: str,
    documentation: str,
    labels: list[str],
    samples: Iterable[tuple[list[str], float]],
) -> GaugeMetricFamily:
    """A gauge family with these (label values, value) samples."""
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for label_values, value in samples:
        family.add_metric(label_values, value)
    return family


def _connection_metrics(session: Session, today: date) -> Iterator[Metric]:
    """API calls and "too many requests" answers of each connection's runs, and today's calls."""
    labels = ["connection", "system"]
    calls = CounterMetricFamily(
        "segsync_api_calls",
        "Calls to the vendor's API made by the connection's runs (logins included).",
        labels=labels,
    )
    throttled = CounterMetricFamily(
        "segsync_throttled_responses",
        "Answers of too many requests (HTTP 429 or the vendor's rate-limit code) the "
        "connection's runs met.",
        labels=labels,
    )
    rows = session.execute(
        select(
            Connection.name,
            Connection.system,
            func.coalesce(func.sum(SyncRun.api_calls), 0),
            func.coalesce(func.sum(SyncRun.throttled), 0),
        )
        .outerjoin(Orchestration, Orchestration.connection_id == Connection.id)
        .outerjoin(SyncRun, SyncRun.orchestration_id == Orchestration.id)
        .group_by(Connection.name, Connection.system)
        .order_by(Connection.name)
    ).all()
    for name, system, call_count, throttled_count in rows:
        calls.add_metric([name, system], int(call_count))
        throttled.add_metric([name, system], int(throttled_count))
    yield calls
    yield throttled
    usage = session.execute(
        select(Connection.name, Connection.system, func.coalesce(func.sum(ApiUsage.calls), 0))
        .outerjoin(Orchestration, Orchestration.connection_id == Connection.id)
        .outerjoin(
            ApiUsage,
            and_(ApiUsage.orchestration_id == Orchestration.id, ApiUsage.day == today),
        )
        .group_by(Connection.name, Connection.system)
        .order_by(Connection.name)
    ).all()
    yield _gauge(
        "segsync_api_calls_today",
        "Calls made today (UTC) for the connection's orchestrations, as their daily API budgets "
        "count them (dry runs included).",
        labels,
        (([name, system], int(call_count)) for name, system, call_count in usage),
    )


def _quota_metrics(session: Session) -> Iterator[Metric]:
    """Each connection's quota as its vendor last reported it, where the vendor reports one."""
    labels = ["connection", "system", "period"]
    used = GaugeMetricFamily(
        "segsync_vendor_quota_used",
        "API calls of the period used, as the vendor reported.",
        labels=labels,
    )
    limit = GaugeMetricFamily(
        "segsync_vendor_quota_limit", "API calls the vendor allows in the period.", labels=labels
    )
    reported = GaugeMetricFamily(
        "segsync_vendor_quota_reported_timestamp_seconds",
        "When the vendor last reported the quota (Unix time).",
        labels=labels,
    )
    rows = session.execute(
        select(
            Connection.name,
            Connection.system,
            ConnectionQuota.period,
            ConnectionQuota.used,
            ConnectionQuota.limit,
            ConnectionQuota.reported_at,
        )
        .join(Connection, Connection.id == ConnectionQuota.connection_id)
        .order_by(Connection.name, ConnectionQuota.period)
    ).all()
    for name, system, period, used_calls, limit_calls, reported_at in rows:
        used.add_metric([name, system, period], used_calls)
        limit.add_metric([name, system, period], limit_calls)
        reported.add_metric([name, system, period], as_utc(reported_at).timestamp())
    yield used
    yield limit
    yield reported
