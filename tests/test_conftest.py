"""The shared fixtures' PostgreSQL databases: reused between tests only when nothing is left of
the test before."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from models.accounts import Account
from models.db import make_engine
from tests.conftest import PostgresDatabases, pytest_configure


def _add_account(databases: PostgresDatabases, name: str, external_id: str) -> int:
    engine = make_engine(databases.url(name))
    try:
        with Session(engine) as session:
            account = Account(external_id=external_id, name="Acme", domain="acme.com")
            session.add(account)
            session.commit()
            return account.id
    finally:
        engine.dispose()


def test_a_database_given_back_comes_back_empty_with_its_ids_starting_again(
    postgres_databases: PostgresDatabases,
) -> None:
    name = postgres_databases.take()
    assert _add_account(postgres_databases, name, "A-1") == 1
    assert _add_account(postgres_databases, name, "A-2") == 2
    # A connection the test leaves open, in a transaction, does not keep the data.
    left_open = make_engine(postgres_databases.url(name)).connect()
    left_open.execute(text("SELECT count(*) FROM accounts"))
    postgres_databases.give_back(name)
    left_open.invalidate()  # its server side was ended: nothing to roll back
    left_open.close()

    again = postgres_databases.take()
    try:
        assert again == name
        engine = make_engine(postgres_databases.url(again))
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM accounts")).scalar() == 0
        engine.dispose()
        assert _add_account(postgres_databases, again, "A-1") == 1
    finally:
        postgres_databases.give_back(again)


def test_a_database_whose_schema_a_test_changed_is_dropped_not_reused(
    postgres_databases: PostgresDatabases,
) -> None:
    name = postgres_databases.take()
    engine = make_engine(postgres_databases.url(name))
    with engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE accounts RENAME COLUMN name TO old_name")
    engine.dispose()

    postgres_databases.give_back(name)

    assert name not in postgres_databases.free
    with postgres_databases.admin.connect() as connection:
        found = connection.execute(
            text("SELECT count(*) FROM pg_database WHERE datname = :name"), {"name": name}
        ).scalar()
    assert found == 0


def _config(workers: int | None, *, in_a_worker: bool = False) -> pytest.Config:
    """What pytest_configure reads of a pytest.Config: -n's value and, in a worker, its input."""
    config = SimpleNamespace(option=SimpleNamespace(numprocesses=workers))
    if in_a_worker:
        config.workerinput = {"workerid": "gw0"}
    return cast(pytest.Config, config)


def test_a_given_redis_is_refused_when_several_workers_would_share_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEGSYNC_TEST_REDIS_URL", "redis://127.0.0.1:1/0")
    with pytest.raises(pytest.UsageError) as refused:
        pytest_configure(_config(2))
    assert str(refused.value) == (
        "SEGSYNC_TEST_REDIS_URL cannot be shared by 2 test workers (the tests flush its "
        "database): unset it, or run the tests in one process with -n 0"
    )
    # One process (no xdist, -n 0 or -n 1), or a worker (the controller checked already): fine.
    for config in (_config(None), _config(0), _config(1), _config(2, in_a_worker=True)):
        pytest_configure(config)
    monkeypatch.delenv("SEGSYNC_TEST_REDIS_URL")
    pytest_configure(_config(2))  # each worker starts a Redis of its own
