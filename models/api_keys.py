"""API keys of segsync's HTTP API: who may read, publish and trigger runs.

A key is shown once, when it is made; only its SHA-256 digest is stored. A slow password hash
(argon2, bcrypt) guards guessable secrets; a key is 256 random bits, which no hash speed makes
guessable, and the API checks one on every request, so the fast digest is the right one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import DateTime, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, utcnow
from models.errors import InputError, NotFoundError, RuleError
from models.vocabulary import API_KEY_SCOPES

# Keys start with this, so that secret scanners and people recognise one.
KEY_PREFIX = "segsync_"
# Characters of a key shown by `apikeys list` to tell keys apart (prefix included).
SHOWN_CHARACTERS = len(KEY_PREFIX) + 6
NAME_MAX_LENGTH = 100


class ApiKey(Base):
    """One API key: its name, scope, the digest of the key, and when it was revoked."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX_LENGTH), unique=True)
    scope: Mapped[str] = mapped_column(String(16))
    # Hex SHA-256 of the whole key.
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    # The key's first characters, which `apikeys list` shows (not enough to guess the rest).
    shown: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    def allows(self, scope: str) -> bool:
        """Whether this key may do what `scope` allows (every key may read)."""
        return self.revoked_at is None and (scope == "read" or scope == self.scope)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def check_scope(scope: str) -> str:
    """`scope` if it is one of API_KEY_SCOPES, else InputError naming them."""
    if scope not in API_KEY_SCOPES:
        raise InputError(f"unknown scope {scope!r}: use one of {', '.join(API_KEY_SCOPES)}")
    return scope


def create_api_key(session: Session, name: str, scope: str) -> tuple[ApiKey, str]:
    """Make a key named `name` with `scope`; returns the row and the key, which is not kept."""
    name = name.strip()
    if not name or len(name) > NAME_MAX_LENGTH or not name.isprintable():
        raise InputError(
            f"an API key's name must be 1 to {NAME_MAX_LENGTH} printable characters, "
            f"not {name[:NAME_MAX_LENGTH]!r}"
        )
    check_scope(scope)
    if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
        raise RuleError(f"an API key named {name!r} exists already")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, scope=scope, digest=_digest(key), shown=key[:SHOWN_CHARACTERS])
    session.add(row)
    session.flush()
    return row, key


def find_key(session: Session, key: str) -> ApiKey | None:
    """The live (not revoked) key row whose key this is, or None."""
    digest = _digest(key)
    row = session.scalar(select(ApiKey).where(ApiKey.digest == digest))
    # The lookup is by digest; comparing again in constant time keeps timing from telling
    # anything about near misses of an index lookup's string comparison.
    if row is None or not hmac.compare_digest(row.digest, digest) or row.revoked_at is not None:
        return None
    return row


def list_api_keys(session: Session) -> list[ApiKey]:
    """Every key, revoked ones too, by name."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.name)))


def revoke_api_key(session: Session, name: str) -> ApiKey:
    """Revoke the key named `name` (NotFoundError if none; revoking twice changes nothing)."""
    row = session.scalar(select(ApiKey).where(ApiKey.name == name))
    if row is None:
        raise NotFoundError(f"no API key named {name!r}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row
