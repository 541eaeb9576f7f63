"""`segsync sync` and `segsync runs`: run an orchestration now, plan one without writing, read
the run history, cancel a run.

Exit codes: 0 when the run succeeded (or a dry run was planned); 1, with the reason on stderr,
when it ended partial, failed or cancelled, was deferred (not done: it resumes on its day), or
was still going when --timeout passed; 2 for misuse.

The models (with SQLAlchemy), the connectors and the sync engine are imported inside each
command, so that --help loads only click.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from worker.cli.database import Database
from worker.cli.output import echo_json, fail, render_table
from worker.cli.progress import ProgressLine, foreground_progress, run_progress, wait_for_run
from worker.cli.run_report import report_dry_run, report_run, run_details, run_rows

if TYPE_CHECKING:
    from worker.scheduling import Work

CANCELLED_BY_OPERATOR = "cancelled by `segsync runs cancel`"
INTERRUPTED = "cancelled: the foreground `segsync sync` was interrupted"


@click.command("sync")
@click.argument("name")
@click.option("--queue", "queued", is_flag=True, help="Send the run to the Celery workers.")
@click.option("--wait", is_flag=True, help="With --queue: follow the run until it ends.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="With --wait: stop waiting after SECONDS (exit 1; the run goes on).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Read, match and compare; show what would change; write nothing.",
)
@click.option(
    "--full",
    "full_read",
    is_flag=True,
    help="Read every record (a reconcile), not only those the vendor changed since the last run.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the run's counts as JSON.")
@click.pass_obj
def sync_command(
    database: Database,
    name: str,
    queued: bool,
    wait: bool,
    timeout: float | None,
    dry_run: bool,
    full_read: bool,
    as_json: bool,
) -> None:
    """Run orchestration NAME now: in the foreground (no broker), or on the workers (--queue).

    A run reads only the records the vendor changed since the last one, and every record on the
    orchestration's reconcile cadence (--reconcile-days) or with --full; a dry run reads every
    record."""
    from worker.run_control import find_target, start_on_request

    if wait and not queued:
        raise click.UsageError("--wait goes with --queue")
    if timeout is not None and not wait:
        raise click.UsageError("--timeout goes with --queue --wait")
    if dry_run and queued:
        raise click.UsageError("--dry-run runs in the foreground: leave out --queue")
    if queued and not database.settings.broker_url:
        fail("--queue needs a broker: set SEGSYNC_BROKER_URL (e.g. redis://localhost:6379/0)")
    target = find_target(database.sessions(), name, dry_run=dry_run)
    if dry_run:
        _dry_run(database, name, target.orchestration_id, target.connection_name, as_json)
        return
    started = start_on_request(database.sessions(), target, full_read=full_read)
    run_id, work = started.run_id, started.work
    if started.resumed and not as_json:
        planned = " (planned already: --full reads nothing)" if full_read and not work.runs else ""
        click.echo(f"resuming run {run_id}, deferred until now{planned}", err=True)
    from worker.logs import log_context

    # The run's log lines (a connector's retries, say) carry its ids, as on a worker.
    with log_context(run_id=run_id, **target.log_fields):
        if queued:
            _queue(database, run_id, work, wait, timeout, as_json)
        else:
            _run_here(database, run_id, work, target.connection_name, as_json)


def _run_here(
    database: Database, run_id: int, work: Work, connection_name: str, as_json: bool
) -> None:
    """Plan and write the run in this process, with progress; Ctrl-C cancels it."""
    from worker.connector_factory import connector_for
    from worker.sync import cancel_run, run_in_foreground

    connector = connector_for(database, connection_name)
    line = ProgressLine(quiet=as_json)
    factory = database.sessions()
    try:
        finished = run_in_foreground(
            factory,
            run_id,
            connector,
            foreground_progress(line, run_id),
            planned=None if work.runs else work.batches,
        )
    except KeyboardInterrupt:
        line.close()
        # Nobody else writes a foreground run: left running, it would block every later run.
        cancel_run(factory, run_id, INTERRUPTED, writer_gone=True)
        fail(f"run {run_id} {INTERRUPTED}; nothing more of it is written")
    line.close()
    report_run(finished, as_json)


def _queue(
    database: Database,
    run_id: int,
    work: Work,
    wait: bool,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Send the run to the workers; with --wait, follow it until it ends or --timeout passes."""
    from worker.run_control import send_to_workers

    send_to_workers(database.sessions(), work)
    if not wait:
        click.echo(f"run {run_id} queued")
        return
    line = ProgressLine(quiet=as_json)
    follow = (
        f"follow it with `segsync runs show {run_id}`, stop it with `segsync runs cancel {run_id}`"
    )
    try:
        finished = wait_for_run(database.sessions(), run_id, timeout, line)
    except KeyboardInterrupt:
        line.close()
        fail(f"stopped waiting; run {run_id} goes on: {follow}")
    line.close()
    if finished is None:
        fail(f"run {run_id} no longer exists (its orchestration was deleted)")
    assert finished is not None
    if finished.status in ("queued", "running"):
        report_run(finished, as_json, problem=False)
        where = run_progress(finished)[1].removeprefix(f"run {run_id} ")
        fail(f"run {run_id} still {where} after {timeout:g} s; it goes on: {follow}")
    report_run(finished, as_json)


def _dry_run(
    database: Database, name: str, orchestration_id: int, connection_name: str, as_json: bool
) -> None:
    from worker.connector_factory import connector_for
    from worker.dry_run import dry_run

    line = ProgressLine(quiet=as_json)
    planned = dry_run(
        database.sessions(),
        orchestration_id,
        connector_for(database, connection_name),
        foreground_progress(line, None),
    )
    line.close()
    report_dry_run(name, planned, as_json)


@click.command("runs")
@click.argument("words", nargs=-1, metavar="[NAME] | show ID | cancel ID")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def runs(database: Database, words: tuple[str, ...], as_json: bool) -> None:
    """Run history (of orchestration NAME), newest first; `runs show ID` shows one run and the
    records it could not write; `runs cancel ID` stops a queued or running run."""
    from sqlalchemy import select

    from models.orchestrations import Orchestration, find_orchestration
    from models.runs import SyncRun

    if len(words) == 2 and words[0] in ("show", "cancel"):
        if not words[1].isdigit():
            raise click.UsageError(f"run id {words[1]!r} is not a number")
        if words[0] == "show":
            _show_run(database, int(words[1]), as_json)
        else:
            _cancel_run(database, int(words[1]), as_json)
        return
    if len(words) > 1 or words[:1] in (("show",), ("cancel",)):
        raise click.UsageError("expected [NAME], show ID or cancel ID")
    name = words[0] if words else None
    with database.transaction() as session:
        query = select(SyncRun, Orchestration.name).join(
            Orchestration, Orchestration.id == SyncRun.orchestration_id
        )
        if name:
            query = query.where(SyncRun.orchestration_id == find_orchestration(session, name).id)
        found = session.execute(query.order_by(SyncRun.id.desc()).limit(100)).all()
    headers, rows = run_rows(found)
    if as_json:
        echo_json(rows)
        return
    click.echo(render_table(headers, [[row[h] for h in headers] for row in rows]))


def _show_run(database: Database, run_id: int, as_json: bool) -> None:
    """One run's counts and times, and the records it could not write with the vendor's code."""
    from models.runs import SyncRun

    with database.transaction() as session:
        run = session.get(SyncRun, run_id)
        if run is None:
            fail(f"no run {run_id}")
        assert run is not None
        shown = run_details(session, run)
    if as_json:
        echo_json(shown)
        return
    failures = shown.pop("failures")
    click.echo(render_table(["", "value"], list(shown.items())))
    if failures:
        click.echo()
        click.echo(
            render_table(
                ["record", "code", "message"],
                [(f["record_id"], f["code"], f["message"]) for f in failures],
            )
        )


def _cancel_run(database: Database, run_id: int, as_json: bool) -> None:
    """Cancel a queued, running or deferred run at its next batch boundary."""
    from worker.run_control import cancel_on_request

    done = cancel_on_request(database.sessions(), run_id, CANCELLED_BY_OPERATOR)
    if as_json:
        echo_json(
            {
                "run": run_id,
                "status": "cancelled",
                "batches_done": done.batches_done,
                "batches_cancelled": done.batches_cancelled,
                "batches_in_flight": done.batches_in_flight,
            }
        )
        return
    click.echo(done.summary)
