"""`segsync orchestrations`, `segsync sync` and `segsync runs`: define and run orchestrations."""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy import delete, func, select

from connectors.base import Connector
from connectors.ratelimit import rate_limiter
from models.connections import Connection, find_connection, resolve_secrets
from models.orchestrations import (
    Orchestration,
    OrchestrationSpec,
    create_orchestration,
    find_orchestration,
    parse_scope,
    scope_text,
)
from models.runs import SyncRun
from models.segments import Segment
from worker.cli_database import Database
from worker.cli_output import echo_json, fail, render_table
from worker.connector_factory import apply_rate_limits, build_connector


def connector_for(database: Database, connection_name: str) -> Connector:
    """A ready connector for a stored connection (secrets decrypted only in memory).

    Its calls keep to the vendor's rate, shared with the workers when Redis is configured.
    """
    with database.transaction() as session:
        connection = find_connection(session, connection_name)
        system, settings, key = connection.system, dict(connection.settings), connection.id
        secrets = resolve_secrets(connection, database.settings.secret_key_text())
    connector = build_connector(system, settings, secrets)
    limiter = rate_limiter(database.settings.shared_redis_url())
    apply_rate_limits(connector, system, f"{system}:{key}", limiter)
    return connector


def orchestration_as_dict(database: Database, orchestration: Orchestration) -> dict[str, Any]:
    """An orchestration as shown by `list` and `show`."""
    with database.transaction() as session:
        connection = session.get_one(Connection, orchestration.connection_id)
        segment = (
            session.get(Segment, orchestration.scope_segment_id)
            if orchestration.scope_segment_id
            else None
        )
        return {
            "name": orchestration.name,
            "connection": connection.name,
            "system": connection.system,
            "object": orchestration.object_type,
            "field": orchestration.field,
            "scope": scope_text(orchestration, segment.name if segment else None),
            "schedule": orchestration.schedule,
            "next_run_at": orchestration.next_run_at,
            "delimiter": orchestration.delimiter,
            "max_length": orchestration.max_length,
            "keep_when_empty": orchestration.keep_when_empty,
            "daily_api_budget": orchestration.daily_api_budget,
            "enabled": orchestration.enabled,
        }


@click.group()
def orchestrations() -> None:
    """Define Segment Name orchestrations: which field of which records to keep enriched."""


@orchestrations.command("create")
@click.argument("name")
@click.option("--connection", "connection_name", required=True)
@click.option("--object", "object_type", required=True, help="e.g. Lead, Contact, contacts.")
@click.option("--field", required=True, help="The field the segment names are written to.")
@click.option("--schedule", help="Cron expression in UTC, e.g. '0 2 * * *' (default: on demand).")
@click.option("--scope", default="all", show_default=True, help="all, recent:DAYS or segment:NAME")
@click.option("--delimiter", default=";", show_default=True)
@click.option("--max-length", type=int, help="Cap below the field's own maximum length.")
@click.option("--keep-when-empty", is_flag=True, help="Never clear a record's stale names.")
@click.option("--daily-api-budget", type=int, help="API calls this orchestration may use a day.")
@click.pass_obj
def create_command(
    database: Database,
    name: str,
    connection_name: str,
    object_type: str,
    field: str,
    schedule: str | None,
    scope: str,
    delimiter: str,
    max_length: int | None,
    keep_when_empty: bool,
    daily_api_budget: int | None,
) -> None:
    """Create orchestration NAME after checking that the connection has the field."""
    connector = connector_for(database, connection_name)
    described = connector.describe_field(connector.check_object(object_type), field)
    if not described.writable:
        fail(f"field {described.name} on {described.object_type} is not writable")
    with database.transaction() as session:
        connection = find_connection(session, connection_name)
        create_orchestration(
            session,
            OrchestrationSpec(
                name=name,
                connection_id=connection.id,
                object_type=described.object_type,
                field=described.name,
                scope=parse_scope(scope),
                delimiter=delimiter,
                max_length=max_length,
                keep_when_empty=keep_when_empty,
                daily_api_budget=daily_api_budget,
                schedule=schedule,
            ),
        )
    click.echo(
        f"created orchestration {name!r}: {connection_name} {described.object_type}."
        f"{described.name} ({described.max_length or 'unlimited'} characters)"
    )


@orchestrations.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@click.pass_obj
def list_command(database: Database, as_json: bool) -> None:
    """List orchestrations."""
    with database.transaction() as session:
        found = list(session.scalars(select(Orchestration).order_by(Orchestration.name)))
    rows = [orchestration_as_dict(database, o) for o in found]
    if as_json:
        echo_json(rows)
        return
    click.echo(
        render_table(
            ["name", "connection", "object", "field", "scope", "enabled"],
            [
                (
                    r["name"],
                    r["connection"],
                    r["object"],
                    r["field"],
                    r["scope"],
                    "yes" if r["enabled"] else "no",
                )
                for r in rows
            ],
        )
    )


@orchestrations.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the orchestration as JSON.")
@click.pass_obj
def show_command(database: Database, name: str, as_json: bool) -> None:
    """Show one orchestration."""
    with database.transaction() as session:
        found = find_orchestration(session, name)
    shown = orchestration_as_dict(database, found)
    if as_json:
        echo_json(shown)
    else:
        click.echo(render_table(["setting", "value"], shown.items()))


def _set_enabled(database: Database, name: str, enabled: bool) -> None:
    with database.transaction() as session:
        found = find_orchestration(session, name)
        changed = found.enabled != enabled
        found.enabled = enabled
    state = "enabled" if enabled else "disabled"
    click.echo(f"{name!r} {state}" if changed else f"{name!r} was already {state}")


@orchestrations.command("enable")
@click.argument("name")
@click.pass_obj
def enable_command(database: Database, name: str) -> None:
    """Let orchestration NAME run (on its schedule and on demand)."""
    _set_enabled(database, name, True)


@orchestrations.command("disable")
@click.argument("name")
@click.pass_obj
def disable_command(database: Database, name: str) -> None:
    """Stop orchestration NAME from running."""
    _set_enabled(database, name, False)


@orchestrations.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask to confirm.")
@click.pass_obj
def delete_command(database: Database, name: str, yes: bool) -> None:
    """Delete orchestration NAME and its run history."""
    if not yes and not click.confirm(f"Delete orchestration {name!r} and its runs?", default=False):
        fail("not confirmed; nothing was deleted")
    with database.transaction() as session:
        found = find_orchestration(session, name)
        active = session.scalar(
            select(func.count()).where(
                SyncRun.orchestration_id == found.id,
                SyncRun.status.in_(("queued", "running", "deferred")),
            )
        )
        if active:
            fail(f"orchestration {name!r} has an active run; wait for it or disable it first")
        session.execute(delete(Orchestration).where(Orchestration.id == found.id))
    click.echo(f"deleted orchestration {name!r}")
