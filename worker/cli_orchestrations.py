"""`segsync orchestrations`, `segsync sync` and `segsync runs`: define and run orchestrations."""

from __future__ import annotations

import sys
import time
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
from models.runs import RecordFailure, SyncRun
from models.segments import Segment
from worker.cli_database import Database
from worker.cli_output import echo_json, fail, render_table
from worker.connector_factory import apply_rate_limits, build_connector
from worker.scheduling import Work, resume_due_run
from worker.sync import run_in_foreground, start_run

RUN_COUNTS = ("eligible", "enriched", "unchanged", "unmatched", "truncated", "failed", "api_calls")


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


@click.command("sync")
@click.argument("name")
@click.option("--queue", "queued", is_flag=True, help="Send the run to the Celery workers.")
@click.option("--wait", is_flag=True, help="With --queue: wait for the run to finish.")
@click.option("--json", "as_json", is_flag=True, help="Print the run's counts as JSON.")
@click.pass_obj
def sync_command(database: Database, name: str, queued: bool, wait: bool, as_json: bool) -> None:
    """Run orchestration NAME now: in the foreground (no broker), or on the workers (--queue)."""
    if wait and not queued:
        raise click.UsageError("--wait goes with --queue")
    if queued and not database.settings.broker_url:
        fail("--queue needs a broker: set SEGSYNC_BROKER_URL (e.g. redis://localhost:6379/0)")
    with database.transaction() as session:
        orchestration = find_orchestration(session, name)
        if not orchestration.enabled:
            fail(f"orchestration {name!r} is disabled")
        orchestration_id = orchestration.id
        connection_name = session.get_one(Connection, orchestration.connection_id).name
    # A run deferred to a day that has come goes on now: no beat is needed to resume it.
    resumed = resume_due_run(database.sessions(), orchestration_id)
    if resumed is None:
        with database.transaction() as session:
            run = start_run(session, session.get_one(Orchestration, orchestration_id), "manual")
        if run.status == "skipped":
            fail(f"run {run.id} skipped: {run.reason}")
        run_id, work = run.id, Work([run.id], [])
    else:
        run_id, work = resumed
        if not as_json:
            click.echo(f"resuming run {run_id}, deferred until now", err=True)
    if queued:
        from worker.tasks import enqueue_batches, enqueue_run

        for planned in work.runs:
            enqueue_run(planned, database.sessions())
        enqueue_batches(work.batches)
        if not wait:
            click.echo(f"run {run_id} queued")
            return
        finished = _wait_for(database, run_id, as_json)
    else:
        connector = connector_for(database, connection_name)

        def progress(stage: str, count: int) -> None:
            if not as_json:
                click.echo(f"\r{stage}: {count}", nl=False, err=True)

        finished = run_in_foreground(
            database.sessions(),
            run_id,
            connector,
            progress,
            planned=None if work.runs else work.batches,
        )
        if not as_json:
            click.echo("", err=True)
    _report_run(finished, as_json)


def _wait_for(database: Database, run_id: int, as_json: bool) -> SyncRun:
    """Poll the run's row until it leaves the queued/running states, with a progress bar."""
    factory = database.sessions()
    with click.progressbar(length=1, label=f"run {run_id}", file=sys.stderr) as bar:
        while True:
            with factory() as session:
                run = session.get_one(SyncRun, run_id)
            if run.batches_total and not as_json:
                bar.length = run.batches_total
                bar.update(run.batches_done - bar.pos)
            if run.status not in ("queued", "running"):
                return run
            time.sleep(0.5)


def _report_run(finished: SyncRun, as_json: bool) -> None:
    counts = {key: getattr(finished, key) for key in RUN_COUNTS}
    if as_json:
        echo_json(
            {
                "run": finished.id,
                "status": finished.status,
                "reason": finished.reason,
                "resume_at": finished.resume_at,
                **counts,
            }
        )
    else:
        click.echo(
            render_table(
                ["run", "status", *RUN_COUNTS], [(finished.id, finished.status, *counts.values())]
            )
        )
    if finished.status == "failed":
        fail(f"run {finished.id} failed: {finished.reason}")
    if finished.status == "deferred" and not as_json:
        click.echo(f"run {finished.id} deferred until {finished.resume_at}: {finished.reason}")


@click.command("runs")
@click.argument("words", nargs=-1, metavar="[NAME] | show ID")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def runs(database: Database, words: tuple[str, ...], as_json: bool) -> None:
    """Run history (of orchestration NAME), newest first; `runs show ID` shows one run."""
    if len(words) == 2 and words[0] == "show":
        if not words[1].isdigit():
            raise click.UsageError(f"run id {words[1]!r} is not a number")
        _show_run(database, int(words[1]), as_json)
        return
    if len(words) > 1:
        raise click.UsageError("expected [NAME] or show ID")
    name = words[0] if words else None
    with database.transaction() as session:
        query = select(SyncRun, Orchestration.name).join(
            Orchestration, Orchestration.id == SyncRun.orchestration_id
        )
        if name:
            query = query.where(SyncRun.orchestration_id == find_orchestration(session, name).id)
        rows = [
            {
                "run": r.id,
                "orchestration": o,
                "status": r.status,
                "trigger": r.trigger,
                "started_at": r.started_at,
                "finished_at": r.finished_at,
                **{key: getattr(r, key) for key in RUN_COUNTS},
                "reason": r.reason,
            }
            for r, o in session.execute(query.order_by(SyncRun.id.desc()).limit(100))
        ]
    if as_json:
        echo_json(rows)
        return
    click.echo(
        render_table(
            ["run", "orchestration", "status", *RUN_COUNTS],
            [
                (r["run"], r["orchestration"], r["status"], *(r[k] for k in RUN_COUNTS))
                for r in rows
            ],
        )
    )


def _show_run(database: Database, run_id: int, as_json: bool) -> None:
    """One run's counts and the records it could not write, with vendor codes and messages."""
    with database.transaction() as session:
        run = session.get(SyncRun, run_id)
        if run is None:
            fail(f"no run {run_id}")
        assert run is not None
        failures = [
            {"record_id": f.record_id, "code": f.code, "message": f.message}
            for f in session.scalars(
                select(RecordFailure)
                .where(RecordFailure.run_id == run_id)
                .order_by(RecordFailure.id)
            )
        ]
        shown = {
            "run": run.id,
            "status": run.status,
            "reason": run.reason,
            **{key: getattr(run, key) for key in RUN_COUNTS},
            "failures": failures,
        }
    if as_json:
        echo_json(shown)
        return
    click.echo(
        render_table(["count", "value"], [(k, shown[k]) for k in ("status", "reason", *RUN_COUNTS)])
    )
    if failures:
        click.echo()
        click.echo(
            render_table(
                ["record", "code", "message"],
                [(f["record_id"], f["code"], f["message"]) for f in failures],
            )
        )
