"""Issue 14's bars for the command line: against `segsync sandbox start` run as a process (its
first line names the seeded report, list view and HubSpot list), segments read from a Salesforce
report, a Salesforce list view and a HubSpot company list are created, refreshed, published to
GTM, and follow the CRM's data when it changes over the vendors' own APIs; a source the CRM
refuses is one line and creates nothing; a failed refresh keeps the members and says why."""

from __future__ import annotations

import csv
import json
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy.orm import Session, sessionmaker

from models.connections import new_secret_key
from models.db import make_engine, make_session_factory, transaction
from models.refresh_history import RECENT_REFRESHES
from models.segment_catalog import find_segment
from models.segment_refreshes import SegmentRefresh, start_refresh
from tests.worker.celery_stack import wait_until
from tests.worker.cli.test_main import Cli
from worker.sandbox_connections import sandbox_connection

BIN = Path(sys.executable).parent
RECORDS = 30
START = (
    f"{BIN / 'segsync'} sandbox start --systems salesforce,hubspot --records {RECORDS}"
    " --accounts-csv sandbox-accounts.csv"
)
# segsync knows companies 0-10 by their CRM link ids and domains, 11-15 by domain and HubSpot id
# only (their Salesforce rows match by website), and none of 16-30; and one account, Newco, that
# no CRM row names yet.
LINKED = range(0, 11)
BY_DOMAIN = range(11, 16)
NEWCO = ("NEWCO", "Newco", "newco-industries.com")
# The seeded report and list view show every Account (companies 1-30); the seeded HubSpot list
# holds every third company (0, 3, ..., 27).
SALESFORCE_COMPANIES = range(1, RECORDS + 1)
LISTED_COMPANIES = range(0, RECORDS, 3)


def company_domain(number: int) -> str:
    return f"company{number}.com"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """`segsync sandbox start` in a process of its own: its first line, parsed, with the folder
    its accounts CSV is in; stopped (SIGTERM) after the test."""
    folder = tmp_path / "sandbox"
    folder.mkdir()
    output = folder / "sandbox.json"
    with output.open("w") as handle:
        process = subprocess.Popen(
            shlex.split(START), cwd=folder, stdout=handle, stderr=subprocess.PIPE, text=True
        )
    try:
        line = wait_until(
            lambda: _first_line(output) or process.poll() is not None,
            120,
            "the sandbox's first line",
        )
        assert isinstance(line, str), f"the sandbox ended with {process.returncode}"
        yield {**json.loads(line), "folder": folder}
    finally:
        process.send_signal(signal.SIGTERM)
        _out, errors = process.communicate(timeout=120)
    assert process.returncode == 0, errors


def _first_line(path: Path) -> str | None:
    text = path.read_text(encoding="utf-8")
    return text.split("\n", 1)[0] if "\n" in text else None


@pytest.fixture
def cli(database_url: str, sandbox: dict[str, Any], tmp_path: Path) -> Cli:
    """segsync on a database with the accounts above and connections `sf` and `hs` to the
    sandbox (as worker.sandbox_connections gives them)."""
    cli = Cli(database_url)
    cli.env["SEGSYNC_SECRET_KEY"] = new_secret_key()
    with (sandbox["folder"] / "sandbox-accounts.csv").open(encoding="utf-8") as handle:
        seeded = list(csv.DictReader(handle))
    assert len(seeded) == RECORDS + 1  # companies 0 to RECORDS
    known = [row for row in seeded if int(row["external_id"].split("-")[1]) in LINKED]
    for row in seeded:
        if int(row["external_id"].split("-")[1]) in BY_DOMAIN:
            known.append(row | {"salesforce_account_id": ""})
    external_id, name, domain = NEWCO
    known.append(dict.fromkeys(seeded[0], "") | {"external_id": external_id, "name": name})
    known[-1]["domain"] = domain
    accounts = tmp_path / "accounts.csv"
    with accounts.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(seeded[0]))
        writer.writeheader()
        writer.writerows(known)
    cli.ok("accounts", "import", str(accounts))
    for system, connection in (("salesforce", "sf"), ("hubspot", "hs")):
        settings, secrets = sandbox_connection(system, sandbox)
        arguments = ["connections", "add", connection, "--system", system]
        for key, value in settings.items():
            arguments += ["--set", f"{key}={value}"]
        for key, value in secrets.items():
            arguments += ["--secret", f"{key}={value}"]
        cli.ok(*arguments)
    return cli


def salesforce_ids(sandbox: dict[str, Any]) -> dict[int, str]:
    """Each seeded company's Salesforce Account id, by company number."""
    with (sandbox["folder"] / "sandbox-accounts.csv").open(encoding="utf-8") as handle:
        return {
            int(row["external_id"].split("-")[1]): row["salesforce_account_id"]
            for row in csv.DictReader(handle)
            if row["salesforce_account_id"]
        }


def vendor_session(sandbox: dict[str, Any]) -> requests.Session:
    """HTTPS to the emulators, trusting the sandbox's CA only (REQUESTS_CA_BUNDLE is ignored)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = sandbox["ca_bundle"]
    return session


def set_websites(sandbox: dict[str, Any], websites: dict[str, str]) -> None:
    """Change Accounts' Website through Salesforce's sObject Collections update
    (`PATCH /services/data/vXX.X/composite/sobjects`), as a CRM user's edit would."""
    salesforce = sandbox["salesforce"]
    answer = vendor_session(sandbox).patch(
        f"{salesforce['instance_url']}/services/data/v{salesforce['api_version']}"
        "/composite/sobjects",
        headers={"Authorization": f"Bearer {salesforce['access_token']}"},
        json={
            "allOrNone": True,
            "records": [
                {"attributes": {"type": "Account"}, "id": account_id, "Website": website}
                for account_id, website in websites.items()
            ],
        },
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert all(result["success"] for result in answer.json()), answer.text


def change_list(sandbox: dict[str, Any], action: str, company_ids: list[str]) -> None:
    """Add or remove companies of the seeded HubSpot list through Lists v3
    (`PUT /crm/v3/lists/{listId}/memberships/add|remove`, a JSON array of record ids)."""
    hubspot = sandbox["hubspot"]
    answer = vendor_session(sandbox).put(
        f"{hubspot['base_url']}/crm/v3/lists/{hubspot['lists']['companies']}/memberships/{action}",
        headers={"Authorization": f"Bearer {hubspot['access_token']}"},
        json=company_ids,
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


def hubspot_id(number: int) -> str:
    # The seed numbers HubSpot companies from 1001 (company 0); the accounts CSV agrees.
    return str(1001 + number)


def create(cli: Cli, name: str, *options: str) -> dict[str, Any]:
    created = cli.json("segments", "create", name, *options)
    assert isinstance(created, dict)
    return created


def show(cli: Cli, name: str) -> dict[str, Any]:
    shown = cli.json("segments", "show", name)
    assert isinstance(shown, dict)
    return shown


def segments_of(cli: Cli, domain: str) -> set[str]:
    """The segments published for account details that the account of `domain` is in."""
    details = cli.json("accounts", "show", domain)
    assert isinstance(details, dict)
    return set(details["segments"])


def test_each_kind_is_created_refreshed_published_and_follows_the_crm(
    cli: Cli, sandbox: dict[str, Any]
) -> None:
    reports, views = sandbox["salesforce"]["reports"], sandbox["salesforce"]["list_views"]
    report = create(
        cli, "Report", "--source", "crm_report_sync", "--connection", "sf",
        "--report", reports["accounts"], "--column", "ACCOUNT_ID",
    )  # fmt: skip
    view = create(
        cli, "List view", "--source", "crm_list_sync", "--connection", "sf",
        "--list-view", views["accounts"], "--folder", "CRM",
    )  # fmt: skip
    listed = create(
        cli, "HubSpot list", "--source", "crm_list_sync", "--connection", "hs",
        "--hubspot-list", sandbox["hubspot"]["lists"]["companies"], "--schedule", "0 6 * * *",
    )  # fmt: skip
    salesforce_members = len(LINKED) - 1 + len(BY_DOMAIN)  # company 0 has no Account
    for created in (report, view):
        assert {k: created[k] for k in ("status", "members", "entered", "exited")} == {
            "status": "succeeded",
            "members": salesforce_members,
            "entered": salesforce_members,
            "exited": 0,
        }, created
        assert created["rows_read"] == len(SALESFORCE_COMPANIES)
        assert created["unmatched"] == len(SALESFORCE_COMPANIES) - salesforce_members
    assert report["source"] == "crm_report_sync" and view["source"] == "crm_list_sync"
    assert report["reads"] == (
        f"Salesforce report {reports['accounts']} (column ACCOUNT_ID) via connection sf"
    )
    known = set(LINKED) | set(BY_DOMAIN)
    assert (listed["source"], listed["members"], listed["unmatched"]) == (
        "crm_list_sync",
        len([n for n in LISTED_COMPANIES if n in known]),
        len([n for n in LISTED_COMPANIES if n not in known]),
    )
    # A person's view of one: the source, the schedule, the refresh and the unmatched rows.
    text = cli.ok("segments", "show", "Report").stdout
    assert f"Salesforce report {reports['accounts']}" in text and "on demand" in text
    unmatched = len(SALESFORCE_COMPANIES) - salesforce_members
    assert f"and {unmatched - 10} more" in text  # ten rows shown
    assert "0 6 * * * (UTC), next " in cli.ok("segments", "show", "HubSpot list").stdout

    names = ("Report", "List view", "HubSpot list")
    for name in names:
        published = cli.ok("publish", name, "--use", "gtm", "--use", "account_details", "--yes")
        assert f"published {name!r} to gtm, account_details" in published.stdout
    table = cli.json("published")
    assert isinstance(table, list)
    assert {row["name"]: (row["gtm"], row["account_details"]) for row in table} == {
        name: (True, True) for name in names
    }
    assert segments_of(cli, company_domain(15)) == {"Report", "List view", "HubSpot list"}
    assert segments_of(cli, NEWCO[2]) == set()

    # The CRM changes: Account 15's website moves to a domain segsync does not know (it matched
    # by website), Account 18's to Newco's, and Account 5's too (it matches by its id all the
    # same); the HubSpot list gains company 1 and loses company 3.
    ids = salesforce_ids(sandbox)
    set_websites(
        sandbox,
        {
            ids[15]: "https://www.moved-away.org",
            ids[18]: f"https://www.{NEWCO[2]}",
            ids[5]: "https://www.elsewhere.org",
        },
    )
    change_list(sandbox, "add", [hubspot_id(1)])
    change_list(sandbox, "remove", [hubspot_id(3)])
    refreshed = cli.json("segments", "refresh", *names)
    assert isinstance(refreshed, list)
    counts = {
        row["name"]: (row["status"], row["entered"], row["exited"], row["members"])
        for row in refreshed
    }
    assert counts == {
        "Report": ("succeeded", 1, 1, salesforce_members),
        "List view": ("succeeded", 1, 1, salesforce_members),
        "HubSpot list": ("succeeded", 1, 1, listed["members"]),
    }
    assert segments_of(cli, company_domain(15)) == {"HubSpot list"}
    assert segments_of(cli, NEWCO[2]) == {"Report", "List view"}
    assert segments_of(cli, company_domain(5)) == {"Report", "List view"}
    assert segments_of(cli, company_domain(1)) == {"Report", "List view", "HubSpot list"}
    assert segments_of(cli, company_domain(3)) == {"Report", "List view"}

    # The history: two refreshes each, the last with its churn and the rows it could not match.
    history = show(cli, "Report")
    crm = history["crm"]
    assert [r["status"] for r in crm["refreshes"]] == ["succeeded", "succeeded"]
    assert crm["refreshes"][0]["churn"] == 2
    assert crm["refreshes"][0]["churn_rate"] == pytest.approx(2 / salesforce_members)
    missing = {ids[15], *(ids[n] for n in SALESFORCE_COMPANIES if n > 15 and n != 18)}
    assert crm["unmatched"]["total"] == len(missing)
    assert {row["crm_id"] for row in crm["unmatched"]["rows"]} == missing
    moved = next(row for row in crm["unmatched"]["rows"] if row["crm_id"] == ids[15])
    assert moved == {
        "crm_id": ids[15],
        "name": "Company 15",
        "website": "https://www.moved-away.org",
    }
    assert history["members"] == salesforce_members
    assert show(cli, "List view")["folder"] == "CRM"
    assert history["published_for"] == ["account_details", "gtm"]
    text = cli.ok("segments", "show", "HubSpot list").stdout
    assert "Last refreshes, newest first" in text and "2 (33%)" in text


def test_a_failed_refresh_keeps_the_members_and_says_why(cli: Cli, sandbox: dict[str, Any]) -> None:
    report = sandbox["salesforce"]["reports"]["accounts"]
    created = create(cli, "Report", "--connection", "sf", "--report", report)
    answer = vendor_session(sandbox).post(
        f"{sandbox['salesforce']['base_url']}/__sandbox/faults",
        json={"kind": "daily_limit"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    # In a process of its own, as on a terminal: one line on stderr, nothing else.
    done = subprocess.run(
        [str(BIN / "segsync"), "segments", "refresh", "Report"],
        env={**os.environ, **cli.env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert len(done.stderr.splitlines()) == 1, done.stderr
    reason = done.stderr.strip()
    assert reason.startswith(
        f"segsync: refresh 2 of 'Report' failed: reading Salesforce report {report}"
    )
    assert reason.endswith("its members are kept as they were")
    history = show(cli, "Report")
    assert history["members"] == created["members"]
    last = history["crm"]["refreshes"][0]
    assert last["status"] == "failed" and last["reason"].rstrip(".") in reason
    text = cli.ok("segments", "show", "Report").stdout
    assert f"refresh 2 failed: {last['reason']}" in text
    # The next refresh reads it again, and nothing changed meanwhile.
    again = cli.json("segments", "refresh", "Report")
    assert isinstance(again, list)
    assert (again[0]["status"], again[0]["entered"], again[0]["exited"]) == ("succeeded", 0, 0)


def test_sources_the_crm_refuses_are_one_line_and_create_nothing(
    cli: Cli, sandbox: dict[str, Any]
) -> None:
    reports, lists = sandbox["salesforce"]["reports"], sandbox["hubspot"]["lists"]
    refused = {
        "matrix": ("--connection", "sf", "--report", reports["matrix"]),
        "no id column": ("--connection", "sf", "--report", reports["names_only"]),
        "contact list": ("--connection", "hs", "--hubspot-list", lists["contacts"]),
        "unknown report": ("--connection", "sf", "--report", "00O000000000099AAA"),
        "wrong system": ("--connection", "hs", "--report", reports["accounts"]),
        "unknown connection": ("--connection", "nope", "--hubspot-list", "1"),
        "bad id": ("--connection", "sf", "--list-view", "not-an-id"),
    }  # fmt: skip
    reasons = {
        what: cli.refused("segments", "create", what, *args) for what, args in refused.items()
    }
    assert "is a matrix report" in reasons["matrix"]
    assert "has no ACCOUNT_ID column" in reasons["no id column"]
    assert "is a list of contacts" in reasons["contact list"]
    assert reports["matrix"] in reasons["matrix"] and "was not created" in reasons["matrix"]
    assert "00O000000000099AAA" in reasons["unknown report"]
    assert "is a HubSpot connection" in reasons["wrong system"]
    assert "no connection named 'nope'" in reasons["unknown connection"]
    assert "list view id 'not-an-id' is not a Salesforce id" in reasons["bad id"]
    assert cli.json("segments", "list") == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--report", "00O5g0000000001EAA"), "--report needs --connection"),
        (("--connection", "sf"), "--connection needs one of --report ID, --list-view ID"),
        (
            ("--connection", "sf", "--report", "00O5g0000000001EAA", "--list", "a.csv"),
            "--list cannot go with --connection",
        ),
        (
            ("--connection", "sf", "--report", "00O5g0000000001EAA", "--hubspot-list", "1"),
            "(given: --report, --hubspot-list)",
        ),
        (
            ("--source", "crm_list_sync", "--connection", "sf", "--report", "00O5g0000000001EAA"),
            "--report goes with --source crm_report_sync, not --source crm_list_sync",
        ),
        (
            ("--connection", "hs", "--hubspot-list", "1", "--column", "ACCOUNT_ID"),
            "--column goes with --report only",
        ),
        (("--filter", 'name = "x"', "--schedule", "0 6 * * *"), "--schedule needs --connection"),
    ],
)
def test_crm_options_that_do_not_go_together_are_usage_errors(
    database_url: str, options: tuple[str, ...], message: str
) -> None:
    result = Cli(database_url)("segments", "create", "X", *options)
    assert result.exit_code == 2, (result.output, result.stderr)
    assert message in result.stderr


def test_a_refresh_while_another_is_active_is_refused_naming_it(
    cli: Cli, sandbox: dict[str, Any], database_url: str
) -> None:
    lists = sandbox["hubspot"]["lists"]
    create(cli, "Listed", "--connection", "hs", "--hubspot-list", lists["companies"])
    engine = make_engine(database_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            active = _queue_refresh(session, "Listed")
    finally:
        engine.dispose()
    reason = cli.refused("segments", "refresh", "Listed")
    assert reason == (
        f"segsync: segment 'Listed' is being refreshed: refresh {active} of it is still queued"
    )


def _queue_refresh(session: Session, name: str) -> int:
    return start_refresh(session, find_segment(session, name)).id


def test_schedule_and_on_demand(cli: Cli, sandbox: dict[str, Any]) -> None:
    list_id = sandbox["hubspot"]["lists"]["companies"]
    created = cli.ok(
        "segments", "create", "Listed", "--connection", "hs", "--hubspot-list", list_id
    )
    known = set(LINKED) | set(BY_DOMAIN)
    matched = len([n for n in LISTED_COMPANIES if n in known])
    assert created.stdout.splitlines() == [
        "created segment 'Listed' (crm_list_sync: HubSpot company list "
        f"{list_id} via connection hs)",
        f"refresh 1: {matched} members ({matched} entered, 0 exited), {len(LISTED_COMPANIES)} rows "
        f"read, {len(LISTED_COMPANIES) - matched} matching no account (`segsync segments show` "
        "lists them)",
    ]
    done = cli.ok("segments", "schedule", "listed", "--cron", "30  7 * * 1")
    assert "segment 'Listed' is refreshed on '30 7 * * 1' (UTC); next at " in done.stdout
    crm = show(cli, "Listed")["crm"]
    assert crm["schedule"] == "30 7 * * 1" and crm["next_refresh_at"] is not None
    assert "on demand only" in cli.ok("segments", "schedule", "Listed", "--none").stdout
    assert show(cli, "Listed")["crm"]["next_refresh_at"] is None
    assert "must have five fields" in cli.refused(
        "segments", "schedule", "Listed", "--cron", "7 * *"
    )
    cli.ok("segments", "create", "Filtered", "--filter", 'name contains "Company"')
    assert "is not read from a CRM" in cli.refused("segments", "schedule", "Filtered", "--none")
    for options in ((), ("--cron", "* * * * *", "--none")):
        result = cli("segments", "schedule", "Listed", *options)
        assert result.exit_code == 2, result.output


def test_show_of_a_segment_defined_in_segsync_and_of_refreshes_by_number(
    cli: Cli, sandbox: dict[str, Any]
) -> None:
    cli.ok("segments", "create", "Filtered", "--filter", 'name contains "Company"')
    shown = show(cli, "Filtered")
    assert (shown["source"], shown["crm"]) == ("filter", None)
    assert shown["filters"] == [
        {"kind": "company_profile", "description": 'name contains "Company"'}
    ]
    assert 'name contains "Company"' in cli.ok("segments", "show", "Filtered").stdout
    create(
        cli,
        "Listed",
        "--connection",
        "hs",
        "--hubspot-list",
        sandbox["hubspot"]["lists"]["companies"],
    )
    table = cli.ok("segments", "refresh", "Listed").stdout.splitlines()
    assert table[0].split() == [
        "segment",
        "members",
        "entered",
        "exited",
        "unmatched",
        "rows",
        "read",
    ]
    assert table[2].split()[:4] == ["Listed", str(show(cli, "Listed")["members"]), "0", "0"]
    # Refreshing a CRM segment with others: each the way it is refreshed.
    both = cli.json("segments", "refresh", "Filtered", "Listed")
    assert isinstance(both, list)
    assert [row["name"] for row in both] == ["Filtered", "Listed"]
    assert "refresh" not in both[0] and both[1]["refresh"] == 3
    assert len(show(cli, "Listed")["crm"]["refreshes"]) == 3
    newest = cli.json("segments", "show", "Listed", "--refreshes", "1")
    assert isinstance(newest, dict) and len(newest["crm"]["refreshes"]) == 1
    assert f"(default {RECENT_REFRESHES})" in cli.ok("segments", "show", "--help").stdout
    # A bare refresh recomputes the segments defined in segsync and reads no CRM.
    every = cli.json("segments", "refresh")
    assert every == [{"name": "Filtered", "members": shown["members"]}]


def test_a_refresh_interrupted_by_ctrl_c_ends_failed_and_the_next_one_runs(
    cli: Cli, sandbox: dict[str, Any], database_url: str
) -> None:
    report = sandbox["salesforce"]["reports"]["accounts"]
    created = create(cli, "Report", "--connection", "sf", "--report", report)
    # The report's next run answers only after 20 s: long enough to interrupt it once the
    # refresh is seen running (the interruption needs no more than that).
    slow = vendor_session(sandbox).post(
        f"{sandbox['salesforce']['base_url']}/__sandbox/faults",
        json={"kind": "slow", "seconds": 20, "path": "/analytics/reports/"},
        timeout=30,
    )
    assert slow.status_code == 200, slow.text
    process = subprocess.Popen(
        [str(BIN / "segsync"), "segments", "refresh", "Report"],
        env={**os.environ, **cli.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    engine = make_engine(database_url)
    try:
        sessions = make_session_factory(engine)
        wait_until(lambda: _status(sessions, 2) == "running", 120, "refresh 2 to be running")
        process.send_signal(signal.SIGINT)
        _out, errors = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        engine.dispose()
    assert process.returncode == 1, errors
    assert errors.splitlines() == [
        "segsync: refresh 2 of 'Report' interrupted; its members are kept as they were"
    ]
    last = show(cli, "Report")["crm"]["refreshes"][0]
    assert (last["refresh"], last["status"]) == (2, "failed")
    assert last["reason"] == "interrupted (Ctrl-C) before it ended"
    again = cli.json("segments", "refresh", "Report")
    assert isinstance(again, list)
    assert (again[0]["status"], again[0]["members"]) == ("succeeded", created["members"])


def _status(sessions: sessionmaker[Session], refresh_id: int) -> str | None:
    with sessions() as session:
        refresh = session.get(SegmentRefresh, refresh_id)
        return refresh.status if refresh is not None else None
