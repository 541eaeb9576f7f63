"""Orchestrations in the browser: the list with schedule, next run and last outcome; "Run now"
queueing a run that a real Celery worker completes; the run history and a run's page with its
counts and failed records, downloadable as CSV; refusals shown in place; viewers only look."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from playwright.sync_api import Browser, Locator, Page, expect
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from models.connections import ConnectionSpec, add_connection
from models.orchestrations import (
    OrchestrationSpec,
    Scope,
    create_orchestration,
    find_orchestration,
    set_orchestration_enabled,
)
from models.runs import RecordFailure, SyncRun
from models.users import create_user
from tests.web.server import ApiServer
from tests.web.ui.browser import STEP_TIMEOUT_MS, screenshot_folder
from tests.web.ui.conftest import WebUser, sign_in, unique_user_name
from tests.web.v1.test_runs import served
from tests.worker.celery_stack import Stack, stack
from tests.worker.test_celery_e2e import seed
from web.v1.runs import NO_BROKER

__all__ = ["served", "stack"]  # the real-Celery fixtures of tests/web/v1/test_runs.py
# A run on a loaded machine: the page is waited on this long to show it ended.
RUN_BOUND_MS = 120_000
FINISHED = datetime(2026, 3, 2, 6, 15, 40, tzinfo=UTC)
# Failures as a vendor reports them, the second and third with text a spreadsheet would run.
FAILURES = (
    ("00Q5g00000AbcD1", "INVALID_EMAIL_ADDRESS", "Email: invalid email address: bob@"),
    ("00Q5g00000AbcD2", "-1", '=HYPERLINK("http://evil.example","Click")'),
    ("00Q5g00000AbcD3", "FIELD_CUSTOM_VALIDATION_EXCEPTION", "@SUM(A1) Zürich, «Ölmühle»"),
)


def _world(session: Session, tag: str) -> int:
    """Two orchestrations (one disabled) on a connection; the first with a partial run that
    failed FAILURES. The run's id."""
    spec = ConnectionSpec(f"sf-{tag}", "salesforce", {}, {}, {"access_token": "TOKEN"})
    connection = add_connection(session, spec, None).id
    leads = create_orchestration(
        session,
        OrchestrationSpec(
            f"Leads {tag}",
            connection,
            "Lead",
            "Segment_Names__c",
            Scope("all"),
            schedule="0 2 * * *",
        ),
    )
    create_orchestration(
        session,
        OrchestrationSpec(f"Paused {tag}", connection, "Contact", "Segment_Names__c", Scope("all")),
    )
    set_orchestration_enabled(session, f"Paused {tag}", False)
    run = SyncRun(
        orchestration_id=leads.id,
        status="partial",
        trigger="schedule",
        reason="3 of 40 records failed",
        started_at=FINISHED.replace(second=0),
        finished_at=FINISHED,
        eligible=40,
        enriched=30,
        unchanged=5,
        unmatched=1,
        truncated=1,
        failed=3,
        api_calls=4,
        records_read=41,
        batches_total=1,
        batches_done=1,
    )
    session.add(run)
    session.flush()
    session.add_all(
        RecordFailure(run_id=run.id, record_id=record, code=code, message=message)
        for record, code, message in FAILURES
    )
    return run.id


def _row(page: Page, name: str) -> Locator:
    return page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=name))


def _csrf_token(page: Page) -> str:
    token = page.locator("form.sign-out input[name=csrf_token]").get_attribute("value")
    assert token
    return token


def test_a_viewer_reads_the_list_the_history_and_a_run_and_downloads_its_failures_as_csv(
    page: Page, viewer: WebUser, stored: Callable[..., object]
) -> None:
    tag = uuid.uuid4().hex[:6]
    run_id = stored(_world, tag)
    sign_in(page, viewer, "/orchestrations")

    leads = _row(page, f"Leads {tag}")
    expect(leads).to_contain_text(f"sf-{tag} (salesforce)")
    expect(leads).to_contain_text("Lead.Segment_Names__c")
    expect(leads).to_contain_text("0 2 * * *")
    # The next run is 02:00 UTC of some coming day.
    expect(leads.get_by_role("cell").nth(3)).to_have_text(
        re.compile(r"\d{4}-\d\d-\d\d 02:00:00 UTC")
    )
    expect(leads).to_contain_text(f"partial run {run_id}")
    expect(leads).to_contain_text("2026-03-02 06:15:40 UTC")
    expect(leads).to_contain_text("3 of 40 records failed")
    paused = _row(page, f"Paused {tag}")
    expect(paused).to_contain_text("on demand")
    expect(paused).to_contain_text("never run")
    # A viewer is told so and has no Run now; a forged POST with its own CSRF token is refused.
    expect(page.get_by_text("You are signed in as a viewer")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Run now"))).to_have_count(0)
    refused = page.request.post(
        "/orchestrations/runs",
        form={"csrf_token": _csrf_token(page), "name": f"Leads {tag}"},
        max_redirects=0,
    )
    assert refused.status == 403
    assert f"{viewer.name} is a viewer: viewers can see everything but change nothing" in (
        refused.text()
    )

    # The history (the name has a space: it is url-encoded) and the run's page.
    leads.get_by_role("link", name=f"Leads {tag}").click()
    expect(page).to_have_url(re.compile(rf"/orchestrations/history\?name=Leads\+{tag}$"))
    history = page.get_by_role("region", name="Recent runs")
    newest = history.get_by_role("row").nth(1)
    expect(newest.get_by_role("rowheader")).to_have_text(str(run_id))
    expect(newest.get_by_role("cell")).to_have_text(
        [
            "schedule",
            "partial3 of 40 records failed",
            "2026-03-02 06:15:00 UTC",
            "2026-03-02 06:15:40 UTC",
            *["40", "30", "5", "1", "1", "3", "4"],
        ]
    )
    history.get_by_role("link", name=str(run_id)).click()
    expect(page.get_by_role("heading", name=f"Run {run_id} of Leads {tag}")).to_be_visible()
    counts = page.get_by_role("table", name="Counts")
    for title, value in (("Eligible", 40), ("Enriched", 30), ("Failed", 3), ("API calls", 4)):
        expect(counts.get_by_role("row", name=title)).to_have_text(f"{title}{value}")
    failures = page.get_by_role("region", name="Failed records").get_by_role("row")
    expect(failures).to_have_count(4)
    expect(failures.nth(2)).to_have_text(re.compile(r"00Q5g00000AbcD2\s*-1\s*=HYPERLINK"))

    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download failed records (CSV)").click()
    download = downloading.value
    assert download.suggested_filename == f"segsync-run-{run_id}-failed-records.csv"
    text = Path(download.path()).read_text(encoding="utf-8-sig")
    assert list(csv.reader(io.StringIO(text))) == [
        ["record_id", "code", "message"],
        list(FAILURES[0]),
        ["00Q5g00000AbcD2", "'-1", "'" + FAILURES[1][2]],
        ["00Q5g00000AbcD3", "FIELD_CUSTOM_VALIDATION_EXCEPTION", "'" + FAILURES[2][2]],
    ]
    answer = page.request.get(f"/runs/{run_id}/failed.csv")
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == (
        f'attachment; filename="segsync-run-{run_id}-failed-records.csv"'
    )
    # An unknown orchestration's history and an unknown run say so (404).
    assert page.goto("/orchestrations/history?name=Nobody+here").status == 404  # type: ignore[union-attr]
    expect(page.get_by_role("alert")).to_have_text("no orchestration named 'Nobody here'")
    # A NUL no stored name can hold is refused before any lookup (PostgreSQL's driver would raise).
    assert page.goto("/orchestrations/history?name=a%00b").status == 422  # type: ignore[union-attr]
    assert page.goto("/runs/2147483647").status == 404  # type: ignore[union-attr]
    expect(page.get_by_role("alert")).to_have_text("no run 2147483647")


def test_run_now_without_a_broker_is_refused_in_place(
    page: Page, admin: WebUser, stored: Callable[..., object]
) -> None:
    tag = uuid.uuid4().hex[:6]
    stored(_world, tag)
    sign_in(page, admin, "/orchestrations")

    _row(page, f"Leads {tag}").get_by_role("button", name=f"Run now: Leads {tag}").click()

    expect(_row(page, f"Leads {tag}").get_by_role("alert")).to_have_text(NO_BROKER)
    expect(page).to_have_url(re.compile(r"/orchestrations/runs$"))
    # A disabled orchestration offers no Run now; it says how to enable it.
    expect(_row(page, f"Paused {tag}")).to_contain_text("disabled: segsync orchestrations enable")


def _admin_in(database: Engine) -> WebUser:
    user = WebUser(unique_user_name(), f"pw-{uuid.uuid4().hex}", "admin")
    with Session(database) as session:
        create_user(session, user.name, user.role, user.password)
        session.commit()
    return user


def _companies_orchestration(database: Engine, name: str) -> None:
    """An orchestration on the stack's HubSpot connection, made without asking the CRM."""
    with Session(database) as session:
        hubspot = find_orchestration(session, "Contacts EU").connection_id
        create_orchestration(
            session,
            OrchestrationSpec(name, hubspot, "companies", "segment_names", Scope("all")),
        )
        session.commit()


def _disable(database: Engine, name: str) -> None:
    with Session(database) as session:
        set_orchestration_enabled(session, name, False)
        session.commit()


def test_run_now_queues_a_run_a_real_worker_completes_and_the_history_shows_its_counts(
    stack: Stack,
    served: ApiServer,
    browser: Browser,
    database_url: str,
    tmp_path: Path,
) -> None:
    ids = list(seed(stack.sandbox, "hubspot", "contacts", 150, stack.companies))
    # Scheduled (no beat runs here): the list shows its next run.
    stack.orchestration("Contacts EU", "hs", "contacts", "--schedule", "30 4 * * *")
    _companies_orchestration(stack.database, "Companies EU")
    # Two contacts are refused by HubSpot with a vendor code: the run ends partial.
    stack.hubspot.faults.inject(
        "record_failure", count=2, record_ids=ids[3:5], code="INVALID_EMAIL"
    )
    context = browser.new_context(base_url=served.base_url, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    expect.set_options(timeout=STEP_TIMEOUT_MS)
    page = context.new_page()
    try:
        sign_in(page, _admin_in(stack.database), "/orchestrations")

        # Disabled after the page was shown: its Run now is refused in its row.
        _disable(stack.database, "Companies EU")
        page.get_by_role("button", name="Run now: Companies EU").click()
        expect(_row(page, "Companies EU").get_by_role("alert")).to_have_text(
            "orchestration 'Companies EU' is disabled"
        )

        # No worker yet: the run stays queued, and its page says so. The page reloads itself
        # while the run is going, so it is only looked at (a second tab goes elsewhere) until
        # the run has ended.
        page.get_by_role("button", name="Run now: Contacts EU").click()
        expect(page).to_have_url(re.compile(r"/runs/\d+\?started=queued$"))
        run_id = int(re.findall(r"/runs/(\d+)", page.url)[0])
        expect(page.get_by_role("status")).to_have_text(
            f"Run {run_id} queued: a worker picks it up."
        )
        expect(page.get_by_role("link", name="Refresh")).to_have_attribute(
            "href", f"/runs/{run_id}"
        )

        # A second Run now while it is active is refused in place, naming it.
        other = context.new_page()
        other.goto("/orchestrations/history?name=Contacts+EU")
        other.get_by_role("button", name="Run now: Contacts EU").click()
        expect(other.get_by_role("alert")).to_have_text(
            re.compile(
                rf"^run \d+ skipped: run {run_id} of this orchestration is still active "
                r"\((queued|running)\)$"
            )
        )

        # A worker runs it; the run's page reloads itself until the run has ended.
        stack.worker("one")
        expect(page.locator(".run-status .tag")).to_have_text("partial", timeout=RUN_BOUND_MS)
        expect(page.get_by_role("link", name="Refresh")).to_have_count(0)
        counts = page.get_by_role("table", name="Counts")
        for title, value in (("Eligible", 150), ("Enriched", 148), ("Failed", 2)):
            expect(counts.get_by_role("row", name=title)).to_have_text(f"{title}{value}")
        expect(counts.get_by_role("row", name="API calls")).not_to_have_text("API calls0")
        failures = page.get_by_role("region", name="Failed records").get_by_role("row")
        expect(failures).to_have_count(3)
        expect(failures.nth(1)).to_contain_text(f"{ids[3]}INVALID_EMAIL")
        expect(failures.nth(2)).to_contain_text(f"{ids[4]}INVALID_EMAIL")
        rows = list(csv.reader(io.StringIO(page.request.get(f"/runs/{run_id}/failed.csv").text())))
        assert [row[:2] for row in rows] == [
            ["\ufeffrecord_id", "code"],
            [ids[3], "INVALID_EMAIL"],
            [ids[4], "INVALID_EMAIL"],
        ]
        _screenshot(page, "run", database_url, tmp_path)

        # The history shows its counts (and the skipped trigger); the list its last outcome.
        page.goto("/orchestrations/history?name=Contacts+EU")
        history = page.get_by_role("region", name="Recent runs")
        shown = history.get_by_role("row").filter(
            has=page.get_by_role("rowheader", name=str(run_id), exact=True)
        )
        expect(shown).to_contain_text("partial")
        expect(shown.get_by_role("cell").nth(4)).to_have_text("150")
        expect(shown.get_by_role("cell").nth(5)).to_have_text("148")
        expect(shown.get_by_role("cell").nth(9)).to_have_text("2")
        expect(history).to_contain_text("skipped")
        page.goto("/orchestrations")
        expect(_row(page, "Contacts EU")).to_contain_text(f"partial run {run_id}")
        expect(_row(page, "Contacts EU")).to_contain_text(re.compile(r"\d\d 04:30:00 UTC"))
        _screenshot(page, "orchestrations", database_url, tmp_path)
    finally:
        context.close()


def _screenshot(page: Page, name: str, database_url: str, tmp_path: Path) -> None:
    """As the `screenshot` fixture, on the stack's database (README images from PostgreSQL)."""
    folder = screenshot_folder(tmp_path) if database_url.startswith("postgresql") else tmp_path
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
