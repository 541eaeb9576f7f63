"""Published Segments in the browser: the settings table, its confirm step and its refusals."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from models.errors import InputError
from models.publishing import MAX_PUBLISHED_SEGMENTS, add_reference, publish
from models.publishing_tables import Publication
from models.segment_catalog import SegmentRow, create_segment, find_segment
from models.segments import Segment
from tests.factories import add_accounts, add_bare_segments, write_csv
from tests.web.ui.conftest import WebUser, sign_in
from web.ui.published_segments import PAGE_SIZE, parse_row_value, table_page
from web.ui.signed_in import CSRF_REFUSAL

Stored = Callable[..., object]


def test_a_row_field_holds_the_uses_stored_and_the_name() -> None:
    assert parse_row_value("gtm,api:EMEA: tier 1") == (
        "EMEA: tier 1",
        ["gtm:EMEA: tier 1", "api:EMEA: tier 1"],
    )
    assert parse_row_value(":Nurture") == ("Nurture", [])
    for malformed in ("Nurture", "billboards:Nurture", "gtm: "):
        with pytest.raises(
            InputError, match=f"form value {re.escape(repr(malformed))} is not a row"
        ):
            parse_row_value(malformed)


def test_a_page_past_the_last_is_the_last() -> None:
    rows = [SegmentRow(f"s{n}", None, "filter", 0, (), ()) for n in range(PAGE_SIZE + 1)]
    last = table_page(rows, 9)
    assert (last.number, last.pages, last.total, last.first) == (2, 2, PAGE_SIZE + 1, PAGE_SIZE + 1)
    assert [row.name for row in last.rows] == [f"s{PAGE_SIZE}"]
    assert table_page([], 1).pages == 1


def _segments(session: Session, tag: str, folder: Path) -> None:
    add_accounts(
        session,
        [
            {"external_id": f"{tag}-{n}", "name": f"Account {n}", "domain": f"a{n}-{tag}.com"}
            for n in range(3)
        ],
    )
    accounts = write_csv(folder / f"{tag}.csv", ["external_id"], [[f"{tag}-0"], [f"{tag}-1"]])
    create_segment(session, f"{tag} Territory West", list_path=accounts, folder="GTM")
    # From a list, but narrowed by a dynamic filter: GTM refuses it naming that filter.
    create_segment(
        session, f"{tag} High intent", list_path=accounts, filter_expression="intent_score >= 70"
    )
    create_segment(session, f"{tag} Key accounts", filter_expression=f'domain = "a0-{tag}.com"')
    create_segment(session, f"{tag} Nurture", filter_expression='country = "FR"', folder="ABM")
    publish(session, f"{tag} Territory West", ["gtm", "account_details"])
    publish(session, f"{tag} Nurture", ["enrichment"])
    # Legacy publications are only ever old ones: no rule makes a new one.
    nurture = find_segment(session, f"{tag} Nurture")
    session.add(Publication(segment_id=nurture.id, use="sales_intelligence"))


def _row(page: Page, name: str) -> Locator:
    return page.locator(
        "tbody tr", has=page.locator(".segment-name", has_text=re.compile(f"^{name}$"))
    )


def _box(page: Page, name: str, use: str) -> Locator:
    return page.get_by_role("checkbox", name=f"Publish {name} to {use}", exact=True)


def _published_count(page: Page) -> int:
    text = page.locator("#published-count").inner_text()
    match = re.fullmatch(rf"(\d+) of {MAX_PUBLISHED_SEGMENTS} published", text)
    assert match, text
    return int(match.group(1))


def _review_and_confirm(page: Page, *expected: str) -> None:
    page.get_by_role("button", name="Review changes").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog.get_by_role("listitem")).to_have_text(list(expected))
    expect(dialog.get_by_role("button", name="Confirm")).to_be_focused()
    dialog.get_by_role("button", name="Confirm").click()


def test_publish_and_unpublish_from_the_table_after_confirming(
    page: Page,
    admin: WebUser,
    stored: Stored,
    tmp_path: Path,
    screenshot: Callable[[Page, str], Path],
) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    stored(_segments, tag, tmp_path)
    sign_in(page, admin, "/published-segments")

    # The search narrows the rows to the segments whose name or folder holds the text.
    page.get_by_label("Search segments").fill(tag)
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".segment-name")).to_have_text(
        [f"{tag} High intent", f"{tag} Key accounts", f"{tag} Nurture", f"{tag} Territory West"]
    )
    page.get_by_label("Search segments").fill(f"{tag} territory")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".segment-name")).to_have_text([f"{tag} Territory West"])
    page.goto(f"/published-segments?q={tag}")
    before = _published_count(page)
    expect(_box(page, f"{tag} Territory West", "GTM")).to_be_checked()
    expect(_box(page, f"{tag} Key accounts", "API")).not_to_be_checked()
    # Legacy Sales Intelligence: a box only where published, to unpublish.
    expect(_box(page, f"{tag} Nurture", "Sales Intelligence (legacy)")).to_be_checked()
    expect(_box(page, f"{tag} Key accounts", "Sales Intelligence (legacy)")).to_have_count(0)

    _box(page, f"{tag} Key accounts", "API").check()
    _box(page, f"{tag} Key accounts", "Account details").check()
    _box(page, f"{tag} Nurture", "Sales Intelligence (legacy)").uncheck()
    expect(page.locator("[data-change-count]")).to_have_text("3 changes")
    screenshot(page, "published-segments")
    page.get_by_role("button", name="Review changes").click()
    dialog = page.get_by_role("alertdialog", name="Confirm 3 changes")
    expect(dialog.get_by_role("listitem")).to_have_text(
        [
            f"Publish '{tag} Key accounts' to Account details",
            f"Publish '{tag} Key accounts' to API",
            f"Unpublish '{tag} Nurture' from Sales Intelligence (legacy)",
        ]
    )
    expect(dialog.get_by_role("button", name="Confirm")).to_be_focused()
    screenshot(page, "published-segments-confirm")
    dialog.get_by_role("button", name="Confirm").click()

    expect(page.get_by_role("status")).to_have_text("Applied 3 changes.")
    expect(_box(page, f"{tag} Key accounts", "API")).to_be_checked()
    expect(_box(page, f"{tag} Key accounts", "Account details")).to_be_checked()
    expect(_row(page, f"{tag} Key accounts")).to_contain_text("published to API")
    expect(_box(page, f"{tag} Nurture", "Sales Intelligence (legacy)")).to_have_count(0)
    assert _published_count(page) == before + 1
    # Cancel on the confirm step changes nothing.
    _box(page, f"{tag} Nurture", "Segment name enrichment").uncheck()
    page.get_by_role("button", name="Review changes").click()
    page.get_by_role("link", name="Cancel").click()
    expect(_box(page, f"{tag} Nurture", "Segment name enrichment")).to_be_checked()
    expect(page.get_by_label("Search segments")).to_have_value(tag)
    page.get_by_role("button", name="Review changes").click()
    expect(page.get_by_role("status")).to_have_text("Nothing to change: every box is as stored.")


def test_gtm_refusals_are_shown_in_their_rows_naming_the_filter_and_the_report(
    page: Page,
    admin: WebUser,
    stored: Stored,
    tmp_path: Path,
    screenshot: Callable[[Page, str], Path],
) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    stored(_segments, tag, tmp_path)
    stored(add_reference, f"{tag} Territory West", "6qa_report", "Pipeline by territory")
    sign_in(page, admin, f"/published-segments?q={tag}")

    _box(page, f"{tag} High intent", "GTM").check()
    _box(page, f"{tag} Territory West", "GTM").uncheck()
    _box(page, f"{tag} High intent", "API").check()
    _review_and_confirm(
        page,
        f"Publish '{tag} High intent' to GTM",
        f"Publish '{tag} High intent' to API",
        f"Unpublish '{tag} Territory West' from GTM",
    )

    expect(page.get_by_role("alert")).to_have_text(
        "Applied 1 change; 2 refused (the reason is shown with each)."
    )
    expect(_row(page, f"{tag} High intent").locator(".refusal")).to_have_text(
        f"GTM: segment '{tag} High intent' cannot be published to gtm: filter "
        "'intent_score >= 70' (intent) is dynamic; GTM segments may only use filters of kinds "
        "profile_fit, company_profile, crm_map, salesforce_report, salesforce_account_list, "
        "uploaded_list"
    )
    expect(_row(page, f"{tag} High intent").locator("td.cell-refused")).to_have_count(1)
    expect(_box(page, f"{tag} High intent", "GTM")).not_to_be_checked()
    # The refused box is described by its reason (for screen readers).
    expect(_box(page, f"{tag} High intent", "GTM")).to_have_accessible_description(
        re.compile(r"^GTM: segment .* cannot be published to gtm: filter 'intent_score >= 70'")
    )
    expect(_box(page, f"{tag} High intent", "API")).to_be_checked()
    expect(_row(page, f"{tag} Territory West").locator(".refusal")).to_have_text(
        f"GTM: cannot unpublish '{tag} Territory West' from gtm: it is used by saved 6QA report "
        "'Pipeline by territory'; remove those first"
    )
    expect(_box(page, f"{tag} Territory West", "GTM")).to_be_checked()
    screenshot(page, "published-segments-refusals")


def test_a_viewer_sees_the_table_and_cannot_publish_and_a_form_needs_its_token(
    page: Page, viewer: WebUser, admin: WebUser, stored: Stored, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    stored(_segments, tag, tmp_path)
    sign_in(page, viewer, f"/published-segments?q={tag}")

    expect(_box(page, f"{tag} Key accounts", "API")).to_be_disabled()
    expect(_box(page, f"{tag} Territory West", "GTM")).to_be_checked()
    expect(page.get_by_role("button", name="Review changes")).to_have_count(0)
    token = page.locator("input[name=csrf_token]").first.input_value()
    form: dict[str, str | float | bool] = {
        "csrf_token": token,
        "confirm": "yes",
        "change": f"publish:api:{tag} Key accounts",
    }
    refused = page.request.post("/published-segments", form=form)
    assert refused.status == 403
    assert f"{viewer.name} is a viewer: viewers can see everything but change nothing" in (
        refused.text()
    )

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, admin, f"/published-segments?q={tag}")
    del form["csrf_token"]
    forged = page.request.post("/published-segments", form=form)
    assert forged.status == 403
    assert CSRF_REFUSAL in forged.text()
    page.reload()
    expect(_box(page, f"{tag} Key accounts", "API")).not_to_be_checked()
    # A change whose segment is gone by the time it is confirmed is refused, and said.
    form["csrf_token"] = page.locator("input[name=csrf_token]").first.input_value()
    form["change"] = f"publish:api:{tag} Gone"
    gone = page.request.post("/published-segments", form=form)
    assert gone.status == 409
    assert (
        f"Publish &#39;{tag} Gone&#39; to API: no segment named &#39;{tag} Gone&#39;" in gone.text()
    )


def test_the_201st_published_segment_is_refused_in_its_row(
    page: Page, admin: WebUser, stored: Stored
) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    candidate = f"{tag} Another region"  # sorts before the fillers: first row of page 1
    full = f"{MAX_PUBLISHED_SEGMENTS} of {MAX_PUBLISHED_SEGMENTS} published"

    def fill(session: Session) -> list[str]:
        create_segment(session, candidate, filter_expression='country = "NZ"')
        room = MAX_PUBLISHED_SEGMENTS - (
            session.scalar(select(func.count(func.distinct(Publication.segment_id)))) or 0
        )
        names = [f"{tag} filler {n:03d}" for n in range(room)]
        add_bare_segments(session, names)
        ids = list(session.scalars(select(Segment.id).where(Segment.name.in_(names))))
        session.add_all(Publication(segment_id=id_, use="api") for id_ in ids)
        return names

    fillers = stored(fill)
    assert isinstance(fillers, list) and len(fillers) > PAGE_SIZE
    try:
        sign_in(page, admin, f"/published-segments?q={tag}")
        expect(page.locator("#published-count")).to_have_text(full)
        # A page holds PAGE_SIZE rows; the others are a link away.
        pages = page.get_by_role("navigation", name="Pages of segments")
        total = len(fillers) + 1
        expect(pages).to_contain_text(f"Segments 1–{PAGE_SIZE} of {total} (page 1 of ")
        pages.get_by_role("link", name="Next page").click()
        expect(page.locator(".segment-name").first).to_have_text(
            f"{tag} filler {PAGE_SIZE - 1:03d}"
        )
        pages.get_by_role("link", name="Previous page").click()
        expect(page.locator(".segment-name").first).to_have_text(candidate)

        _box(page, candidate, "API").check()
        _review_and_confirm(page, f"Publish '{candidate}' to API")

        expect(_row(page, candidate).locator(".refusal")).to_have_text(
            f"API: cannot publish '{candidate}': {MAX_PUBLISHED_SEGMENTS} segments are already "
            f"published and at most {MAX_PUBLISHED_SEGMENTS} may be at once; unpublish one to "
            "make room"
        )
        expect(_box(page, candidate, "API")).not_to_be_checked()
        expect(page.locator("#published-count")).to_have_text(full)

        # Unpublishing one in the same confirm makes the room (unpublishing is applied first).
        _box(page, candidate, "API").check()
        _box(page, fillers[0], "API").uncheck()
        _review_and_confirm(
            page, f"Publish '{candidate}' to API", f"Unpublish '{fillers[0]}' from API"
        )
        expect(page.get_by_role("status")).to_have_text("Applied 2 changes.")
        expect(_box(page, candidate, "API")).to_be_checked()
        expect(page.locator("#published-count")).to_have_text(full)
    finally:

        def unfill(session: Session) -> None:
            session.execute(delete(Segment).where(Segment.name.in_(fillers)))

        stored(unfill)
