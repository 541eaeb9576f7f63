"""`segsync orchestrations ...`: one orchestration per field, changes checked through the
connection, and a listing that says when each runs next and how its last run ended."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from connectors.sandbox.cluster import Sandbox
from models.base import utcnow
from models.connections import new_secret_key
from models.orchestrations import Orchestration
from models.runs import SyncRun
from tests.worker.cli.test_main import Cli
from tests.worker.sandbox_connections import hubspot_connection, salesforce_session_connection


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(["salesforce", "hubspot"]) as running:
        yield running


@pytest.fixture
def cli(database_url: str, sandbox: Sandbox) -> Cli:
    cli = Cli(database_url)
    cli.env["SEGSYNC_SECRET_KEY"] = new_secret_key()
    cli.ok(*salesforce_session_connection(sandbox))
    cli.ok(*hubspot_connection(sandbox))
    return cli


def create(cli: Cli, name: str, *options: str, connection: str = "sf") -> None:
    cli.ok("orchestrations", "create", name, "--connection", connection, *options)


def show(cli: Cli, name: str) -> dict[str, Any]:
    shown = cli.json("orchestrations", "show", name)
    assert isinstance(shown, dict)
    return shown


def listed(cli: Cli) -> list[dict[str, Any]]:
    rows = cli.json("orchestrations", "list")
    assert isinstance(rows, list)
    return rows


def test_a_second_orchestration_on_one_field_is_refused_naming_the_first(cli: Cli) -> None:
    create(cli, "Leads", "--object", "lead", "--field", "segment_names__c")
    assert (show(cli, "Leads")["object"], show(cli, "Leads")["field"]) == (
        "Lead",
        "Segment_Names__c",
    )
    reason = cli.refused(
        "orchestrations", "create", "Other", "--connection", "sf", "--object", "LEAD",
        "--field", "Segment_Names__C", "--schedule", "0 2 * * *",
    )  # fmt: skip
    assert reason == (
        "segsync: orchestration 'Leads' already writes Lead.Segment_Names__c on connection 'sf': "
        "two orchestrations on one field would overwrite each other"
    )
    create(cli, "Long", "--object", "Lead", "--field", "Segment_Names_Long__c")
    create(cli, "Contacts", "--object", "Contact", "--field", "Segment_Names__c")
    assert [row["name"] for row in listed(cli)] == ["Contacts", "Leads", "Long"]


def test_an_update_of_the_target_is_checked_through_the_connection(cli: Cli) -> None:
    create(cli, "Leads", "--object", "Lead", "--field", "Segment_Names__c")
    create(cli, "Long", "--object", "Lead", "--field", "Segment_Names_Long__c")
    update = ("orchestrations", "update")
    assert "field Nope__c not found on Lead" in cli.refused(*update, "Long", "--field", "Nope__c")
    assert "orchestration 'Leads' already writes Lead.Segment_Names__c" in cli.refused(
        *update, "Long", "--field", "segment_names__c", "--schedule", "0 2 * * *"
    )
    assert show(cli, "Long")["field"] == "Segment_Names_Long__c"
    assert show(cli, "Long")["schedule"] is None  # the refused change stored nothing
    out = cli.ok(*update, "Long", "--object", "contact").stdout
    assert out.strip() == "updated orchestration 'Long': object"
    assert (show(cli, "Long")["object"], show(cli, "Long")["field"]) == (
        "Contact",
        "Segment_Names_Long__c",
    )
    # Another connection: its own objects and fields are checked.
    assert "hubspot has no supported object 'Lead'" in cli.refused(
        *update, "Leads", "--connection", "hs"
    )
    out = cli.ok(
        *update, "Leads", "--connection", "hs", "--object", "contacts", "--field", "segment_names"
    ).stdout
    assert out.strip() == "updated orchestration 'Leads': connection, object, field"
    moved = show(cli, "Leads")
    assert (moved["connection"], moved["system"], moved["object"], moved["field"]) == (
        "hs",
        "hubspot",
        "contacts",
        "segment_names",
    )
    assert "no orchestration named 'Nope'" in cli.refused(*update, "Nope", "--field", "x")


def test_an_update_changes_what_it_names_and_keeps_the_rest(cli: Cli) -> None:
    create(cli, "Leads", "--object", "Lead", "--field", "Segment_Names__c", "--schedule",
           "0 2 * * *", "--delimiter", "|", "--daily-api-budget", "500")  # fmt: skip
    update = ("orchestrations", "update", "Leads")
    before = utcnow()
    out = cli.ok(*update, "--schedule", "30 4 * * *", "--keep-when-empty", "--max-length", "100")
    assert out.stdout.strip() == (
        "updated orchestration 'Leads': max_length, keep_when_empty, schedule"
    )
    shown = show(cli, "Leads")
    next_run = datetime.fromisoformat(shown["next_run_at"])
    assert before < next_run <= before + timedelta(days=1)
    assert (next_run.hour, next_run.minute) == (4, 30)
    assert {k: shown[k] for k in ("delimiter", "daily_api_budget", "max_length")} == {
        "delimiter": "|",
        "daily_api_budget": 500,
        "max_length": 100,
    }
    out = cli.ok(*update, "--no-schedule", "--no-max-length", "--no-daily-api-budget",
                 "--clear-when-empty", "--scope", "recent:7", "--name", "Recent leads")  # fmt: skip
    assert out.stdout.strip() == (
        "updated orchestration 'Recent leads': name, scope, max_length, keep_when_empty, "
        "daily_api_budget, schedule"
    )
    shown = show(cli, "Recent leads")
    expected = {
        "schedule": None,
        "next_run_at": None,
        "max_length": None,
        "daily_api_budget": None,
        "keep_when_empty": False,
        "scope": "recent:7",
        "delimiter": "|",
    }
    assert {key: shown[key] for key in expected} == expected
    again = cli.ok("orchestrations", "update", "Recent leads", "--scope", "recent:7").stdout
    assert "already had those settings; nothing changed" in again
    assert "must have five fields" in cli.refused(
        "orchestrations", "update", "Recent leads", "--schedule", "daily"
    )
    assert cli("orchestrations", "update", "Recent leads").exit_code == 2
    both = cli("orchestrations", "update", "Recent leads", "--schedule", "0 1 * * *",
               "--no-schedule")  # fmt: skip
    assert both.exit_code == 2


def test_what_a_run_writes_does_not_change_while_the_run_is_active(
    cli: Cli, database_url: str
) -> None:
    create(cli, "Leads", "--object", "Lead", "--field", "Segment_Names__c")
    engine = create_engine(database_url)
    with Session(engine) as session:
        leads = session.scalars(select(Orchestration)).one()
        run = SyncRun(orchestration_id=leads.id, status="running", trigger="manual")
        session.add(run)
        session.commit()
        run_id = run.id
    engine.dispose()
    reason = cli.refused("orchestrations", "update", "Leads", "--field", "Segment_Names_Long__c")
    assert reason == (
        f"segsync: orchestration 'Leads' has run {run_id} active (running): its field cannot "
        f"change until it ends; wait for it, or cancel it (`segsync runs cancel {run_id}`)"
    )
    assert show(cli, "Leads")["field"] == "Segment_Names__c"
    cli.ok("orchestrations", "update", "Leads", "--schedule", "0 3 * * *")
    assert f"has run {run_id} active" in cli.refused("orchestrations", "delete", "Leads", "--yes")
    assert listed(cli)[0]["last_run"]["status"] == "running"


def test_list_shows_schedule_next_run_and_the_last_run(cli: Cli, sandbox: Sandbox) -> None:
    sandbox.emulators["salesforce"].add_records(  # type: ignore[attr-defined]
        "Lead", [{"LastName": "Ada", "Company": "Acme", "Email": "ada@acme.com"}]
    )
    create(cli, "Leads", "--object", "Lead", "--field", "Segment_Names__c", "--schedule",
           "0 2 * * *")  # fmt: skip
    create(cli, "Contacts", "--object", "contacts", "--field", "segment_names", connection="hs")
    human = cli.ok("orchestrations", "list").stdout
    assert "next run (UTC)" in human and "last run" in human
    assert "on demand" in human and "never" in human
    run = cli.json("sync", "Leads")
    assert isinstance(run, dict)
    contacts, leads = listed(cli)
    assert contacts["last_run"] is None and contacts["next_run_at"] is None
    assert leads["schedule"] == "0 2 * * *"
    assert datetime.fromisoformat(leads["next_run_at"]).hour == 2
    assert leads["last_run"]["run"] == run["run"]
    assert leads["last_run"]["status"] == run["status"]
    assert leads["last_run"]["trigger"] == "manual"
    assert leads["last_run"]["finished_at"] is not None
    human = cli.ok("orchestrations", "list").stdout
    assert f"{run['status']}, run {run['run']} at " in human
    assert (
        f"{run['status']}, run {run['run']} at " in cli.ok("orchestrations", "show", "Leads").stdout
    )
    cli.ok("orchestrations", "disable", "Leads")
    assert listed(cli)[1]["next_run_at"] is None  # a disabled orchestration does not run


def test_delete_asks_to_confirm(cli: Cli) -> None:
    create(cli, "Leads", "--object", "Lead", "--field", "Segment_Names__c")
    reason = cli.refused("orchestrations", "delete", "Leads")
    assert reason == "segsync: no terminal to ask on: pass --yes to confirm; nothing was deleted"
    assert "no orchestration named 'Nope'" in cli.refused("orchestrations", "delete", "Nope")
    assert cli.ok("orchestrations", "delete", "Leads", "--yes").stdout.strip() == (
        "deleted orchestration 'Leads'"
    )
    assert listed(cli) == []
