"""`segsync apikeys`: a key is printed once and never again; list and revoke by name."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from tests.worker.cli.test_main import Cli


@pytest.fixture
def cli(database_url: str) -> Cli:
    return Cli(database_url)


def test_create_prints_the_key_once_and_list_never_shows_it(cli: Cli, database_url: str) -> None:
    cli.ok("db", "upgrade")
    created = cli.ok("apikeys", "create", "crm-sync", "--scope", "read")
    key = created.stdout.strip()

    assert key.startswith("segsync_") and "\n" not in key
    assert "shown this once" in created.stderr and key not in created.stderr
    listed = cli.ok("apikeys", "list").stdout
    assert "crm-sync" in listed and "read" in listed and key[:14] in listed
    assert key not in listed
    [row] = cli.json("apikeys", "list")  # type: ignore[misc]
    assert (row["name"], row["scope"], row["revoked_at"]) == ("crm-sync", "read", None)
    with create_engine(database_url).connect() as connection:
        stored = connection.execute(text("SELECT digest, shown FROM api_keys")).one()
    assert key not in stored


def test_json_create_and_revoke(cli: Cli) -> None:
    cli.ok("db", "upgrade")
    made = cli.json("apikeys", "create", "ops", "--scope", "trigger")

    assert isinstance(made, dict) and made["scope"] == "trigger"
    assert cli.ok("apikeys", "revoke", "ops").stdout.strip() == "API key 'ops' revoked"
    [row] = cli.json("apikeys", "list")  # type: ignore[misc]
    assert row["revoked_at"] is not None


def test_refusals_are_one_line_and_a_bad_scope_is_misuse(cli: Cli) -> None:
    cli.ok("db", "upgrade")
    cli.ok("apikeys", "create", "one", "--scope", "publish")

    assert cli.refused("apikeys", "create", "one", "--scope", "read") == (
        "segsync: an API key named 'one' exists already"
    )
    assert cli.refused("apikeys", "revoke", "two") == "segsync: no API key named 'two'"
    assert cli("apikeys", "create", "x", "--scope", "admin").exit_code == 2
