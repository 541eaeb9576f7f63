"""Segments read from a CRM: created with a checked source, refused in one line, scheduled."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.base import as_utc, utcnow
from models.connections import ConnectionSpec, add_connection, delete_connection
from models.crm_sources import (
    CrmSource,
    create_crm_segment,
    crm_source,
    due_crm_refreshes,
    set_crm_schedule,
)
from models.errors import InputError, NotFoundError, RuleError
from models.publishing import gtm_ineligibility
from models.segment_catalog import (
    find_segment,
    list_segments,
    refresh_membership,
    refresh_segments,
)
from models.segment_refreshes import SegmentRefresh, start_scheduled_refresh
from models.segments import Segment

REPORT = "00O5g000004XyZaEAK"
LIST_VIEW = "00B5g00000AbCdE"


@pytest.fixture
def crm(session: Session) -> Session:
    """A session with a Salesforce connection `sf` and a HubSpot connection `hs`."""
    for name, system in (("sf", "salesforce"), ("hs", "hubspot"), ("mk", "marketo")):
        add_connection(session, ConnectionSpec(name, system, {}, {}, {"token": "T"}), None)
    session.commit()
    return session


def segment_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Segment)) or 0


def test_a_report_segment_shows_its_report_as_the_reference_names_it(crm: Session) -> None:
    segment = create_crm_segment(
        crm, " Named Accounts ", connection="sf", kind="salesforce_report", ref=REPORT, folder="ABM"
    )
    crm.commit()
    assert (segment.name, segment.folder, segment.source) == (
        "Named Accounts",
        "ABM",
        "crm_report_sync",
    )
    assert segment.member_count == 0 and segment.refreshed_at is None
    row = list_segments(crm)[0]
    assert row.filters == (
        ("salesforce_report", f"Salesforce report {REPORT} (column ACCOUNT_ID) via connection sf"),
    )
    source = crm_source(crm, segment)
    assert source is not None
    assert (source.kind, source.crm_object_id, source.id_column) == (
        "salesforce_report",
        REPORT,
        "ACCOUNT_ID",
    )
    assert source.schedule is None and source.next_refresh_at is None
    # Its source makes it a GTM segment.
    assert gtm_ineligibility(segment) is None


def test_list_view_and_hubspot_list_segments_are_list_syncs(crm: Session) -> None:
    view = create_crm_segment(
        crm, "View", connection="sf", kind="salesforce_list_view", ref=LIST_VIEW
    )
    hubspot = create_crm_segment(crm, "Hub", connection="hs", kind="hubspot_list", ref="123")
    report = create_crm_segment(
        crm, "Custom", connection="sf", kind="salesforce_report", ref=REPORT, column="Account.Id"
    )
    crm.commit()
    assert (view.source, hubspot.source) == ("crm_list_sync", "crm_list_sync")
    assert [(f.kind, f.description) for f in view.filters] == [
        ("salesforce_account_list", f"Salesforce list view {LIST_VIEW} via connection sf")
    ]
    assert [(f.kind, f.description) for f in hubspot.filters] == [
        ("crm_map", "HubSpot company list 123 via connection hs")
    ]
    custom = crm_source(crm, report)
    assert custom is not None and custom.id_column == "Account.Id"
    assert gtm_ineligibility(view) is None and gtm_ineligibility(hubspot) is None


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (
            {"connection": "nope", "kind": "salesforce_report", "ref": REPORT},
            NotFoundError,
            "no connection named 'nope'",
        ),
        (
            {"connection": "hs", "kind": "salesforce_report", "ref": REPORT},
            RuleError,
            "connection 'hs' is a HubSpot connection; a Salesforce report is read through a "
            "Salesforce connection",
        ),
        (
            {"connection": "sf", "kind": "hubspot_list", "ref": "123"},
            RuleError,
            "connection 'sf' is a Salesforce connection; a HubSpot company list is read through "
            "a HubSpot connection",
        ),
        (
            {"connection": "mk", "kind": "salesforce_list_view", "ref": LIST_VIEW},
            RuleError,
            "connection 'mk' is a Marketo connection; a Salesforce list view is read through a "
            "Salesforce connection",
        ),
        (
            {"connection": "sf", "kind": "salesforce_report", "ref": "  "},
            InputError,
            "a Salesforce report needs its report id; none was given",
        ),
        (
            {"connection": "hs", "kind": "hubspot_list", "ref": ""},
            InputError,
            "a HubSpot company list needs its list id; none was given",
        ),
        (
            {"connection": "sf", "kind": "salesforce_list_view", "ref": "00B5g/../x"},
            InputError,
            "list view id '00B5g/../x' is not a Salesforce id of 15 or 18 letters and digits",
        ),
        (
            {"connection": "hs", "kind": "hubspot_list", "ref": "abc"},
            InputError,
            "list id 'abc' is not a HubSpot list id (digits)",
        ),
        (
            {"connection": "sf", "kind": "salesforce_report", "ref": REPORT, "column": " "},
            InputError,
            "the report's id column cannot be empty",
        ),
        (
            {"connection": "sf", "kind": "salesforce_report", "ref": REPORT, "column": "A ID"},
            InputError,
            "report column 'A ID' is not a column's API name",
        ),
        (
            {"connection": "sf", "kind": "salesforce_list_view", "ref": LIST_VIEW, "column": "X"},
            InputError,
            "a Salesforce list view takes no id column; only a report does",
        ),
        (
            {"connection": "sf", "kind": "salesforce_report", "ref": REPORT, "schedule": "daily"},
            InputError,
            "schedule 'daily' must have five fields",
        ),
        (
            {
                "connection": "sf",
                "kind": "salesforce_report",
                "ref": REPORT,
                "schedule": "61 * * * *",
            },
            InputError,
            "schedule '61 * * * *' is not a valid cron expression",
        ),
        (
            {"connection": "sf", "kind": "marketo_list", "ref": "1"},
            InputError,
            "unknown CRM source 'marketo_list' (sources: salesforce_report, salesforce_list_view, "
            "hubspot_list)",
        ),
    ],
)
def test_refusals_are_one_line_and_store_nothing(
    crm: Session, options: dict[str, str], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as refused:
        create_crm_segment(crm, "Accounts", **options)
    assert str(refused.value).startswith(message)
    assert "\n" not in str(refused.value)
    crm.rollback()
    assert segment_count(crm) == 0


def test_names_follow_the_rules_of_every_segment(crm: Session) -> None:
    create_crm_segment(crm, "Accounts", connection="sf", kind="salesforce_report", ref=REPORT)
    crm.commit()
    with pytest.raises(RuleError, match="a segment named 'ACCOUNTS' already exists"):
        create_crm_segment(crm, "ACCOUNTS", connection="hs", kind="hubspot_list", ref="1")
    crm.rollback()
    with pytest.raises(InputError, match="a segment name cannot be empty"):
        create_crm_segment(crm, "  ", connection="hs", kind="hubspot_list", ref="1")
    crm.rollback()
    assert segment_count(crm) == 1


def test_members_of_a_crm_segment_are_not_recomputed_from_a_list(crm: Session) -> None:
    segment = create_crm_segment(
        crm, "Accounts", connection="sf", kind="salesforce_report", ref=REPORT
    )
    crm.commit()
    with pytest.raises(RuleError) as refused:
        refresh_membership(crm, segment)
    assert str(refused.value) == (
        f"segment 'Accounts' is read from Salesforce report {REPORT}: its members change only "
        "by a refresh from the CRM"
    )
    crm.rollback()
    # Refreshing every segment leaves it out.
    assert refresh_segments(crm) == []


def test_a_connection_a_segment_reads_from_is_kept(crm: Session) -> None:
    create_crm_segment(crm, "B", connection="sf", kind="salesforce_report", ref=REPORT)
    create_crm_segment(crm, "A", connection="sf", kind="salesforce_list_view", ref=LIST_VIEW)
    crm.commit()
    with pytest.raises(RuleError) as refused:
        delete_connection(crm, "sf")
    assert str(refused.value) == (
        "connection 'sf' is where segments 'A', 'B' read their members from: it is kept while a "
        "segment reads from it"
    )
    crm.rollback()
    delete_connection(crm, "hs")
    crm.commit()


def test_a_schedule_sets_the_next_refresh_time(crm: Session) -> None:
    before = utcnow()
    segment = create_crm_segment(
        crm,
        "Nightly",
        connection="hs",
        kind="hubspot_list",
        ref="7",
        schedule="  0 2 * * * ",
    )
    crm.commit()
    source = crm_source(crm, segment)
    assert source is not None and source.schedule == "0 2 * * *"
    assert source.next_refresh_at is not None
    fires = as_utc(source.next_refresh_at)
    assert before < fires <= before + timedelta(days=1)
    assert (fires.hour, fires.minute) == (2, 0)
    set_crm_schedule(crm, "nightly", None)
    crm.commit()
    unscheduled = crm_source(crm, segment)
    assert unscheduled is not None
    assert unscheduled.schedule is None and unscheduled.next_refresh_at is None
    with pytest.raises(RuleError, match="segment 'Other' is not read from a CRM"):
        crm.add(Segment(name="Other", name_key="other", source="filter", member_count=0))
        set_crm_schedule(crm, "Other", "* * * * *")


def test_due_schedules_are_claimed_once(crm: Session) -> None:
    due_now = create_crm_segment(
        crm, "Due", connection="sf", kind="salesforce_report", ref=REPORT, schedule="*/5 * * * *"
    )
    create_crm_segment(
        crm, "Later", connection="hs", kind="hubspot_list", ref="1", schedule="0 0 1 1 *"
    )
    create_crm_segment(crm, "On demand", connection="hs", kind="hubspot_list", ref="2")
    crm.commit()
    now = utcnow()
    source = crm.get_one(CrmSource, due_now.id)
    source.next_refresh_at = now - timedelta(minutes=1)
    crm.commit()

    due = due_crm_refreshes(crm, now)
    assert [(d.segment_id, d.segment_name) for d in due] == [(due_now.id, "Due")]
    refresh = start_scheduled_refresh(crm, due[0], now)
    crm.commit()
    assert refresh is not None
    assert (refresh.segment_id, refresh.trigger, refresh.status) == (
        due_now.id,
        "schedule",
        "queued",
    )
    # The firing is spent: the same one claimed again (another beat) starts nothing.
    assert start_scheduled_refresh(crm, due[0], now) is None
    crm.commit()
    assert as_utc(crm.get_one(CrmSource, due_now.id).next_refresh_at or now) > now
    assert due_crm_refreshes(crm, now) == []
    assert crm.scalar(select(func.count()).select_from(SegmentRefresh)) == 1


def test_a_due_schedule_while_a_refresh_is_active_starts_none(crm: Session) -> None:
    segment = create_crm_segment(
        crm, "Due", connection="sf", kind="salesforce_report", ref=REPORT, schedule="* * * * *"
    )
    crm.commit()
    now = utcnow()
    crm.get_one(CrmSource, segment.id).next_refresh_at = now - timedelta(minutes=1)
    crm.commit()
    first = start_scheduled_refresh(crm, due_crm_refreshes(crm, now)[0], now)
    crm.commit()
    assert first is not None
    later = now + timedelta(minutes=5)
    due = due_crm_refreshes(crm, later)
    assert len(due) == 1
    assert start_scheduled_refresh(crm, due[0], later) is None
    crm.commit()
    # The firing was spent all the same: the active refresh brings the segment up to date.
    assert due_crm_refreshes(crm, later) == []
    assert find_segment(crm, "due").id == segment.id
