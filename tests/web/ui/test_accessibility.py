"""Every screen is usable without a mouse: each control has an accessible name, the first Tab
reaches "Skip to content", and a confirm step takes the focus on its Confirm button."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from urllib.parse import quote

from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from models.publishing import publish
from models.segment_catalog import create_segment
from tests.factories import add_accounts
from tests.web.ui.conftest import WebUser, sign_in

# Controls a person operates, and how the browser names them for assistive technology
# (a <label>, aria-label, aria-labelledby, a button's text, or a title).
_UNNAMED_CONTROLS = """
() => [...document.querySelectorAll(
    'input:not([type=hidden]), select, textarea, button, a[href]'
)].filter(el => {
    const labelled = (el.labels && el.labels.length > 0)
        || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby') || el.title;
    const text = (el.innerText || el.value || '').trim();
    const needsLabel = ['INPUT', 'SELECT', 'TEXTAREA'].includes(el.tagName)
        && !['submit', 'button'].includes(el.type);
    return needsLabel ? !labelled : !(labelled || text);
}).map(el => el.outerHTML.slice(0, 160))
"""


def _world(session: Session, tag: str) -> None:
    add_accounts(
        session, [{"external_id": f"{tag}-1", "domain": f"a-{tag.lower()}.com", "country": tag}]
    )
    create_segment(session, f"{tag} Key accounts", filter_expression=f'country = "{tag}"')
    create_segment(session, f"{tag} Campaign", filter_expression=f'country = "{tag}"', folder="ABM")
    publish(session, f"{tag} Key accounts", ["enrichment", "account_details"])


def test_every_control_of_every_screen_has_a_name_and_the_keyboard_reaches_them(
    page: Page, admin: WebUser, stored: Callable[..., object]
) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    stored(_world, tag)
    page.goto("/sign-in")
    assert page.evaluate(_UNNAMED_CONTROLS) == [], "/sign-in"
    sign_in(page, admin)

    for path in (
        "/published-segments",
        "/segments",
        f"/segments/publish?name={quote(f'{tag} Campaign')}",
        f"/accounts?key={tag}-1",
        "/orchestrations",
    ):
        page.goto(path)
        expect(page.locator("h1")).to_be_visible()
        assert page.evaluate(_UNNAMED_CONTROLS) == [], path
        page.keyboard.press("Tab")
        expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.locator("main")).to_be_focused()

    # A confirm step, reached with the keyboard alone, takes the focus on Confirm.
    page.goto(f"/published-segments?q={tag}")
    box = page.get_by_role("checkbox", name=f"Publish {tag} Campaign to API", exact=True)
    box.focus()
    page.keyboard.press("Space")
    expect(box).to_be_checked()
    page.get_by_role("button", name="Review changes").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("alertdialog").get_by_role("button", name="Confirm")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Applied 1 change")
