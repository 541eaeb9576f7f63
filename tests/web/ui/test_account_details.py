"""Account Details in the browser: look up by domain or external id; fields and segments."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from models.publishing import publish
from models.segment_catalog import create_segment
from tests.factories import add_accounts
from tests.web.ui.conftest import WebUser, sign_in


def _world(session: Session, tag: str) -> None:
    add_accounts(
        session,
        [
            {
                "external_id": f"{tag}-1",
                "name": f"Acme {tag}",
                "domain": f"acme-{tag.lower()}.com",
                "country": tag,
                "industry": "Software",
            },
            {"external_id": f"{tag}-2", "name": "Globex", "domain": f"globex-{tag.lower()}.com"},
        ],
    )
    holds_acme = f'country = "{tag}"'
    for name, uses in (
        (f"{tag} Key accounts", ("account_details",)),
        (f"{tag} Also details", ("account_details", "enrichment")),
        (f"{tag} Enrichment only", ("enrichment",)),
        (f"{tag} Not published", ()),
    ):
        create_segment(session, name, filter_expression=holds_acme)
        if uses:
            publish(session, name, uses)


def test_account_details_lists_the_segments_published_to_account_details(
    page: Page,
    viewer: WebUser,
    stored: Callable[..., object],
    screenshot: Callable[[Page, str], Path],
) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    stored(_world, tag)
    sign_in(page, viewer, "/accounts")

    page.get_by_label("Domain or external id").fill(f"https://www.ACME-{tag}.com/pricing")
    page.get_by_role("button", name="Look up").click()

    expect(page.get_by_role("heading", name=f"Acme {tag}")).to_be_visible()
    expect(page.get_by_role("row", name="industry Software")).to_be_visible()
    segments = page.get_by_role("region", name="Account appears in these segments")
    expect(segments.get_by_role("listitem")).to_have_text(
        [f"{tag} Also details", f"{tag} Key accounts"]
    )
    screenshot(page, "account-details")

    # By external id too; an account in none of them says so.
    page.get_by_label("Domain or external id").fill(f"{tag}-2")
    page.get_by_role("button", name="Look up").click()
    expect(page.get_by_role("heading", name="Globex")).to_be_visible()
    expect(segments).to_contain_text("None of the segments published to account details")


def test_an_unknown_account_is_said_in_place(page: Page, viewer: WebUser) -> None:
    sign_in(page, viewer, "/accounts?key=nobody.example.org")

    expect(page.get_by_role("alert")).to_have_text(
        "no account with external id or domain 'nobody.example.org'"
    )
    expect(page.get_by_label("Domain or external id")).to_have_value("nobody.example.org")
