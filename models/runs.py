"""Sync runs, their planned batches, each record's last confirmed value and each failure.

Correctness lives here, not in Celery: rows move between states by conditional UPDATE, so a task
delivered twice finds its row already claimed and does nothing.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow

# A run is active while queued, running, or deferred (waiting for tomorrow's API budget).
ACTIVE_RUN_STATUSES = ("queued", "running", "deferred")
# partial: every batch ended but some records failed (listed by `segsync runs show ID`);
# cancelled: stopped by a person at a batch boundary, its unwritten batches never written.
RUN_STATUSES = (
    *ACTIVE_RUN_STATUSES,
    "succeeded",
    "partial",
    "failed",
    "cancelled",
    "skipped",
)
# The counts every run carries, in the order listings show them.
RUN_COUNTS = ("eligible", "enriched", "unchanged", "unmatched", "truncated", "failed", "api_calls")
# cancelled: never written, because its run was cancelled before a worker took it.
BATCH_STATUSES = ("pending", "running", "done", "failed", "cancelled")


def partial_reason(run_id: int, failed: int) -> str:
    """Why a run whose every batch ended is partial, and where its failed records are listed."""
    records = "record" if failed == 1 else "records"
    return f"{failed} {records} failed: see `segsync runs show {run_id}`"


_ACTIVE = "status IN ('queued', 'running', 'deferred')"


class SyncRun(Base):
    """One run of one orchestration, with its counts."""

    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    orchestration_id: Mapped[int] = mapped_column(
        ForeignKey("orchestrations.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="queued")
    trigger: Mapped[str] = mapped_column(String(16), default="manual")
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When its task was last sent: the sweeper sends it again if that was long ago.
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A deferred run resumes at this time (the vendor's or the budget's next day).
    resume_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    field_max_length: Mapped[int | None] = mapped_column(Integer)
    eligible: Mapped[int] = mapped_column(Integer, default=0)
    enriched: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    unmatched: Mapped[int] = mapped_column(Integer, default=0)
    truncated: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    api_calls: Mapped[int] = mapped_column(Integer, default=0)
    batches_total: Mapped[int] = mapped_column(Integer, default=0)
    batches_done: Mapped[int] = mapped_column(Integer, default=0)
    # Times a worker began planning it: the planner whose attempt this is stores the batches,
    # and a run whose planners keep dying is failed after a few (worker.scheduling).
    plan_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Records read and compared so far by the planner: progress before any batch exists.
    records_read: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Planners the sweeper found dead (killed, or past their hard limit): after a few the run
    # fails. Not plan_attempts, which also counts a planner that put the run back itself to
    # retry a vendor's refusal.
    plans_lost: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Times one of its batches was put back to be written again after a retryable refusal.
    batches_retried: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Answers of "too many requests" (HTTP 429 or the vendor's own rate-limit code) it met.
    throttled: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # `segsync sync --full`: read every record whatever the watermark says.
    full_read: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # How its planner read: "full" or "incremental" (the records changed after read_since).
    read_mode: Mapped[str | None] = mapped_column(String(16))
    read_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # One active run per orchestration: a second trigger is recorded as skipped, never run twice.
    __table_args__ = (
        Index(
            "uq_sync_runs_one_active",
            "orchestration_id",
            unique=True,
            postgresql_where=text(_ACTIVE),
            sqlite_where=text(_ACTIVE),
        ),
    )


class SyncBatch(Base):
    """Up to the vendor's maximum of record updates, written by one task."""

    __tablename__ = "sync_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sync_runs.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A running batch whose lease has passed is taken again by the sweeper.
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # [[record_id, value], ...] in write order.
    updates: Mapped[list[Any]] = mapped_column(JSON)
    written: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    api_calls: Mapped[int] = mapped_column(Integer, default=0)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("uq_sync_batches_run_number", "run_id", "number", unique=True),
        Index("ix_sync_batches_status_lease", "status", "lease_until"),
    )


class RecordState(Base):
    """What segsync knows of one target record of one orchestration: the value it holds (as last
    read, or as segsync last confirmed writing it) and its match keys as last read.

    An incremental run reads only what the vendor changed; every other record is compared from
    here, so a change on segsync's side (segments, members, accounts, domains, the format)
    writes exactly the records it affects without reading them.
    """

    __tablename__ = "record_states"

    orchestration_id: Mapped[int] = mapped_column(
        ForeignKey("orchestrations.id", ondelete="CASCADE"), primary_key=True
    )
    record_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    # When the row last changed (read or written).
    written_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # models.matching.MatchKeys as last read; None for a row only ever written (before 0013).
    link: Mapped[str | None] = mapped_column(String(64))
    email_domain: Mapped[str | None] = mapped_column(String(255))
    website_domain: Mapped[str | None] = mapped_column(String(255))
    # When the record was last read from the vendor: a full read forgets the rows it did not see.
    seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ReadWatermark(Base):
    """Where an orchestration's next incremental read starts, and when it last read everything."""

    __tablename__ = "read_watermarks"

    orchestration_id: Mapped[int] = mapped_column(
        ForeignKey("orchestrations.id", ondelete="CASCADE"), primary_key=True
    )
    # The next read asks for the records the vendor changed after this moment.
    modified_since: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # When the last full read began: the next reconcile is due reconcile_days after it.
    full_read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The target field's own maximum length as the vendor described it at the last full read
    # (None: unlimited): incremental runs format values with it instead of describing again.
    field_max_length: Mapped[int | None] = mapped_column(Integer)


class ApiUsage(Base):
    """The API calls one orchestration's runs made on one UTC day: what its daily budget counts,
    whichever day the run began (a run deferred for the budget spends on the day it resumes)."""

    __tablename__ = "api_usage"

    orchestration_id: Mapped[int] = mapped_column(
        ForeignKey("orchestrations.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)


class RecordFailure(Base):
    """One record a run could not write, with the vendor's code and message."""

    __tablename__ = "record_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sync_runs.id", ondelete="CASCADE"), index=True)
    record_id: Mapped[str] = mapped_column(String(64))
    code: Mapped[str | None] = mapped_column(String(100))
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
