"""How the API shows a CRM segment's source and its recent refreshes (entered, exited, unmatched,
churn): GET /v1/segments/{name}/refreshes in web/v1/segments answers a SegmentRefreshes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from models.crm_segment_overview import CrmSourceOverview
from models.refresh_history import RefreshSummary


class CrmSourceView(BaseModel):
    """Where the segment's members are read from, and when its schedule next refreshes it."""

    kind: str = Field(description="salesforce_report, salesforce_list_view or hubspot_list.")
    title: str = Field(description="How the kind is named: Salesforce report, ...")
    system: str = Field(description="The CRM: salesforce or hubspot.")
    connection: str = Field(description="The connection it is read through.")
    object_id: str = Field(description="The report's, list view's or list's id in the CRM.")
    column: str | None = Field(description="The report column holding the account id (reports).")
    schedule: str | None = Field(description="Cron schedule (UTC); null: refreshed on demand.")
    next_refresh_at: datetime | None = Field(description="When the schedule next fires.")
    description: str = Field(description="The source in one line, as the segment's filter.")


class UnmatchedRowView(BaseModel):
    """A CRM row that matched no account (by CRM link id, then website domain)."""

    crm_id: str
    website: str | None
    name: str | None


class RefreshView(BaseModel):
    """One refresh: its outcome, times and what it changed."""

    id: int
    status: str = Field(description="queued, running, succeeded or failed.")
    trigger: str = Field(description="manual or schedule.")
    reason: str | None = Field(description="Why it failed; the previous members were kept.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    rows_read: int = Field(description="CRM rows read (a row listed twice counts twice).")
    entered: int = Field(description="Accounts that joined the segment.")
    exited: int = Field(description="Accounts that left it.")
    unmatched: int = Field(description="Distinct CRM rows matching no account.")
    members: int = Field(description="The segment's members after it.")
    churn: int = Field(description="entered + exited: how much the segment moved.")
    churn_rate: float | None = Field(
        description="churn / members before it; null when it had none before, or it failed."
    )
    unmatched_rows: list[UnmatchedRowView] = Field(
        description="The first 100 unmatched rows, to see what is missing or mislinked."
    )


class SegmentRefreshes(BaseModel):
    """A segment's CRM source and its newest refreshes, newest first."""

    segment: str
    source: str = Field(description="uploaded_list, crm_report_sync, crm_list_sync or filter.")
    crm_source: CrmSourceView | None = Field(
        description="Null for a segment defined in segsync (filter or uploaded list): it is "
        "never refreshed from a CRM, and `detail` says so."
    )
    detail: str | None = Field(description="Why there are no refreshes to show, when none can be.")
    refreshes: list[RefreshView]


def source_view(source: CrmSourceOverview) -> CrmSourceView:
    """`source` as the API answers it."""
    return CrmSourceView(
        kind=source.kind,
        title=source.title,
        system=source.system,
        connection=source.connection,
        object_id=source.object_id,
        column=source.column,
        schedule=source.schedule,
        next_refresh_at=source.next_refresh_at,
        description=source.description,
    )


def refresh_view(refresh: RefreshSummary) -> RefreshView:
    """`refresh` as the API answers it."""
    return RefreshView(
        id=refresh.id,
        status=refresh.status,
        trigger=refresh.trigger,
        reason=refresh.reason,
        created_at=refresh.created_at,
        started_at=refresh.started_at,
        finished_at=refresh.finished_at,
        rows_read=refresh.rows_read,
        entered=refresh.entered,
        exited=refresh.exited,
        unmatched=refresh.unmatched,
        members=refresh.members,
        churn=refresh.churn,
        churn_rate=refresh.churn_rate,
        unmatched_rows=[
            UnmatchedRowView(crm_id=row.crm_id, website=row.website, name=row.name)
            for row in refresh.unmatched_rows
        ],
    )
