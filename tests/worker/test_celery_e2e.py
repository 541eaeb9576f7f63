"""End to end through real Celery workers, a real Redis and real HTTPS to the emulators."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from connectors.sandbox.cluster import Sandbox
from models.connections import new_secret_key
from tests.factories import write_csv
from tests.worker.celery_processes import SEGSYNC, start_worker
from tests.worker.cli.test_main import Cli
from tests.worker.sandbox_connections import (
    eloqua_connection,
    hubspot_connection,
    marketo_connection,
    pardot_connection,
    salesforce_password_connection,
)

# account -> (domain, segments it is in); values are what the field must hold afterwards.
ACCOUNTS = {
    "A-1": ("acme.com", "Software; ICP", "Tier 1"),
    "A-2": ("globex.co.uk", "Software; ICP"),
    "A-3": ("initech.io", "Tier 1"),
    "A-4": ("umbrella.com",),
}
EXPECTED = {
    "acme.com": "Software； ICP;Tier 1",
    "globex.co.uk": "Software； ICP",
    "initech.io": "Tier 1",
    "umbrella.com": "",
}
DOMAINS = list(EXPECTED)


Stack = tuple[Cli, Sandbox, dict[str, str], dict[str, str]]


@pytest.fixture
def stack(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[Stack]:
    redis.Redis.from_url(redis_url).flushdb()
    with Sandbox(["salesforce", "hubspot"]) as sandbox:
        env = worker_environment(database_url, redis_url)
        cli = Cli(database_url)
        cli.env.update({k: v for k, v in env.items() if k.startswith("SEGSYNC_")})
        companies = load(cli, sandbox, tmp_path)
        yield cli, sandbox, env, companies


def queue_and_wait(env: dict[str, str], orchestration: str) -> dict[str, Any]:
    """`segsync sync NAME --queue --wait --json` in its own process, as a person runs it: the
    run's counts once it ended (bounded, so a run that never ends fails the test, not hangs it).

    (Its own process: the Celery app reads its broker once per process, at first use, so an
    in-process CLI would send through whatever broker an earlier test's import configured.)
    """
    done = subprocess.run(
        [SEGSYNC, "sync", orchestration, "--queue", "--wait", "--timeout", "240", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.stdout, done.stderr
    run: dict[str, Any] = json.loads(done.stdout)
    return run


def worker_environment(database_url: str, redis_url: str) -> dict[str, str]:
    """The environment of the test's workers and CLI: its database, Redis, short leases."""
    return {
        **os.environ,
        "SEGSYNC_DATABASE_URL": database_url,
        "SEGSYNC_BROKER_URL": redis_url,
        "SEGSYNC_SECRET_KEY": new_secret_key(),
        "SEGSYNC_BATCH_LEASE_SECONDS": "4",
        "SEGSYNC_STALE_AFTER_SECONDS": "4",
        "SEGSYNC_BEAT_INTERVAL_SECONDS": "1",
    }


def load(cli: Cli, sandbox: Sandbox, tmp_path: Path) -> dict[str, str]:
    """Accounts, segments, connections; returns the HubSpot company id of each domain."""
    hubspot = sandbox.emulators["hubspot"]
    company_ids = hubspot.add_records(  # type: ignore[attr-defined]
        "companies", [{"domain": domain, "name": domain} for domain in DOMAINS]
    )
    load_accounts_and_segments(cli, tmp_path, company_ids)
    cli.ok(*salesforce_password_connection(sandbox))
    cli.ok(*hubspot_connection(sandbox))
    return dict(zip(DOMAINS, company_ids, strict=True))


def load_accounts_and_segments(
    cli: Cli, tmp_path: Path, company_ids: list[str] | None = None
) -> None:
    """The accounts of ACCOUNTS and the two published segments that give EXPECTED."""
    company_ids = company_ids or [""] * len(DOMAINS)
    rows = [
        [
            external_id,
            spec[0],
            "Software" if "Software; ICP" in spec else "Retail",
            company_ids[DOMAINS.index(spec[0])],
        ]
        for external_id, spec in ACCOUNTS.items()
    ]
    path = write_csv(
        tmp_path / "a.csv", ["external_id", "domain", "industry", "hubspot_company_id"], rows
    )
    cli.ok("accounts", "import", str(path))
    cli.ok("segments", "create", "Software; ICP", "--filter", 'industry = "Software"')
    cli.ok("segments", "create", "Tier 1", "--filter", 'domain in ("acme.com", "initech.io")')
    for name in ("Software; ICP", "Tier 1"):
        cli.ok("publish", name, "--use", "enrichment", "--yes")


def seed(
    sandbox: Sandbox, system: str, object_type: str, count: int, companies: dict[str, str]
) -> dict[str, str]:
    """`count` records of one object spread over the accounts; record id -> expected value.

    Leads, Contacts and HubSpot contacts start with a stale value; the others start empty.
    """
    emulator: Any = sandbox.emulators[system]
    domains = [DOMAINS[n % len(DOMAINS)] for n in range(count)]
    if (system, object_type) == ("salesforce", "Account"):
        rows = [{"Name": f"Co {n}", "Website": f"https://www.{d}/"} for n, d in enumerate(domains)]
    elif system == "salesforce":
        rows = [
            {"LastName": f"P{n}", "Email": f"p{n}@{d}", "Segment_Names__c": "Stale"}
            for n, d in enumerate(domains)
        ]
    elif object_type == "companies":
        rows = [{"domain": d, "name": d} for d in domains]
    elif object_type == "leads":
        rows = [{"hs_lead_name": f"Lead {n}"} for n in range(count)]
    else:
        rows = [{"email": f"p{n}@{d}", "segment_names": "Stale"} for n, d in enumerate(domains)]
    ids: list[str] = emulator.add_records(object_type, rows)
    if object_type == "leads":
        # Leads carry no email or domain: only their company association matches them.
        for record_id, domain in zip(ids, domains, strict=True):
            emulator.associate(record_id, companies[domain], object_type="leads")
    return {record_id: EXPECTED[d] for record_id, d in zip(ids, domains, strict=True)}


def field_value(sandbox: Sandbox, system: str, object_type: str, record_id: str) -> str:
    emulator: Any = sandbox.emulators[system]
    record = emulator.record(object_type, record_id)
    value = (
        record.get("Segment_Names__c")
        if system == "salesforce"
        else (record["properties"].get("segment_names"))
    )
    return value or ""


TARGETS = [
    ("salesforce", "sf", "Lead", "Segment_Names__c", 450),
    ("salesforce", "sf", "Contact", "Segment_Names__c", 250),
    ("salesforce", "sf", "Account", "Segment_Names__c", 60),
    ("hubspot", "hs", "contacts", "segment_names", 230),
    ("hubspot", "hs", "companies", "segment_names", 40),
    ("hubspot", "hs", "leads", "segment_names", 30),
]


# The two tests below are about the connectors of every system and object through a worker, and
# run on PostgreSQL only (production's database, strict about column lengths). What a run does in
# SQLite is the same code for every system, run there by every other Celery test; the connectors
# of these objects reach SQLite through the foreground tests and the demo.
ON_POSTGRESQL = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@ON_POSTGRESQL
def test_every_system_and_object_through_a_real_worker(stack: Stack, tmp_path: Path) -> None:
    cli, sandbox, env, companies = stack
    expected: dict[tuple[str, str], dict[str, str]] = {}
    for system, connection, object_type, field, count in TARGETS:
        expected[(system, object_type)] = seed(sandbox, system, object_type, count, companies)
        cli.ok(
            "orchestrations",
            "create",
            f"{system} {object_type}",
            "--connection",
            connection,
            "--object",
            object_type,
            "--field",
            field,
        )
    worker = start_worker(env, tmp_path / "worker.log", "one")
    try:
        for system, _connection, object_type, _field, _count in TARGETS:
            run = queue_and_wait(env, f"{system} {object_type}")
            assert run["status"] == "succeeded", (run, worker.output()[-2000:])
    finally:
        worker.stop()
    for (system, object_type), values in expected.items():
        emulator = sandbox.emulators[system]
        writes = Counter(w.record_id for w in emulator.writes if w.object_type == object_type)
        for record_id, value in values.items():
            where = f"{system} {object_type} {record_id}"
            assert field_value(sandbox, system, object_type, record_id) == value, where
            assert writes[record_id] <= 1, f"{where} written twice"
        # Exactly the seeded records whose value had to change were written (and nothing twice:
        # the four companies load() made are written too, once each).
        started_stale = object_type in ("Lead", "Contact", "contacts")
        must_write = {r for r, v in values.items() if started_stale or v != ""}
        assert set(writes) & set(values) == must_write, f"{system} {object_type}"
        assert max(writes.values()) == 1


@ON_POSTGRESQL
def test_marketo_pardot_and_eloqua_through_a_real_worker(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    redis.Redis.from_url(redis_url).flushdb()
    with Sandbox(["marketo", "pardot", "eloqua"]) as sandbox:
        env = worker_environment(database_url, redis_url)
        cli = Cli(database_url)
        cli.env.update({k: v for k, v in env.items() if k.startswith("SEGSYNC_")})
        load_accounts_and_segments(cli, tmp_path)
        # A threshold under the 700 leads: Marketo's read goes through a Bulk Lead Extract.
        cli.ok(*marketo_connection(sandbox), "--set", "export_threshold=300")
        for connection in (pardot_connection, eloqua_connection):
            cli.ok(*connection(sandbox))
        targets = [
            ("marketo", "mkto", "leads", "segmentNames", "email", 700),
            ("pardot", "pardot", "prospects", "Segment_Names__c", "email", 120),
            ("eloqua", "eloqua", "contacts", "C_Segment_Names1", "emailAddress", 260),
        ]
        expected: dict[str, dict[str, str]] = {}
        for system, connection_name, object_type, field, email_key, count in targets:
            domains = [DOMAINS[n % len(DOMAINS)] for n in range(count)]
            emulator: Any = sandbox.emulators[system]
            ids = emulator.add_records(
                object_type, [{email_key: f"p{n}@{d}"} for n, d in enumerate(domains)]
            )
            expected[system] = {i: EXPECTED[d] for i, d in zip(ids, domains, strict=True)}
            cli.ok("orchestrations", "create", system, "--connection", connection_name,
                   "--object", object_type, "--field", field)  # fmt: skip
        worker = start_worker(env, tmp_path / "worker.log", "three")
        try:
            for system, *_rest in targets:
                run = queue_and_wait(env, system)
                assert run["status"] == "succeeded", (run, worker.output()[-2000:])
        finally:
            worker.stop()
        for system, _connection, object_type, field, _email, _count in targets:
            emulator = sandbox.emulators[system]
            writes = Counter(w.record_id for w in emulator.writes)
            for record_id, value in expected[system].items():
                record = emulator.record(object_type, record_id)  # type: ignore[attr-defined]
                stored = record["fields"][field] if system == "eloqua" else record[field]
                assert (stored or "") == value, f"{system} {record_id}"
            assert set(writes) == {r for r, v in expected[system].items() if v}, system
            assert max(writes.values()) == 1, f"{system}: a record was written twice"
        exports = sandbox.emulators["marketo"].exports.jobs.values()  # type: ignore[attr-defined]
        assert [job.status for job in exports] == ["Completed"]
