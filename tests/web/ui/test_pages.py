"""What the web app answers around its screens: the home page, unknown pages, errors as pages
on the app's paths and as JSON on the API's."""

from __future__ import annotations

import re

import requests

from tests.web.server import ApiServer
from tests.web.ui.conftest import WebUser


def _signed_in(api: ApiServer, user: WebUser) -> requests.Session:
    browser = requests.Session()
    form = browser.get(api.url("/sign-in"), timeout=30)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, form.text
    browser.post(
        api.url("/sign-in"),
        data={"name": user.name, "password": user.password, "csrf_token": token.group(1)},
        timeout=30,
    )
    return browser


def test_home_unknown_pages_and_api_paths(api: ApiServer, viewer: WebUser) -> None:
    stranger = requests.get(api.url("/"), timeout=30)
    assert stranger.url.endswith("/sign-in?next=%2Fpublished-segments")

    browser = _signed_in(api, viewer)
    home = browser.get(api.url("/"), timeout=30)
    assert home.url.endswith("/published-segments") and "<h1>Published Segments</h1>" in home.text

    missing = browser.get(api.url("/no/such/page"), timeout=30)
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert "no such path: GET /no/such/page</p>" in missing.text
    assert f"{viewer.name} <span" in missing.text  # the page keeps the signed-in header

    api_missing = browser.get(api.url("/v1/no/such/route"), timeout=30)
    assert api_missing.status_code == 404
    assert api_missing.json() == {
        "error": {
            "code": "not_found",
            "message": "no such path: GET /v1/no/such/route (see /openapi.json)",
        }
    }
    # A page's form sent by someone not signed in is refused as a page, not redirected.
    anonymous = requests.post(api.url("/orchestrations/runs"), data={}, timeout=30)
    assert anonymous.status_code == 401 and "you are not signed in" in anonymous.text
