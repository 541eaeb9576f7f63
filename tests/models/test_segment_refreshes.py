"""Refreshes of CRM segments: one at a time, matched by CRM id then domain, churn recorded, and a
failed refresh keeps the members it found."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from connectors.members import CrmMember
from models.accounts import Account
from models.base import utcnow
from models.connections import ConnectionSpec, add_connection
from models.crm_sources import create_crm_segment
from models.errors import RuleError
from models.refresh_history import UnmatchedRow, recent_refreshes
from models.segment_refreshes import (
    UNMATCHED_SAMPLE_SIZE,
    RefreshActiveError,
    SegmentRefresh,
    apply_crm_members,
    claim_refresh,
    fail_refresh,
    fail_stalled_refreshes,
    mark_refresh_sent,
    queued_refreshes,
    start_refresh,
)
from models.segments import Segment, SegmentMembership
from tests.factories import add_accounts, add_bare_segments

# Salesforce ids: 15-character forms and their 18-character (case-safe) forms.
ACME_15, ACME_18 = "0015g00000AcmeA", "0015g00000AcmeAAAR"
GLOBEX_15, GLOBEX_18 = "0015g00000GlobX", "0015g00000GlobXAAR"
INITECH_18 = "0015g00000InitcAAB"


def members(session: Session, segment: Segment) -> set[str]:
    return set(
        session.scalars(
            select(Account.external_id)
            .join(SegmentMembership, SegmentMembership.account_id == Account.id)
            .where(SegmentMembership.segment_id == segment.id)
        )
    )


@pytest.fixture
def crm(session: Session) -> Session:
    """Accounts linked to Salesforce (by 15- and 18-character ids) and HubSpot, and connections."""
    add_accounts(
        session,
        [
            # Stored in the 15-character form: an 18-character id in a report must match it.
            {"external_id": "acme", "salesforce_account_id": ACME_15, "domain": "acme.com"},
            # Stored in the 18-character form: a 15-character id must match it.
            {"external_id": "globex", "salesforce_account_id": GLOBEX_18, "domain": "globex.com"},
            {"external_id": "initech", "domain": "initech.io", "hubspot_company_id": "901"},
            {"external_id": "umbrella", "domain": "umbrella.co.uk", "hubspot_company_id": "902"},
            # Two accounts share this domain: matching on it would be a guess.
            {"external_id": "twin-a", "domain": "twins.com"},
            {"external_id": "twin-b", "domain": "twins.com"},
        ],
    )
    for name, system in (("sf", "salesforce"), ("hs", "hubspot")):
        add_connection(session, ConnectionSpec(name, system, {}, {}, {"token": "T"}), None)
    create_crm_segment(session, "Report", connection="sf", kind="salesforce_report", ref="0" * 15)
    create_crm_segment(session, "Hub", connection="hs", kind="hubspot_list", ref="55")
    session.commit()
    return session


def segment(session: Session, name: str) -> Segment:
    return session.scalars(select(Segment).where(Segment.name == name)).one()


def running_refresh(session: Session, name: str) -> SegmentRefresh:
    queued = start_refresh(session, segment(session, name))
    session.commit()
    claimed = claim_refresh(session, queued.id)
    session.commit()
    assert claimed is not None
    return claimed


def refresh_with(session: Session, name: str, rows: list[CrmMember]) -> SegmentRefresh:
    refresh = apply_crm_members(session, running_refresh(session, name), rows)
    session.commit()
    return refresh


def test_salesforce_rows_match_by_id_in_either_form_case_sensitively(crm: Session) -> None:
    refresh = refresh_with(
        crm,
        "Report",
        [
            CrmMember(ACME_18, name="Acme"),  # 18 characters, account holds 15
            CrmMember(GLOBEX_15, name="Globex"),  # 15 characters, account holds 18
            # Globex's id with one letter's case changed names another record: no match.
            CrmMember(GLOBEX_15.replace("X", "x"), name="Globex look-alike"),
        ],
    )
    assert members(crm, segment(crm, "Report")) == {"acme", "globex"}
    assert (refresh.status, refresh.entered, refresh.exited, refresh.unmatched) == (
        "succeeded",
        2,
        0,
        1,
    )
    assert refresh.unmatched_rows == [
        {"crm_id": "0015g00000Globx", "website": None, "name": "Globex look-alike"}
    ]


def test_rows_whose_id_matches_nothing_match_by_website_domain(crm: Session) -> None:
    refresh = refresh_with(
        crm,
        "Report",
        [
            CrmMember(INITECH_18, website="https://www.Initech.io/about", name="Initech"),
            # Its id matches Acme: the id wins over the website.
            CrmMember(ACME_18, website="globex.com"),
            CrmMember("0015g00000Twins", website="twins.com", name="Twins"),
            CrmMember("0015g00000NoWeb", name="No website"),
            CrmMember("0015g00000BadWb", website="not a website", name="Junk"),
        ],
    )
    assert members(crm, segment(crm, "Report")) == {"initech", "acme"}
    assert refresh.unmatched == 3
    assert [row["name"] for row in refresh.unmatched_rows] == ["Twins", "No website", "Junk"]


def test_hubspot_rows_match_by_company_id_then_domain(crm: Session) -> None:
    refresh = refresh_with(
        crm,
        "Hub",
        [
            CrmMember("901"),
            CrmMember("777", website="umbrella.co.uk"),
            # A Salesforce id means nothing to a HubSpot list.
            CrmMember(ACME_18),
        ],
    )
    assert members(crm, segment(crm, "Hub")) == {"initech", "umbrella"}
    assert (refresh.entered, refresh.unmatched, refresh.members) == (2, 1, 2)


def test_two_refreshes_count_who_entered_and_who_left(crm: Session) -> None:
    first = refresh_with(
        crm,
        "Report",
        [
            CrmMember(ACME_18),
            CrmMember(GLOBEX_18),
            CrmMember(ACME_15),
            CrmMember("0015g00000Nobdy"),
        ],
    )
    assert (first.rows_read, first.entered, first.exited, first.unmatched, first.members) == (
        4,
        2,
        0,
        1,
        2,
    )
    report = segment(crm, "Report")
    assert report.member_count == 2 and report.refreshed_at is not None

    second = refresh_with(
        crm, "Report", [CrmMember(GLOBEX_15), CrmMember(INITECH_18, website="initech.io")]
    )
    assert (second.rows_read, second.entered, second.exited, second.unmatched) == (2, 1, 1, 0)
    assert members(crm, report) == {"globex", "initech"}
    assert segment(crm, "Report").member_count == 2

    history = recent_refreshes(crm, report)
    assert [(h.id, h.entered, h.exited, h.churn) for h in history] == [
        (second.id, 1, 1, 2),
        (first.id, 2, 0, 2),
    ]
    assert history[0].churn_rate == 1.0  # 2 moved of the 2 it had
    assert history[1].churn_rate is None  # it had none before
    assert history[1].unmatched_rows == (UnmatchedRow("0015g00000Nobdy", None, None),)
    assert [h.id for h in recent_refreshes(crm, report, limit=1)] == [second.id]
    # An empty source empties the segment.
    third = refresh_with(crm, "Report", [])
    assert (third.exited, third.members) == (2, 0)
    assert members(crm, report) == set()


def test_unmatched_rows_are_counted_all_and_listed_up_to_the_sample_size(crm: Session) -> None:
    rows = [CrmMember(f"{n:06d}", name=f"Company {n}", website=f"c{n}.example") for n in range(150)]
    refresh = refresh_with(crm, "Hub", rows)
    assert refresh.unmatched == 150
    listed = recent_refreshes(crm, segment(crm, "Hub"))[0].unmatched_rows
    assert len(listed) == UNMATCHED_SAMPLE_SIZE
    assert listed[0] == UnmatchedRow("000000", "c0.example", "Company 0")


def test_a_failed_refresh_keeps_the_members_and_says_why(crm: Session) -> None:
    refresh_with(crm, "Report", [CrmMember(ACME_18), CrmMember(GLOBEX_18)])
    failing = running_refresh(crm, "Report")
    assert fail_refresh(crm, failing, "report 00O... was deleted\n(NOT_FOUND)")
    crm.commit()
    report = segment(crm, "Report")
    assert members(crm, report) == {"acme", "globex"}
    assert report.member_count == 2
    latest = recent_refreshes(crm, report)[0]
    assert (latest.status, latest.reason) == ("failed", "report 00O... was deleted (NOT_FOUND)")
    assert latest.finished_at is not None and latest.churn_rate is None
    # An ended refresh neither fails again nor takes members.
    assert not fail_refresh(crm, failing, "again")
    with pytest.raises(RuleError, match=f"refresh {failing.id} is failed, not running"):
        apply_crm_members(crm, failing, [CrmMember(INITECH_18)])
    crm.rollback()
    assert members(crm, report) == {"acme", "globex"}
    # The segment can be refreshed again.
    assert refresh_with(crm, "Report", [CrmMember(ACME_18)]).exited == 1


def test_a_queued_refresh_can_fail_but_not_take_members(crm: Session) -> None:
    queued = start_refresh(crm, segment(crm, "Hub"))
    crm.commit()
    with pytest.raises(RuleError, match="is queued, not running"):
        apply_crm_members(crm, queued, [CrmMember("901")])
    crm.rollback()
    assert fail_refresh(crm, queued, "connection lost its token")
    crm.commit()
    assert claim_refresh(crm, queued.id) is None


def test_one_active_refresh_per_segment_named_in_the_refusal(crm: Session) -> None:
    report = segment(crm, "Report")
    first = start_refresh(crm, report)
    crm.commit()
    with pytest.raises(RefreshActiveError) as refused:
        start_refresh(crm, report, "schedule")
    assert str(refused.value) == (
        f"segment 'Report' is being refreshed: refresh {first.id} of it is still queued"
    )
    assert refused.value.active_id == first.id
    crm.rollback()
    # Another segment is refreshed meanwhile.
    start_refresh(crm, segment(crm, "Hub"))
    crm.commit()
    assert claim_refresh(crm, first.id) is not None
    crm.commit()
    with pytest.raises(RefreshActiveError, match="still running"):
        start_refresh(crm, report)
    crm.rollback()
    apply_crm_members(crm, first, [])
    crm.commit()
    assert start_refresh(crm, report).status == "queued"


def test_only_crm_segments_are_refreshed_from_a_crm(crm: Session) -> None:
    add_bare_segments(crm, ["Filtered"])
    with pytest.raises(RuleError, match="segment 'Filtered' is not read from a CRM"):
        start_refresh(crm, segment(crm, "Filtered"))


def test_a_refresh_is_claimed_once(crm: Session) -> None:
    queued = start_refresh(crm, segment(crm, "Report"))
    crm.commit()
    assert claim_refresh(crm, queued.id) is not None
    crm.commit()
    # The same task delivered twice finds it taken.
    assert claim_refresh(crm, queued.id) is None
    assert queued.started_at is not None and queued.status == "running"


def test_racing_starts_and_claims_let_one_through(
    crm: Session, session_factory: sessionmaker[Session]
) -> None:
    segment_id = segment(crm, "Report").id
    crm.rollback()  # SQLite: an open transaction would hold the write lock the racers wait for
    contenders = 4
    barrier = threading.Barrier(contenders)
    started: list[str] = []

    def start() -> None:
        with session_factory() as own:
            barrier.wait()
            try:
                start_refresh(own, own.get_one(Segment, segment_id))
                own.commit()
                started.append("started")
            except RefreshActiveError:
                own.rollback()
                started.append("refused")

    threads = [threading.Thread(target=start) for _ in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(started) == ["refused"] * (contenders - 1) + ["started"]
    (refresh_id,) = crm.scalars(select(SegmentRefresh.id)).all()
    crm.rollback()

    claimed: list[bool] = []
    barrier = threading.Barrier(contenders)

    def claim() -> None:
        with session_factory() as own:
            barrier.wait()
            claimed.append(claim_refresh(own, refresh_id) is not None)
            own.commit()

    threads = [threading.Thread(target=claim) for _ in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(claimed) == [False] * (contenders - 1) + [True]


def test_a_refresh_failed_while_members_are_applied_is_not_overwritten(
    crm: Session, session_factory: sessionmaker[Session], engine: Engine
) -> None:
    refresh = running_refresh(crm, "Report")
    apply_crm_members(crm, refresh, [CrmMember(ACME_18)])  # holds its refresh until commit
    outcome: list[bool] = []

    def fail_meanwhile() -> None:
        with session_factory() as own:
            outcome.append(fail_refresh(own, own.get_one(SegmentRefresh, refresh.id), "late"))
            own.commit()

    thread = threading.Thread(target=fail_meanwhile)
    thread.start()
    if engine.dialect.name == "postgresql":
        # The failing transaction waits on the refresh's row lock: then it sees the refresh ended.
        wait_for_a_lock_wait(engine)
    crm.commit()
    thread.join(timeout=120)
    assert outcome == [False]
    crm.expire_all()
    assert crm.get_one(SegmentRefresh, refresh.id).status == "succeeded"
    assert members(crm, segment(crm, "Report")) == {"acme"}


def wait_for_a_lock_wait(engine: Engine) -> None:
    deadline = time.monotonic() + 60
    with engine.connect() as connection:
        while time.monotonic() < deadline:
            waiting = connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar()
            connection.rollback()
            if waiting:
                return
            time.sleep(0.05)
    raise AssertionError("the failing transaction never waited on the refresh's lock")


def test_stalled_refreshes_fail_and_lost_queued_ones_are_found(crm: Session) -> None:
    stalled = running_refresh(crm, "Report")
    queued = start_refresh(crm, segment(crm, "Hub"))
    crm.commit()
    later = utcnow() + timedelta(hours=1)
    assert queued_refreshes(crm, later) == [queued.id]
    assert queued_refreshes(crm, later - timedelta(hours=2)) == []
    assert fail_stalled_refreshes(crm, later - timedelta(hours=2)) == []
    assert fail_stalled_refreshes(crm, later) == [stalled.id]
    crm.commit()
    crm.expire_all()
    ended = crm.get_one(SegmentRefresh, stalled.id)
    assert (ended.status, ended.reason) == (
        "failed",
        "the worker refreshing it stopped before it ended",
    )


def test_a_queued_refresh_is_found_lost_again_only_a_stale_period_after_its_last_send(
    crm: Session,
) -> None:
    queued = start_refresh(crm, segment(crm, "Hub"))
    crm.commit()
    stale = timedelta(minutes=10)
    sent = utcnow() + timedelta(hours=1)  # long after it was made: found lost, and sent again

    assert queued_refreshes(crm, sent - stale) == [queued.id]
    mark_refresh_sent(crm, queued.id, sent)
    crm.commit()

    # Waiting in a long queue, it is not sent on every sweep: only once a stale period passed.
    assert queued_refreshes(crm, sent + timedelta(minutes=5) - stale) == []
    assert queued_refreshes(crm, sent + timedelta(minutes=11) - stale) == [queued.id]
