"""Web app users: Argon2 hashes only, sign-in, roles, and always one admin left."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from models.errors import InputError, NotFoundError, RuleError
from models.users import (
    User,
    authenticate,
    create_user,
    delete_user,
    list_users,
    set_password,
    set_role,
)

PASSWORD = "correct horse battery"


def test_a_user_signs_in_with_their_password_and_only_its_argon2_hash_is_kept(
    session: Session,
) -> None:
    create_user(session, "ana", "admin", PASSWORD)

    stored = session.scalars(select(User)).one()
    assert stored.password_hash.startswith("$argon2id$") and PASSWORD not in stored.password_hash
    assert authenticate(session, "ana", PASSWORD) is stored
    assert authenticate(session, " ana ", PASSWORD) is stored
    assert authenticate(session, "ana", PASSWORD + "!") is None
    assert authenticate(session, "nobody", PASSWORD) is None
    assert authenticate(session, "ana", "x" * 5000) is None


def test_a_hash_with_old_parameters_is_renewed_at_sign_in(session: Session) -> None:
    from argon2 import PasswordHasher

    user = create_user(session, "ana", "admin", PASSWORD)
    user.password_hash = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1).hash(PASSWORD)
    old = user.password_hash

    assert authenticate(session, "ana", PASSWORD) is user
    assert user.password_hash != old and authenticate(session, "ana", PASSWORD) is user


@pytest.mark.parametrize(
    ("name", "role", "password", "message"),
    [
        ("", "admin", PASSWORD, "a user's name must be 1 to 100 printable characters"),
        ("a\nb", "admin", PASSWORD, "a user's name must be 1 to 100 printable characters"),
        ("ana", "owner", PASSWORD, "unknown role 'owner': use one of admin, viewer"),
        ("ana", "admin", "short", "a password needs at least 12 characters"),
        ("ana", "admin", "x" * 1025, "a password may have at most 1024 characters"),
    ],
)
def test_bad_names_roles_and_passwords_are_refused_and_nothing_is_stored(
    session: Session, name: str, role: str, password: str, message: str
) -> None:
    with pytest.raises(InputError, match=message) as refused:
        create_user(session, name, role, password)

    assert password not in str(refused.value) or password == PASSWORD
    assert list_users(session) == []


def test_names_are_unique(session: Session) -> None:
    create_user(session, "ana", "admin", PASSWORD)

    with pytest.raises(RuleError, match="a user named 'ana' exists already"):
        create_user(session, "ana", "viewer", PASSWORD)


def test_the_last_admin_can_be_neither_deleted_nor_made_a_viewer(session: Session) -> None:
    create_user(session, "ana", "admin", PASSWORD)
    create_user(session, "bo", "viewer", PASSWORD)

    with pytest.raises(RuleError, match="cannot delete 'ana': it is the last admin"):
        delete_user(session, "ana")
    with pytest.raises(RuleError, match="cannot make a viewer of 'ana': it is the last admin"):
        set_role(session, "ana", "viewer")
    set_role(session, "bo", "admin")
    set_role(session, "ana", "viewer")
    delete_user(session, "ana")

    assert [(u.name, u.role) for u in list_users(session)] == [("bo", "admin")]
    with pytest.raises(NotFoundError, match="no user named 'ana'"):
        delete_user(session, "ana")


def test_a_new_password_replaces_the_old_one(session: Session) -> None:
    create_user(session, "ana", "admin", PASSWORD)

    set_password(session, "ana", "another long passphrase")

    assert authenticate(session, "ana", PASSWORD) is None
    assert authenticate(session, "ana", "another long passphrase") is not None
    rows = session.execute(text("SELECT password_hash FROM users")).scalars().all()
    assert all("passphrase" not in row for row in rows)
