"""CRM segment refreshes through real Celery programs: beat's dispatch starts a due schedule's
refresh, a worker runs it against the emulators over HTTPS, a refresh whose message was lost is
sent again by the sweeper, one sent by enqueue_refresh fails keeping the members when its report
is gone, and one whose worker died is failed by the sweeper."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models.accounts import Account
from models.base import utcnow
from models.crm_sources import CrmSource, create_crm_segment
from models.segment_refreshes import SegmentRefresh, start_refresh
from models.segments import Segment, SegmentMembership
from tests.worker.celery_stack import Stack, ready, wait_until

# Generous: the machine is loaded, and beat fires every second in these tests.
WAIT = 120
# Fires once a year: the only firings in this test are the ones made due below.
YEARLY = "0 0 1 1 *"


def members(stack: Stack, name: str) -> set[str]:
    with Session(stack.database) as session:
        return set(
            session.scalars(
                select(Account.domain)
                .join(SegmentMembership, SegmentMembership.account_id == Account.id)
                .join(Segment, Segment.id == SegmentMembership.segment_id)
                .where(Segment.name == name)
            )
        )


def refreshes(stack: Stack, name: str) -> list[SegmentRefresh]:
    with Session(stack.database) as session:
        return list(
            session.scalars(
                select(SegmentRefresh)
                .join(Segment, Segment.id == SegmentRefresh.segment_id)
                .where(Segment.name == name)
                .order_by(SegmentRefresh.id)
            )
        )


def ended(stack: Stack, refresh_id: int) -> SegmentRefresh:
    """The refresh once it left queued/running."""

    def found() -> SegmentRefresh | None:
        with Session(stack.database) as session:
            refresh = session.get_one(SegmentRefresh, refresh_id)
            return None if refresh.status in ("queued", "running") else refresh

    return wait_until(found, WAIT, f"refresh {refresh_id} to end", stack.tails)


def queue_unsent(stack: Stack, name: str) -> int:
    """A manual refresh of `name`, queued as if its message was lost on the way."""
    with Session(stack.database) as session:
        segment = session.scalars(select(Segment).where(Segment.name == name)).one()
        refresh_id = start_refresh(session, segment).id
        session.commit()
    return refresh_id


def test_beat_refreshes_due_segments_and_the_sweeper_recovers_lost_and_stalled_ones(
    stack: Stack,
) -> None:
    companies = stack.companies  # domain -> HubSpot company id, linked to the accounts
    listed = stack.hubspot.add_list(
        "Targets", "companies", [companies["acme.com"], companies["globex.co.uk"]]
    )
    # Salesforce Accounts that no account links to: they match by their website's domain.
    stack.salesforce.add_records(
        "Account",
        [
            {"Name": "Initech", "Website": "https://www.initech.io/"},
            {"Name": "Umbrella", "Website": "umbrella.com"},
            {"Name": "Nobody", "Website": "https://nobody.example.org"},
        ],
    )
    report = stack.sandbox.describe()["salesforce"]["reports"]["accounts"]
    with Session(stack.database) as session:
        create_crm_segment(
            session, "Targets", connection="hs", kind="hubspot_list", ref=listed, schedule=YEARLY
        )
        create_crm_segment(
            session,
            "Report",
            connection="sf",
            kind="salesforce_report",
            ref=report,
            schedule=YEARLY,
        )
        session.execute(update(CrmSource).values(next_refresh_at=utcnow() - timedelta(minutes=1)))
        session.commit()

    worker = stack.worker("refresher")
    ready([], [stack.beat("dispatcher")])

    # Beat's dispatch queues each due refresh and a worker runs it.
    def scheduled() -> list[SegmentRefresh] | None:
        done = [
            refresh
            for name in ("Targets", "Report")
            for refresh in refreshes(stack, name)
            if refresh.status not in ("queued", "running")
        ]
        return done if len(done) == 2 else None

    targets, by_report = wait_until(scheduled, WAIT, "both scheduled refreshes", stack.tails)
    assert (targets.status, targets.trigger, targets.reason) == ("succeeded", "schedule", None)
    assert (targets.rows_read, targets.entered, targets.exited, targets.unmatched) == (2, 2, 0, 0)
    assert members(stack, "Targets") == {"acme.com", "globex.co.uk"}
    assert (by_report.status, by_report.trigger) == ("succeeded", "schedule"), by_report.reason
    assert (by_report.rows_read, by_report.entered, by_report.unmatched) == (3, 2, 1)
    assert members(stack, "Report") == {"initech.io", "umbrella.com"}
    with Session(stack.database) as session:
        # Each firing was claimed: the next is a year away.
        for next_at in session.scalars(select(CrmSource.next_refresh_at)):
            assert next_at is not None and next_at.replace(tzinfo=None) > (
                utcnow() + timedelta(days=1)
            ).replace(tzinfo=None)

    # The list changes; a refresh queued whose message never left is sent by the sweeper.
    stack.hubspot.remove_list_members(listed, [companies["globex.co.uk"]])
    stack.hubspot.add_list_members(listed, [companies["umbrella.com"]])
    lost = ended(stack, queue_unsent(stack, "Targets"))
    assert (lost.status, lost.trigger, lost.entered, lost.exited) == ("succeeded", "manual", 1, 1)
    assert members(stack, "Targets") == {"acme.com", "umbrella.com"}

    # The report is deleted: a refresh sent by enqueue_refresh fails, keeping the members.
    del stack.salesforce.reports.reports[report]
    refresh_id = queue_unsent(stack, "Report")
    sent = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from worker.tasks import enqueue_refresh; enqueue_refresh({refresh_id})",
        ],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert sent.returncode == 0, sent.stderr
    failed = ended(stack, refresh_id)
    assert failed.status == "failed"
    assert failed.reason == (
        f"reading Salesforce report {report} failed: Salesforce has no report {report} "
        "(deleted, or not shared with the API user)"
    )
    assert members(stack, "Report") == {"initech.io", "umbrella.com"}

    # A refresh whose worker died long ago (running past the planning lease) is failed.
    stalled = queue_unsent(stack, "Report")
    with Session(stack.database) as session:
        session.execute(
            update(SegmentRefresh)
            .where(SegmentRefresh.id == stalled)
            .values(status="running", started_at=utcnow() - timedelta(hours=2))
        )
        session.commit()
    given_up = ended(stack, stalled)
    assert (given_up.status, given_up.reason) == (
        "failed",
        "the worker refreshing it stopped before it ended",
    )
    assert members(stack, "Report") == {"initech.io", "umbrella.com"}

    # The worker logged ids and counts, never a credential.
    log = worker.output()
    assert f"refresh {targets.id} of segment {targets.segment_id}: 2 rows read" in log
    assert f"refresh {refresh_id} of segment {failed.segment_id} failed: " in log
    described = stack.sandbox.describe()
    assert described["hubspot"]["access_token"] not in log
    assert described["salesforce"]["password"] not in log
    assert described["salesforce"]["security_token"] not in log
