"""`segsync sync NAME` end to end in the foreground: real HTTPS to the emulators, no broker."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.sandbox.cluster import Sandbox
from models.connections import new_secret_key
from tests.factories import write_csv
from tests.worker.sandbox_connections import (
    hubspot_connection,
    salesforce_session_connection,
)
from tests.worker.test_cli import Cli

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
    run = cli.json("sync", "Contacts")
    assert (run["enriched"], run["failed"]) == (149, 1)  # type: ignore[index]
    shown = cli.json("runs", "show", str(run["run"]))  # type: ignore[index]
    assert shown["failures"][0]["record_id"] == ids[7]  # type: ignore[index]
    assert shown["failures"][0]["code"] == "OBJECT_NOT_FOUND"  # type: ignore[index]
    again = cli.json("sync", "Contacts")
    assert (again["enriched"], again["unchanged"]) == (1, 149)  # type: ignore[index]
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
    run = cli.json("sync", "Leads")
    assert isinstance(run, dict) and run["status"] == "deferred"
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
