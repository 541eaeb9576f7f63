"""Signing in and out: sessions in HttpOnly SameSite cookies, CSRF on every form, no open
redirects, and the web app's security headers."""

from __future__ import annotations

import html
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import requests
from playwright.sync_api import Browser, Page, expect

from connectors.sandbox.tls import make_certificates
from tests.web.server import SEGSYNC, ApiServer, running_api
from tests.web.ui.conftest import WebUser, sign_in


def _form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def _signed_in_session(api: ApiServer, user: WebUser, **headers: str) -> requests.Session:
    browser = requests.Session()
    browser.headers.update(headers)
    form = browser.get(api.url("/sign-in"), timeout=30)
    answer = browser.post(
        api.url("/sign-in"),
        data={"name": user.name, "password": user.password, "csrf_token": _form_token(form.text)},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 303, answer.text
    return browser


def test_a_page_asks_to_sign_in_then_opens_and_the_cookie_is_httponly_and_samesite(
    page: Page, viewer: WebUser, screenshot: Callable[[Page, str], Path]
) -> None:
    page.goto("/accounts?key=example.com")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=%2Faccounts%3Fkey%3Dexample\.com$"))
    screenshot(page, "sign-in")

    page.get_by_label("Name").fill(viewer.name)
    page.get_by_label("Password").fill(viewer.password + "x")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("wrong name or password")

    page.get_by_label("Password").fill(viewer.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/accounts\?key=example\.com$"))
    expect(page.get_by_text(f"{viewer.name} (viewer)")).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "segsync_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and not cookie["secure"]


def test_signing_out_ends_the_session_for_every_copy_of_the_cookie(
    page: Page, api: ApiServer, admin: WebUser
) -> None:
    sign_in(page, admin, "/accounts")
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "segsync_session")

    page.get_by_role("button", name="Sign out").click()

    expect(page.get_by_role("heading", name="Sign in to segsync")).to_be_visible()
    copied = requests.get(
        api.url("/accounts"), cookies={"segsync_session": token}, allow_redirects=False, timeout=30
    )
    assert copied.status_code == 303 and copied.headers["location"].startswith("/sign-in")


def test_forms_without_their_csrf_token_are_refused(api: ApiServer, admin: WebUser) -> None:
    # The sign-in form: without the token its cookie holds, nobody is signed in.
    stranger = requests.post(
        api.url("/sign-in"),
        data={"name": admin.name, "password": admin.password},
        allow_redirects=False,
        timeout=30,
    )
    assert stranger.status_code == 403 and "segsync_session" not in stranger.cookies
    assert "this form was not sent from a page of segsync" in stranger.text
    # Any form of a signed-in user: the session's token must come with it.
    browser = _signed_in_session(api, admin)
    for token in ({}, {"csrf_token": "forged"}):
        refused = browser.post(api.url("/sign-out"), data=token, allow_redirects=False, timeout=30)
        assert refused.status_code == 403
        assert "this form was not sent from a page of segsync" in refused.text
    assert browser.get(api.url("/accounts"), allow_redirects=False, timeout=30).status_code == 200


def test_sign_in_goes_only_to_pages_of_this_site(api: ApiServer, admin: WebUser) -> None:
    for wanted, lands in (
        ("/accounts?key=a.com", "/accounts?key=a.com"),
        ("//evil.example/", "/published-segments"),
        ("https://evil.example/", "/published-segments"),
        ("/\\evil.example", "/published-segments"),
    ):
        browser = requests.Session()
        form = browser.get(api.url("/sign-in"), timeout=30)
        answer = browser.post(
            api.url("/sign-in"),
            data={
                "name": admin.name,
                "password": admin.password,
                "csrf_token": _form_token(form.text),
                "next": wanted,
            },
            allow_redirects=False,
            timeout=30,
        )
        assert answer.headers["location"] == lands, wanted


def test_over_https_the_cookie_is_secure_and_pages_carry_security_headers(
    api: ApiServer, admin: WebUser
) -> None:
    # uvicorn trusts X-Forwarded-Proto from 127.0.0.1, as from a TLS-terminating proxy there.
    form = requests.get(api.url("/sign-in"), headers={"X-Forwarded-Proto": "https"}, timeout=30)
    answer = requests.post(
        api.url("/sign-in"),
        data={"name": admin.name, "password": admin.password, "csrf_token": _form_token(form.text)},
        # Given as plain values: a cookie marked Secure is otherwise not sent back over HTTP.
        cookies={"segsync_sign_in": form.cookies["segsync_sign_in"]},
        headers={"X-Forwarded-Proto": "https"},
        allow_redirects=False,
        timeout=30,
    )
    session_cookie = answer.headers["set-cookie"]
    assert "segsync_session=" in session_cookie
    assert "HttpOnly" in session_cookie and "Secure" in session_cookie
    assert "SameSite=lax" in session_cookie

    page = requests.get(api.url("/sign-in"), timeout=30)
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    assert "content-security-policy" not in requests.get(api.url("/healthz"), timeout=30).headers


def test_guessing_a_password_is_stopped_after_ten_attempts_per_name(
    api: ApiServer, make_user: Callable[[str], WebUser]
) -> None:
    target, bystander = make_user("admin"), make_user("viewer")

    def attempt(user: WebUser, password: str) -> requests.Response:
        browser = requests.Session()
        form = browser.get(api.url("/sign-in"), timeout=30)
        return browser.post(
            api.url("/sign-in"),
            data={"name": user.name, "password": password, "csrf_token": _form_token(form.text)},
            allow_redirects=False,
            timeout=30,
        )

    answers = [attempt(target, f"guess number {n}").status_code for n in range(10)]
    assert answers == [401] * 10
    stopped = attempt(target, target.password)
    assert stopped.status_code == 429 and "segsync_session" not in stopped.cookies
    assert f"too many sign-in attempts for {target.name!r} (10 in 300 s); try again in" in (
        html.unescape(stopped.text)
    )
    # Other names are not held up by it.
    assert attempt(bystander, bystander.password).status_code == 303


def test_served_over_https_the_browser_gets_a_secure_session_cookie(
    browser: Browser,
    api_database_url: str,
    make_user: Callable[[str], WebUser],
    tmp_path: Path,
) -> None:
    certificates = make_certificates(tmp_path / "tls")
    user = make_user("viewer")
    tls = (certificates.server_certificate, certificates.server_key, certificates.ca_bundle)
    with running_api({"SEGSYNC_DATABASE_URL": api_database_url}, tmp_path, tls=tls) as server:
        assert server.base_url.startswith("https://")
        # The browser does not know the test's CA; the certificate itself is checked above.
        context = browser.new_context(base_url=server.base_url, ignore_https_errors=True)
        try:
            page = context.new_page()
            sign_in(page, user, "/accounts")
            cookie = next(c for c in context.cookies() if c["name"] == "segsync_session")
            assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        finally:
            context.close()


def test_tls_files_that_cannot_serve_https_are_refused_in_one_line(tmp_path: Path) -> None:
    certificates = make_certificates(tmp_path / "tls")
    for arguments, refusal in (
        (
            ["--tls-cert", str(certificates.server_certificate)],
            "segsync: --tls-cert and --tls-key go together: give both to serve HTTPS, or neither",
        ),
        (
            ["--tls-cert", str(tmp_path / "missing.pem"), "--tls-key", str(tmp_path / "k.pem")],
            f"segsync: cannot serve HTTPS with --tls-cert {tmp_path / 'missing.pem'} and "
            f"--tls-key {tmp_path / 'k.pem'}: No such file or directory",
        ),
        (
            ["--tls-cert", str(certificates.ca_bundle), "--tls-key", str(certificates.server_key)],
            f"segsync: cannot serve HTTPS with --tls-cert {certificates.ca_bundle} and "
            f"--tls-key {certificates.server_key}: the key does not belong to the certificate",
        ),
    ):
        done = subprocess.run(
            [SEGSYNC, "api", "--port", "0", *arguments],
            env={**os.environ, "SEGSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert (done.returncode, done.stderr.strip()) == (1, refusal)
