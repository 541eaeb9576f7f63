"""The schema is managed by Alembic and a database that is not upgraded is refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect

from models.db import current_revision, head_revision, make_engine, require_current_schema, upgrade
from models.errors import InputError, SchemaNotCurrentError


def test_upgraded_database_is_at_head(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()
    require_current_schema(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"accounts", "segments", "segment_memberships", "publications"} <= tables


def test_upgrade_twice_changes_nothing(engine: Engine) -> None:
    before, after = upgrade(engine)
    assert before == after == head_revision()


def test_empty_database_is_refused_with_the_command_to_run(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    with pytest.raises(SchemaNotCurrentError, match="has no segsync schema.*segsync db upgrade"):
        require_current_schema(engine)
    upgrade(engine)
    require_current_schema(engine)


def test_unreachable_database_is_one_line_without_password() -> None:
    engine = make_engine("postgresql+psycopg://bob:hunter2@127.0.0.1:1/nowhere")
    with pytest.raises(SchemaNotCurrentError) as caught:
        require_current_schema(engine)
    message = str(caught.value)
    assert "\n" not in message
    assert "hunter2" not in message
    assert "cannot open database" in message


def test_malformed_url_is_refused() -> None:
    with pytest.raises(InputError, match="not a valid SQLAlchemy URL"):
        make_engine("not a url")


def test_migrations_match_the_models(engine: Engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    import models.all_tables  # noqa: F401
    from models.base import Base

    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
