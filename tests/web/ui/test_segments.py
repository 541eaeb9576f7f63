"""Segments in the browser: folders, search, source, filters, members; Publish Segment."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Locator, Page, expect
from sqlalchemy.orm import Session

from models.publishing import publish, published_uses
from models.segment_catalog import create_segment, find_segment
from tests.factories import add_accounts, write_csv
from tests.web.ui.conftest import WebUser, sign_in

# The first test's segments have plain names, for the README's screenshot: it is the only test
# of the module that uses them (the others tag theirs).
ENTERPRISE = "Enterprise accounts"
NAMED = "Named accounts – Müller"
PIPELINE = "Q3 pipeline/EMEA"
SOFTWARE = "Software companies"
SURGING = "Surging intent"


def _catalog(session: Session, folder: Path) -> None:
    add_accounts(
        session,
        [
            {
                "external_id": f"A-{number}",
                "domain": domain,
                "industry": industry,
                "intent_score": intent,
            }
            for number, (domain, industry, intent) in enumerate(
                [
                    ("acme.com", "Software", 85),
                    ("globex.co.uk", "Fintech", 40),
                    ("initech.io", "Software", 72),
                    ("umbrella.com", "Pharma", None),
                    ("hooli.com", "Software", 91),
                    ("stark.com", "Manufacturing", None),
                ],
                start=1,
            )
        ],
    )
    enterprise = write_csv(
        folder / "enterprise.csv",
        ["domain"],
        [["acme.com"], ["hooli.com"], ["stark.com"], ["unknown.org"]],
    )
    report = write_csv(folder / "q3-report.csv", ["external_id"], [["A-1"], ["A-2"], ["A-3"]])
    named = write_csv(folder / "named.csv", ["external_id"], [["A-4"], ["A-5"]])
    create_segment(session, ENTERPRISE, list_path=enterprise, folder="ICP")
    create_segment(
        session, PIPELINE, list_path=report, source="crm_report_sync", folder="Territories"
    )
    create_segment(session, NAMED, list_path=named, source="crm_list_sync", folder="Territories")
    create_segment(
        session,
        SURGING,
        list_path=enterprise,
        filter_expression="intent_score >= 70",
        folder="Campaigns",
    )
    create_segment(session, SOFTWARE, filter_expression='industry = "Software"')
    publish(session, ENTERPRISE, ["enrichment", "gtm"])
    publish(session, SOFTWARE, ["enrichment", "account_details"])
    publish(session, PIPELINE, ["enrichment"])


def _row(page: Page, name: str) -> Locator:
    return page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=name, exact=True))


def _rows(page: Page) -> Locator:
    return page.get_by_role("table").get_by_role("rowheader")


def test_folders_search_and_publish_segment_with_confirm(
    page: Page,
    admin: WebUser,
    stored: Callable[..., object],
    screenshot: Callable[[Page, str], Path],
    tmp_path: Path,
) -> None:
    stored(_catalog, tmp_path)
    sign_in(page, admin, "/segments")

    folders = page.get_by_role("navigation", name="Folders").get_by_role("link")
    expect(folders).to_have_text(
        ["All segments (5)", "Campaigns (1)", "ICP (1)", "Territories (2)", "No folder (1)"]
    )
    expect(_rows(page)).to_have_text([ENTERPRISE, NAMED, PIPELINE, SOFTWARE, SURGING])
    software = _row(page, SOFTWARE).get_by_role("cell")
    expect(software.nth(1)).to_have_text("Filter")
    expect(software.nth(2)).to_have_text('Company Profile industry = "Software"')
    expect(software.nth(3)).to_have_text("3")
    expect(software.nth(4)).to_have_text("Segment name enrichment Account details")
    surging = _row(page, SURGING).get_by_role("cell")
    expect(surging.nth(0)).to_have_text("Campaigns")
    expect(surging.nth(1)).to_have_text("Uploaded list")
    expect(surging.nth(2).get_by_role("listitem")).to_have_text(
        ["Uploaded Account List enterprise.csv (4 entries)", "Intent intent_score >= 70"]
    )
    expect(surging.nth(3)).to_have_text("2")
    expect(_row(page, PIPELINE).get_by_role("cell").nth(1)).to_have_text("CRM report sync")
    expect(_row(page, NAMED).get_by_role("cell").nth(1)).to_have_text("CRM list sync")
    screenshot(page, "segments")

    # A folder, then a search within it (plain GET forms and links: no JavaScript needed).
    folders.filter(has_text="Territories").click()
    expect(_rows(page)).to_have_text([NAMED, PIPELINE])
    expect(folders.filter(has_text="Territories")).to_have_attribute("aria-current", "true")
    page.get_by_label("Search segments").fill("q3")
    page.get_by_role("button", name="Search").click()
    expect(_rows(page)).to_have_text([PIPELINE])
    expect(page).to_have_url(re.compile(r"folder=Territories"))

    # Publish Segment from the Activations column: its name has a slash, passed as a parameter.
    _row(page, PIPELINE).get_by_role("link", name="Publish Segment").click()
    expect(page.get_by_role("heading", name=f"Publish Segment: {PIPELINE}")).to_be_visible()
    enrichment = page.get_by_label("Segment name enrichment", exact=True)
    expect(enrichment).to_be_checked()
    expect(enrichment).to_be_disabled()
    page.get_by_role("button", name="Review").click()
    expect(page.get_by_role("alert")).to_have_text(
        "choose a use this segment is not published for yet"
    )
    page.get_by_label("API", exact=True).check()
    screenshot(page, "segments-publish")
    page.get_by_role("button", name="Review").click()
    dialog = page.get_by_role("alertdialog", name="Confirm 1 change")
    expect(dialog.get_by_role("listitem")).to_have_text([f"Publish {PIPELINE!r} to API"])
    expect(dialog.get_by_role("button", name="Confirm")).to_be_focused()
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status")).to_have_text("Applied 1 change.")
    expect(page.get_by_label("API", exact=True)).to_be_checked()
    expect(page.get_by_label("API", exact=True)).to_be_disabled()

    page.get_by_role("link", name="Back to Segments").click()
    page.get_by_label("Search segments").fill("pipeline")
    page.get_by_role("button", name="Search").click()
    expect(_row(page, PIPELINE).get_by_role("cell").nth(4)).to_have_text(
        "Segment name enrichment API"
    )

    # GTM for a list narrowed by a dynamic filter is refused in place, naming the filter; the
    # API use confirmed with it is published all the same.
    page.goto("/segments?q=surging")
    _row(page, SURGING).get_by_role("link", name="Publish Segment").click()
    page.get_by_label("GTM", exact=True).check()
    page.get_by_label("API", exact=True).check()
    page.get_by_role("button", name="Review").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Applied 1 change; 1 refused (the reason is shown with each)."
    )
    gtm = page.get_by_label("GTM", exact=True)
    expect(gtm).not_to_be_checked()
    expect(gtm).to_have_accessible_description(
        re.compile(
            r"Refused: segment 'Surging intent' cannot be published to gtm: "
            r"filter 'intent_score >= 70' \(intent\) is dynamic"
        )
    )
    assert stored(lambda s: published_uses(s, find_segment(s, SURGING))) == {"api"}

    # A confirmed form only publishes its own segment: another's change is refused.
    token = page.locator("input[name=csrf_token]").first.get_attribute("value") or ""
    answer = page.request.post(
        "/segments/publish",
        form={
            "csrf_token": token,
            "name": SURGING,
            "confirm": "yes",
            "change": f"unpublish:enrichment:{SOFTWARE}",
        },
    )
    assert answer.status == 400
    assert (
        "Publish Segment for 'Surging intent' cannot make this change: "
        "Unpublish 'Software companies' from Segment name enrichment;"
    ) in html.unescape(answer.text())
    assert "enrichment" in stored(lambda s: published_uses(s, find_segment(s, SOFTWARE)))


def test_a_viewer_sees_publish_segment_but_cannot_publish(
    page: Page, viewer: WebUser, stored: Callable[..., object]
) -> None:
    name = f"{uuid.uuid4().hex[:6]} viewer's/segment"
    stored(lambda s: create_segment(s, name, filter_expression='country = "NOWHERE"'))
    sign_in(page, viewer, "/segments?q=" + name[:6])

    _row(page, name).get_by_role("link", name="Publish Segment").click()
    expect(page.get_by_role("heading", name=f"Publish Segment: {name}")).to_be_visible()
    expect(page.get_by_label("API", exact=True)).to_be_disabled()
    expect(page.get_by_role("button", name="Review")).to_have_count(0)
    expect(page.get_by_role("button", name="Confirm")).to_have_count(0)

    # The server refuses the viewer's confirmed change even with a valid CSRF token.
    token = page.locator("input[name=csrf_token]").first.get_attribute("value") or ""
    answer = page.request.post(
        "/segments/publish",
        form={"csrf_token": token, "name": name, "confirm": "yes", "change": f"publish:api:{name}"},
    )
    assert answer.status == 403
    assert "is a viewer" in answer.text()
    assert stored(lambda s: published_uses(s, find_segment(s, name))) == set()
