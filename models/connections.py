"""Connections to CRM/MAP accounts: settings in the clear, secrets encrypted at rest (Fernet).

A secret is either stored encrypted with the key from the environment, or named as an environment
variable to read when the connection is used; the database never holds a secret in the clear.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import JSON, DateTime, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, utcnow
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
    for key, variable in spec.secret_environment.items():
        if not _ENV_NAME.match(variable):
            raise InputError(f"secret {key}: {variable!r} is not an environment variable name")
    overlap = set(spec.secrets) & set(spec.secret_environment)
    if overlap:
        raise InputError(
            f"secret {sorted(overlap)[0]} is given both as a value and from the environment"
        )
    if session.scalar(select(Connection.id).where(Connection.name == spec.name)) is not None:
        raise RuleError(f"a connection named {spec.name!r} already exists")
    encrypted = None
    if spec.secrets:
        cipher = secret_cipher(key_text)
        encrypted = cipher.encrypt(json.dumps(spec.secrets).encode()).decode()
    connection = Connection(
        name=spec.name,
        system=spec.system,
        settings=dict(spec.settings),
        encrypted_secrets=encrypted,
        stored_secret_keys=sorted(spec.secrets),
        secret_environment=dict(spec.secret_environment),
    )
    session.add(connection)
    session.flush()
    return connection


def find_connection(session: Session, name: str) -> Connection:
    """The connection called `name`."""
    connection = session.scalar(select(Connection).where(Connection.name == name))
    if connection is None:
        raise NotFoundError(f"no connection named {name!r}")
    return connection


def resolve_secrets(connection: Connection, key_text: str | None) -> dict[str, str]:
    """The connection's secrets in the clear: decrypted, or read from the environment."""
    secrets: dict[str, str] = {}
    if connection.encrypted_secrets:
        cipher = secret_cipher(key_text)
        try:
            stored = json.loads(cipher.decrypt(connection.encrypted_secrets.encode()))
        except InvalidToken:
            raise InputError(
                f"cannot decrypt the secrets of connection {connection.name!r}: "
                f"{SECRET_KEY_VARIABLE} is not the key they were stored with"
            ) from None
        secrets.update(stored)
    for key, variable in connection.secret_environment.items():
        value = os.environ.get(variable)
        if not value:
            raise InputError(
                f"connection {connection.name!r} reads secret {key} from ${variable}, "
                "which is not set"
            )
        secrets[key] = value
    return secrets
