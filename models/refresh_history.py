"""A CRM segment's recent refreshes, newest first, with their churn and the rows that matched no
account: what `segments show`, the API and the web app show of how much a GTM segment moves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.base import as_utc
from models.segment_refreshes import SegmentRefresh
from models.segments import Segment

# `segments show` lists this many refreshes unless asked for another number.
RECENT_REFRESHES = 10


@dataclass(frozen=True)
class UnmatchedRow:
    """A CRM row that matched no account."""

    crm_id: str
    website: str | None
    name: str | None


@dataclass(frozen=True)
class RefreshSummary:
    """One refresh of a segment's history: its outcome, times and churn."""

    id: int
    trigger: str
    status: str
    reason: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    rows_read: int
    entered: int
    exited: int
    unmatched: int
    members: int
    unmatched_rows: tuple[UnmatchedRow, ...]

    @property
    def churn(self) -> int:
        """Accounts that entered or left: how much the segment moved."""
        return self.entered + self.exited

    @property
    def churn_rate(self) -> float | None:
        """`churn` as a share of the members before it (None when it had none, or it failed)."""
        before = self.members - self.entered + self.exited
        if self.status != "succeeded" or before == 0:
            return None
        return self.churn / before


def recent_refreshes(
    session: Session, segment: Segment, limit: int = RECENT_REFRESHES
) -> list[RefreshSummary]:
    """The newest `limit` refreshes of `segment`, newest first."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    refreshes = session.scalars(
        select(SegmentRefresh)
        .where(SegmentRefresh.segment_id == segment.id)
        .order_by(SegmentRefresh.id.desc())
        .limit(limit)
    )
    return [_summary(refresh) for refresh in refreshes]


def _summary(refresh: SegmentRefresh) -> RefreshSummary:
    return RefreshSummary(
        id=refresh.id,
        trigger=refresh.trigger,
        status=refresh.status,
        reason=refresh.reason,
        created_at=as_utc(refresh.created_at),
        started_at=as_utc(refresh.started_at) if refresh.started_at else None,
        finished_at=as_utc(refresh.finished_at) if refresh.finished_at else None,
        rows_read=refresh.rows_read,
        entered=refresh.entered,
        exited=refresh.exited,
        unmatched=refresh.unmatched,
        members=refresh.members,
        unmatched_rows=tuple(
            UnmatchedRow(row["crm_id"], row.get("website"), row.get("name"))
            for row in refresh.unmatched_rows or []
        ),
    )
