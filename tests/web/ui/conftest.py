"""The web app in a real headless Chromium against the real `segsync api` of tests/web.

Each test gets a fresh browser context (no cookies) and signs in as a user it makes, so tests
of a module share the server and the database but nothing in the browser.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from models.users import create_user
from tests.web.server import ApiServer
from tests.web.ui.browser import CHROMIUM_ARGS, STEP_TIMEOUT_MS, chromium_path, screenshot_folder


@dataclass(frozen=True)
class WebUser:
    """A user the test made: name, password and role."""

    name: str
    password: str
    role: str


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the whole run."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, api: ApiServer) -> Iterator[Page]:
    """A page in a fresh context (no cookies) whose relative URLs go to the test's server."""
    context = browser.new_context(base_url=api.base_url, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    expect.set_options(timeout=STEP_TIMEOUT_MS)
    opened = context.new_page()
    yield opened
    context.close()


# Users' names, readable in the README's screenshots; a number follows once they are used up.
_FIRST_NAMES = ("ana", "ben", "carla", "dev", "elif", "femi", "gus", "hana", "ivo", "jun")
_USERS_MADE = itertools.count()


def unique_user_name() -> str:
    """A name no other user of this test run has (test modules share no database, but a
    module's tests share one)."""
    made = next(_USERS_MADE)
    cycle, index = divmod(made, len(_FIRST_NAMES))
    return _FIRST_NAMES[index] + (str(cycle) if cycle else "")


@pytest.fixture
def make_user(stored: Callable[..., object]) -> Callable[[str], WebUser]:
    """Make a user with `role` and a unique name; it is returned with its password."""

    def make(role: str) -> WebUser:
        user = WebUser(unique_user_name(), f"pw-{uuid.uuid4().hex}", role)
        stored(create_user, user.name, user.role, user.password)
        return user

    return make


@pytest.fixture
def admin(make_user: Callable[[str], WebUser]) -> WebUser:
    """A new admin."""
    return make_user("admin")


@pytest.fixture
def viewer(make_user: Callable[[str], WebUser]) -> WebUser:
    """A new viewer."""
    return make_user("viewer")


def sign_in(page: Page, user: WebUser, path: str = "/") -> None:
    """Open `path` as `user`: the sign-in form comes first and leads there."""
    page.goto(path)
    page.get_by_label("Name").fill(user.name)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


@pytest.fixture
def screenshot(
    request: pytest.FixtureRequest, tmp_path: Path, api_database_url: str
) -> Callable[[Page, str], Path]:
    """Save a full-page screenshot named `name` (README images come from the PostgreSQL run)."""

    def save(page: Page, name: str) -> Path:
        backend = "postgresql" if api_database_url.startswith("postgresql") else "sqlite"
        folder = screenshot_folder(tmp_path) if backend == "postgresql" else tmp_path
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save
