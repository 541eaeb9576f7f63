"""`segsync sync` and `segsync runs`: run an orchestration now and read the run history."""

from __future__ import annotations

import sys
import time

import click
from sqlalchemy import select

from models.connections import Connection
from models.orchestrations import Orchestration, find_orchestration
from models.runs import RUN_COUNTS, RecordFailure, SyncRun
from worker.cli_database import Database
from worker.cli_orchestrations import connector_for
from worker.cli_output import echo_json, fail, render_table
from worker.scheduling import Work, resume_due_run
from worker.sync import run_in_foreground, start_run


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
