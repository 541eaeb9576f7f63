"""A CRM segment in the browser: its row on Segments shows what it reads and its last refresh's
churn, and its refresh history lists the last refreshes with their counts and unmatched rows."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from playwright.sync_api import Locator, Page, expect
from sqlalchemy.orm import Session

from models.segment_catalog import create_segment, find_segment
from models.segment_refreshes import (
    UNMATCHED_SAMPLE_SIZE,
    apply_crm_members,
    claim_refresh,
    start_refresh,
)
from tests.web.crm_world import CrmWorld, Row, crm_segment
from tests.web.ui.conftest import WebUser, sign_in
from tests.web.ui.test_accessibility import _UNNAMED_CONTROLS


def _tag() -> str:
    return uuid.uuid4().hex[:8].upper()


def _row(page: Page, name: str) -> Locator:
    return page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=name, exact=True))


def _made(
    stored: Callable[..., object],
    tag: str,
    name: str,
    refreshes: int,
    connection: str | None = None,
) -> CrmWorld:
    made = stored(crm_segment, tag, name, refreshes, connection)
    assert isinstance(made, CrmWorld)
    return made


def test_a_viewer_sees_the_source_and_last_churn_on_the_row_and_the_refresh_history(
    page: Page,
    viewer: WebUser,
    stored: Callable[..., object],
    screenshot: Callable[[Page, str], Path],
) -> None:
    # Plain names, for the README's screenshots: no other test of the module uses them.
    once = _made(stored, _tag(), "Named accounts/EMEA", refreshes=1, connection="salesforce")
    sign_in(page, viewer, "/segments?q=Named+accounts")

    source = _row(page, once.segment).get_by_role("cell").nth(1)
    expect(source).to_contain_text("CRM report sync")
    expect(source).to_contain_text(f"Salesforce report {once.report} via {once.connection}")
    expect(source).to_contain_text("Last refresh: succeeded 3 entered, 0 exited, 1 unmatched")
    screenshot(page, "segments-crm")

    source.get_by_role("link", name=f"Refresh history of {once.segment}").click()
    expect(page.get_by_role("heading", name=f"Refresh history: {once.segment}")).to_be_visible()
    facts = page.get_by_role("table", name="Where the segment's members are read from")
    expect(facts.get_by_role("rowheader")).to_have_text(
        [
            "Source",
            "Reads",
            "report id",
            "Id column",
            "Connection",
            "Schedule (UTC)",
            "Next refresh",
            "Members",
        ]
    )
    expect(facts.get_by_role("cell")).to_have_text(
        [
            "CRM report sync",
            "Salesforce report",
            once.report,
            "ACCOUNT_ID",
            f"{once.connection} (salesforce)",
            "0 6 * * 1",
            # Mondays at 06:00 UTC.
            re.compile(r"\d{4}-\d\d-\d\d 06:00:00 UTC"),
            "3",
        ]
    )
    history = page.get_by_role("table", name=f"Recent refreshes of {once.segment}, newest first")
    expect(history.get_by_role("row")).to_have_count(2)  # the header and one refresh
    cells = history.get_by_role("row").nth(1).get_by_role("cell")
    expect(cells.nth(0)).to_have_text("manual")
    expect(cells.nth(1)).to_have_text("succeeded")
    # Rows read, entered, exited, unmatched, members, churn (no members before: no rate).
    expect(cells.nth(4)).to_have_text("4")
    expect(cells.nth(5)).to_have_text("3")
    expect(cells.nth(6)).to_have_text("0")
    expect(cells.nth(7)).to_have_text("1")
    expect(cells.nth(8)).to_have_text("3")
    expect(cells.nth(9)).to_have_text("3")
    unmatched = page.get_by_role("region", name="Unmatched rows of refresh")
    expect(unmatched).to_contain_text("1 CRM row matched no account")
    expect(unmatched.get_by_role("rowheader")).to_have_text([once.ghost.crm_id])
    expect(unmatched.get_by_role("cell")).to_have_text([str(once.ghost.website), "Ghost Corp"])
    assert page.evaluate(_UNNAMED_CONTROLS) == []
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    screenshot(page, "segments-refreshes")


def test_the_history_shows_churn_rates_failures_and_the_last_succeeded_unmatched_rows(
    page: Page, viewer: WebUser, stored: Callable[..., object]
) -> None:
    tag = _tag()
    thrice = _made(stored, tag, f"{tag} Territory", refreshes=3)
    sign_in(page, viewer, f"/segments?q={tag}")

    # The newest refresh failed: the row says why (the members found before are kept).
    source = _row(page, thrice.segment).get_by_role("cell").nth(1)
    expect(source).to_contain_text(f"Last refresh: failed {thrice.failure}")
    expect(_row(page, thrice.segment).get_by_role("cell").nth(3)).to_have_text("3")

    source.get_by_role("link", name=f"Refresh history of {thrice.segment}").click()
    history = page.get_by_role("table", name=f"Recent refreshes of {thrice.segment}, newest first")
    rows = history.get_by_role("row")
    expect(rows).to_have_count(4)
    expect(rows.nth(1).get_by_role("cell").nth(1)).to_contain_text(thrice.failure)
    expect(rows.nth(1).get_by_role("cell").nth(9)).to_have_text("—")
    second = rows.nth(2).get_by_role("cell")
    # Entered 1, exited 1 of 3 members before: churn 2, 67%.
    expect(second.nth(5)).to_have_text("1")
    expect(second.nth(6)).to_have_text("1")
    expect(second.nth(7)).to_have_text("0")
    expect(second.nth(9)).to_have_text("2 (67%)")
    expect(rows.nth(3).get_by_role("cell").nth(9)).to_have_text("3")
    second_id = rows.nth(2).get_by_role("rowheader").inner_text()
    unmatched = page.get_by_role("region", name=f"Unmatched rows of refresh {second_id}")
    expect(unmatched).to_have_text(
        f"Unmatched rows of refresh {second_id} Every CRM row matched an account."
    )


def test_a_segment_not_read_from_a_crm_says_so_and_an_unknown_one_is_404(
    page: Page, viewer: WebUser, stored: Callable[..., object]
) -> None:
    tag = _tag()
    name = f"{tag} filtered"

    def world(session: Session) -> None:
        create_segment(session, name, filter_expression=f'country = "{tag}"')

    stored(world)
    sign_in(page, viewer, f"/segments?q={tag}")
    # Its row has no refresh history to link to.
    expect(_row(page, name).get_by_role("link", name="Refresh history")).to_have_count(0)

    page.goto(f"/segments/refreshes?name={tag}+FILTERED")
    expect(page.get_by_role("heading", name=f"Refresh history: {name}")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text(
        f"segment '{name}' is not read from a CRM: its members come from its filter"
    )
    expect(page.get_by_role("table", name="Recent refreshes")).to_have_count(0)
    missing = page.goto(f"/segments/refreshes?name={tag}+nothing")
    assert missing is not None and missing.status == 404
    expect(page.get_by_role("main")).to_contain_text(f"no segment named '{tag} nothing'")


def test_more_unmatched_rows_than_kept_says_how_many_are_listed(
    page: Page, viewer: WebUser, stored: Callable[..., object]
) -> None:
    tag = _tag()
    name = f"{tag} many unmatched"
    rows = [Row(f"001{tag}{n:04d}", None, f"Unknown {n}") for n in range(5000, 5000 + 130)]

    def world(session: Session) -> None:
        crm_segment(session, tag, name, refreshes=0)
        refresh = claim_refresh(session, start_refresh(session, find_segment(session, name)).id)
        assert refresh is not None
        apply_crm_members(session, refresh, rows)

    stored(world)
    sign_in(page, viewer, f"/segments/refreshes?name={quote(name)}")

    unmatched = page.get_by_role("region", name="Unmatched rows of refresh")
    expect(unmatched).to_contain_text(
        f"130 CRM rows matched no account (by CRM id, then website domain); "
        f"the first {UNMATCHED_SAMPLE_SIZE} are listed."
    )
    expect(unmatched.get_by_role("rowheader")).to_have_count(UNMATCHED_SAMPLE_SIZE)
    expect(unmatched.get_by_role("rowheader").first).to_have_text(rows[0].crm_id)
