"""`segsync sync NAME` end to end in the foreground: real HTTPS to the emulators, no broker."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.sandbox.cluster import Sandbox
from models.connections import new_secret_key
from tests.factories import write_csv
from tests.worker.cli.test_main import Cli
from tests.worker.sandbox_connections import (
    hubspot_connection,
    salesforce_session_connection,
)

ACCOUNTS = [
    # external_id, domain, salesforce_account_id, hubspot_company_id, industry
    ("A-1", "acme.com", None, None, "Software"),
    ("A-2", "globex.co.uk", None, None, "Software"),
    ("A-3", "initech.io", None, None, "Retail"),
]


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(["salesforce", "hubspot"]) as running:
        yield running


@pytest.fixture
def cli(database_url: str, sandbox: Sandbox, tmp_path: Path) -> Cli:
    cli = Cli(database_url)
    cli.env["SEGSYNC_SECRET_KEY"] = new_secret_key()
    accounts = write_csv(
        tmp_path / "accounts.csv",
        ["external_id", "domain", "industry"],
        [[a[0], a[1], a[4]] for a in ACCOUNTS],
    )
    cli.ok("accounts", "import", str(accounts))
    cli.ok("segments", "create", "Software; ICP", "--filter", 'industry = "Software"')
    cli.ok("segments", "create", "Tier 1", "--filter", 'domain in ("acme.com", "initech.io")')
    cli.ok("segments", "create", "Not published", "--filter", 'domain = "acme.com"')
    for name in ("Software; ICP", "Tier 1"):
        cli.ok("publish", name, "--use", "enrichment", "--yes")
    cli.ok(*salesforce_session_connection(sandbox))
    cli.ok(*hubspot_connection(sandbox))
    return cli


def ended_unsuccessfully(cli: Cli, *args: str) -> tuple[dict[str, Any], str]:
    """Run a command that ends a run unsuccessfully: its JSON counts and its one-line reason."""
    result = cli(*args, "--json")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return json.loads(result.stdout), lines[0]


def seed_leads(sandbox: Sandbox) -> dict[str, str]:
    emulator = sandbox.emulators["salesforce"]
    rows = [
        {"LastName": "Ada", "Company": "Acme", "Email": "ada@acme.com"},
        {"LastName": "Bo", "Company": "Globex", "Email": "bo@mail.globex.co.uk"},
        {"LastName": "Cy", "Company": "Initech", "Email": "cy@gmail.com", "Website": "initech.io"},
        {"LastName": "Di", "Company": "Gmail user", "Email": "di@gmail.com"},
        {
            "LastName": "Ed",
            "Company": "Stale",
            "Email": "ed@unknown.org",
            "Segment_Names__c": "Old name",
        },
        {
            "LastName": "Fa",
            "Company": "Initech",
            "Email": "fa@initech.io",
            "Segment_Names__c": "Tier 1",
        },
    ]
    ids = emulator.add_records("Lead", rows)  # type: ignore[attr-defined]
    return dict(zip(("ada", "bo", "cy", "di", "ed", "fa"), ids, strict=True))


def test_salesforce_leads_enriched_then_nothing_left_to_write(cli: Cli, sandbox: Sandbox) -> None:
    leads = seed_leads(sandbox)
    cli.ok(
        "orchestrations",
        "create",
        "Leads",
        "--connection",
        "sf",
        "--object",
        "lead",
        "--field",
        "Segment_Names__c",
    )
    first = cli.json("sync", "Leads")
    assert first["status"] == "succeeded"  # type: ignore[index]
    emulator = sandbox.emulators["salesforce"]
    written = {w.record_id: w.value for w in emulator.writes}
    assert written == {
        leads["ada"]: "Software； ICP;Tier 1",  # email domain
        leads["bo"]: "Software； ICP",  # subdomain of the registrable domain
        # free-mail address, matched by website instead:
        # the value equals what Fa already holds, but Cy holds nothing yet.
        leads["cy"]: "Tier 1",
    }
    assert Counter(w.record_id for w in emulator.writes).most_common(1)[0][1] == 1
    assert {k: first[k] for k in ("eligible", "enriched", "unchanged", "unmatched", "failed")} == {  # type: ignore[index]
        "eligible": 4,
        "enriched": 3,
        "unchanged": 1,
        "unmatched": 2,
        "failed": 0,
    }
    # Ed's stale value stays: his record matches no account, so segsync does not own it.
    assert emulator.record("Lead", leads["ed"])["Segment_Names__c"] == "Old name"  # type: ignore[attr-defined]
    second = cli.json("sync", "Leads")
    assert second["enriched"] == 0 and second["unchanged"] == 4  # type: ignore[index]
    assert len(emulator.writes) == 3, "the second run wrote again"
    history = cli.json("runs", "Leads")
    assert [r["status"] for r in history] == ["succeeded", "succeeded"]  # type: ignore[union-attr,index]


def test_unpublished_segment_names_are_cleared(cli: Cli, sandbox: Sandbox) -> None:
    leads = seed_leads(sandbox)
    cli.ok(
        "orchestrations",
        "create",
        "Leads",
        "--connection",
        "sf",
        "--object",
        "Lead",
        "--field",
        "Segment_Names__c",
    )
    cli.ok("sync", "Leads")
    cli.ok("unpublish", "Tier 1", "--use", "enrichment", "--yes")
    cli.ok("sync", "Leads")
    emulator = sandbox.emulators["salesforce"]
    assert emulator.record("Lead", leads["fa"])["Segment_Names__c"] in ("", None)  # type: ignore[attr-defined]
    assert emulator.record("Lead", leads["ada"])["Segment_Names__c"] == "Software； ICP"  # type: ignore[attr-defined]


def test_hubspot_contacts_and_record_failures_listed(cli: Cli, sandbox: Sandbox) -> None:
    emulator = sandbox.emulators["hubspot"]
    ids = emulator.add_records(  # type: ignore[attr-defined]
        "contacts", [{"email": f"p{n}@acme.com"} for n in range(150)]
    )
    cli.ok(
        "orchestrations",
        "create",
        "Contacts",
        "--connection",
        "hs",
        "--object",
        "contacts",
        "--field",
        "segment_names",
    )
    emulator.faults.inject("record_failure", record_ids=[ids[7]], code="OBJECT_NOT_FOUND")
    # Not a success: the run ends partial, exit 1, saying how many failed and where to look.
    run, reason = ended_unsuccessfully(cli, "sync", "Contacts")
    assert (run["status"], run["enriched"], run["failed"]) == ("partial", 149, 1)
    see = f"see `segsync runs show {run['run']}`"
    assert reason == f"segsync: run {run['run']} partial: 1 record failed: {see}"
    shown = cli.json("runs", "show", str(run["run"]))
    assert shown["status"] == "partial"  # type: ignore[index]
    assert shown["failures"] == [  # type: ignore[index]
        {
            "record_id": ids[7],
            "code": "OBJECT_NOT_FOUND",
            "message": shown["failures"][0]["message"],
        }  # type: ignore[index]
    ]
    human = cli.ok("runs", "show", str(run["run"])).stdout
    assert ids[7] in human and "OBJECT_NOT_FOUND" in human
    table = cli("sync", "Contacts")  # nothing failed this time: succeeded, exit 0
    assert table.exit_code == 0, table.stderr
    again = cli.json("runs", "Contacts")[0]  # type: ignore[index]
    assert (again["status"], again["enriched"], again["unchanged"]) == ("succeeded", 1, 149)
    assert sorted(Counter(w.record_id for w in emulator.writes).values())[-1] == 1


def test_create_refuses_a_missing_field_and_sync_reports_a_fatal_error(
    cli: Cli, sandbox: Sandbox
) -> None:
    reason = cli.refused(
        "orchestrations",
        "create",
        "X",
        "--connection",
        "sf",
        "--object",
        "Lead",
        "--field",
        "Nope__c",
    )
    assert "field Nope__c not found on Lead" in reason
    assert "no orchestration named 'X'" in cli.refused("sync", "X")
    seed_leads(sandbox)
    cli.ok(
        "orchestrations",
        "create",
        "Leads",
        "--connection",
        "sf",
        "--object",
        "Lead",
        "--field",
        "Segment_Names__c",
    )
    sandbox.emulators["salesforce"].faults.inject("expire_token")
    # A session-auth connection cannot log in again: the run fails with a clear reason.
    reason = cli.refused("sync", "Leads")
    assert "failed" in reason
    assert cli.json("runs", "Leads")[0]["status"] == "failed"  # type: ignore[index]


def test_a_large_run_goes_through_bulk_jobs(cli: Cli, sandbox: Sandbox) -> None:
    emulator = sandbox.emulators["salesforce"]
    emulator.add_records(  # type: ignore[attr-defined]
        "Lead", [{"LastName": f"L{n}", "Email": f"l{n}@acme.com"} for n in range(450)]
    )
    cli.ok(
        "connections", "add", "sf-bulk", "--system", "salesforce", "--set", "auth=session",
        "--set", f"instance_url={sandbox.describe()['salesforce']['instance_url']}",
        "--set", f"ca_bundle={sandbox.describe()['ca_bundle']}",
        "--set", "bulk_write_threshold=300", "--set", "bulk_poll_interval=0.05",
        "--secret", f"access_token={sandbox.describe()['salesforce']['access_token']}",
    )  # fmt: skip
    cli.ok("orchestrations", "create", "Bulk leads", "--connection", "sf-bulk", "--object",
           "Lead", "--field", "Segment_Names__c")  # fmt: skip
    run = cli.json("sync", "Bulk leads")
    assert (run["status"], run["enriched"]) == ("succeeded", 450)  # type: ignore[index]
    ingest_calls = {k: v for k, v in emulator.calls.items() if "jobs/ingest" in k}
    composite_calls = {k: v for k, v in emulator.calls.items() if "composite" in k}
    assert ingest_calls and not composite_calls, emulator.calls
    assert len({w.record_id for w in emulator.writes}) == len(emulator.writes) == 450


def deferred_by_its_budget(cli: Cli, sandbox: Sandbox) -> dict[str, object]:
    """A Leads orchestration with a budget of 2 calls a day, and its first run (deferred)."""
    seed_leads(sandbox)
    cli.ok("orchestrations", "create", "Leads", "--connection", "sf", "--object", "Lead",
           "--field", "Segment_Names__c", "--daily-api-budget", "2")  # fmt: skip
    # Deferred is not done: exit 1, saying until when; the counts still go to stdout.
    run, reason = ended_unsuccessfully(cli, "sync", "Leads")
    assert run["status"] == "deferred"
    assert f"segsync: run {run['run']} deferred until " in reason and ", not done: " in reason
    return run


def test_a_spent_daily_budget_defers_the_run_to_the_next_day(cli: Cli, sandbox: Sandbox) -> None:
    from datetime import timedelta

    from models.base import utcnow
    from models.db import make_engine, make_session_factory
    from worker.scheduling import resume_deferred_runs

    run = deferred_by_its_budget(cli, sandbox)
    assert run["status"] == "deferred"  # type: ignore[index]
    assert "daily API budget of 2 calls is spent" in run["reason"]  # type: ignore[index]
    assert sandbox.emulators["salesforce"].writes == []
    # One active run per orchestration; the refusal says when the deferred one resumes.
    refused = cli.refused("sync", "Leads")
    assert f"run {run['run']} of this orchestration is still active (deferred)" in refused  # type: ignore[index]
    assert "it resumes at " in refused and "daily API budget of 2 calls is spent" in refused
    engine = make_engine(cli.env["SEGSYNC_DATABASE_URL"])
    factory = make_session_factory(engine)
    assert resume_deferred_runs(factory, utcnow()).batches == []  # not before its day
    resumed = resume_deferred_runs(factory, utcnow() + timedelta(days=1, minutes=1))
    assert len(resumed.batches) == 1
    engine.dispose()


def test_sync_resumes_a_deferred_run_whose_day_has_come(cli: Cli, sandbox: Sandbox) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from models.base import utcnow
    from models.db import make_engine, make_session_factory, transaction
    from models.runs import ApiUsage, SyncRun

    deferred = deferred_by_its_budget(cli, sandbox)
    # The next day: the run's resume time has passed, and today's calls were yesterday's.
    engine = make_engine(cli.env["SEGSYNC_DATABASE_URL"])
    with transaction(make_session_factory(engine)) as session:
        session.execute(update(SyncRun).values(resume_at=utcnow() - timedelta(minutes=1)))
        session.execute(update(ApiUsage).values(day=utcnow().date() - timedelta(days=1)))
    engine.dispose()

    finished = cli.json("sync", "Leads")  # no beat: the command itself resumes the run

    assert finished["run"] == deferred["run"]  # type: ignore[index]
    assert finished["status"] == "succeeded", finished  # type: ignore[index]
    writes = sandbox.emulators["salesforce"].writes
    assert writes and len({w.record_id for w in writes}) == len(writes)
    assert finished["enriched"] == len(writes)  # type: ignore[index]


def leads_orchestration(cli: Cli) -> None:
    cli.ok("orchestrations", "create", "Leads", "--connection", "sf", "--object", "Lead",
           "--field", "Segment_Names__c")  # fmt: skip


def test_progress_without_a_terminal_is_plain_lines(cli: Cli, sandbox: Sandbox) -> None:
    seed_leads(sandbox)
    leads_orchestration(cli)

    result = cli("sync", "Leads")  # stderr is not a terminal here

    assert result.exit_code == 0, result.stderr
    assert "\r" not in result.stderr
    assert result.stderr.splitlines() == [
        "run 1 reading: 6 records",
        "run 1 writing: 0/1 batches",
        "run 1 writing: 1/1 batches",
    ]
    assert "succeeded" in result.stdout and "\r" not in result.stdout


def test_a_dry_run_shows_the_changes_and_writes_nothing(cli: Cli, sandbox: Sandbox) -> None:
    from sqlalchemy import func, select

    from models.db import make_engine
    from models.runs import ApiUsage, SyncBatch, SyncRun

    leads = seed_leads(sandbox)
    leads_orchestration(cli)
    emulator = sandbox.emulators["salesforce"]

    planned = cli.json("sync", "Leads", "--dry-run")

    assert planned == {
        "dry_run": True,
        "orchestration": "Leads",
        "records_read": 6,
        "eligible": 4,
        "to_write": 3,
        "unchanged": 1,
        "unmatched": 2,
        "truncated": 0,
        "batches": 1,
        "api_calls": planned["api_calls"],  # type: ignore[index]
        "changes": [
            {"record_id": leads["ada"], "current": None, "new": "Software； ICP;Tier 1"},
            {"record_id": leads["bo"], "current": None, "new": "Software； ICP"},
            {"record_id": leads["cy"], "current": None, "new": "Tier 1"},
        ],
    }
    assert planned["api_calls"] >= 2  # type: ignore[index,operator]
    human = cli.ok("sync", "Leads", "--dry-run")
    assert "dry run of 'Leads': nothing was written" in human.stdout
    assert leads["ada"] in human.stdout and "Software； ICP;Tier 1" in human.stdout
    assert "\r" not in human.stderr
    # Nothing written, no run, no batch; the calls count against the day's budget.
    assert emulator.writes == []
    assert not [k for k in emulator.calls if "composite" in k or "PATCH" in k], emulator.calls
    engine = make_engine(cli.env["SEGSYNC_DATABASE_URL"])
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(SyncRun)) == 0
        assert connection.scalar(select(func.count()).select_from(SyncBatch)) == 0
        spent = connection.scalar(select(func.sum(ApiUsage.calls)))
    engine.dispose()
    assert spent == 2 * planned["api_calls"]  # type: ignore[index,operator]
    assert cli.json("runs") == []
    # The run that follows writes exactly the changes the dry run showed.
    cli.ok("sync", "Leads")
    assert {w.record_id: w.value for w in emulator.writes} == {
        c["record_id"]: c["new"]
        for c in planned["changes"]  # type: ignore[index]
    }


def test_dry_run_misuse_exits_2(cli: Cli) -> None:
    for args in (
        ("sync", "Leads", "--dry-run", "--queue"),
        ("sync", "Leads", "--wait"),
        ("sync", "Leads", "--timeout", "5"),
        ("sync", "Leads", "--queue", "--wait", "--timeout", "0"),
    ):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.output)


def test_an_interrupted_foreground_run_is_cancelled_not_left_running(
    cli: Cli, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker import sync
    from worker.sync import plan_run

    seed_leads(sandbox)
    leads_orchestration(cli)

    def interrupted_after_planning(
        factory: Any, run_id: int, connector: Any, *_: Any, **__: Any
    ) -> Any:
        plan_run(factory, run_id, connector)
        raise KeyboardInterrupt  # Ctrl-C before the first batch is written

    # `segsync sync` imports the engine when it runs, so it finds the stand-in there.
    monkeypatch.setattr(sync, "run_in_foreground", interrupted_after_planning)
    reason = cli.refused("sync", "Leads")

    assert "run 1 cancelled: the foreground `segsync sync` was interrupted" in reason
    shown = cli.json("runs", "show", "1")
    assert shown["status"] == "cancelled"  # type: ignore[index]
    assert sandbox.emulators["salesforce"].writes == []
    monkeypatch.undo()
    # Nothing is left active: the next run goes ahead.
    assert cli.json("sync", "Leads")["status"] == "succeeded"  # type: ignore[index]


def test_progress_at_a_terminal_is_redrawn_in_place(cli: Cli, sandbox: Sandbox) -> None:
    import os

    from tests.worker.cli.test_terminal import run_in_terminal

    seed_leads(sandbox)
    leads_orchestration(cli)

    status, screen = run_in_terminal(["sync", "Leads"], {**os.environ, **cli.env}, "")

    assert status == 0, screen
    # One line, redrawn: reading, then writing, then the line is ended before the counts.
    assert "\rrun 1 reading: 6 records\rrun 1 writing: 0/1 batches" in screen, screen
    assert "\rrun 1 writing: 1/1 batches" in screen and "succeeded" in screen


def test_later_runs_read_only_changes_until_a_full_read_is_asked_for(
    cli: Cli, sandbox: Sandbox
) -> None:
    leads = seed_leads(sandbox)
    cli.ok(
        "orchestrations", "create", "Leads", "--connection", "sf", "--object", "Lead",
        "--field", "Segment_Names__c", "--reconcile-days", "3",
    )  # fmt: skip
    assert cli.json("orchestrations", "show", "Leads")["reconcile_days"] == 3  # type: ignore[index]
    first = cli.json("sync", "Leads")
    second = cli.json("sync", "Leads")
    emulator: Any = sandbox.emulators["salesforce"]
    emulator.edit_record("Lead", leads["ed"], {"Email": "ed@acme.com"})  # now Acme's
    third = cli.json("sync", "Leads")
    full = cli.json("sync", "Leads", "--full")

    modes = [run["read_mode"] for run in (first, second, third, full)]  # type: ignore[index]
    assert modes == ["full", "incremental", "incremental", "full"]
    assert third["enriched"] == 1 and full["enriched"] == 0  # type: ignore[index]
    assert emulator.record("Lead", leads["ed"])["Segment_Names__c"] == "Software； ICP;Tier 1"
    shown = cli.json("runs", "show", str(third["run"]))  # type: ignore[index]
    assert str(shown["read"]).startswith("incremental: records changed since ")  # type: ignore[index]
    refused = cli("orchestrations", "update", "Leads", "--reconcile-days", "400")
    assert refused.exit_code == 1
    assert refused.stderr.strip() == (
        "segsync: reconcile days 400 must be 0 (every run reads everything) to 365"
    )
