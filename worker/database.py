"""A database opened on first use and checked for the current schema: what the commands and the
demo work on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

# SQLAlchemy, Alembic and pydantic-settings are imported on first use, not here: every command
# makes a Database before it runs, its --help included, and most --help need none of them.
if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from worker.settings import Settings


class Database:
    """A database, opened on first use, with the settings given or else the environment's."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings
        self._engine: Engine | None = None

    @property
    def settings(self) -> Settings:
        """The settings given, or else those of the environment, read on first use."""
        if self._settings is None:
            self._settings = self.read_settings()
        return self._settings

    def read_settings(self) -> Settings:
        """The settings of the environment (SEGSYNC_*), when none were given."""
        from worker.settings import Settings

        return Settings()

    @property
    def engine(self) -> Engine:
        """The engine, created from SEGSYNC_DATABASE_URL on first use."""
        if self._engine is None:
            from models.db import make_engine

            self._engine = make_engine(self.settings.database_url)
        return self._engine

    def sessions(self) -> sessionmaker[Session]:
        """Sessions on a database that is at the current schema (refused otherwise)."""
        from models.db import make_session_factory, require_current_schema

        require_current_schema(self.engine)
        return make_session_factory(self.engine)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One session in one transaction on the current schema."""
        from models.db import transaction

        with transaction(self.sessions()) as session:
            yield session
