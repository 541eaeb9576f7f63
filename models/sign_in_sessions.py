"""Signed-in sessions of the web app: a random token in the browser, its digest here.

The cookie holds 256 random bits; only their SHA-256 digest is stored, so a copy of the database
signs nobody in. Each session has its own CSRF token, which every form of the web app carries
back. Sessions end when signed out, after SESSION_HOURS, or when their user is deleted; the
user's role is read on every request, so a user made a viewer can no longer change anything.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import DateTime, ForeignKey, String, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, utcnow
from models.users import User

# A working day and a half: long enough not to sign people out mid-task, short enough that a
# forgotten browser does not stay signed in for a week.
SESSION_HOURS = 12


class SignInSession(Base):
    """One signed-in browser: whose it is, its CSRF token and when it ends."""

    __tablename__ = "sign_in_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Hex SHA-256 of the cookie's token.
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class SignedIn:
    """Who a session belongs to, what they may do, and the CSRF token their forms carry."""

    user_name: str
    is_admin: bool
    csrf_token: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def start_session(session: Session, user: User) -> str:
    """A new session for `user`; its token, for the cookie (shown nowhere else). Caller commits."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        SignInSession(
            digest=_digest(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + timedelta(hours=SESSION_HOURS),
        )
    )
    # Old sessions of anyone are cleared here, where sessions are made, not on every request.
    # Compared in the database: SQLite gives back times without a zone, which Python's own
    # evaluation of the criterion (the default way to update loaded objects) cannot compare.
    session.execute(
        delete(SignInSession).where(SignInSession.expires_at <= now),
        execution_options={"synchronize_session": "fetch"},
    )
    session.flush()
    return token


def signed_in(session: Session, token: str) -> SignedIn | None:
    """Who holds the session of `token`, or None when it is unknown or has ended."""
    row = session.execute(
        select(User.name, User.role, SignInSession.csrf_token, SignInSession.expires_at)
        .join(User, User.id == SignInSession.user_id)
        .where(SignInSession.digest == _digest(token))
    ).first()
    if row is None:
        return None
    name, role, csrf_token, expires_at = row
    if expires_at.tzinfo is None:  # SQLite keeps no zone; segsync stores UTC.
        expires_at = expires_at.replace(tzinfo=utcnow().tzinfo)
    if expires_at <= utcnow():
        return None
    return SignedIn(user_name=name, is_admin=role == "admin", csrf_token=csrf_token)


def end_session(session: Session, token: str) -> None:
    """Sign the session of `token` out (nothing happens when there is none); caller commits."""
    session.execute(delete(SignInSession).where(SignInSession.digest == _digest(token)))


def end_sessions_of(session: Session, user: User) -> None:
    """Sign `user` out everywhere (password changed, user deleted); the caller commits."""
    session.execute(delete(SignInSession).where(SignInSession.user_id == user.id))
