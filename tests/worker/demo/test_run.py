"""`segsync demo`: the whole job on a fresh machine, through the installed script and the functions.

The script runs in a subprocess with its own TMPDIR and working folder, so the tests see exactly
what it leaves behind, and with SEGSYNC_* variables that it must ignore.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connectors.sandbox.cluster import EMULATORS
from connectors.sandbox.eloqua import SMALL_TEXT_MAX, EloquaEmulator
from connectors.sandbox.hubspot import TEXT_MAX_LENGTH, HubSpotEmulator
from connectors.sandbox.marketo import STRING_MAX_LENGTH, MarketoEmulator
from connectors.sandbox.pardot import TEXT_MAX_LENGTH as PARDOT_TEXT_MAX_LENGTH
from connectors.sandbox.pardot import PardotEmulator
from connectors.sandbox.salesforce import SalesforceEmulator
from connectors.systems import SYSTEMS, VENDORS
from models.accounts import Account
from models.db import make_engine, upgrade
from models.domains import registrable_domain
from models.enrichment import ValueFormat, enrichment_values
from models.errors import InputError
from models.runs import RUN_COUNTS
from tests.worker.cli.test_main import Cli
from worker.demo.data import FREE_MAIL_DOMAINS, make_sample
from worker.demo.run import DemoEnvironment, demo_environment, targets

SEGSYNC = Path(sys.executable).with_name("segsync")
ACCOUNTS = 300
# Every object of the five systems, in the order the demo runs them.
PAIRS = [
    *(("salesforce", "Lead"), ("salesforce", "Contact"), ("salesforce", "Account")),
    *(("hubspot", "contacts"), ("hubspot", "companies"), ("hubspot", "leads")),
    *(("marketo", "leads"), ("pardot", "prospects"), ("eloqua", "contacts")),
]
# Records a read page holds: Salesforce SOQL pages hold 2,000, HubSpot list pages 100, a Marketo
# id window 300, Pardot query and Eloqua contact pages 1,000.
PAGE_SIZE = {"salesforce": 2000, "hubspot": 100, "marketo": 300, "pardot": 1000, "eloqua": 1000}
# Calls a run that writes nothing makes besides its read pages.
READ_OVERHEAD = {
    # Login (or none) and the field's description, and one spare.
    "salesforce": 3,
    "hubspot": 3,
    # Token, describe, the empty id window past the last lead, a New Lead activities paging token
    # and its page (where the ids end), and the day's usage.
    "marketo": 6,
    # The custom-fields query (the access token is given outright).
    "pardot": 1,
    # Base URL discovery at /id and the contact field list.
    "eloqua": 2,
}
# The most characters each system's segment field holds.
FIELD_LENGTH = {
    "salesforce": 255,
    "hubspot": TEXT_MAX_LENGTH,
    "marketo": STRING_MAX_LENGTH,
    "pardot": PARDOT_TEXT_MAX_LENGTH,
    "eloqua": SMALL_TEXT_MAX,
}
# The fields a record matches its account by, as DESIGN.md §3 says: (explicit link, email, website).
# Eloqua contacts have no website field and no link to a segsync account: email only.
MATCH_FIELDS: dict[tuple[str, str], tuple[str | None, str | None, tuple[str, ...]]] = {
    ("salesforce", "Lead"): (None, "Email", ("Website",)),
    ("salesforce", "Contact"): ("AccountId", "Email", ()),
    ("salesforce", "Account"): ("Id", None, ("Website",)),
    ("hubspot", "contacts"): ("associatedcompanyid", "email", ("website",)),
    ("hubspot", "companies"): ("id", None, ("domain", "website")),
    ("hubspot", "leads"): ("associatedcompanyid", None, ()),
    ("marketo", "leads"): (None, "email", ("website",)),
    ("pardot", "prospects"): ("salesforceAccountId", "email", ("website",)),
    ("eloqua", "contacts"): (None, "C_EmailAddress", ()),
}
# The account column each system's explicit links name (Pardot's are Salesforce Account ids).
LINKS = {
    "salesforce": "salesforce_account_id",
    "pardot": "salesforce_account_id",
    "hubspot": "hubspot_company_id",
}


def fresh_targets() -> list[tuple[str, str, str]]:
    """The demo's (system, object, field) targets as fresh emulators of every system describe
    them (a running sandbox's emulators describe the same)."""
    return targets({system: make(0, 0.0).describe() for system, make in EMULATORS.items()})


def run_demo_script(
    tmp_path: Path, *args: str, **variables: str
) -> subprocess.CompletedProcess[str]:
    """`segsync demo ARGS` with a TMPDIR of its own and no SEGSYNC_* but `variables`."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("SEGSYNC_")}
    env.update(TMPDIR=str(tmp_path / "tmp"), **variables)
    return subprocess.run(
        [str(SEGSYNC), "demo", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def leftovers(tmp_path: Path) -> list[str]:
    """What the demo left in its TMPDIR and working folder (the test's own files aside)."""
    found = [str(p) for p in (tmp_path / "tmp").iterdir()]
    return found + [str(p) for p in tmp_path.iterdir() if p.name not in ("tmp", "user")]


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file in `folder` with its bytes and modification time."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}


def test_json_reports_both_rounds_and_leaves_the_users_database_alone(tmp_path: Path) -> None:
    user = tmp_path / "user"
    user.mkdir()
    engine = make_engine(f"sqlite:///{user / 'segsync.db'}")
    upgrade(engine)
    engine.dispose()
    before = snapshot(user)

    # No SEGSYNC_SECRET_KEY: the demo makes its own.
    done = run_demo_script(
        tmp_path,
        "--accounts",
        str(ACCOUNTS),
        "--json",
        SEGSYNC_DATABASE_URL=f"sqlite:///{user / 'segsync.db'}",
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # the whole of stdout is one JSON object
    assert set(report) == {"first", "second"}
    assert [(s, o) for s, o, _field in fresh_targets()] == PAIRS
    for rows in report.values():
        assert [(row["system"], row["object"]) for row in rows] == PAIRS
        assert all(set(row) == {"system", "object", *RUN_COUNTS} for row in rows)
    sample = make_sample(ACCOUNTS)
    for first, second in zip(report["first"], report["second"], strict=True):
        where = (first["system"], first["object"])
        assert first["enriched"] > 0 and first["failed"] == 0, where
        assert first["eligible"] == first["enriched"] + first["unchanged"], where
        assert second["eligible"] == first["eligible"], where
        assert (second["enriched"], second["failed"]) == (0, 0), where
        assert second["unchanged"] == second["eligible"], where
        # Reads only: the pages of records, plus login, the field's description and the like.
        system = first["system"]
        pages = math.ceil(len(sample.records[system][first["object"]]) / PAGE_SIZE[system])
        assert second["api_calls"] <= pages + READ_OVERHEAD[system], where
    assert snapshot(user) == before
    assert leftovers(tmp_path) == []


def test_human_output_has_both_tables_and_the_temporary_folder_goes(tmp_path: Path) -> None:
    done = run_demo_script(
        tmp_path,
        "--accounts",
        "120",
        # Settings of the user's own segsync, which the demo must neither use nor need.
        SEGSYNC_DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:9/nowhere",
        SEGSYNC_SECRET_KEY="not a key",
    )

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("First run: ") and "records written" in lines[0]
    assert any(line.startswith("Second run") and ": 0 records written" in line for line in lines)
    headers = [line for line in lines if line.startswith("system ")]
    assert len(headers) == 2
    for column in ("eligible", "enriched", "unchanged", "unmatched", "truncated", "api_calls"):
        assert column in headers[0]
    for system, object_type in PAIRS:
        rows = [line.split() for line in lines if line.split()[:2] == [system, object_type]]
        assert len(rows) == 2, (system, object_type)
        assert rows[1][3] == "0", rows[1]  # nothing enriched the second time
    assert "seeded the emulators" in done.stderr and "seeded" not in done.stdout
    assert leftovers(tmp_path) == []


def test_folder_is_kept_to_explore_and_not_reused(tmp_path: Path) -> None:
    kept = tmp_path / "kept"

    done = run_demo_script(tmp_path, "--accounts", "60", "--folder", str(kept))

    assert done.returncode == 0, done.stderr
    url = f"sqlite:///{kept.resolve() / 'segsync.db'}"
    assert f"SEGSYNC_DATABASE_URL={url}" in done.stderr
    assert (kept / "sample" / "accounts.csv").is_file()
    cli = Cli(url)
    runs = cli.json("runs")
    assert isinstance(runs, list) and len(runs) == 2 * len(PAIRS)
    assert {run["status"] for run in runs} == {"succeeded"}
    assert len(cli.json("orchestrations", "list")) == len(PAIRS)  # type: ignore[arg-type]
    # Connection secrets are encrypted at rest with a key that was never shown: HubSpot's and
    # Pardot's tokens have a recognisable start.
    stored = (kept / "segsync.db").read_bytes()
    for token_start in ("pat-na1-", "00D5g000004SANDBOX!"):
        assert token_start.encode() not in stored
        assert token_start not in done.stdout + done.stderr
    assert [p.name for p in (tmp_path / "tmp").iterdir()] == []

    again = run_demo_script(tmp_path, "--folder", str(kept))
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == [
        f"segsync: {kept / 'segsync.db'} exists already: give --folder a new folder"
    ]


def _domain(text: str | None) -> str | None:
    try:
        return registrable_domain(text) if text else None
    except InputError:
        return None


def _link_key(system: str, record_id: str) -> str:
    # Salesforce ids name the same record in their 18- and 15-character forms.
    return record_id[:15] if LINKS[system] == "salesforce_account_id" else record_id


def _expected_accounts(demo: DemoEnvironment) -> dict[tuple[str, str], dict[str, str | None]]:
    """(system, object) -> record id -> external id of the account it belongs to (or None)."""
    links = {
        system: {
            _link_key(system, row[column]): row["external_id"]
            for row in demo.sample.accounts
            if row[column]
        }
        for system, column in LINKS.items()
    }
    domains = {
        _domain(row["domain"] or row["website"]): row["external_id"] for row in demo.sample.accounts
    }

    def account(system: str, record: dict[str, str], object_type: str) -> str | None:
        link_field, email_field, website_fields = MATCH_FIELDS[(system, object_type)]
        link = record.get(link_field or "")
        if link and _link_key(system, link) in links[system]:
            return links[system][_link_key(system, link)]
        email = record.get(email_field or "")
        email_domain = _domain(email.rsplit("@", 1)[1]) if email and "@" in email else None
        if email_domain in domains and email_domain not in FREE_MAIL_DOMAINS:
            return domains[email_domain]
        website = next((record[f] for f in website_fields if record.get(f)), None)
        return domains.get(_domain(website))

    return {
        (system, object_type): {
            record.get("Id") or record["id"]: account(system, record, object_type)
            for record in demo.sample.records[system][object_type]
        }
        for system, object_type in PAIRS
    }


def _values(demo: DemoEnvironment, max_length: int) -> dict[str, tuple[str, int]]:
    """External id -> the account's enrichment value for a field of `max_length` characters, and
    how many names were dropped to fit it."""
    with demo.database.transaction() as session:
        external = {
            key: name for key, name in session.execute(select(Account.id, Account.external_id))
        }
        values = enrichment_values(session.connection(), ValueFormat(max_length=max_length))
        return {external[value.account_id]: (value.value, value.dropped) for value in values}


def _stored_value(demo: DemoEnvironment, system: str, object_type: str, record_id: str) -> str:
    emulator = demo.sandbox.emulators[system]
    stored: dict[str, Any]
    if isinstance(emulator, SalesforceEmulator | MarketoEmulator | PardotEmulator):
        stored = emulator.record(object_type, record_id)
    elif isinstance(emulator, EloquaEmulator):
        stored = emulator.record(object_type, record_id)["fields"]
    else:
        assert isinstance(emulator, HubSpotEmulator)
        stored = emulator.record(object_type, record_id)["properties"]
    field = next(
        t.field for t in demo.targets if (t.system, t.object_type) == (system, object_type)
    )
    return stored.get(field) or ""


# The larger sample has more Pardot updates than PardotConfig's import_threshold, as the default
# demo does: its prospects are written through the Import API, the small sample's by PATCH.
@pytest.mark.parametrize("accounts", [ACCOUNTS, 2000])
def test_first_run_writes_each_record_its_accounts_value_once(accounts: int) -> None:
    with demo_environment(accounts) as demo:
        first = demo.run_all()
        values = {system: _values(demo, length) for system, length in FIELD_LENGTH.items()}
        owners = _expected_accounts(demo)
        demo_targets = targets(demo.sandbox.describe())
        assert [(t.system, t.object_type, t.field) for t in demo.targets] == demo_targets
        for (system, object_type, field), counts in zip(demo_targets, first, strict=True):
            where = (system, object_type)
            seeded = {
                record.get("Id") or record["id"]: record.get(field) or ""
                for record in demo.sample.records[system][object_type]
            }
            owned = {rid: owner for rid, owner in owners[where].items() if owner is not None}
            expected = {rid: values[system][owner][0] for rid, owner in owned.items()}
            to_write = {rid: value for rid, value in expected.items() if seeded[rid] != value}
            writes = [
                w for w in demo.sandbox.emulators[system].writes if w.object_type == object_type
            ]
            assert {w.field for w in writes} == {field}, where
            assert max(Counter(w.record_id for w in writes).values()) == 1, ("written twice", where)
            assert {w.record_id: w.value or "" for w in writes} == to_write, where
            for record_id, value in seeded.items():
                now = _stored_value(demo, system, object_type, record_id)
                assert now == expected.get(record_id, value), (where, record_id)
            assert counts["enriched"] == len(to_write) > 0, where
            assert counts["failed"] == 0, where
            assert counts["eligible"] == len(expected), where
            assert counts["unmatched"] == len(seeded) - len(expected), where
            # Values are cut to the field by whole names: Eloqua's 100 characters cut many.
            truncated = sum(values[system][owner][1] > 0 for owner in owned.values())
            assert counts["truncated"] == truncated, where
        assert next(row["truncated"] for row in first if row["system"] == "eloqua") > 0
        pardot = demo.sandbox.emulators["pardot"]
        assert (pardot.calls["POST /api/v5/imports"] > 0) == (accounts > ACCOUNTS)
        written = {system: len(e.writes) for system, e in demo.sandbox.emulators.items()}

        second = demo.run_all()

        assert {system: len(e.writes) for system, e in demo.sandbox.emulators.items()} == written
        assert [row["enriched"] for row in second] == [0] * len(demo_targets)
        assert [row["failed"] for row in second] == [0] * len(demo_targets)


def test_the_demo_runs_every_registered_system_and_each_object_its_adapter_supports() -> None:
    found = fresh_targets()
    systems = tuple(dict.fromkeys(system for system, _object, _field in found))
    objects = {system: tuple(o for s, o, _field in found if s == system) for system in systems}

    assert systems == SYSTEMS
    for system in SYSTEMS:
        module = importlib.import_module(VENDORS[system].module)
        assert objects[system] == getattr(module, VENDORS[system].adapter).objects


def test_the_demo_imports_no_command_line_module() -> None:
    probe = (
        "import sys, worker.demo.run; print([m for m in sys.modules if m.startswith('worker.cli')])"
    )

    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )

    assert done.stdout.strip() == "[]"
