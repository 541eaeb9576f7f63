"""`segsync orchestrations ...`: define, change, list and delete Segment Name orchestrations.

The rules live in models.orchestrations; this module parses options, checks a target field through
the connection (models cannot reach a CRM), and prints. The models (with SQLAlchemy) and the
connectors are imported inside each command, so that --help loads only click.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

from worker.cli.by_name import add_list_command, delete_after_confirming, delete_one, show_one
from worker.cli.database import Database
from worker.cli.output import echo_json, fail, render_table

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from connectors.base import FieldInfo
    from models.orchestration_status import LastRun, OrchestrationStatus
    from models.orchestrations import Keep

T = TypeVar("T")
# What a click option decorates: a command's function.
_F = TypeVar("_F", bound=Callable[..., Any])
_RECONCILE_HELP = (
    "Days between full reads, which catch what incremental runs cannot see (a value someone "
    "else put in the field); 0: every run reads everything"
)


def writable_field(
    database: Database, connection_name: str, object_type: str, field: str
) -> FieldInfo:
    """The field as the connection describes it (its own spelling); refused if not writable."""
    from worker.connector_factory import connector_for

    connector = connector_for(database, connection_name)
    described = connector.describe_field(connector.check_object(object_type), field)
    if not described.writable:
        fail(f"field {described.name} on {described.object_type} is not writable")
    return described


def status_as_dict(status: OrchestrationStatus) -> dict[str, Any]:
    """An orchestration as `list --json` and `show --json` print it."""
    return {
        "name": status.name,
        "connection": status.connection,
        "system": status.system,
        "object": status.object_type,
        "field": status.field,
        "scope": status.scope,
        "schedule": status.schedule,
        "next_run_at": _iso(status.next_run_at),
        "delimiter": status.delimiter,
        "max_length": status.max_length,
        "keep_when_empty": status.keep_when_empty,
        "daily_api_budget": status.daily_api_budget,
        "reconcile_days": status.reconcile_days,
        "enabled": status.enabled,
        "last_run": _last_run_as_dict(status.last_run),
    }


def _last_run_as_dict(run: LastRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "run": run.id,
        "status": run.status,
        "trigger": run.trigger,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "reason": run.reason,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _minute(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else ""


def _last_run_text(run: LastRun | None) -> str:
    if run is None:
        return "never"
    when = run.finished_at or run.started_at
    return f"{run.status}, run {run.id}" + (f" at {_minute(when)}" if when else "")


_LIST_COLUMNS = (
    "name",
    "connection",
    "target",
    "scope",
    "schedule",
    "next run (UTC)",
    "last run",
    "enabled",
)


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
@click.option("--reconcile-days", type=int, help=_RECONCILE_HELP + " (default: 7)")
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
    reconcile_days: int | None,
) -> None:
    """Create orchestration NAME after checking that the connection has the field."""
    from models.connections import find_connection
    from models.orchestrations import OrchestrationSpec, create_orchestration, parse_scope

    described = writable_field(database, connection_name, object_type, field)
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
                **({} if reconcile_days is None else {"reconcile_days": reconcile_days}),
            ),
        )
    click.echo(
        f"created orchestration {name!r}: {connection_name} {described.object_type}."
        f"{described.name} ({described.max_length or 'unlimited'} characters)"
    )


def _clearable_option(
    flag: str, help_text: str, clear_help: str, value_type: type | None = None
) -> Callable[[_F], _F]:
    """Update's `flag VALUE`, with `--no-...` beside it to clear the setting instead."""

    def decorate(function: _F) -> _F:
        clear = click.option(f"--no-{flag.removeprefix('--')}", is_flag=True, help=clear_help)
        return click.option(flag, type=value_type, help=help_text)(clear(function))

    return decorate


@orchestrations.command("update")
@click.argument("name")
@click.option("--name", "new_name", help="Rename it (its runs keep their history).")
@click.option("--connection", "connection_name", help="Write through another connection.")
@click.option("--object", "object_type", help="e.g. Lead, Contact, contacts.")
@click.option("--field", help="The field the segment names are written to.")
@_clearable_option("--schedule", "Cron expression in UTC, e.g. '0 2 * * *'.", "Run on demand only.")
@click.option("--scope", help="all, recent:DAYS or segment:NAME")
@click.option("--delimiter")
@_clearable_option(
    "--max-length",
    "Cap below the field's own maximum length.",
    "Use the field's own maximum length.",
    int,
)
@click.option(
    "--keep-when-empty/--clear-when-empty",
    default=None,
    help="Never clear a record's stale names / clear them (the default).",
)
@_clearable_option(
    "--daily-api-budget",
    "API calls this orchestration may use a day.",
    "No daily cap on API calls.",
    int,
)
@click.option("--reconcile-days", type=int, help=_RECONCILE_HELP)
@click.pass_obj
def update_command(
    database: Database,
    name: str,
    new_name: str | None,
    connection_name: str | None,
    object_type: str | None,
    field: str | None,
    schedule: str | None,
    no_schedule: bool,
    scope: str | None,
    delimiter: str | None,
    max_length: int | None,
    no_max_length: bool,
    keep_when_empty: bool | None,
    daily_api_budget: int | None,
    no_daily_api_budget: bool,
    reconcile_days: int | None,
) -> None:
    """Change orchestration NAME: every create option; what is not given stays as it is."""
    from models.connections import Connection, find_connection
    from models.orchestrations import (
        KEEP,
        OrchestrationChanges,
        find_orchestration,
        parse_scope,
        update_orchestration,
    )

    _one_of("--schedule", schedule, "--no-schedule", no_schedule)
    _one_of("--max-length", max_length, "--no-max-length", no_max_length)
    _one_of("--daily-api-budget", daily_api_budget, "--no-daily-api-budget", no_daily_api_budget)
    connection_id: int | Keep = KEEP
    target_object: str | Keep = KEEP
    target_field: str | Keep = KEEP
    if connection_name or object_type or field:
        with database.transaction() as session:
            current = find_orchestration(session, name)
            current_connection = session.get_one(Connection, current.connection_id).name
            current_object, current_field = current.object_type, current.field
        connection_name = connection_name or current_connection
        # Checked through the connection as create does, whichever of the three changes.
        described = writable_field(
            database, connection_name, object_type or current_object, field or current_field
        )
        with database.transaction() as session:
            connection_id = find_connection(session, connection_name).id
        target_object, target_field = described.object_type, described.name
    changes = OrchestrationChanges(
        connection_id=connection_id,
        object_type=target_object,
        field=target_field,
        name=KEEP if new_name is None else new_name,
        scope=KEEP if scope is None else parse_scope(scope),
        delimiter=KEEP if delimiter is None else delimiter,
        max_length=_cleared(max_length, no_max_length),
        keep_when_empty=KEEP if keep_when_empty is None else keep_when_empty,
        daily_api_budget=_cleared(daily_api_budget, no_daily_api_budget),
        schedule=_cleared(schedule, no_schedule),
        reconcile_days=KEEP if reconcile_days is None else reconcile_days,
    )
    if changes == OrchestrationChanges():
        raise click.UsageError("nothing to change: give at least one option (see --help)")
    with database.transaction() as session:
        done = update_orchestration(session, name, changes)
        shown = done.orchestration.name
    if done.changed:
        click.echo(f"updated orchestration {shown!r}: {', '.join(done.changed)}")
    else:
        click.echo(f"orchestration {shown!r} already had those settings; nothing changed")


def _one_of(option: str, value: object, clearing: str, clear: bool) -> None:
    if value is not None and clear:
        raise click.UsageError(f"{option} and {clearing} cannot go together")


def _cleared(value: T | None, clear: bool) -> T | Keep | None:
    from models.orchestrations import KEEP

    if clear:
        return None
    return KEEP if value is None else value


def _statuses(session: Session) -> Sequence[OrchestrationStatus]:
    from models.orchestration_status import orchestration_statuses

    return orchestration_statuses(session)


def _status_cells(s: OrchestrationStatus) -> tuple[object, ...]:
    return (
        s.name,
        s.connection,
        f"{s.object_type}.{s.field}",
        s.scope,
        s.schedule or "on demand",
        _minute(s.next_run_at),
        _last_run_text(s.last_run),
        "yes" if s.enabled else "no",
    )


add_list_command(
    orchestrations,
    "List orchestrations with their schedule, next run and last run's outcome.",
    _statuses,
    status_as_dict,
    _LIST_COLUMNS,
    _status_cells,
)


@show_one(orchestrations, "name", "orchestration")
def show_command(database: Database, name: str, as_json: bool) -> None:
    """Show one orchestration, with its next run and last run."""
    from models.orchestration_status import orchestration_statuses
    from models.orchestrations import find_orchestration

    with database.transaction() as session:
        found = orchestration_statuses(session, find_orchestration(session, name).name)[0]
    shown = status_as_dict(found)
    if as_json:
        echo_json(shown)
        return
    rows: list[tuple[str, object]] = [(k, v) for k, v in shown.items() if k != "last_run"]
    rows.append(("last_run", _last_run_text(found.last_run)))
    if found.last_run is not None and found.last_run.reason:
        rows.append(("last_run_reason", found.last_run.reason))
    click.echo(render_table(["setting", "value"], rows))


def _set_enabled(database: Database, name: str, enabled: bool) -> None:
    from models.orchestrations import set_orchestration_enabled

    with database.transaction() as session:
        changed = set_orchestration_enabled(session, name, enabled)
    state = "enabled" if enabled else "disabled"
    click.echo(f"{name!r} {state}" if changed else f"{name!r} was already {state}")


@orchestrations.command("enable")
@click.argument("name")
@click.pass_obj
def enable_command(database: Database, name: str) -> None:
    """Let orchestration NAME run (on its schedule, from now on, and on demand)."""
    _set_enabled(database, name, True)


@orchestrations.command("disable")
@click.argument("name")
@click.pass_obj
def disable_command(database: Database, name: str) -> None:
    """Stop orchestration NAME from running (a run already active goes on)."""
    _set_enabled(database, name, False)


@delete_one(orchestrations)
def delete_command(database: Database, name: str, yes: bool) -> None:
    """Delete orchestration NAME and its run history."""
    from models.orchestrations import delete_orchestration, find_orchestration

    delete_after_confirming(
        database, "orchestration", name, yes, find_orchestration, delete_orchestration, "its runs"
    )
