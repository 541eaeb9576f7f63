"""Shared fixtures: every database test runs on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from models.db import make_engine, make_session_factory, upgrade
from tests.services import postgres_server, redis_server

_database_numbers = itertools.count(1)


@pytest.fixture(scope="session", autouse=True)
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """segsync's state folder (beat's schedule, Flower's db) for every program the tests start:
    a temporary one, never the home folder of whoever runs the tests."""
    folder = tmp_path_factory.mktemp("segsync-state")
    before = os.environ.get("SEGSYNC_STATE_DIR")
    os.environ["SEGSYNC_STATE_DIR"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("SEGSYNC_STATE_DIR", None)
    else:
        os.environ["SEGSYNC_STATE_DIR"] = before


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """URL of a PostgreSQL maintenance database: from the environment, or a server started here."""
    given = os.environ.get("SEGSYNC_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_template(postgres_admin_url: str) -> str:
    """Name of a PostgreSQL database at the head schema, copied for each test."""
    name = f"segsync_template_{os.getpid()}"
    admin = make_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        connection.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    engine = make_engine(make_url(postgres_admin_url).set(database=name).render_as_string(False))
    upgrade(engine)
    engine.dispose()
    return name


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file at the head schema, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "segsync.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # the last connection to close checkpoints the WAL into the file
    assert not path.with_name("segsync.db-wal").exists()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to a fresh, upgraded database of each backend."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "segsync.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    admin_url: str = request.getfixturevalue("postgres_admin_url")
    template_name: str = request.getfixturevalue("postgres_template")
    name = f"segsync_test_{os.getpid()}_{next(_database_numbers)}"
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name} TEMPLATE {template_name}"))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a fresh database of each backend."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions on the test's database."""
    return make_session_factory(engine)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """One session on the test's database; the test commits what it wants kept."""
    with session_factory() as session:
        yield session


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a Redis database: from SEGSYNC_TEST_REDIS_URL, or a server started here."""
    given = os.environ.get("SEGSYNC_TEST_REDIS_URL")
    if given:
        yield given
        return
    with redis_server() as url:
        yield url
