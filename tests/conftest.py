"""Shared fixtures: every database test runs on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, NullPool, make_url, text
from sqlalchemy.exc import SQLAlchemyError
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


# Everything in the public schema that a test could change: tables and their columns, indexes,
# constraints, sequences. A database whose schema still matches the template's is emptied and
# handed to the next test; any other is dropped.
_SCHEMA = """
SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' '
       || is_nullable || ' ' || coalesce(column_default, '')
  FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' '
       || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL SELECT 'sequence ' || sequence_name FROM information_schema.sequences
  WHERE sequence_schema = 'public'
UNION ALL SELECT 'trigger ' || tgrelid::regclass::text || ' ' || tgname FROM pg_trigger
  WHERE NOT tgisinternal
UNION ALL SELECT 'revision ' || version_num FROM alembic_version
ORDER BY 1
"""


class PostgresDatabases:
    """Databases at the head schema, one per test: made from the template the first time, then
    emptied after each test and handed to the next (TRUNCATE ... RESTART IDENTITY takes a quarter of
    the time CREATE DATABASE does), unless the test changed the schema: that one is dropped."""

    def __init__(self, admin_url: str, template: str) -> None:
        self.admin_url = admin_url
        self.template = template
        self.admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.free: list[str] = []
        template_engine = make_engine(self.url(template))
        with template_engine.connect() as connection:
            self.schema = list(connection.exec_driver_sql(_SCHEMA).scalars())
            self.tables = list(
                connection.exec_driver_sql(
                    "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'alembic_version' ORDER BY 1"
                ).scalars()
            )
        template_engine.dispose()

    def url(self, name: str) -> str:
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def take(self) -> str:
        """The name of an empty database at the head schema."""
        if self.free:
            return self.free.pop()
        name = f"segsync_test_{os.getpid()}_{next(_database_numbers)}"
        with self.admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name} TEMPLATE {self.template}"))
        return name

    def give_back(self, name: str) -> None:
        """Empty the database for the next test, or drop it if it cannot be reused as it is."""
        try:
            reusable = self._emptied(name)
        except SQLAlchemyError:
            reusable = False  # e.g. alembic_version gone, or a server older than PostgreSQL 14
        if reusable:
            self.free.append(name)
            return
        with self.admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))

    def _emptied(self, name: str) -> bool:
        with self.admin.connect() as connection:
            # Whatever the test left connected (its engines, a killed worker's backend) is ended
            # first: it could hold a lock or an open transaction. Waits up to 10 s for each.
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
        engine = make_engine(self.url(name), poolclass=NullPool)
        try:
            with engine.begin() as connection:
                connection.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
                if list(connection.exec_driver_sql(_SCHEMA).scalars()) != self.schema:
                    return False
                connection.exec_driver_sql(
                    f"TRUNCATE {', '.join(self.tables)} RESTART IDENTITY CASCADE"
                )
            return True
        finally:
            engine.dispose()

    def close(self) -> None:
        with self.admin.connect() as connection:
            for name in self.free:
                connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres_databases(
    postgres_admin_url: str, postgres_template: str
) -> Iterator[PostgresDatabases]:
    """The session's PostgreSQL databases for tests, reused once emptied."""
    databases = PostgresDatabases(postgres_admin_url, postgres_template)
    yield databases
    databases.close()


@contextmanager
def fresh_database(request: pytest.FixtureRequest, folder: Path) -> Iterator[str]:
    """A URL to a fresh, upgraded (and empty) database of the backend `request.param` names (a
    SQLite file in `folder`), given back when the block ends."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = folder / "segsync.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    name = databases.take()
    try:
        yield databases.url(name)
    finally:
        databases.give_back(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to a fresh, upgraded (and empty) database of each backend."""
    with fresh_database(request, tmp_path) as url:
        yield url


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


def pytest_configure(config: pytest.Config) -> None:
    """Refuse a Redis given by SEGSYNC_TEST_REDIS_URL when tests run in several xdist workers."""
    # The Celery tests flush their Redis database: workers sharing one would flush each other's
    # queues. Each worker starts a Redis of its own unless one is given. (PostgreSQL can be
    # shared: every worker's databases are named after its process id.)
    workers = getattr(config.option, "numprocesses", None)
    shared = workers not in (None, 0, 1) and not hasattr(config, "workerinput")
    if os.environ.get("SEGSYNC_TEST_REDIS_URL") and shared:
        raise pytest.UsageError(
            f"SEGSYNC_TEST_REDIS_URL cannot be shared by {workers} test workers (the tests flush "
            "its database): unset it, or run the tests in one process with -n 0"
        )


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a Redis database: from SEGSYNC_TEST_REDIS_URL, or a server started here."""
    given = os.environ.get("SEGSYNC_TEST_REDIS_URL")
    if given:
        yield given
        return
    with redis_server() as url:
        yield url
