"""Alembic environment: runs migrations on the engine segsync hands over (never from a .ini)."""

from __future__ import annotations

from alembic import context

import models.all_tables  # noqa: F401  (registers every table on the metadata)
from models.base import Base

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
