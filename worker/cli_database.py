"""The database a CLI command works on, opened on first use and checked for the current schema."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from models.db import make_engine, make_session_factory, require_current_schema, transaction
from worker.settings import Settings


class Database:
    """The database the CLI works on, opened on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        """The engine, created from SEGSYNC_DATABASE_URL on first use."""
        if self._engine is None:
            self._engine = make_engine(self.settings.database_url)
        return self._engine

    def sessions(self) -> sessionmaker[Session]:
        """Sessions on a database that is at the current schema (refused otherwise)."""
        require_current_schema(self.engine)
        return make_session_factory(self.engine)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One session in one transaction on the current schema."""
        with transaction(self.sessions()) as session:
            yield session
