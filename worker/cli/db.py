"""`segsync db upgrade`: create segsync's database schema or migrate it to this version."""

from __future__ import annotations

import click

from worker.cli.database import Database


@click.group()
def db() -> None:
    """Create or migrate segsync's database schema."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(database: Database) -> None:
    """Create the schema, or migrate it to this version of segsync."""
    # Alembic and SQLAlchemy load here, not for `segsync db --help`.
    from models.db import safe_url, upgrade

    before, after = upgrade(database.engine)
    where = safe_url(database.engine)
    if before == after:
        click.echo(f"database {where} is already at revision {after}")
    else:
        click.echo(f"database {where} upgraded from {before or 'empty'} to revision {after}")
