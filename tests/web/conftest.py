"""One real `segsync api` per test module and backend, on a database of the module's own."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from models.db import make_engine, make_session_factory, transaction
from tests.conftest import fresh_database
from tests.web.server import ApiServer, running_api


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database at the head schema that the module's server and tests share."""
    with fresh_database(request, tmp_path_factory.mktemp("api-db")) as url:
        yield url


@pytest.fixture(scope="module")
def api_sessions(api_database_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on the module's database, to put what a test needs in place."""
    engine = make_engine(api_database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def api(api_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """The module's `segsync api` process."""
    folder = tmp_path_factory.mktemp("api")
    with running_api({"SEGSYNC_DATABASE_URL": api_database_url}, folder) as server:
        yield server


@pytest.fixture
def stored(api_sessions: sessionmaker[Session]) -> Callable[..., object]:
    """Run `function(session, *args)` in one committed transaction; its result."""

    def run(function: Callable[..., object], *args: object) -> object:
        with transaction(api_sessions) as session:
            return function(session, *args)

    return run
