"""API keys: made once and shown once, kept as a digest, found by the key, revoked by name."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.api_keys import (
    KEY_PREFIX,
    ApiKey,
    create_api_key,
    find_key,
    list_api_keys,
    revoke_api_key,
)
from models.errors import InputError, NotFoundError, RuleError


def test_a_new_key_is_found_by_itself_and_only_its_digest_is_stored(session: Session) -> None:
    row, key = create_api_key(session, "crm-sync", "read")

    assert key.startswith(KEY_PREFIX) and len(key) > 40
    stored = session.scalars(select(ApiKey)).one()
    assert key not in (stored.digest, stored.shown) and key.startswith(stored.shown)
    assert find_key(session, key) is row
    assert find_key(session, key + "x") is None
    assert find_key(session, "") is None


def test_two_keys_differ_and_names_are_unique(session: Session) -> None:
    _, first = create_api_key(session, "one", "read")
    _, second = create_api_key(session, "two", "read")

    assert first != second
    with pytest.raises(RuleError, match="an API key named 'one' exists already"):
        create_api_key(session, "one", "trigger")


@pytest.mark.parametrize(
    ("name", "scope", "message"),
    [
        ("", "read", "an API key's name must be 1 to 100 printable characters"),
        ("x" * 101, "read", "an API key's name must be 1 to 100 printable characters"),
        ("tab\tname", "read", "an API key's name must be 1 to 100 printable characters"),
        ("ok", "admin", "unknown scope 'admin': use one of read, publish, trigger"),
    ],
)
def test_a_bad_name_or_scope_is_refused_and_nothing_is_stored(
    session: Session, name: str, scope: str, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        create_api_key(session, name, scope)

    assert list_api_keys(session) == []


def test_every_scope_reads_and_each_allows_its_own_use_only(session: Session) -> None:
    keys = {
        scope: create_api_key(session, scope, scope)[0] for scope in ("read", "publish", "trigger")
    }

    assert all(key.allows("read") for key in keys.values())
    assert [scope for scope, key in keys.items() if key.allows("publish")] == ["publish"]
    assert [scope for scope, key in keys.items() if key.allows("trigger")] == ["trigger"]


def test_a_revoked_key_is_no_longer_found_and_revoking_again_changes_nothing(
    session: Session,
) -> None:
    _, key = create_api_key(session, "old", "publish")

    revoked = revoke_api_key(session, "old")
    when = revoked.revoked_at
    again = revoke_api_key(session, "old")

    assert find_key(session, key) is None
    assert when is not None and again.revoked_at == when and not again.allows("read")
    assert [k.name for k in list_api_keys(session)] == ["old"]
    with pytest.raises(NotFoundError, match="no API key named 'nope'"):
        revoke_api_key(session, "nope")
