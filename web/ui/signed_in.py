"""Who is signed in, from the session cookie; CSRF and role checks for every form.

Reading pages needs a signed-in user; any POST needs the form's CSRF token to match the
session's; changing anything needs an admin. The checks raise UiError or NotSignedIn, which the
web app answers with a page (web/ui/pages.py).
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from models.sign_in_sessions import SignedIn, signed_in

SESSION_COOKIE = "segsync_session"
CSRF_FIELD = "csrf_token"


class UiError(Exception):
    """A page that says what went wrong, with its status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class NotSignedIn(Exception):
    """The request needs a signed-in user and has none (answered by a redirect to sign in)."""


def current_user(request: Request) -> SignedIn:
    """The signed-in user of the request; NotSignedIn when there is none or the session ended."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise NotSignedIn()
    with request.app.state.sessions() as session:
        who = signed_in(session, token)
    if who is None:
        raise NotSignedIn()
    return who


def tokens_match(sent: object, expected: str) -> bool:
    """Whether a form's CSRF token `sent` is `expected` (compared in constant time)."""
    return isinstance(sent, str) and bool(sent) and hmac.compare_digest(sent, expected)


CSRF_REFUSAL = (
    "this form was not sent from a page of segsync, or its page is too old: "
    "reload the page and send it again"
)


async def form_poster(
    request: Request, who: Annotated[SignedIn, Depends(current_user)]
) -> SignedIn:
    """The signed-in user of a form whose CSRF token matches their session; 403 otherwise."""
    form = await request.form()
    if not tokens_match(form.get(CSRF_FIELD), who.csrf_token):
        raise UiError(403, CSRF_REFUSAL)
    return who


async def admin_form_poster(who: Annotated[SignedIn, Depends(form_poster)]) -> SignedIn:
    """The signed-in admin who sent a form with a valid CSRF token; 403 for a viewer."""
    if not who.is_admin:
        raise UiError(
            403, f"{who.user_name} is a viewer: viewers can see everything but change nothing"
        )
    return who


# For routes: a reader of pages, a sender of forms, and an admin sending a form that changes things.
Reader = Annotated[SignedIn, Depends(current_user)]
FormPoster = Annotated[SignedIn, Depends(form_poster)]
Changer = Annotated[SignedIn, Depends(admin_form_poster)]
