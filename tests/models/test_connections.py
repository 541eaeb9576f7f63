"""Connections keep secrets encrypted at rest, or named as environment variables; an update
changes only what it names and stores nothing it refuses."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from models.base import as_utc
from models.connections import (
    ConnectionChanges,
    ConnectionSpec,
    add_connection,
    delete_connection,
    find_connection,
    new_secret_key,
    resolve_secrets,
    update_connection,
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


def accept(system: str, settings: Mapping[str, str], secrets: Mapping[str, str | None]) -> None:
    """A check that takes any connection, noting what it was asked about."""
    asked.append((system, dict(settings), dict(secrets)))


asked: list[tuple[str, dict[str, str], dict[str, str | None]]] = []


def refuse(system: str, settings: Mapping[str, str], secrets: Mapping[str, str | None]) -> None:
    raise InputError(f"{system} connection is incomplete: missing security_token")


def stored_row(session: Session) -> dict[str, object]:
    return dict(session.execute(text("SELECT * FROM connections")).mappings().one())


def test_update_changes_what_is_named_and_keeps_the_rest(session: Session) -> None:
    key = new_secret_key()
    add_connection(session, spec(secrets={"password": SECRET, "security_token": "TOKEN-1"}), key)
    session.commit()
    asked.clear()
    changed = update_connection(
        session,
        "prod-sf",
        ConnectionChanges(
            settings={"login_url": "https://test.salesforce.com"}, secrets={"password": "new-Pa55"}
        ),
        key,
        accept,
    )
    session.commit()
    assert changed == ("login_url", "password")
    # The check saw the whole connection as it would be, with the secrets not at hand as None.
    assert asked == [
        (
            "salesforce",
            {
                "username": "ops@example.com",
                "auth": "password",
                "login_url": "https://test.salesforce.com",
            },
            {"security_token": None, "password": "new-Pa55"},
        )
    ]
    connection = find_connection(session, "prod-sf")
    assert resolve_secrets(connection, key) == {"password": "new-Pa55", "security_token": "TOKEN-1"}
    assert "new-Pa55" not in " ".join(str(v) for v in stored_row(session).values())
    assert connection.settings["username"] == "ops@example.com"


def test_update_moves_secrets_between_stored_and_environment_and_unsets(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = new_secret_key()
    add_connection(
        session,
        spec(secrets={"password": SECRET}, secret_environment={"security_token": "SF_T"}),
        key,
    )
    changed = update_connection(
        session,
        "prod-sf",
        ConnectionChanges(
            secrets={"security_token": "TOKEN-2"},
            secret_environment={"password": "SF_PASSWORD"},
            unset=("username",),
        ),
        key,
        accept,
    )
    assert changed == ("password", "security_token", "username")
    connection = find_connection(session, "prod-sf")
    assert connection.secret_environment == {"password": "SF_PASSWORD"}
    assert connection.stored_secret_keys == ["security_token"]
    assert "username" not in connection.settings
    monkeypatch.setenv("SF_PASSWORD", SECRET)
    assert resolve_secrets(connection, key) == {"password": SECRET, "security_token": "TOKEN-2"}
    update_connection(session, "prod-sf", ConnectionChanges(unset=("security_token",)), key, accept)
    connection = find_connection(session, "prod-sf")
    assert (connection.encrypted_secrets, connection.stored_secret_keys) == (None, [])


def test_a_refused_update_stores_nothing(session: Session) -> None:
    key = new_secret_key()
    add_connection(session, spec(), key)
    session.commit()
    before = stored_row(session)
    attempts = [
        (ConnectionChanges(secrets={"password": "x"}, unset=("password",)), "both given and unset"),
        (ConnectionChanges(unset=("colour",)), "has no setting or secret 'colour'"),
        (ConnectionChanges(secret_environment={"password": "1BAD"}), "not an environment"),
        (ConnectionChanges(unset=("password",)), "incomplete: missing security_token"),
    ]
    for changes, reason in attempts:
        with pytest.raises(InputError, match=reason):
            update_connection(session, "prod-sf", changes, key, refuse)
        session.rollback()
    with pytest.raises(InputError, match="not the key they were stored with"):
        update_connection(
            session,
            "prod-sf",
            ConnectionChanges(secrets={"password": "y"}),
            new_secret_key(),
            accept,
        )
    session.rollback()
    with pytest.raises(NotFoundError, match="no connection named 'nope'"):
        update_connection(session, "nope", ConnectionChanges(), key, accept)
    session.rollback()
    assert stored_row(session) == before


def test_settings_change_without_the_key_and_keep_the_secrets(session: Session) -> None:
    key = new_secret_key()
    add_connection(session, spec(), key)
    changed = update_connection(
        session, "prod-sf", ConnectionChanges(settings={"api_version": "60.0"}), None, accept
    )
    assert changed == ("api_version",)
    assert resolve_secrets(find_connection(session, "prod-sf"), key) == {"password": SECRET}
    assert (
        update_connection(
            session, "prod-sf", ConnectionChanges(settings={"api_version": "60.0"}), None, accept
        )
        == ()
    )


def test_updated_at_moves_on_every_change_even_within_one_clock_tick(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Workers keep their connector while updated_at is the same: a change must always move it.
    frozen = datetime(2030, 1, 1, tzinfo=UTC)
    monkeypatch.setattr("models.connections.utcnow", lambda: frozen)
    add_connection(session, spec(), new_secret_key())
    session.commit()
    seen = [as_utc(find_connection(session, "prod-sf").updated_at)]
    for version in ("60.0", "61.0"):
        update_connection(
            session, "prod-sf", ConnectionChanges(settings={"api_version": version}), None, accept
        )
        session.commit()
        session.expire_all()
        seen.append(as_utc(find_connection(session, "prod-sf").updated_at))
    assert seen[0] < seen[1] < seen[2]


def test_delete_removes_an_unused_connection_and_its_secrets(session: Session) -> None:
    add_connection(session, spec(), new_secret_key())
    session.commit()
    delete_connection(session, "prod-sf")
    session.commit()
    assert session.execute(text("SELECT count(*) FROM connections")).scalar() == 0
    with pytest.raises(NotFoundError):
        delete_connection(session, "prod-sf")
