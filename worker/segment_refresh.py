"""Refreshing a segment read from a CRM: read its report, list view or list, then make the rows
its members (models.segment_refreshes), in this process or in a Celery task.

The CRM is read before the transaction that applies the rows is opened, as apply_crm_members
asks: that transaction holds the refresh until it commits, and a long read must not hold it.
A refresh whose read fails (a deleted report, a permission lost, a 429 past the adapter's own
retries, the daily limit) ends failed with a one-line reason and keeps the members it had.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import Connector
from connectors.errors import ConnectorError, FatalError, RetryableError
from connectors.hubspot import HubSpotConnector
from connectors.hubspot_members import company_list_members
from connectors.members import CrmMember
from connectors.salesforce import SalesforceConnector
from connectors.systems import VENDORS
from models.base import utcnow
from models.connections import Connection
from models.crm_sources import (
    CRM_SOURCE_KINDS,
    DEFAULT_REPORT_ID_COLUMN,
    due_crm_refreshes,
    require_crm_source,
)
from models.db import transaction
from models.errors import InputError, RuleError
from models.segment_catalog import find_segment
from models.segment_refreshes import (
    SegmentRefresh,
    apply_crm_members,
    claim_refresh,
    fail_refresh,
    fail_stalled_refreshes,
    queued_refreshes,
    start_refresh,
    start_scheduled_refresh,
)
from models.segments import Segment
from worker.connector_factory import connector_of

if TYPE_CHECKING:
    from worker.settings import Settings

log = logging.getLogger(__name__)

# (session, connection id) -> a ready connector for that stored connection.
ConnectorFor = Callable[[Session, int], Connector]


@dataclass(frozen=True)
class RefreshOutcome:
    """How one refresh ended: succeeded, failed (with why), or skipped (another process has it
    or it had ended), with what it read and changed."""

    refresh_id: int
    segment: str
    status: str
    reason: str | None = None
    rows_read: int = 0
    entered: int = 0
    exited: int = 0
    unmatched: int = 0
    members: int = 0

    @property
    def succeeded(self) -> bool:
        """Whether the refresh read its source and applied the rows."""
        return self.status == "succeeded"


@dataclass(frozen=True)
class _Source:
    """What a claimed refresh reads, copied out of its session."""

    segment: str
    segment_id: int
    connection_id: int
    kind: str
    ref: str
    column: str | None


def read_crm_members(
    connector: Connector, kind: str, ref: str, column: str | None = None
) -> list[CrmMember]:
    """Every row of the CRM source `kind` (models.crm_sources.CRM_SOURCE_KINDS) `ref`, read
    through `connector`; FatalError, in one line, when the connector cannot read that kind."""
    source_kind = CRM_SOURCE_KINDS.get(kind)
    if source_kind is None:
        raise FatalError(f"unknown CRM source {kind!r} (sources: {', '.join(CRM_SOURCE_KINDS)})")
    rows: Iterator[CrmMember]
    if kind == "salesforce_report" and isinstance(connector, SalesforceConnector):
        rows = connector.report_members(ref, column or DEFAULT_REPORT_ID_COLUMN)
    elif kind == "salesforce_list_view" and isinstance(connector, SalesforceConnector):
        rows = connector.list_view_members(ref)
    elif kind == "hubspot_list" and isinstance(connector, HubSpotConnector):
        rows = company_list_members(connector, ref)
    else:
        actual = (
            VENDORS[connector.system].title if connector.system in VENDORS else connector.system
        )
        raise FatalError(
            f"a {source_kind.title} is read through a {VENDORS[source_kind.system].title} "
            f"connection, not a {actual} one",
            code="WRONG_CONNECTOR",
        )
    return list(rows)


def stored_connectors(settings: Settings, where: str = "") -> ConnectorFor:
    """Builds the connector of a stored connection (by id) with `settings`' secret key and
    shared rate limit, as the worker builds an orchestration's (worker.connector_factory)."""
    from connectors.ratelimit import rate_limiter

    limiter = rate_limiter(settings.shared_redis_url())
    secret_key = settings.secret_key_text()

    def build(session: Session, connection_id: int) -> Connector:
        connection = session.get_one(Connection, connection_id)
        return connector_of(connection, secret_key, limiter, where=where)

    return build


def refresh_now(
    factory: sessionmaker[Session],
    segment_name: str,
    trigger: str = "manual",
    *,
    connector_for: ConnectorFor | None = None,
) -> RefreshOutcome:
    """Refresh segment `segment_name` in this process: queue a refresh (RefreshActiveError when
    one is active), then run it. Connectors come from `connector_for`, by default built with the
    environment's settings (SEGSYNC_SECRET_KEY, Redis for the shared rate limit)."""
    refresh_id = queue_refresh(factory, segment_name, trigger)
    if connector_for is not None:
        return run_refresh(factory, refresh_id, connector_for)
    from worker.settings import Settings

    return run_refresh_here(factory, refresh_id, Settings())


def queue_refresh(factory: sessionmaker[Session], segment_name: str, trigger: str) -> int:
    """Queue a refresh of segment `segment_name` (RefreshActiveError when one is active); its id."""
    with transaction(factory) as session:
        return start_refresh(session, find_segment(session, segment_name), trigger).id


def run_refresh_here(
    factory: sessionmaker[Session], refresh_id: int, settings: Settings
) -> RefreshOutcome:
    """run_refresh in this process, with connectors built from `settings` and closed after."""
    built: list[Connector] = []
    make = stored_connectors(settings)

    def build(session: Session, connection_id: int) -> Connector:
        built.append(make(session, connection_id))
        return built[-1]

    try:
        return run_refresh(factory, refresh_id, build)
    finally:
        for connector in built:
            connector.close()


def run_refresh(
    factory: sessionmaker[Session], refresh_id: int, connector_for: ConnectorFor
) -> RefreshOutcome:
    """Run queued refresh `refresh_id`: claim it (skipped when another process has it), read
    its CRM source, then apply the rows; a read that fails ends it failed, members kept."""
    with transaction(factory) as session:
        refresh = claim_refresh(session, refresh_id)
        if refresh is None:
            return _skipped(session, refresh_id)
        source = _source_of(session, refresh)
    try:
        members = _read(factory, source, connector_for)
    except (ConnectorError, InputError) as exc:
        # Both carry one secret-free line (connectors.errors, connector_factory.connector_of).
        return _failed(factory, refresh_id, source, _reason(source, exc))
    except SoftTimeLimitExceeded:
        _failed(factory, refresh_id, source, "reading the CRM took longer than its time limit")
        raise
    except Exception as exc:
        # A bug: recorded without its message (it may carry anything, a secret included).
        reason = f"the refresh failed unexpectedly ({type(exc).__name__}); see the logs"
        _failed(factory, refresh_id, source, reason)
        raise
    with transaction(factory) as session:
        refresh = session.get_one(SegmentRefresh, refresh_id)
        try:
            apply_crm_members(session, refresh, members)
        except RuleError:
            # Failed meanwhile (the sweeper took it for stalled): its reason stands, and
            # nothing was changed.
            return _outcome(refresh, source.segment)
        outcome = _outcome(refresh, source.segment)
    log.info(
        "refresh %d of segment %d: %d rows read, %d entered, %d exited, %d unmatched",
        refresh_id,
        source.segment_id,
        outcome.rows_read,
        outcome.entered,
        outcome.exited,
        outcome.unmatched,
    )
    return outcome


def start_due_refreshes(factory: sessionmaker[Session], now: datetime | None = None) -> list[int]:
    """Queue a refresh of every CRM segment whose schedule is due (each firing claimed by
    compare-and-set, so two beats queue it once); the queued refreshes' ids, to send."""
    now = now or utcnow()
    with factory() as session:
        due = due_crm_refreshes(session, now)
    started: list[int] = []
    for firing in due:
        with transaction(factory) as session:
            refresh = start_scheduled_refresh(session, firing, now)
            if refresh is not None:
                started.append(refresh.id)
    return started


def sweep_refreshes(
    factory: sessionmaker[Session],
    lease: timedelta,
    stale_after: timedelta,
    now: datetime | None = None,
) -> list[int]:
    """Fail the refreshes running for longer than `lease` (their worker died: no refresh task
    outlives its hard time limit), and return those queued for longer than `stale_after` (their
    message was most likely lost) to send again: a second delivery is harmless."""
    now = now or utcnow()
    with transaction(factory) as session:
        stalled = fail_stalled_refreshes(session, now - lease)
        lost = queued_refreshes(session, now - stale_after)
    for refresh_id in stalled:
        log.warning(
            "refresh %d failed: the worker refreshing it stopped before it ended", refresh_id
        )
    return lost


def _source_of(session: Session, refresh: SegmentRefresh) -> _Source:
    segment = session.get_one(Segment, refresh.segment_id)
    source = require_crm_source(session, segment)
    return _Source(
        segment.name,
        segment.id,
        source.connection_id,
        source.kind,
        source.crm_object_id,
        source.id_column,
    )


def _read(
    factory: sessionmaker[Session], source: _Source, connector_for: ConnectorFor
) -> list[CrmMember]:
    # The session only builds the connector; it is closed before the (long) read begins.
    with factory() as session:
        connector = connector_for(session, source.connection_id)
    return read_crm_members(connector, source.kind, source.ref, source.column)


def _reason(source: _Source, exc: Exception) -> str:
    read = f"reading {CRM_SOURCE_KINDS[source.kind].title} {source.ref}"
    if isinstance(exc, RetryableError):
        # The adapter asked again in place (connectors.base.READ_PAGE_ATTEMPTS) before giving up;
        # the refresh is not retried: the next one, on demand or by schedule, reads it anew.
        return f"{read} was still refused after retrying: {exc}"
    return f"{read} failed: {exc}"


def _failed(
    factory: sessionmaker[Session], refresh_id: int, source: _Source, reason: str
) -> RefreshOutcome:
    with transaction(factory) as session:
        refresh = session.get_one(SegmentRefresh, refresh_id)
        fail_refresh(session, refresh, reason)
        outcome = _outcome(refresh, source.segment)
    log.warning("refresh %d of segment %d failed: %s", refresh_id, source.segment_id, reason)
    return outcome


def _skipped(session: Session, refresh_id: int) -> RefreshOutcome:
    refresh = session.get(SegmentRefresh, refresh_id)
    if refresh is None:
        return RefreshOutcome(refresh_id, "", "skipped", f"refresh {refresh_id} does not exist")
    segment = session.get_one(Segment, refresh.segment_id).name
    state = "being run by another process" if refresh.status == "running" else refresh.status
    return RefreshOutcome(
        refresh_id, segment, "skipped", f"refresh {refresh_id} is {state}: not run again"
    )


def _outcome(refresh: SegmentRefresh, segment: str) -> RefreshOutcome:
    return RefreshOutcome(
        refresh.id,
        segment,
        refresh.status,
        refresh.reason,
        refresh.rows_read,
        refresh.entered,
        refresh.exited,
        refresh.unmatched,
        refresh.members,
    )
