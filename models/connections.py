"""Connections to CRM/MAP accounts: settings in the clear, secrets encrypted at rest (Fernet).

A secret is either stored encrypted with the key from the environment, or named as an environment
variable to read when the connection is used; the database never holds a secret in the clear.
Which keys a system takes is the connectors' knowledge: adding or changing a connection takes a
check from the caller (worker.connector_factory's), run before anything is stored.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import JSON, DateTime, Integer, String, Text, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, as_utc, utcnow
from models.errors import InputError, NotFoundError, RuleError

SECRET_KEY_VARIABLE = "SEGSYNC_SECRET_KEY"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Connection(Base):
    """One CRM/MAP account segsync can read and write."""

    __tablename__ = "connections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    system: Mapped[str] = mapped_column(String(32))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Fernet token of a JSON object {key: secret}; never readable without SEGSYNC_SECRET_KEY.
    encrypted_secrets: Mapped[str | None] = mapped_column(Text)
    # Names of the encrypted secrets, kept beside the ciphertext so listing never needs the key.
    stored_secret_keys: Mapped[list[str]] = mapped_column(JSON, default=list)
    # {key: NAME of the environment variable holding that secret}.
    secret_environment: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    def secret_keys(self) -> list[str]:
        """Names of the secrets this connection has (never their values)."""
        return sorted(set(self.secret_environment) | set(self.stored_secret_keys))


def secret_cipher(key_text: str | None) -> MultiFernet:
    """The cipher for SEGSYNC_SECRET_KEY (comma-separated keys: the first encrypts, all decrypt)."""
    if not key_text or not key_text.strip():
        raise InputError(
            f"{SECRET_KEY_VARIABLE} is not set: connection secrets are encrypted at rest with it "
            "(make one with `segsync connections keygen`)"
        )
    try:
        return MultiFernet([Fernet(part.strip()) for part in key_text.split(",") if part.strip()])
    except ValueError:
        raise InputError(
            f"{SECRET_KEY_VARIABLE} is not a valid key (32 url-safe base64-encoded bytes; "
            "make one with `segsync connections keygen`)"
        ) from None


def new_secret_key() -> str:
    """A fresh key for SEGSYNC_SECRET_KEY."""
    return Fernet.generate_key().decode()


@dataclass(frozen=True)
class ConnectionSpec:
    """What a person gives to add a connection."""

    name: str
    system: str
    settings: dict[str, str]
    secrets: dict[str, str]
    secret_environment: dict[str, str]


def add_connection(session: Session, spec: ConnectionSpec, key_text: str | None) -> Connection:
    """Store a new connection, encrypting its secrets; the caller commits."""
    if not _NAME.match(spec.name):
        raise InputError(
            f"connection name {spec.name!r} must be letters, digits, '.', '_' or '-' "
            "(at most 100, starting with a letter or digit)"
        )
    _check_secret_sources(spec.secrets, spec.secret_environment)
    if session.scalar(select(Connection.id).where(Connection.name == spec.name)) is not None:
        raise RuleError(f"a connection named {spec.name!r} already exists")
    connection = Connection(
        name=spec.name,
        system=spec.system,
        settings=dict(spec.settings),
        encrypted_secrets=_encrypt(spec.secrets, key_text),
        stored_secret_keys=sorted(spec.secrets),
        secret_environment=dict(spec.secret_environment),
    )
    session.add(connection)
    session.flush()
    return connection


# Raises InputError unless a connection of SYSTEM with these settings and secrets is complete for
# its auth mode and has no key the system does not take. A secret's value is None where it is not
# at hand (kept encrypted, or read from the environment when used).
ConnectionCheck = Callable[[str, Mapping[str, str], Mapping[str, str | None]], None]


@dataclass(frozen=True)
class ConnectionChanges:
    """What a person changes in a connection; settings and secrets not named stay as they are."""

    settings: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    secret_environment: dict[str, str] = field(default_factory=dict)
    # Settings or secrets to remove.
    unset: tuple[str, ...] = ()


def update_connection(
    session: Session,
    name: str,
    changes: ConnectionChanges,
    key_text: str | None,
    check: ConnectionCheck,
) -> tuple[str, ...]:
    """Change connection `name`; returns the keys that changed (none: nothing was written).

    The whole connection as it would be is checked first, so a refusal stores nothing. Workers
    rebuild their connector for it, as its updated_at has moved. The caller commits."""
    connection = find_connection(session, name, lock=True)
    _check_secret_sources(changes.secrets, changes.secret_environment)
    given = set(changes.settings) | set(changes.secrets) | set(changes.secret_environment)
    both = sorted(given & set(changes.unset))
    if both:
        raise InputError(f"{both[0]} is both given and unset")
    held = set(connection.settings) | set(connection.secret_keys())
    for key in changes.unset:
        if key not in held:
            raise InputError(f"connection {connection.name!r} has no setting or secret {key!r}")
    replaced = set(changes.unset) | set(changes.secrets) | set(changes.secret_environment)
    settings = {
        k: v for k, v in connection.settings.items() if k not in changes.unset
    } | changes.settings
    environment = {
        k: v for k, v in connection.secret_environment.items() if k not in replaced
    } | changes.secret_environment
    kept = [k for k in connection.stored_secret_keys if k not in replaced]
    secrets_at_hand: dict[str, str | None] = dict.fromkeys([*kept, *environment])
    check(connection.system, settings, secrets_at_hand | changes.secrets)
    changed = sorted(
        _differing(settings, connection.settings)
        | _differing(environment, connection.secret_environment)
        | set(changes.secrets)
        | (set(connection.stored_secret_keys) - set(kept))
    )
    if not changed:
        return ()
    if changes.secrets or len(kept) != len(connection.stored_secret_keys):
        stored = {k: v for k, v in _decrypt(connection, key_text).items() if k in kept}
        stored |= changes.secrets
        connection.encrypted_secrets = _encrypt(stored, key_text)
        connection.stored_secret_keys = sorted(stored)
    connection.settings = settings
    connection.secret_environment = environment
    # A worker reuses its connector while updated_at stays the same: it must move, even when two
    # changes fall within the clock's resolution.
    connection.updated_at = max(utcnow(), as_utc(connection.updated_at) + timedelta(microseconds=1))
    session.flush()
    _forget_what_was_read(session, connection.id)
    return tuple(changed)


def _forget_what_was_read(session: Session, connection_id: int) -> None:
    """After any change of a connection (another instance URL, another account's token, or the
    same account's new credentials: they cannot be told apart), its orchestrations' next runs
    read everything: what they knew of records may be another account's."""
    # Imported here: orchestrations refer to connections, not the other way round.
    from models.orchestrations import Orchestration
    from models.runs import ReadWatermark, RecordState

    targets = select(Orchestration.id).where(Orchestration.connection_id == connection_id)
    session.execute(delete(ReadWatermark).where(ReadWatermark.orchestration_id.in_(targets)))
    session.execute(delete(RecordState).where(RecordState.orchestration_id.in_(targets)))


def delete_connection(session: Session, name: str) -> None:
    """Delete connection `name` and its secrets, unless an orchestration or a segment uses it."""
    # Imported here: orchestrations and CRM sources refer to connections, not the other way round.
    from models.crm_sources import segments_reading
    from models.orchestrations import Orchestration

    connection = find_connection(session, name, lock=True)
    users = list(
        session.scalars(
            select(Orchestration.name)
            .where(Orchestration.connection_id == connection.id)
            .order_by(Orchestration.name)
        )
    )
    if users:
        listed = ", ".join(repr(user) for user in users)
        plural = "orchestrations" if len(users) > 1 else "orchestration"
        raise RuleError(
            f"connection {connection.name!r} is used by {plural} {listed}: delete them or move "
            "them to another connection first"
        )
    readers = segments_reading(session, connection.id)
    if readers:
        listed = ", ".join(repr(reader) for reader in readers)
        plural = "segments" if len(readers) > 1 else "segment"
        raise RuleError(
            f"connection {connection.name!r} is where {plural} {listed} read their members "
            "from: it is kept while a segment reads from it"
        )
    session.execute(delete(Connection).where(Connection.id == connection.id))


def lock_connection(session: Session, connection_id: int) -> Connection:
    """The connection with this id, locked until the transaction ends: checks of what its
    orchestrations write, and its deletion, take turns (SQLite serialises every write anyway)."""
    connection = session.scalar(
        select(Connection).where(Connection.id == connection_id).with_for_update()
    )
    if connection is None:
        raise NotFoundError(f"no connection with id {connection_id}")
    return connection


def find_connection(session: Session, name: str, lock: bool = False) -> Connection:
    """The connection called `name` (`lock`: its row locked until the transaction ends)."""
    query = select(Connection).where(Connection.name == name)
    connection = session.scalar(query.with_for_update() if lock else query)
    if connection is None:
        raise NotFoundError(f"no connection named {name!r}")
    return connection


def resolve_secrets(connection: Connection, key_text: str | None) -> dict[str, str]:
    """The connection's secrets in the clear: decrypted, or read from the environment."""
    secrets = _decrypt(connection, key_text)
    for key, variable in connection.secret_environment.items():
        value = os.environ.get(variable)
        if not value:
            raise InputError(
                f"connection {connection.name!r} reads secret {key} from ${variable}, "
                "which is not set"
            )
        secrets[key] = value
    return secrets


def _check_secret_sources(secrets: Mapping[str, str], environment: Mapping[str, str]) -> None:
    for key, variable in environment.items():
        if not _ENV_NAME.match(variable):
            raise InputError(f"secret {key}: {variable!r} is not an environment variable name")
    overlap = set(secrets) & set(environment)
    if overlap:
        raise InputError(
            f"secret {sorted(overlap)[0]} is given both as a value and from the environment"
        )


def _encrypt(secrets: Mapping[str, str], key_text: str | None) -> str | None:
    if not secrets:
        return None
    return secret_cipher(key_text).encrypt(json.dumps(dict(secrets)).encode()).decode()


def _decrypt(connection: Connection, key_text: str | None) -> dict[str, str]:
    if not connection.encrypted_secrets:
        return {}
    cipher = secret_cipher(key_text)
    try:
        stored: dict[str, str] = json.loads(cipher.decrypt(connection.encrypted_secrets.encode()))
    except InvalidToken:
        raise InputError(
            f"cannot decrypt the secrets of connection {connection.name!r}: "
            f"{SECRET_KEY_VARIABLE} is not the key they were stored with"
        ) from None
    return stored


def _differing(new: Mapping[str, str], old: Mapping[str, str]) -> set[str]:
    return {key for key in set(new) | set(old) if new.get(key) != old.get(key)}
