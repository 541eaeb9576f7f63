"""What a CRM segment's screens and API answers show of it: where its members are read from
(through which connection, on which schedule) and how its last refresh went."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.base import as_utc
from models.connections import Connection
from models.crm_sources import CrmSource, crm_source, describe, require_crm_source, source_kind
from models.errors import RuleError
from models.refresh_history import RECENT_REFRESHES, RefreshSummary, recent_refreshes
from models.segments import Segment


@dataclass(frozen=True)
class CrmSourceOverview:
    """A segment's CRM source as a person reads it."""

    # One of models.crm_sources.CRM_SOURCE_KINDS, and how it is named ("Salesforce report").
    kind: str
    title: str
    system: str
    connection: str
    # The report's, list view's or list's id in the CRM, and its label ("report id").
    object_id: str
    id_label: str
    column: str | None
    schedule: str | None
    next_refresh_at: datetime | None
    # "Salesforce report 00O... (column ACCOUNT_ID) via connection sf".
    description: str


@dataclass(frozen=True)
class CrmSegmentOverview:
    """A CRM segment's source and its newest refresh (None before the first)."""

    source: CrmSourceOverview
    last_refresh: RefreshSummary | None


@dataclass(frozen=True)
class CrmSegmentHistory:
    """A segment's CRM source and newest refreshes, newest first; for a segment not read from a
    CRM, no source, no refreshes, and why."""

    source: CrmSourceOverview | None
    not_from_crm: str | None
    refreshes: tuple[RefreshSummary, ...]


def crm_segment_history(
    session: Session, segment: Segment, limit: int = RECENT_REFRESHES
) -> CrmSegmentHistory:
    """`segment`'s CRM source and its newest `limit` refreshes, newest first."""
    try:
        source = require_crm_source(session, segment)
    except RuleError as refusal:  # what the rule says of such a segment, said once
        return CrmSegmentHistory(None, str(refusal), ())
    return CrmSegmentHistory(
        _overview(source, session.get_one(Connection, source.connection_id).name),
        None,
        tuple(recent_refreshes(session, segment, limit)),
    )


def crm_source_overview(session: Session, segment: Segment) -> CrmSourceOverview | None:
    """Where `segment`'s members are read from; None for a segment defined in segsync."""
    source = crm_source(session, segment)
    if source is None:
        return None
    return _overview(source, session.get_one(Connection, source.connection_id).name)


def crm_sources_by_segment(session: Session) -> dict[str, CrmSourceOverview]:
    """Every CRM segment's source, by segment name."""
    return {segment.name: source for segment, source in _crm_segments(session)}


def crm_segment_overviews(session: Session) -> dict[str, CrmSegmentOverview]:
    """Every CRM segment's source and newest refresh, by segment name (for the segment list)."""
    overviews = {}
    for segment, source in _crm_segments(session):
        # CRM segments are few (each is a report or list someone chose): one read each is cheap.
        newest = recent_refreshes(session, segment, limit=1)
        overviews[segment.name] = CrmSegmentOverview(source, newest[0] if newest else None)
    return overviews


def _crm_segments(session: Session) -> list[tuple[Segment, CrmSourceOverview]]:
    rows = session.execute(
        select(Segment, CrmSource, Connection.name)
        .join(CrmSource, CrmSource.segment_id == Segment.id)
        .join(Connection, Connection.id == CrmSource.connection_id)
    )
    return [(segment, _overview(source, connection)) for segment, source, connection in rows]


def _overview(source: CrmSource, connection: str) -> CrmSourceOverview:
    kind = source_kind(source)
    return CrmSourceOverview(
        kind=kind.name,
        title=kind.title,
        system=kind.system,
        connection=connection,
        object_id=source.crm_object_id,
        id_label=kind.id_label,
        column=source.id_column,
        schedule=source.schedule,
        next_refresh_at=as_utc(source.next_refresh_at) if source.next_refresh_at else None,
        description=describe(kind, source.crm_object_id, source.id_column, connection),
    )
