"""`segsync users`: passwords asked or read from stdin, never shown; roles; the last admin stays."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from tests.worker.cli.test_main import Cli

PASSWORD = "correct horse battery"


@pytest.fixture
def cli(database_url: str) -> Cli:
    cli = Cli(database_url)
    cli.ok("db", "upgrade")
    return cli


def test_create_reads_the_password_from_stdin_and_keeps_only_its_hash(
    cli: Cli, database_url: str
) -> None:
    created = cli(
        "users", "create", "ana", "--role", "admin", "--password-stdin", input=PASSWORD + "\n"
    )

    assert created.exit_code == 0, created.output
    assert created.stdout.strip() == "created user 'ana' (admin)"
    assert PASSWORD not in created.output
    assert [(r["name"], r["role"]) for r in cli.json("users", "list")] == [("ana", "admin")]  # type: ignore[union-attr,index]
    with create_engine(database_url).connect() as connection:
        stored = connection.execute(text("SELECT password_hash FROM users")).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_without_a_terminal_or_stdin_the_password_is_refused_and_nothing_stored(cli: Cli) -> None:
    assert cli.refused("users", "create", "ana", "--role", "admin") == (
        "segsync: no terminal to ask for the password on: use --password-stdin"
    )
    short = cli("users", "create", "ana", "--role", "admin", "--password-stdin", input="short\n")
    assert short.exit_code == 1
    assert short.stderr.strip() == "segsync: a password needs at least 12 characters"
    assert cli.json("users", "list") == []


def test_roles_passwords_and_deleting_keep_an_admin(cli: Cli) -> None:
    for name, role in (("ana", "admin"), ("bo", "viewer")):
        made = cli("users", "create", name, "--role", role, "--password-stdin", input=PASSWORD)
        assert made.exit_code == 0, made.output

    assert cli.refused("users", "delete", "ana", "--yes") == (
        "segsync: cannot delete 'ana': it is the last admin"
    )
    assert cli.ok("users", "role", "bo", "--role", "admin").stdout.strip() == "'bo' is now admin"
    assert cli.ok("users", "delete", "ana", "--yes").stdout.strip() == "deleted user 'ana'"
    changed = cli("users", "password", "bo", "--password-stdin", input="another long passphrase")
    assert changed.exit_code == 0 and changed.stdout.strip() == "new password set for 'bo'"
    assert cli.refused("users", "password", "zed", "--password-stdin") == (
        "segsync: --password-stdin: standard input is empty"
    )
    assert cli("users", "create", "x", "--role", "owner").exit_code == 2
