"""Refreshing CRM segments in this process (worker.segment_refresh) against the Salesforce and
HubSpot emulators over HTTPS: the right members and counts for each kind of source, members that
follow the CRM's data, and failed reads that keep the members and say why."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import cast

import pytest
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import READ_PAGE_ATTEMPTS
from connectors.errors import FatalError
from connectors.sandbox.cluster import Sandbox
from connectors.sandbox.hubspot import HubSpotEmulator
from connectors.sandbox.salesforce import SalesforceEmulator
from connectors.sandbox.seeding import company_domain
from models.accounts import Account
from models.base import utcnow
from models.connections import ConnectionSpec, add_connection, new_secret_key
from models.crm_sources import CrmSource, create_crm_segment, set_crm_schedule
from models.segment_refreshes import (
    RefreshActiveError,
    SegmentRefresh,
    claim_refresh,
    start_refresh,
)
from models.segments import Segment, SegmentMembership
from tests.factories import add_accounts
from worker.connector_factory import build_connector
from worker.sandbox_connections import sandbox_connection
from worker.segment_refresh import (
    ConnectorFor,
    RefreshOutcome,
    read_crm_members,
    refresh_now,
    run_refresh,
    start_due_refreshes,
    stored_connectors,
    sweep_refreshes,
)
from worker.settings import Settings

# Seeded companies 1..12 in each emulator; accounts exist for 1..10: 1..8 linked by CRM id,
# 9 and 10 only by domain; 11 and 12 (and HubSpot's company 0) match no account.
COMPANIES = 12
LINKED = range(1, 9)
ACCOUNTS = range(1, 11)


class Crm:
    """The emulators, the database and a way to build connectors to the emulators."""

    def __init__(self, sandbox: Sandbox, factory: sessionmaker[Session], key: str) -> None:
        self.sandbox = sandbox
        self.factory = factory
        self.key = key
        self.connectors: ConnectorFor = stored_connectors(
            Settings(secret_key=SecretStr(key), broker_url=None, redis_url=None)
        )

    @property
    def salesforce(self) -> SalesforceEmulator:
        return cast(SalesforceEmulator, self.sandbox.emulators["salesforce"])

    @property
    def hubspot(self) -> HubSpotEmulator:
        return cast(HubSpotEmulator, self.sandbox.emulators["hubspot"])

    def link(self, system: str, number: int) -> str:
        return self.sandbox.seeded.links[system][number]

    def refresh(self, name: str) -> RefreshOutcome:
        return refresh_now(self.factory, name, connector_for=self.connectors)

    def members(self, name: str) -> set[int]:
        """The segment's members as seeded company numbers."""
        with self.factory() as session:
            domains = session.scalars(
                select(Account.domain)
                .join(SegmentMembership, SegmentMembership.account_id == Account.id)
                .join(Segment, Segment.id == SegmentMembership.segment_id)
                .where(Segment.name == name)
            )
            return {
                int(str(domain).removeprefix("company").removesuffix(".com")) for domain in domains
            }

    def refreshes(self, name: str) -> list[SegmentRefresh]:
        with self.factory() as session:
            return list(
                session.scalars(
                    select(SegmentRefresh)
                    .join(Segment, Segment.id == SegmentRefresh.segment_id)
                    .where(Segment.name == name)
                    .order_by(SegmentRefresh.id)
                )
            )


@pytest.fixture
def crm(session_factory: sessionmaker[Session]) -> Iterator[Crm]:
    key = new_secret_key()
    with Sandbox(["salesforce", "hubspot"], records=COMPANIES) as sandbox:
        described = sandbox.describe()
        with session_factory() as session:
            add_accounts(
                session,
                [
                    {
                        "external_id": f"c{n}",
                        "domain": company_domain(n),
                        "salesforce_account_id": (
                            sandbox.seeded.links["salesforce"][n] if n in LINKED else None
                        ),
                        "hubspot_company_id": (
                            sandbox.seeded.links["hubspot"][n] if n in LINKED else None
                        ),
                    }
                    for n in ACCOUNTS
                ],
            )
            for name, system in (("sf", "salesforce"), ("hs", "hubspot")):
                settings, secrets = sandbox_connection(system, described)
                add_connection(session, ConnectionSpec(name, system, settings, secrets, {}), key)
            salesforce = described["salesforce"]
            create_crm_segment(
                session,
                "Report",
                connection="sf",
                kind="salesforce_report",
                ref=salesforce["reports"]["accounts"],
            )
            create_crm_segment(
                session,
                "View",
                connection="sf",
                kind="salesforce_list_view",
                ref=salesforce["list_views"]["accounts"],
            )
            create_crm_segment(
                session,
                "Hub",
                connection="hs",
                kind="hubspot_list",
                ref=described["hubspot"]["lists"]["companies"],
            )
            session.commit()
        yield Crm(sandbox, session_factory, key)


def test_a_salesforce_report_refresh_matches_by_id_then_website(crm: Crm) -> None:
    outcome = crm.refresh("Report")
    assert outcome.status == "succeeded" and outcome.reason is None
    assert (outcome.rows_read, outcome.entered, outcome.exited) == (COMPANIES, 10, 0)
    assert (outcome.unmatched, outcome.members) == (2, 10)
    assert crm.members("Report") == set(ACCOUNTS)
    [stored] = crm.refreshes("Report")
    assert (stored.status, stored.trigger, stored.entered, stored.unmatched) == (
        "succeeded",
        "manual",
        10,
        2,
    )
    assert sorted(row["crm_id"] for row in stored.unmatched_rows) == sorted(
        crm.link("salesforce", n) for n in (11, 12)
    )


def test_a_salesforce_list_view_refresh_reads_the_views_query(crm: Crm) -> None:
    outcome = crm.refresh("View")
    assert (outcome.status, outcome.rows_read, outcome.entered, outcome.unmatched) == (
        "succeeded",
        COMPANIES,
        10,
        2,
    )
    assert crm.members("View") == set(ACCOUNTS)


def test_a_hubspot_list_refresh_matches_by_company_id_then_domain(crm: Crm) -> None:
    # The seeded list holds every third company from 0: 0 has no account, 3 and 6 are linked
    # by company id, 9 only by its domain.
    outcome = crm.refresh("Hub")
    assert (outcome.status, outcome.rows_read, outcome.entered, outcome.exited) == (
        "succeeded",
        4,
        3,
        0,
    )
    assert (outcome.unmatched, outcome.members) == (1, 3)
    assert crm.members("Hub") == {3, 6, 9}


def test_report_members_follow_the_reports_rows(crm: Crm) -> None:
    report = crm.sandbox.describe()["salesforce"]["reports"]["accounts"]
    crm.refresh("Report")
    crm.salesforce.remove_report_rows(report, [crm.link("salesforce", n) for n in (2, 9, 11)])
    outcome = crm.refresh("Report")
    assert (outcome.rows_read, outcome.entered, outcome.exited, outcome.unmatched) == (9, 0, 2, 1)
    assert crm.members("Report") == set(ACCOUNTS) - {2, 9}
    crm.salesforce.add_report_rows(report, [crm.link("salesforce", 2)])
    outcome = crm.refresh("Report")
    assert (outcome.entered, outcome.exited, outcome.members) == (1, 0, 9)
    assert crm.members("Report") == set(ACCOUNTS) - {9}
    assert [r.status for r in crm.refreshes("Report")] == ["succeeded"] * 3


def test_list_members_follow_the_lists_members(crm: Crm) -> None:
    listed = crm.sandbox.describe()["hubspot"]["lists"]["companies"]
    crm.refresh("Hub")
    crm.hubspot.remove_list_members(listed, [crm.link("hubspot", 3)])
    crm.hubspot.add_list_members(listed, [crm.link("hubspot", n) for n in (1, 10)])
    outcome = crm.refresh("Hub")
    assert (outcome.rows_read, outcome.entered, outcome.exited, outcome.members) == (5, 2, 1, 4)
    assert crm.members("Hub") == {1, 6, 9, 10}


def test_a_deleted_report_fails_the_refresh_keeping_the_members(crm: Crm) -> None:
    report = crm.sandbox.describe()["salesforce"]["reports"]["accounts"]
    crm.refresh("Report")
    del crm.salesforce.reports.reports[report]
    outcome = crm.refresh("Report")
    assert outcome.status == "failed"
    assert outcome.reason is not None and outcome.reason.startswith(
        f"reading Salesforce report {report} failed: "
    )
    assert "\n" not in outcome.reason
    assert crm.members("Report") == set(ACCOUNTS)
    failed = crm.refreshes("Report")[-1]
    assert (failed.status, failed.reason) == ("failed", outcome.reason)
    with crm.factory() as session:
        segment = session.scalars(select(Segment).where(Segment.name == "Report")).one()
        assert segment.member_count == 10


def test_a_429_past_the_adapters_retries_fails_the_refresh_keeping_the_members(
    crm: Crm,
) -> None:
    listed = crm.sandbox.describe()["hubspot"]["lists"]["companies"]
    crm.refresh("Hub")
    crm.hubspot.window_seconds = 0.2  # the adapter waits out each 429 this long
    crm.hubspot.faults.inject("rate_limit", count=READ_PAGE_ATTEMPTS, path="/memberships$")
    outcome = crm.refresh("Hub")
    assert outcome.status == "failed"
    assert outcome.reason is not None and "TEN_SECONDLY_ROLLING" in outcome.reason
    assert outcome.reason.startswith(
        f"reading HubSpot company list {listed} was still refused after retrying: hubspot rate "
        "limit TEN_SECONDLY_ROLLING reached"
    )
    assert crm.members("Hub") == {3, 6, 9}
    # The next refresh, with the limit passed, reads the list again.
    assert crm.refresh("Hub").status == "succeeded"


def test_the_daily_limit_fails_the_refresh_keeping_the_members(crm: Crm) -> None:
    crm.refresh("View")
    crm.salesforce.faults.inject("daily_limit")
    outcome = crm.refresh("View")
    assert outcome.status == "failed"
    assert outcome.reason is not None and "TotalRequests Limit exceeded" in outcome.reason
    assert crm.members("View") == set(ACCOUNTS)
    [_, failed] = crm.refreshes("View")
    assert failed.reason == outcome.reason


def test_a_claimed_refresh_is_not_run_twice(crm: Crm) -> None:
    with crm.factory() as session:
        segment = session.scalars(select(Segment).where(Segment.name == "Hub")).one()
        refresh_id = start_refresh(session, segment).id
        session.commit()
        assert claim_refresh(session, refresh_id) is not None
        session.commit()
    outcome = run_refresh(crm.factory, refresh_id, crm.connectors)
    assert outcome.status == "skipped"
    assert outcome.reason == f"refresh {refresh_id} is being run by another process: not run again"
    assert crm.members("Hub") == set()
    with pytest.raises(RefreshActiveError, match=r"refresh \d+ of it is still running"):
        crm.refresh("Hub")


def test_a_connector_of_the_wrong_system_is_refused_in_one_line(crm: Crm) -> None:
    settings, secrets = sandbox_connection("hubspot", crm.sandbox.describe())
    connector = build_connector("hubspot", settings, secrets)
    with pytest.raises(FatalError) as caught:
        read_crm_members(connector, "salesforce_report", "00O000000000001")
    assert str(caught.value) == (
        "a Salesforce report is read through a Salesforce connection, not a HubSpot one"
    )


def test_due_schedules_queue_one_refresh_each_and_a_claimed_firing_is_not_queued_again(
    crm: Crm,
) -> None:
    with crm.factory() as session:
        set_crm_schedule(session, "Report", "0 6 * * *")
        set_crm_schedule(session, "Hub", "*/5 * * * *")
        session.commit()
        due_at = session.scalars(select(CrmSource.next_refresh_at)).all()
    later = max(moment for moment in due_at if moment is not None) + timedelta(minutes=1)
    started = start_due_refreshes(crm.factory, later)
    assert len(started) == 2
    assert start_due_refreshes(crm.factory, later) == []  # the firings were claimed
    for refresh_id in started:
        assert run_refresh(crm.factory, refresh_id, crm.connectors).status == "succeeded"
    assert [r.trigger for r in crm.refreshes("Report") + crm.refreshes("Hub")] == ["schedule"] * 2
    assert crm.members("Hub") == {3, 6, 9} and crm.members("Report") == set(ACCOUNTS)


def test_the_sweep_fails_stalled_refreshes_and_returns_lost_queued_ones(crm: Crm) -> None:
    with crm.factory() as session:
        stalled = start_refresh(session, segment_named(session, "Report")).id
        lost = start_refresh(session, segment_named(session, "Hub")).id
        fresh = start_refresh(session, segment_named(session, "View")).id
        session.commit()
        claim_refresh(session, stalled)
        session.commit()
    lease, stale = timedelta(minutes=50), timedelta(minutes=30)
    assert sweep_refreshes(crm.factory, lease, stale) == []  # nothing is old yet
    with crm.factory() as session:
        session.execute(
            update(SegmentRefresh)
            .where(SegmentRefresh.id.in_([stalled, lost]))
            .values(
                started_at=utcnow() - timedelta(hours=1), created_at=utcnow() - timedelta(hours=1)
            )
        )
        session.commit()
    assert sweep_refreshes(crm.factory, lease, stale) == [lost]
    assert [(r.status, r.reason) for r in crm.refreshes("Report")] == [
        ("failed", "the worker refreshing it stopped before it ended")
    ]
    # The lost one is sent again; whichever delivery claims it first runs it, once.
    assert run_refresh(crm.factory, lost, crm.connectors).status == "succeeded"
    assert run_refresh(crm.factory, lost, crm.connectors).status == "skipped"
    # Queued recently: its message may well be on its way.
    assert [(r.id, r.status) for r in crm.refreshes("View")] == [(fresh, "queued")]


def segment_named(session: Session, name: str) -> Segment:
    return session.scalars(select(Segment).where(Segment.name == name)).one()


def test_by_default_connectors_are_built_with_the_environments_secret_key(
    crm: Crm, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("SEGSYNC_BROKER_URL", "SEGSYNC_REDIS_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("SEGSYNC_SECRET_KEY", crm.key)
    outcome = refresh_now(crm.factory, "hub")  # names match in any case
    assert (outcome.segment, outcome.status, outcome.members) == ("Hub", "succeeded", 3)


def test_a_connection_this_process_cannot_open_fails_the_refresh_saying_why(
    crm: Crm, monkeypatch: pytest.MonkeyPatch
) -> None:
    crm.refresh("Hub")
    monkeypatch.delenv("SEGSYNC_SECRET_KEY", raising=False)
    outcome = refresh_now(crm.factory, "Hub")
    listed = crm.sandbox.describe()["hubspot"]["lists"]["companies"]
    assert outcome.status == "failed"
    assert outcome.reason is not None
    assert outcome.reason.startswith(f"reading HubSpot company list {listed} failed: ")
    assert "SEGSYNC_SECRET_KEY" in outcome.reason
    assert crm.members("Hub") == {3, 6, 9}
