"""The database a CLI command works on, opened on first use and checked for the current schema."""

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
    """The database the CLI works on, opened on first use."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings
        self._engine: Engine | None = None

    @property
    def settings(self) -> Settings:
        """The settings given, or else those of the environment, read on first use."""
        if self._settings is None:
            from pydantic import ValidationError
            from pydantic_settings import SettingsError

            from worker.cli_output import fail
            from worker.settings import Settings

            try:
                self._settings = Settings()
            except SettingsError as error:
                fail(str(error))
            except ValidationError as error:
                # The variable and the rule, never the value (it may be a secret).
                first = error.errors()[0]
                name = "_".join(str(part) for part in first["loc"]).upper()
                fail(f"SEGSYNC_{name}: {first['msg']}")
            assert self._settings is not None
        return self._settings

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
