"""How runs are printed: one run's outcome (and its exit code), the history, one run in detail,
and a dry run's plan. The models are imported where they are used, so that importing this module
(as `segsync sync --help` does) loads no SQLAlchemy."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from worker.cli.output import echo_json, fail, render_table

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from models.runs import SyncRun
    from worker.dry_run import DryRun


def outcome_problem(run: SyncRun) -> str | None:
    """Why the run is not a success, in one line (None when it succeeded)."""
    if run.status == "succeeded":
        return None
    if run.status == "deferred":
        when = f" until {_utc(run.resume_at):%Y-%m-%d %H:%M} UTC" if run.resume_at else ""
        return (
            f"run {run.id} deferred{when}, not done: {run.reason}; it resumes then (beat "
            "resumes it, or `segsync sync` after that time)"
        )
    return f"run {run.id} {run.status}: {run.reason}"


def report_run(run: SyncRun, as_json: bool, *, problem: bool = True) -> None:
    """Print the run's counts; exit 1 with the reason unless it succeeded (`problem`)."""
    from models.runs import RUN_COUNTS

    counts = {key: getattr(run, key) for key in RUN_COUNTS}
    if as_json:
        echo_json(
            {
                "run": run.id,
                "status": run.status,
                "reason": run.reason,
                "resume_at": run.resume_at,
                "records_read": run.records_read,
                "read_mode": run.read_mode,
                "batches_total": run.batches_total,
                "batches_done": run.batches_done,
                **counts,
            }
        )
    else:
        click.echo(
            render_table(["run", "status", *RUN_COUNTS], [(run.id, run.status, *counts.values())])
        )
    reason = outcome_problem(run) if problem else None
    if reason is not None:
        fail(reason)


def _utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; segsync stores UTC everywhere.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _shown_time(moment: datetime | None) -> str | None:
    return None if moment is None else f"{_utc(moment):%Y-%m-%d %H:%M:%S}"


def _seconds(run: SyncRun) -> float | None:
    """How long the run took, from when it began (or was triggered, if it never began)."""
    began = run.started_at or run.created_at
    if run.finished_at is None or began is None:
        return None
    return max(0.0, (_utc(run.finished_at) - _utc(began)).total_seconds())


def _duration(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def run_rows(found: Sequence[tuple[SyncRun, str]]) -> tuple[list[str], list[dict[str, Any]]]:
    """The history's columns and one row per (run, orchestration name)."""
    from models.runs import RUN_COUNTS

    headers = ["run", "orchestration", "trigger", "status", "started", "finished", "duration"]
    rows = [
        {
            "run": run.id,
            "orchestration": name,
            "trigger": run.trigger,
            "status": run.status,
            "started": _shown_time(run.started_at or run.created_at),
            "finished": _shown_time(run.finished_at),
            "duration": _duration(_seconds(run)),
            "duration_seconds": _seconds(run),
            **{key: getattr(run, key) for key in RUN_COUNTS},
            "reason": run.reason,
        }
        for run, name in found
    ]
    return [*headers, *RUN_COUNTS], rows


def run_details(session: Session, run: SyncRun) -> dict[str, Any]:
    """One run as `runs show` prints it, with each record it could not write."""
    from worker.run_details import details_of

    details = details_of(session, run)
    return {
        "run": details.run_id,
        "orchestration": details.orchestration,
        "status": details.status,
        "reason": details.reason,
        "trigger": details.trigger,
        "created": _shown_time(details.created_at),
        "started": _shown_time(details.started_at),
        "finished": _shown_time(details.finished_at),
        "duration": _duration(details.seconds),
        "resume_at": _shown_time(details.resume_at),
        "records_read": details.records_read,
        "read": details.read,
        "batches": f"{details.batches_done}/{details.batches_total}",
        **details.counts,
        "failures": [
            {"record_id": f.record_id, "code": f.code, "message": f.message}
            for f in details.failures
        ],
    }


def report_dry_run(name: str, planned: DryRun, as_json: bool) -> None:
    """Print what a run would do: its counts and the first changes."""
    plan = planned.plan
    counts = {
        "records_read": plan.records_read,
        "eligible": plan.eligible,
        "to_write": len(plan.updates),
        "unchanged": plan.unchanged,
        "unmatched": plan.unmatched,
        "truncated": plan.truncated,
        "batches": planned.batches,
        "api_calls": planned.api_calls,
    }
    changes = [
        {"record_id": record_id, "current": current, "new": new}
        for record_id, current, new in plan.first_changes
    ]
    if as_json:
        echo_json({"dry_run": True, "orchestration": name, **counts, "changes": changes})
        return
    click.echo(f"dry run of {name!r}: nothing was written")
    click.echo(render_table(list(counts), [list(counts.values())]))
    if changes:
        shown = f"the first {len(changes)} of {len(plan.updates)}"
        click.echo(f"\nchanges ({shown if len(changes) < len(plan.updates) else 'all'}):")
        click.echo(
            render_table(
                ["record", "current value", "new value"],
                [(c["record_id"], c["current"], c["new"]) for c in changes],
            )
        )
