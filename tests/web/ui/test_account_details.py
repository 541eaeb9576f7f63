"""Account Details in the browser: look up by domain or external id; fields and segments."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from models.publishing import publish
from models.segment_catalog import create_segment
from tests.factories import add_accounts
from tests.web.ui.conftest import WebUser, sign_in


def _world(session: Session) -> None:
    """Two accounts and segments published for several uses, with readable names (this is
    the only test of the module that makes them: the README's screenshot shows it)."""
    add_accounts(
        session,
        [
            {
                "external_id": "0015g00000ACME01",
                "name": "Acme Corporation",
                "domain": "acmecorp.com",
                "industry": "Software",
                "employee_count": 1250,
                "annual_revenue": 180_000_000,
                "country": "US",
                "region": "AMER",
                "profile_fit": "A",
                "buying_stage": "Decision",
                "intent_score": 82,
                "crm_attributes": {"owner": "Dana Whitfield"},
            },
            {
                "external_id": "0015g00000GLBX02",
                "name": "Globex",
                "domain": "globex.com",
                "industry": "Manufacturing",
                "intent_score": 12,
            },
        ],
    )
    for name, expression, uses in (
        ("Enterprise AMER", 'region = "AMER" and employee_count >= 1000', ("account_details",)),
        ("Software companies", 'industry = "Software"', ("account_details", "enrichment")),
        ("Surging intent", "intent_score >= 70", ("enrichment",)),
        ("Fit A, not yet published", 'profile_fit = "A"', ()),
    ):
        create_segment(session, name, filter_expression=expression)
        if uses:
            publish(session, name, uses)


def test_account_details_lists_the_segments_published_to_account_details(
    page: Page,
    viewer: WebUser,
    stored: Callable[..., object],
    screenshot: Callable[[Page, str], Path],
) -> None:
    stored(_world)
    sign_in(page, viewer, "/accounts")

    # A URL with another case finds the account by its registrable domain.
    page.get_by_label("Domain or external id").fill("https://www.AcmeCorp.com/pricing")
    page.get_by_role("button", name="Look up").click()

    expect(page.get_by_role("heading", name="Acme Corporation")).to_be_visible()
    expect(page.get_by_role("row", name="industry Software")).to_be_visible()
    expect(page.get_by_role("row", name="crm.owner Dana Whitfield")).to_be_visible()
    segments = page.get_by_role("region", name="Account appears in these segments")
    expect(segments.get_by_role("listitem")).to_have_text(["Enterprise AMER", "Software companies"])
    screenshot(page, "account-details")

    # By external id too; an account in none of them says so.
    page.get_by_label("Domain or external id").fill("0015g00000GLBX02")
    page.get_by_role("button", name="Look up").click()
    expect(page.get_by_role("heading", name="Globex")).to_be_visible()
    expect(segments).to_contain_text("None of the segments published to account details")


def test_an_unknown_account_is_said_in_place(page: Page, viewer: WebUser) -> None:
    sign_in(page, viewer, "/accounts?key=nobody.example.org")

    expect(page.get_by_role("alert")).to_have_text(
        "no account with external id or domain 'nobody.example.org'"
    )
    expect(page.get_by_label("Domain or external id")).to_have_value("nobody.example.org")
