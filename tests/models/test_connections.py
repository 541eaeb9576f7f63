"""Connections keep secrets encrypted at rest, or named as environment variables."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from models.connections import (
    ConnectionSpec,
    add_connection,
    find_connection,
    new_secret_key,
    resolve_secrets,
)
from models.errors import InputError, NotFoundError, RuleError

SECRET = "s3cr3t-Pa55word-value"


def spec(**changes: object) -> ConnectionSpec:
    base = {
        "name": "prod-sf",
        "system": "salesforce",
        "settings": {"username": "ops@example.com", "auth": "password"},
        "secrets": {"password": SECRET},
        "secret_environment": {},
    }
    return ConnectionSpec(**{**base, **changes})  # type: ignore[arg-type]


def test_secrets_are_encrypted_at_rest_and_decrypted_with_the_key(session: Session) -> None:
    key = new_secret_key()
    add_connection(session, spec(), key)
    session.commit()
    stored = session.execute(text("SELECT * FROM connections")).mappings().one()
    assert SECRET not in " ".join(str(value) for value in stored.values())
    connection = find_connection(session, "prod-sf")
    assert connection.secret_keys() == ["password"]
    assert resolve_secrets(connection, key) == {"password": SECRET}


def test_a_secret_needs_a_key(session: Session) -> None:
    with pytest.raises(InputError, match="SEGSYNC_SECRET_KEY is not set"):
        add_connection(session, spec(), None)
    with pytest.raises(InputError, match="SEGSYNC_SECRET_KEY is not a valid key"):
        add_connection(session, spec(), "not-a-key")


def test_the_wrong_key_is_refused_without_showing_anything(session: Session) -> None:
    add_connection(session, spec(), new_secret_key())
    with pytest.raises(InputError, match="not the key they were stored with") as refused:
        resolve_secrets(find_connection(session, "prod-sf"), new_secret_key())
    assert SECRET not in str(refused.value)


def test_keys_rotate_first_encrypts_all_decrypt(session: Session) -> None:
    old, new = new_secret_key(), new_secret_key()
    add_connection(session, spec(), old)
    assert resolve_secrets(find_connection(session, "prod-sf"), f"{new},{old}") == {
        "password": SECRET
    }


def test_secrets_from_the_environment(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    add_connection(session, spec(secrets={}, secret_environment={"password": "SF_PASSWORD"}), None)
    connection = find_connection(session, "prod-sf")
    assert connection.encrypted_secrets is None
    with pytest.raises(InputError, match=r"reads secret password from \$SF_PASSWORD"):
        resolve_secrets(connection, None)
    monkeypatch.setenv("SF_PASSWORD", SECRET)
    assert resolve_secrets(connection, None) == {"password": SECRET}


def test_names_and_duplicates(session: Session) -> None:
    add_connection(session, spec(), new_secret_key())
    with pytest.raises(RuleError, match="already exists"):
        add_connection(session, spec(), new_secret_key())
    with pytest.raises(InputError, match="connection name"):
        add_connection(session, spec(name="has space"), new_secret_key())
    with pytest.raises(InputError, match="not an environment variable name"):
        add_connection(session, spec(name="x", secrets={}, secret_environment={"p": "1BAD"}), None)
    with pytest.raises(InputError, match="both as a value and from the environment"):
        add_connection(session, spec(name="y", secret_environment={"password": "P"}), "k")
    with pytest.raises(NotFoundError, match="no connection named 'nope'"):
        find_connection(session, "nope")
