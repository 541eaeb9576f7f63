"""The `segsync` command line: every operation a person does by hand."""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy.exc import OperationalError

from connectors.errors import ConnectorError
from models.db import safe_url, upgrade
from models.errors import SegsyncError
from worker.cli_accounts import accounts
from worker.cli_celery import beat_command, flower_command, worker_command
from worker.cli_connections import connections
from worker.cli_database import Database
from worker.cli_demo import demo_command
from worker.cli_orchestrations import orchestrations
from worker.cli_output import fail
from worker.cli_publishing import publish_command, published_command, unpublish_command, values
from worker.cli_runs import runs, sync_command
from worker.cli_sandbox import sandbox
from worker.cli_segments import segments
from worker.settings import Settings


class SegsyncGroup(click.Group):
    """A click group that turns every refusal into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (SegsyncError, ConnectorError) as exc:
            fail(str(exc))
        except OperationalError as exc:
            fail(f"database error: {str(exc.orig).strip().splitlines()[0]}")


@click.group(cls=SegsyncGroup)
@click.pass_context
def main(ctx: click.Context) -> None:
    """segsync: keep CRM/MAP records enriched with their accounts' published segment names."""
    ctx.obj = Database(Settings())


@main.group()
def db() -> None:
    """Create or migrate segsync's database schema."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(database: Database) -> None:
    """Create the schema, or migrate it to this version of segsync."""
    before, after = upgrade(database.engine)
    where = safe_url(database.engine)
    if before == after:
        click.echo(f"database {where} is already at revision {after}")
    else:
        click.echo(f"database {where} upgraded from {before or 'empty'} to revision {after}")


for command in (
    accounts,
    segments,
    publish_command,
    unpublish_command,
    published_command,
    values,
    connections,
    orchestrations,
    sync_command,
    runs,
    sandbox,
    worker_command,
    beat_command,
    flower_command,
    demo_command,
):
    main.add_command(command)
