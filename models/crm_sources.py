"""Segments whose members are read from a CRM: a Salesforce report or list view, or a HubSpot
company list, through one connection, optionally refreshed on a cron schedule (UTC).

The source is stored beside its segment; models.segment_refreshes records each refresh.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from sqlalchemy import DateTime, ForeignKey, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from connectors.systems import VENDORS
from models.base import Base, utcnow
from models.connections import Connection, find_connection
from models.errors import InputError, RuleError
from models.schedules import check_schedule, next_fire
from models.segment_catalog import (
    add_segment,
    check_segment_name_free,
    clean_segment_name,
    find_segment,
    name_key,
)
from models.segments import Segment, SegmentFilter

# The report column holding the Account ID when none is named: the Reports and Dashboards REST
# API names a standard Account report's "Account ID" column ACCOUNT_ID in its detailColumns.
DEFAULT_REPORT_ID_COLUMN = "ACCOUNT_ID"
# Every Salesforce record id (reports' and list views' too) is 15 case-sensitive or 18
# case-insensitive letters and digits.
_SALESFORCE_ID = re.compile(r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")
# HubSpot list ids (Lists v3 `listId`) are numbers, sent as strings.
_HUBSPOT_LIST_ID = re.compile(r"^[0-9]{1,20}$")
# A report column's API name: ACCOUNT_ID, Account.Id, CUST_ID, Account.My_Id__c.
_COLUMN = re.compile(r"^[A-Za-z][A-Za-z0-9_.]{0,254}$")


@dataclass(frozen=True)
class CrmSourceKind:
    """One kind of CRM source: which system it reads and how the segment's definition shows it."""

    name: str
    # The connection's system it needs (connectors.systems).
    system: str
    # The segment's source (models.vocabulary.SOURCES).
    source: str
    # The kind of the definition's one filter (models.segments.FILTER_KINDS), as the reference
    # names it: "Accounts in Salesforce Report", "Salesforce Account List"; a HubSpot list is
    # a CRM & MAP filter.
    filter_kind: str
    # How a message names the thing read, and its id.
    title: str
    id_label: str
    id_pattern: re.Pattern[str]
    id_shape: str


CRM_SOURCE_KINDS = MappingProxyType(
    {
        kind.name: kind
        for kind in (
            CrmSourceKind(
                "salesforce_report",
                "salesforce",
                "crm_report_sync",
                "salesforce_report",
                "Salesforce report",
                "report id",
                _SALESFORCE_ID,
                "a Salesforce id of 15 or 18 letters and digits",
            ),
            CrmSourceKind(
                "salesforce_list_view",
                "salesforce",
                "crm_list_sync",
                "salesforce_account_list",
                "Salesforce list view",
                "list view id",
                _SALESFORCE_ID,
                "a Salesforce id of 15 or 18 letters and digits",
            ),
            CrmSourceKind(
                "hubspot_list",
                "hubspot",
                "crm_list_sync",
                "crm_map",
                "HubSpot company list",
                "list id",
                _HUBSPOT_LIST_ID,
                "a HubSpot list id (digits)",
            ),
        )
    }
)


class CrmSource(Base):
    """Where a segment's members are read from, and when it is next refreshed by schedule."""

    __tablename__ = "segment_crm_sources"

    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True
    )
    # A connection a segment reads from is not deleted (models.connections refuses it).
    connection_id: Mapped[int] = mapped_column(
        ForeignKey("connections.id", ondelete="RESTRICT"), index=True
    )
    # One of CRM_SOURCE_KINDS.
    kind: Mapped[str] = mapped_column(String(32))
    # The report's, list view's or list's id in the CRM.
    crm_object_id: Mapped[str] = mapped_column(String(64))
    # The report column holding the account id (reports only).
    id_column: Mapped[str | None] = mapped_column(String(255))
    # Five-field cron expression (UTC); None refreshes only on demand.
    schedule: Mapped[str | None] = mapped_column(String(100))
    # When the schedule next fires; beats claim it with compare-and-set.
    next_refresh_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def create_crm_segment(
    session: Session,
    name: str,
    *,
    connection: str,
    kind: str,
    ref: str,
    column: str | None = None,
    folder: str | None = None,
    schedule: str | None = None,
) -> Segment:
    """Create a segment whose members come from `kind` `ref` read through connection
    `connection` (by name); it has no members until its first refresh. The caller commits."""
    name = clean_segment_name(name)
    source_kind = CRM_SOURCE_KINDS.get(kind)
    if source_kind is None:
        raise InputError(f"unknown CRM source {kind!r} (sources: {', '.join(CRM_SOURCE_KINDS)})")
    crm_object_id = _checked_id(source_kind, ref)
    id_column = _checked_column(source_kind, column)
    cron = check_schedule(schedule) if schedule is not None else None
    check_segment_name_free(session, name)
    # Locked until commit, as orchestrations lock theirs: a deletion of it waits, then sees us.
    found = find_connection(session, connection.strip(), lock=True)
    _check_system(source_kind, found)
    segment = Segment(
        name=name,
        name_key=name_key(name),
        folder=(folder or "").strip() or None,
        source=source_kind.source,
        filter_expression=None,
        member_count=0,
    )
    segment.filters = [
        SegmentFilter(
            position=1,
            kind=source_kind.filter_kind,
            description=describe(source_kind, crm_object_id, id_column, found.name),
        )
    ]
    add_segment(session, segment)
    session.add(
        CrmSource(
            segment_id=segment.id,
            connection_id=found.id,
            kind=source_kind.name,
            crm_object_id=crm_object_id,
            id_column=id_column,
            schedule=cron,
            next_refresh_at=next_fire(cron, utcnow()) if cron else None,
        )
    )
    session.flush()
    return segment


def describe(kind: CrmSourceKind, crm_object_id: str, column: str | None, connection: str) -> str:
    """How the segment's definition shows its source: what is read, and through what."""
    read = f"{kind.title} {crm_object_id}"
    if column is not None:
        read += f" (column {column})"
    return f"{read} via connection {connection}"


def crm_source(session: Session, segment: Segment) -> CrmSource | None:
    """Where `segment`'s members are read from, or None for a segment defined in segsync."""
    return session.get(CrmSource, segment.id)


def require_crm_source(session: Session, segment: Segment) -> CrmSource:
    """`segment`'s CRM source, or RuleError for a segment whose members are not read from one."""
    source = crm_source(session, segment)
    if source is None:
        raise RuleError(
            f"segment {segment.name!r} is not read from a CRM: its members come from its "
            f"{'filter' if segment.source == 'filter' else 'uploaded list'}"
        )
    return source


def source_kind(source: CrmSource) -> CrmSourceKind:
    """The kind of `source` (what it reads, from which system)."""
    return CRM_SOURCE_KINDS[source.kind]


def set_crm_schedule(session: Session, name: str, schedule: str | None) -> CrmSource:
    """Give segment `name` a refresh schedule (None: refreshed on demand only); caller commits."""
    cron = check_schedule(schedule) if schedule is not None else None
    source = require_crm_source(session, find_segment(session, name))
    source.schedule = cron
    source.next_refresh_at = next_fire(cron, utcnow()) if cron else None
    session.flush()
    return source


@dataclass(frozen=True)
class DueRefresh:
    """A segment whose refresh schedule has fired: claim this firing with `fired_at`."""

    segment_id: int
    segment_name: str
    fired_at: datetime


def due_crm_refreshes(session: Session, now: datetime | None = None) -> list[DueRefresh]:
    """Scheduled CRM segments whose next refresh time has passed, earliest first."""
    rows = session.execute(
        select(CrmSource.segment_id, Segment.name, CrmSource.next_refresh_at)
        .join(Segment, Segment.id == CrmSource.segment_id)
        .where(CrmSource.schedule.is_not(None), CrmSource.next_refresh_at <= (now or utcnow()))
        .order_by(CrmSource.next_refresh_at, CrmSource.segment_id)
    )
    return [
        DueRefresh(segment_id, name, fired_at)
        for segment_id, name, fired_at in rows
        if fired_at is not None  # never, by the query: for the type checker
    ]


def claim_firing(session: Session, due: DueRefresh, now: datetime | None = None) -> bool:
    """Move the segment's next refresh time past `now` if it is still `due.fired_at`
    (compare-and-set): True for the one beat that claims this firing. The caller commits."""
    now = now or utcnow()
    source = session.get(CrmSource, due.segment_id)
    if source is None or source.schedule is None:
        return False
    claimed = session.execute(
        update(CrmSource)
        .where(CrmSource.segment_id == due.segment_id, CrmSource.next_refresh_at == due.fired_at)
        .values(next_refresh_at=next_fire(source.schedule, now))
        .execution_options(synchronize_session="fetch")
    )
    return bool(getattr(claimed, "rowcount", 0))


def segments_reading(session: Session, connection_id: int) -> list[str]:
    """Names of the segments whose members are read through connection `connection_id`."""
    return sorted(
        session.scalars(
            select(Segment.name)
            .join(CrmSource, CrmSource.segment_id == Segment.id)
            .where(CrmSource.connection_id == connection_id)
        )
    )


def _checked_id(kind: CrmSourceKind, ref: str) -> str:
    text = ref.strip()
    if not text:
        raise InputError(f"a {kind.title} needs its {kind.id_label}; none was given")
    if not kind.id_pattern.match(text):
        raise InputError(f"{kind.id_label} {ref!r} is not {kind.id_shape}")
    return text


def _checked_column(kind: CrmSourceKind, column: str | None) -> str | None:
    if kind.name != "salesforce_report":
        if column is not None:
            raise InputError(f"a {kind.title} takes no id column; only a report does")
        return None
    text = DEFAULT_REPORT_ID_COLUMN if column is None else column.strip()
    if not text:
        raise InputError("the report's id column cannot be empty")
    if not _COLUMN.match(text):
        raise InputError(
            f"report column {column!r} is not a column's API name (letters, digits, '_' or '.', "
            "e.g. ACCOUNT_ID)"
        )
    return text


def _check_system(kind: CrmSourceKind, connection: Connection) -> None:
    if connection.system == kind.system:
        return
    wanted = VENDORS[kind.system].title
    vendor = VENDORS.get(connection.system)
    actual = vendor.title if vendor is not None else connection.system
    raise RuleError(
        f"connection {connection.name!r} is a {actual} connection; a {kind.title} is read "
        f"through a {wanted} connection"
    )
