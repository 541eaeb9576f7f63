"""Signed-in sessions: only a digest of the cookie's token is kept; they end as they should."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.base import utcnow
from models.sign_in_sessions import (
    SESSION_HOURS,
    SignInSession,
    end_session,
    signed_in,
    start_session,
)
from models.users import create_user, delete_user, set_password, set_role

PASSWORD = "correct horse battery"


def test_a_session_names_its_user_and_role_and_keeps_only_a_digest_of_its_token(
    session: Session,
) -> None:
    ana = create_user(session, "ana", "admin", PASSWORD)
    create_user(session, "bo", "admin", PASSWORD)
    token = start_session(session, ana)

    who = signed_in(session, token)
    assert who is not None and (who.user_name, who.is_admin) == ("ana", True)
    assert len(who.csrf_token) >= 40 and who.csrf_token != token
    stored = session.scalars(select(SignInSession)).one()
    assert token not in (stored.digest, stored.csrf_token) and len(stored.digest) == 64
    assert signed_in(session, token + "x") is None
    # The role is read at every request: a user made a viewer can change nothing from then on.
    set_role(session, "ana", "viewer")
    who = signed_in(session, token)
    assert who is not None and not who.is_admin
    # Each session has its own CSRF token.
    other = signed_in(session, start_session(session, ana))
    assert other is not None and other.csrf_token != who.csrf_token


def test_sessions_end_when_signed_out_expired_password_changed_or_user_deleted(
    session: Session,
) -> None:
    create_user(session, "admin", "admin", PASSWORD)
    ana = create_user(session, "ana", "viewer", PASSWORD)
    signed_out, expired, renewed = (start_session(session, ana) for _ in range(3))

    end_session(session, signed_out)
    assert signed_in(session, signed_out) is None and signed_in(session, expired) is not None
    row = session.scalars(
        select(SignInSession).where(SignInSession.expires_at > utcnow()).limit(1)
    ).one()
    row.expires_at = utcnow() - timedelta(seconds=1)
    session.flush()
    remaining = [token for token in (expired, renewed) if signed_in(session, token) is not None]
    assert len(remaining) == 1
    # Expired sessions are cleared when a new one starts.
    start_session(session, ana)
    assert session.scalar(select(SignInSession).where(SignInSession.id == row.id)) is None

    set_password(session, "ana", PASSWORD + " new")
    assert signed_in(session, remaining[0]) is None
    last = start_session(session, ana)
    delete_user(session, "ana")
    assert signed_in(session, last) is None
    assert session.scalars(select(SignInSession)).all() == []


def test_a_session_lasts_session_hours(session: Session) -> None:
    ana = create_user(session, "ana", "admin", PASSWORD)
    start_session(session, ana)

    row = session.scalars(select(SignInSession)).one()
    lasts = row.expires_at - row.created_at
    assert lasts == timedelta(hours=SESSION_HOURS)
