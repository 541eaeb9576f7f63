"""`segsync sandbox start --accounts-csv`: the README's hand-driven path, to records written.

The end-to-end test types what README.md shows, in subprocesses from a folder of its own: the
sandbox in the background, then examples/sandbox-sync.sh, whose commands the README shows too.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy.orm import Session

from connectors.sandbox.cluster import EMULATORS, Sandbox
from connectors.sandbox.hubspot import HubSpotEmulator
from connectors.sandbox.salesforce import SalesforceEmulator
from connectors.sandbox.seeding import SeededCompanies
from models.account_import import import_accounts
from models.accounts import Account
from models.vocabulary import LINK_COLUMNS
from tests.worker.celery_stack import wait_until
from worker.cli.sandbox import SEEDED_ACCOUNT_COLUMNS, write_seeded_accounts

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
SCRIPT = ROOT / "examples" / "sandbox-sync.sh"
RECORDS = 100
START = (
    f"segsync sandbox start --records {RECORDS} --accounts-csv sandbox-accounts.csv"
    " > sandbox.json &"
)
SEGMENT = "Sandbox companies"
# Records of each object that match an account, with RECORDS per object. Person n of HubSpot,
# Pardot and Eloqua uses a free-mail address when n % 10 == 9, which never matches; but a HubSpot
# contact associated with its company or a Pardot prospect synced to its Salesforce account
# (n % 3 == 0 for both), or a prospect who gave the company's website (n % 4 == 1), matches all
# the same. HubSpot leads (every fourth n) match only by their company association; Salesforce
# Accounts and HubSpot companies by their own id, Contacts by their AccountId.
FREE_MAIL = [n for n in range(RECORDS) if n % 10 == 9]
SEEDED = {("hubspot", "leads"): len(range(0, RECORDS, 4))}  # others: RECORDS
MATCHED = {
    ("salesforce", "Lead"): RECORDS,
    ("salesforce", "Contact"): RECORDS,
    ("salesforce", "Account"): RECORDS,
    ("hubspot", "contacts"): RECORDS - len([n for n in FREE_MAIL if n % 3]),
    ("hubspot", "companies"): RECORDS,
    ("hubspot", "leads"): SEEDED["hubspot", "leads"],
    ("marketo", "leads"): RECORDS,
    ("pardot", "prospects"): RECORDS - len([n for n in FREE_MAIL if n % 3 and n % 4 != 1]),
    ("eloqua", "contacts"): RECORDS - len(FREE_MAIL),
}


def readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def script_commands() -> str:
    """The script's commands: what follows its header (comments and `set -euo pipefail`)."""
    _header, commands = SCRIPT.read_text(encoding="utf-8").split("set -euo pipefail\n\n", 1)
    return commands


def test_the_readme_shows_the_commands_the_test_runs() -> None:
    text = readme()
    # In the hand-driven path and in the `segsync sandbox start` section.
    assert text.count(f"\n{START}\n") == 2
    assert f"```sh\n{script_commands()}```" in text


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An empty folder to work in, as a person trying segsync would."""
    path = tmp_path / "try"
    path.mkdir()
    return path


@pytest.fixture
def environment() -> dict[str, str]:
    """The shell's environment as the README's reader has it: the installed commands first and no
    SEGSYNC_* settings, so the database is the default (segsync.db in the folder). (The same
    commands on PostgreSQL are covered by the CLI and worker tests, which run on both.)"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGSYNC_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture
def started(folder: Path, environment: dict[str, str]) -> Iterator[dict[str, Any]]:
    """`segsync sandbox start` as the README starts it; yields its first line, then stops it."""
    command, redirect = START.removesuffix(" &").split(" > ")
    with (folder / redirect).open("w") as output:
        process = subprocess.Popen(
            shlex.split(command),
            cwd=folder,
            env=environment,
            stdout=output,
            stderr=subprocess.PIPE,
            text=True,
        )
    try:
        line = wait_until(
            lambda: _first_line(folder / redirect) or process.poll() is not None,
            120,
            "the sandbox's first line",
        )
        assert isinstance(line, str), f"the sandbox ended with {process.returncode}"
        yield json.loads(line)
    finally:
        process.send_signal(signal.SIGTERM)
        _out, errors = process.communicate(timeout=120)
    assert process.returncode == 0, errors
    assert errors.splitlines()[-1] == "sandbox stopped"


def _first_line(path: Path) -> str | None:
    text = path.read_text(encoding="utf-8")
    return text.split("\n", 1)[0] if "\n" in text else None


def test_the_readme_path_from_sandbox_to_records_written(
    started: dict[str, Any], folder: Path, environment: dict[str, str]
) -> None:
    with (folder / "sandbox-accounts.csv").open(encoding="utf-8") as handle:
        accounts = list(csv.DictReader(handle))
    assert len(accounts) == RECORDS + 1  # companies 0 to RECORDS
    done = subprocess.run(
        ["bash", str(SCRIPT)],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert f"{len(accounts)} created, 0 updated, 0 unchanged, 0 rows refused" in done.stdout
    runs = json.loads(_segsync(folder, environment, "runs", "--json"))
    by_target = {tuple(run["orchestration"].split(" ", 1)): run for run in runs}
    assert set(by_target) == set(MATCHED)
    for target, run in by_target.items():
        assert run["status"] == "succeeded", (target, run)
        # Every matched record gets the segment's name; nothing fails.
        seeded = SEEDED.get(target, RECORDS)
        counts = {key: run[key] for key in ("eligible", "enriched", "unmatched", "failed")}
        assert counts == {
            "eligible": MATCHED[target],
            "enriched": MATCHED[target],
            "unmatched": seeded - MATCHED[target],
            "failed": 0,
        }, target
    # What each emulator received: one write per record enriched, each the segment's name.
    session = requests.Session()
    session.trust_env = False
    session.verify = started["ca_bundle"]
    for system in EMULATORS:
        answer = session.get(f"{started[system]['base_url']}/__sandbox/writes", timeout=30)
        assert answer.status_code == 200, answer.text
        writes = answer.json()
        written = Counter(entry["object_type"].lower() for entry in writes)
        expected = {obj.lower(): n for (sys_, obj), n in MATCHED.items() if sys_ == system}
        assert written == expected, system
        fields = {entry["field"] for entry in writes}
        assert fields == set(started[system]["fields"].values()), system
        assert {entry["value"] for entry in writes} == {SEGMENT}, system
    # Going on by hand, as the README says: the key the script kept opens the connections, and a
    # dry run finds nothing left to write.
    key = (folder / "segsync.key").read_text(encoding="utf-8").strip()
    assert oct((folder / "segsync.key").stat().st_mode & 0o777) == "0o600"
    later = {**environment, "SEGSYNC_SECRET_KEY": key}
    dry = json.loads(_segsync(folder, later, "sync", "hubspot contacts", "--dry-run", "--json"))
    assert dry["to_write"] == 0 and dry["unchanged"] == MATCHED[("hubspot", "contacts")], dry


def _segsync(folder: Path, environment: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        ["segsync", *args], cwd=folder, env=environment, capture_output=True, text=True
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def test_the_accounts_csv_imports_and_links_every_seeded_company(
    tmp_path: Path, session: Session
) -> None:
    with Sandbox(list(EMULATORS), records=12) as sandbox:
        path = tmp_path / "accounts.csv"
        assert write_seeded_accounts(sandbox.seeded, path) == 13  # companies 0 to 12
        salesforce = sandbox.emulators["salesforce"]
        hubspot = sandbox.emulators["hubspot"]
        assert isinstance(salesforce, SalesforceEmulator)
        assert isinstance(hubspot, HubSpotEmulator)
        result = import_accounts(session, path)
        assert (result.created, result.errors) == (13, [])
        by_domain = {a.domain: a for a in session.query(Account)}
        # Each Salesforce Account and HubSpot company is the account its link id names.
        for account_id, record in salesforce.store.records["Account"].items():
            linked = session.query(Account).filter_by(salesforce_account_id=account_id).one()
            assert record["Website"] == f"https://www.{linked.domain}"
        for number in range(12):
            company = hubspot.record("companies", str(1001 + number))["properties"]
            assert by_domain[company["domain"]].hubspot_company_id == str(1001 + number)
    with path.open(encoding="utf-8") as handle:
        assert tuple(csv.DictReader(handle).fieldnames or ()) == SEEDED_ACCOUNT_COLUMNS
    assert set(SEEDED_ACCOUNT_COLUMNS) >= set(LINK_COLUMNS.values())


def test_only_the_chosen_systems_companies_are_written(tmp_path: Path) -> None:
    with Sandbox(["pardot"], records=6) as sandbox:
        assert write_seeded_accounts(sandbox.seeded, tmp_path / "accounts.csv") == 3
    with (tmp_path / "accounts.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    # Prospects 0 and 3 are synced to the Salesforce accounts of companies 1 and 2.
    assert [(r["domain"], bool(r["salesforce_account_id"])) for r in rows] == [
        ("company1.com", True),
        ("company2.com", True),
        ("company3.com", False),
    ]
    assert {r["hubspot_company_id"] for r in rows} == {""}


def test_two_emulators_disagreeing_on_a_company_is_an_error() -> None:
    first, second = SeededCompanies(), SeededCompanies()
    first.add(1, {"salesforce": "001A"})
    second.add(1, {"salesforce": "001B"})
    with pytest.raises(ValueError, match="seeded company 1 has two salesforce ids"):
        first.merge(second)


def test_an_unwritable_accounts_csv_is_a_one_line_refusal(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BIN / "segsync"), "sandbox", "start", "--records", "1", "--accounts-csv",
         str(tmp_path / "missing" / "accounts.csv")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"segsync: cannot write --accounts-csv {tmp_path / 'missing' / 'accounts.csv'}: "
        "No such file or directory"
    ]
    assert done.stdout == ""
