"""People who sign in to segsync's web app: a name, a role, and an Argon2 hash of the password.

Passwords are chosen by people and may be guessed, so they are kept only as Argon2id hashes
(argon2-cffi's defaults, RFC 9106's second recommended parameters), re-hashed when a sign-in finds
older parameters. The last admin can be neither deleted nor made a viewer: someone must be left
who can change things.
"""

from __future__ import annotations

from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import DateTime, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, utcnow
from models.errors import InputError, NotFoundError, RuleError
from models.vocabulary import USER_ROLES

NAME_MAX_LENGTH = 100
# NIST SP 800-63B asks for at least 8 characters; an account that can publish for the whole team
# gets more. The upper bound keeps a hash from being made of megabytes.
PASSWORD_MIN_LENGTH = 12
PASSWORD_MAX_LENGTH = 1024
_HASHER = PasswordHasher()
# Verified against when the name is unknown, so that answering takes as long as for a known name.
_UNKNOWN_USER_HASH = _HASHER.hash("no such user: this hash is only ever compared against")


class User(Base):
    """One person who can sign in to the web app."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX_LENGTH), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def is_admin(self) -> bool:
        """Whether the user may change things (publish, run, ...), not only read."""
        return self.role == "admin"


def check_role(role: str) -> str:
    """`role` if it is one of USER_ROLES, else InputError naming them."""
    if role not in USER_ROLES:
        raise InputError(f"unknown role {role!r}: use one of {', '.join(USER_ROLES)}")
    return role


def check_password(password: str) -> str:
    """`password` if long enough and not too long, else InputError saying so (never showing it)."""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise InputError(f"a password needs at least {PASSWORD_MIN_LENGTH} characters")
    if len(password) > PASSWORD_MAX_LENGTH:
        raise InputError(f"a password may have at most {PASSWORD_MAX_LENGTH} characters")
    return password


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > NAME_MAX_LENGTH or not name.isprintable():
        raise InputError(
            f"a user's name must be 1 to {NAME_MAX_LENGTH} printable characters, "
            f"not {name[:NAME_MAX_LENGTH]!r}"
        )
    return name


def create_user(session: Session, name: str, role: str, password: str) -> User:
    """Add user `name` with `role` and `password` (kept as its hash); the caller commits."""
    name = _check_name(name)
    check_role(role)
    check_password(password)
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise RuleError(f"a user named {name!r} exists already")
    user = User(name=name, role=role, password_hash=_HASHER.hash(password))
    session.add(user)
    session.flush()
    return user


def find_user(session: Session, name: str) -> User:
    """The user named `name`; NotFoundError if none."""
    user = session.scalar(select(User).where(User.name == name.strip()))
    if user is None:
        raise NotFoundError(f"no user named {name!r}")
    return user


def authenticate(session: Session, name: str, password: str) -> User | None:
    """The user if `password` is theirs, else None (an unknown name takes as long to refuse)."""
    user = session.scalar(select(User).where(User.name == name.strip()))
    if user is None or len(password) > PASSWORD_MAX_LENGTH:
        _verifies(_UNKNOWN_USER_HASH, password[:PASSWORD_MAX_LENGTH])
        return None
    if not _verifies(user.password_hash, password):
        return None
    if _HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = _HASHER.hash(password)
    return user


def _verifies(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def set_password(session: Session, name: str, password: str) -> User:
    """Give user `name` a new password; the caller commits."""
    from models.sign_in_sessions import end_sessions_of  # it imports this module

    user = find_user(session, name)
    user.password_hash = _HASHER.hash(check_password(password))
    # Whoever knew the old password is signed out with it.
    end_sessions_of(session, user)
    return user


def list_users(session: Session) -> list[User]:
    """Every user, by name."""
    return list(session.scalars(select(User).order_by(User.name)))


def _refuse_leaving_no_admin(session: Session, user: User, what: str) -> None:
    admins = session.scalar(select(func.count(User.id)).where(User.role == "admin"))
    if user.is_admin and (admins or 0) <= 1:
        raise RuleError(f"cannot {what} {user.name!r}: it is the last admin")


def set_role(session: Session, name: str, role: str) -> User:
    """Make user `name` an admin or a viewer (never the last admin a viewer); caller commits."""
    user = find_user(session, name)
    if check_role(role) != "admin":
        _refuse_leaving_no_admin(session, user, "make a viewer of")
    user.role = role
    return user


def delete_user(session: Session, name: str) -> None:
    """Remove user `name` (never the last admin); the caller commits."""
    from models.sign_in_sessions import end_sessions_of  # it imports this module

    user = find_user(session, name)
    _refuse_leaving_no_admin(session, user, "delete")
    end_sessions_of(session, user)
    session.delete(user)
    session.flush()
