"""`segsync runs`: the history with times and outcomes, `runs cancel`, and how progress prints."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from connectors.sandbox.cluster import Sandbox
from models.db import make_engine, make_session_factory
from models.orchestrations import find_orchestration
from tests.worker.cli.test_main import Cli
from tests.worker.test_sync_foreground import cli, sandbox, seed_leads
from worker.cli.database import Database
from worker.cli.progress import ProgressLine
from worker.connector_factory import connector_for
from worker.settings import Settings
from worker.sync import plan_run, start_run

__all__ = ["cli", "sandbox"]  # the fixtures this module shares with test_sync_foreground


@pytest.fixture
def sessions(cli: Cli) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(cli.env["SEGSYNC_DATABASE_URL"])
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def leads(cli: Cli, sandbox: Sandbox) -> dict[str, str]:
    ids = seed_leads(sandbox)
    cli.ok("orchestrations", "create", "Leads", "--connection", "sf", "--object", "Lead",
           "--field", "Segment_Names__c")  # fmt: skip
    return ids


def queued_run(sessions: sessionmaker[Session]) -> int:
    """A run of Leads as `sync --queue` leaves it before a worker takes it."""
    with sessions.begin() as session:
        return start_run(session, find_orchestration(session, "Leads"), "schedule").id


def planned_run(cli: Cli, sessions: sessionmaker[Session]) -> int:
    """A run of Leads planned (its batch stored) and not yet written."""
    run_id = queued_run(sessions)
    database = Database(
        Settings(
            database_url=cli.env["SEGSYNC_DATABASE_URL"],
            secret_key=cli.env["SEGSYNC_SECRET_KEY"],
        )
    )
    assert len(plan_run(sessions, run_id, connector_for(database, "sf"))) == 1
    return run_id


def test_runs_show_trigger_times_duration_outcome_and_counts(
    cli: Cli, leads: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    cli.ok("sync", "Leads")
    cancelled = queued_run(sessions)
    cli.ok("runs", "cancel", str(cancelled))

    rows = cli.json("runs", "Leads")

    assert isinstance(rows, list) and [r["run"] for r in rows] == [cancelled, 1]
    latest, first = rows
    assert (latest["trigger"], latest["status"]) == ("schedule", "cancelled")
    assert latest["reason"] == "cancelled by `segsync runs cancel`"
    assert (first["trigger"], first["status"], first["enriched"], first["failed"]) == (
        "manual",
        "succeeded",
        3,
        0,
    )
    for row in rows:
        assert row["started"] and row["finished"] and row["started"] <= row["finished"]
        assert row["duration_seconds"] >= 0 and row["duration"].endswith("s")
    header = cli.ok("runs").stdout.splitlines()[0].split()
    assert header[:7] == ["run", "orchestration", "trigger", "status", "started", "finished",
                          "duration"]  # fmt: skip
    assert header[7:] == ["eligible", "enriched", "unchanged", "unmatched", "truncated",
                          "failed", "api_calls"]  # fmt: skip
    shown = cli.json("runs", "show", "1")
    assert {k: shown[k] for k in ("trigger", "records_read", "batches")} == {  # type: ignore[index]
        "trigger": "manual",
        "records_read": 6,
        "batches": "1/1",
    }


def test_runs_cancel_stops_a_planned_run_before_its_batches_are_written(
    cli: Cli, leads: dict[str, str], sessions: sessionmaker[Session], sandbox: Sandbox
) -> None:
    run_id = planned_run(cli, sessions)

    said = cli.ok("runs", "cancel", str(run_id)).stdout

    assert said.strip() == f"run {run_id} cancelled: 1 batch will not be written"
    shown = cli.json("runs", "show", str(run_id))
    assert (shown["status"], shown["batches"]) == ("cancelled", "0/1")  # type: ignore[index]
    again = cli.refused("runs", "cancel", str(run_id))
    assert again == f"segsync: run {run_id} already ended (cancelled); nothing to cancel"
    assert sandbox.emulators["salesforce"].writes == []
    # The orchestration is free again; the cancelled run's batch stays unwritten.
    cli.ok("sync", "Leads")
    writes = sandbox.emulators["salesforce"].writes
    assert len(writes) == 3 and len({w.record_id for w in writes}) == 3


def test_runs_cancel_of_a_queued_run_and_its_refusals(
    cli: Cli, leads: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    run_id = queued_run(sessions)
    cancelled = cli.json("runs", "cancel", str(run_id))
    assert cancelled == {
        "run": run_id,
        "status": "cancelled",
        "batches_done": 0,
        "batches_cancelled": 0,
        "batches_in_flight": 0,
    }
    assert cli.refused("runs", "cancel", "999") == "segsync: no run 999"
    assert cli("runs", "cancel", "x").exit_code == 2
    assert cli("runs", "cancel").exit_code == 2


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_at_a_terminal_is_redrawn_in_place() -> None:
    screen = Terminal()
    line = ProgressLine(screen)
    line.show("reading", "run 4 reading: 100 records")
    line.show("reading", "run 4 reading: 1,000 records")
    line.show("writing", "run 4 writing: 0/2 batches")
    line.close()
    assert screen.getvalue() == (
        "\rrun 4 reading: 100 records\rrun 4 reading: 1,000 records\rrun 4 writing: 0/2 batches  \n"
    )


def test_progress_without_a_terminal_is_occasional_plain_lines() -> None:
    log = io.StringIO()
    line = ProgressLine(log, interval=3600)
    for records in range(100, 100_001, 100):
        line.show("reading", f"run 4 reading: {records:,} records")
    for done in range(51):
        line.show("writing", f"run 4 writing: {done}/50 batches")
    line.close()
    assert log.getvalue().splitlines() == [
        "run 4 reading: 100 records",
        "run 4 writing: 0/50 batches",
        "run 4 writing: 50/50 batches",
    ]
