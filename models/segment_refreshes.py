"""Refreshes of segments read from a CRM: one at a time per segment, each recording who entered,
who left and which CRM rows matched no account.

Correctness lives here, not in Celery: a refresh moves queued -> running -> succeeded or failed
by conditional UPDATE, so a task delivered twice finds its refresh already taken and does nothing,
and a partial unique index allows one queued or running refresh per segment.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any, Protocol, TypeVar

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from connectors.systems import VENDORS
from models.accounts import Account
from models.base import Base, utcnow
from models.crm_sources import DueRefresh, claim_firing, require_crm_source, source_kind
from models.errors import RuleError
from models.matching import (
    AccountIndex,
    domain_or_none,
    match_account,
    salesforce_id_forms,
    salesforce_id_key,
)
from models.segments import Segment, SegmentMembership
from models.vocabulary import LINK_COLUMNS

ACTIVE_REFRESH_STATUSES = ("queued", "running")
REFRESH_STATUSES = (*ACTIVE_REFRESH_STATUSES, "succeeded", "failed")
REFRESH_TRIGGERS = ("manual", "schedule")
# At most this many unmatched rows are kept per refresh: enough to see what is wrong.
UNMATCHED_SAMPLE_SIZE = 100
# Longest reason kept: one line a person reads, not a vendor's whole error page.
_MAX_REASON = 1000
# Longest text of an unmatched row kept (a CRM's name and website fields are this long).
_MAX_ROW_TEXT = 255
# Keys looked up per query (well under every database's limit on bound parameters).
_CHUNK = 500

_ACTIVE = "status IN ('queued', 'running')"
T = TypeVar("T")


class SegmentRefresh(Base):
    """One reading of a segment's CRM source, with what it changed."""

    __tablename__ = "segment_refreshes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), index=True
    )
    trigger: Mapped[str] = mapped_column(String(16), default="manual")
    status: Mapped[str] = mapped_column(String(16), default="queued")
    # Why it failed (a failed refresh kept the previous members).
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # When its task was last sent: the sweeper sends it again only if that was long ago.
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # CRM rows read (a row repeated by the report counts each time).
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    # Accounts that joined and left the segment, and distinct CRM rows matching no account.
    entered: Mapped[int] = mapped_column(Integer, default=0)
    exited: Mapped[int] = mapped_column(Integer, default=0)
    unmatched: Mapped[int] = mapped_column(Integer, default=0)
    # The segment's member count after it.
    members: Mapped[int] = mapped_column(Integer, default=0)
    # The first UNMATCHED_SAMPLE_SIZE unmatched rows: [{"crm_id", "website", "name"}, ...].
    unmatched_rows: Mapped[list[Any]] = mapped_column(JSON, default=list)

    # One active refresh per segment: a second is refused, naming the first.
    __table_args__ = (
        Index(
            "uq_segment_refreshes_one_active",
            "segment_id",
            unique=True,
            postgresql_where=text(_ACTIVE),
            sqlite_where=text(_ACTIVE),
        ),
    )


class CrmMemberRow(Protocol):
    """One row read from a CRM source (connectors.members.CrmMember is one)."""

    @property
    def crm_id(self) -> str:
        """The row's id in the CRM: a Salesforce Account Id, a HubSpot company id."""

    @property
    def website(self) -> str | None:
        """The row's website or domain as the CRM holds it."""

    @property
    def name(self) -> str | None:
        """The row's name, to list it when it matches no account."""


class RefreshActiveError(RuleError):
    """A segment already has a queued or running refresh."""

    def __init__(self, segment: Segment, active: SegmentRefresh | None) -> None:
        if active is None:  # it ended between our insert and our look: try again
            detail = "another refresh of it was active"
        else:
            detail = f"refresh {active.id} of it is still {active.status}"
        super().__init__(f"segment {segment.name!r} is being refreshed: {detail}")
        self.active_id = active.id if active is not None else None


def start_refresh(session: Session, segment: Segment, trigger: str = "manual") -> SegmentRefresh:
    """Record a queued refresh of `segment` (read from a CRM); RefreshActiveError when one is
    already queued or running. The caller commits, then hands its id to a worker."""
    if trigger not in REFRESH_TRIGGERS:
        raise ValueError(f"unknown refresh trigger {trigger!r}")
    require_crm_source(session, segment)
    refresh = SegmentRefresh(segment_id=segment.id, trigger=trigger, status="queued")
    try:
        with session.begin_nested():
            session.add(refresh)
            session.flush()
    except IntegrityError:
        raise RefreshActiveError(segment, active_refresh(session, segment)) from None
    return refresh


def start_scheduled_refresh(
    session: Session, due: DueRefresh, now: datetime | None = None
) -> SegmentRefresh | None:
    """Claim a due schedule firing (compare-and-set) and queue its refresh; None when another
    beat claimed it, or when a refresh of the segment is already active (that refresh brings it
    up to date). The caller commits."""
    if not claim_firing(session, due, now):
        return None
    try:
        return start_refresh(session, session.get_one(Segment, due.segment_id), "schedule")
    except RefreshActiveError:
        return None


def active_refresh(session: Session, segment: Segment) -> SegmentRefresh | None:
    """`segment`'s queued or running refresh, if it has one."""
    return session.scalar(
        select(SegmentRefresh).where(
            SegmentRefresh.segment_id == segment.id,
            SegmentRefresh.status.in_(ACTIVE_REFRESH_STATUSES),
        )
    )


def claim_refresh(session: Session, refresh_id: int) -> SegmentRefresh | None:
    """Take queued refresh `refresh_id` to run it (compare-and-set): the refresh, or None when
    another worker took it or it ended. The caller commits before reading the CRM."""
    claimed = session.execute(
        update(SegmentRefresh)
        .where(SegmentRefresh.id == refresh_id, SegmentRefresh.status == "queued")
        .values(status="running", started_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if not getattr(claimed, "rowcount", 0):
        return None
    return session.get_one(SegmentRefresh, refresh_id, populate_existing=True)


def apply_crm_members(
    session: Session, refresh: SegmentRefresh, members: Iterable[CrmMemberRow]
) -> SegmentRefresh:
    """End running `refresh` by making the CRM rows `members` its segment's members: matched to
    accounts by CRM link id, then registrable domain of the website; counts who entered, who
    left and the rows matching no account. All in the caller's transaction (the caller commits).

    Read the CRM first and pass the rows: this holds the refresh until the caller commits.
    RuleError when the refresh is no longer running (failed meanwhile, or applied already).
    """
    finished = session.execute(
        update(SegmentRefresh)
        .where(SegmentRefresh.id == refresh.id, SegmentRefresh.status == "running")
        .values(status="succeeded", finished_at=utcnow(), reason=None)
        .execution_options(synchronize_session=False)
    )
    session.refresh(refresh)
    if not getattr(finished, "rowcount", 0):
        raise RuleError(
            f"refresh {refresh.id} is {refresh.status}, not running: its members were not applied"
        )
    segment = session.get_one(Segment, refresh.segment_id)
    system = source_kind(require_crm_source(session, segment)).system
    found = _match(session, system, members)
    entered, exited = _replace_members(session, segment, found.matched)
    segment.member_count = len(found.matched)
    segment.refreshed_at = utcnow()
    refresh.rows_read = found.rows_read
    refresh.entered = entered
    refresh.exited = exited
    refresh.unmatched = found.unmatched
    refresh.members = len(found.matched)
    refresh.unmatched_rows = found.sample
    session.flush()
    return refresh


def fail_refresh(session: Session, refresh: SegmentRefresh, reason: str) -> bool:
    """End queued or running `refresh` as failed because of `reason`, keeping its segment's
    members as they were; False when it had already ended. The caller commits."""
    failed = session.execute(
        update(SegmentRefresh)
        .where(
            SegmentRefresh.id == refresh.id,
            SegmentRefresh.status.in_(ACTIVE_REFRESH_STATUSES),
        )
        .values(status="failed", finished_at=utcnow(), reason=_one_line(reason))
        .execution_options(synchronize_session=False)
    )
    if not getattr(failed, "rowcount", 0):
        return False
    session.refresh(refresh)
    return True


def fail_stalled_refreshes(session: Session, started_before: datetime) -> list[int]:
    """Fail the running refreshes started before `started_before` (their worker died: killed,
    or past its time limit), so their segments can be refreshed again. The caller commits."""
    stalled = list(
        session.scalars(
            select(SegmentRefresh).where(
                SegmentRefresh.status == "running", SegmentRefresh.started_at < started_before
            )
        )
    )
    return [
        refresh.id
        for refresh in stalled
        if fail_refresh(session, refresh, "the worker refreshing it stopped before it ended")
    ]


def queued_refreshes(session: Session, sent_before: datetime) -> list[int]:
    """Refreshes still queued whose task was last sent (or, never sent, that were made) before
    `sent_before`: their message was most likely lost (a broker restart), and sending it again
    is harmless. A refresh waiting in a long queue is sent again only once per such period."""
    last_sent = func.coalesce(SegmentRefresh.enqueued_at, SegmentRefresh.created_at)
    return list(
        session.scalars(
            select(SegmentRefresh.id)
            .where(SegmentRefresh.status == "queued", last_sent < sent_before)
            .order_by(SegmentRefresh.id)
        )
    )


def mark_refresh_sent(session: Session, refresh_id: int, now: datetime | None = None) -> None:
    """Record that the task of refresh `refresh_id` was sent now; the caller commits."""
    session.execute(
        update(SegmentRefresh)
        .where(SegmentRefresh.id == refresh_id)
        .values(enqueued_at=now or utcnow())
    )


@dataclass
class _Matching:
    """What matching a source's rows found."""

    matched: set[int] = field(default_factory=set)
    rows_read: int = 0
    # Distinct rows matching no account, and the first UNMATCHED_SAMPLE_SIZE of them.
    unmatched: int = 0
    sample: list[dict[str, str | None]] = field(default_factory=list)


def _match(session: Session, system: str, members: Iterable[CrmMemberRow]) -> _Matching:
    salesforce_ids = VENDORS[system].links_are_salesforce_ids
    found = _Matching()
    seen: set[str] = set()
    for chunk in _chunks(iter(members), _CHUNK):
        found.rows_read += len(chunk)
        distinct: list[CrmMemberRow] = []
        for row in chunk:
            crm_id = row.crm_id.strip()
            # A report may list an account twice (a summary report, one row per opportunity).
            key = salesforce_id_key(crm_id) if salesforce_ids else crm_id
            if key and key in seen:
                continue
            seen.add(key)
            distinct.append(row)
        index = _index_for(session, system, salesforce_ids, distinct)
        for row in distinct:
            account_id = match_account(
                index, linked_account_id=row.crm_id.strip(), email=None, website=row.website
            )
            if account_id is not None:
                found.matched.add(account_id)
                continue
            found.unmatched += 1
            if len(found.sample) < UNMATCHED_SAMPLE_SIZE:
                found.sample.append(_row_json(row))
    return found


def _index_for(
    session: Session, system: str, salesforce_ids: bool, rows: list[CrmMemberRow]
) -> AccountIndex:
    """The accounts `rows` can match, indexed as models.matching matches them: those linked to
    one of their ids (either form of a Salesforce id) or having one of their websites' domains,
    so that a domain two accounts share is seen to be ambiguous."""
    link_column = getattr(Account, LINK_COLUMNS[system])
    links: set[str] = set()
    for row in rows:
        crm_id = row.crm_id.strip()
        if crm_id:
            links.update(salesforce_id_forms(crm_id) if salesforce_ids else (crm_id,))
    domains = {domain for row in rows if (domain := domain_or_none(row.website)) is not None}
    index = AccountIndex(link_key="salesforce" if salesforce_ids else "plain")
    if not links and not domains:
        return index
    found = session.execute(
        select(Account.id, link_column, Account.domain)
        .where(or_(link_column.in_(sorted(links)), Account.domain.in_(sorted(domains))))
        .order_by(Account.id)
    )
    for account_id, link, domain in found:
        index.add(account_id, str(link) if link else None, domain)
    return index


def _replace_members(session: Session, segment: Segment, wanted: set[int]) -> tuple[int, int]:
    """Make `wanted` the segment's members; (entered, exited)."""
    current = set(
        session.scalars(
            select(SegmentMembership.account_id).where(SegmentMembership.segment_id == segment.id)
        )
    )
    leaving = sorted(current - wanted)
    joining = sorted(wanted - current)
    for chunk in _chunks(iter(leaving), _CHUNK):
        session.execute(
            delete(SegmentMembership).where(
                SegmentMembership.segment_id == segment.id,
                SegmentMembership.account_id.in_(chunk),
            )
        )
    for chunk in _chunks(iter(joining), _CHUNK):
        session.execute(
            insert(SegmentMembership),
            [{"segment_id": segment.id, "account_id": account_id} for account_id in chunk],
        )
    return len(joining), len(leaving)


def _row_json(row: CrmMemberRow) -> dict[str, str | None]:
    def clipped(value: str | None) -> str | None:
        return value[:_MAX_ROW_TEXT] if value else None

    return {
        "crm_id": row.crm_id[:_MAX_ROW_TEXT],
        "website": clipped(row.website),
        "name": clipped(row.name),
    }


def _one_line(reason: str) -> str:
    line = " ".join(reason.split())
    return line if len(line) <= _MAX_REASON else line[: _MAX_REASON - 1] + "…"


def _chunks(items: Iterator[T], size: int) -> Iterator[list[T]]:
    while chunk := list(islice(items, size)):
        yield chunk
