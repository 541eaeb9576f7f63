"""Benchmark: a full segsync run through real Celery workers, against the plain script a user
would otherwise write (one update call per record with the vendor's official client).

Run from the repository root:

    .venv/bin/python bench/sync.py                                  # 100,000 records per system
    .venv/bin/python bench/sync.py --records 5000 --plain-records 500   # a quick try
    .venv/bin/python bench/sync.py --systems hubspot --workers 2 --latency-ms 100
    .venv/bin/python bench/sync.py --systems marketo,pardot,eloqua

What it starts, all on 127.0.0.1 and all stopped at the end: a throwaway redis-server
(tests.services.redis_server), the emulators of --systems (Salesforce, HubSpot, Marketo, Pardot,
Eloqua) over HTTPS (a CA made for the run) answering every call after --latency-ms, and for each
measurement --workers `segsync worker` processes with --concurrency pool processes each. The
database is a SQLite file in a temporary folder (or --postgres-url, or a throwaway PostgreSQL
server with --postgres).

Data (bench/sync_data.py): --accounts accounts and their segments from the realistic sample of
`segsync demo` (worker.demo.data), some published for enrichment; for each system N records
(Salesforce Leads, HubSpot contacts, Marketo leads, Pardot prospects, Eloqua contacts) matching
those accounts, about 93% of which must be written. The emulators enforce the vendors' limits:
HubSpot's 100 requests per rolling 10 s (429 TEN_SECONDLY_ROLLING past it) and 250,000 a day;
Salesforce's daily API limit (1,000,000 here); Marketo's 100 calls per 20 s (606) and 10 at once
(615), shared by all workers, and its 50,000 a day; Pardot's 5 concurrent calls (code 66) and
100,000 a day. Eloqua's emulator sets no rate (Oracle publishes none).

Connections are made by worker/sandbox_connections.py, as for the demo: Salesforce by password
login, HubSpot by private-app token, Marketo by client credentials (export_poll_interval=0.05,
as the emulator finishes a lead export at once; a real one queues and runs for minutes), Pardot by
access token and business unit (import_poll_interval=0.05, as the emulator finishes an import at
once), Eloqua by Basic authentication with the base URL discovered at /id (poll_interval=0.05,
likewise).

For each system, each worker count in --workers:
  1. every record's field is put back to its initial value and the emulator's counts are reset;
     Redis is emptied (so no rate-limit window carries over) and the workers are started;
  2. `segsync sync NAME --queue --wait --json` is timed (from the command's start to its exit;
     the run's own started/finished times are shown too, split into planning and writing). If
     a worker logs a task that raised an unexpected error (the run would then never finish) or
     the run takes over --timeout, the wait is abandoned, the run is marked failed in the
     database and the measurement is reported as STUCK;
  3. the emulator's write log and every record's value are checked against what is expected.
After the last worker count (unless --no-rerun, or if that run did not succeed), the same workers
run the orchestration again: nothing changed, so it must read and make no write call.

Then the plain script (bench/sync_plain.py; the report says "no plain script" for a system
whose entry names none), in a child process of its own, updates the first
--plain-records records that must be written (the same values segsync wrote), one call each,
against the same emulators with the same latency and limits; on HubSpot it sleeps on each 429
(Retry-After when sent, else --plain-429-wait seconds) and sends the update again. Marketo: one
Sync Leads call per lead (updateOnly, one input), sleeping 20 s on each 606; Pardot: one
`PATCH /api/v5/objects/prospects/{id}` per prospect; Eloqua: one REST
`PUT /api/REST/1.0/data/contact/{id}` per contact (served by bench/sync_emulators.py). Its time is
projected to all N records. It only writes: it is not charged for reading the records, matching
them to accounts or computing the values, which segsync's times include.

Printed per system and measurement: records, records written, seconds, records per second, API
calls (the run's api_calls and the emulator's own count, by route, and 429 answers), the
theoretical minimum (ceil(records to write / vendor batch maximum) + ceil(records / read page) +
logins: Salesforce 200 and 2,000 and one login, HubSpot 100 and 100 and none, Marketo 300 and
300 (id windows) and one token; Pardot 1 (a PATCH per prospect) and 1,000 and none; Eloqua 3 calls
(upload, sync, sync status) per 5,000-record Bulk import batch, pages of 1,000 and the /id
discovery) and the ratio of calls to it. Salesforce's Bulk API 2.0 and Pardot's Import API write
thousands of records per call, so a run that takes them falls below its minimum: the report says
when it did. For HubSpot and Marketo also the floor the rate limit puts on the time ((accepted
calls - limit) / limit per window: the first window's worth go at once). Rate-limited answers are
429s, and Marketo's 606/615 (HTTP 200 with success false).

Options:
  --records N           records per system (default 100,000)
  --accounts N          accounts (default: records / 2)
  --latency-ms MS       emulator latency per call (default 50)
  --systems LIST        of salesforce,hubspot,marketo,pardot,eloqua (default every registry
                        system with an entry in bench/sync_vendors.py)
  --workers LIST        worker process counts to measure (default 1,2)
  --concurrency C       pool processes per worker (default 2)
  --plain-records P     records the plain script updates (default 5,000; 0 skips it)
  --plain-records-marketo P   the same for Marketo, whose 100 calls per 20 s make the plain
                        script take 20 s per 100 records (default 1,000)
  --plain-429-wait S    the plain script's sleep after a 429 without Retry-After (default 1)
  --hubspot-limit N     requests per rolling 10 s the HubSpot emulator allows (default 100)
  --no-rerun            skip the second, nothing-to-write run
  --timeout S           the longest one run or plain script may take (default 3600)
  --postgres-url URL    an empty scratch PostgreSQL database instead of SQLite
  --postgres            start a throwaway PostgreSQL server (tests.services) instead of SQLite
  --keep DIR            keep the database, worker logs and sample files in DIR
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import math
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import redis  # noqa: E402
from sqlalchemy import Engine, func, make_url, select  # noqa: E402

from bench.sync_celery import (  # noqa: E402
    WorkerProcess,
    start_workers,
    stop_workers,
    sync_queued,
)
from bench.sync_data import (  # noqa: E402
    Records,
    Seeding,
    account_values,
    current_value,
    load_accounts,
    restore,
)
from bench.sync_emulators import (  # noqa: E402
    BenchEmulator,
    Emulators,
    running_emulators,
)
from bench.sync_plain import PlainJob, PlainResult  # noqa: E402
from bench.sync_vendors import (  # noqa: E402
    BENCH_VENDORS,
    BENCHMARKED,
    bulk_batch_size,
    minimum_calls,
    rate_windows,
    refusal,
    target,
)
from models.connections import ConnectionSpec, add_connection, new_secret_key  # noqa: E402
from models.db import make_engine, make_session_factory, transaction  # noqa: E402
from models.orchestrations import (  # noqa: E402
    OrchestrationSpec,
    Scope,
    create_orchestration,
    find_orchestration,
)
from models.runs import SyncBatch, SyncRun  # noqa: E402
from worker.connector_factory import build_connector  # noqa: E402
from worker.sandbox_connections import sandbox_connection  # noqa: E402
from worker.sync import fail_run  # noqa: E402

# Rate windows the emulators enforce, the vendors' own (connectors.systems): (calls, seconds).
RATE_WINDOWS = rate_windows()
# Answers that are rate or concurrency refusals (Marketo's arrive with HTTP 200, counted by code).
RATE_LIMITED = (429, 606, 615)
Emulator = BenchEmulator


@dataclass
class Measurement:
    """One timed run (segsync or the plain script) and what the emulator saw."""

    label: str
    setup: str
    records: int
    to_write: int
    written: int
    seconds: float
    run_calls: int | None
    emulator_calls: int
    rate_limited: int
    minimum: int
    status: str
    check: str
    routes: dict[str, int] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    details: RunDetails | None = None
    plain: bool = False

    @property
    def finished(self) -> bool:
        """Whether it did its whole job (a stuck or failed run's rate means nothing)."""
        return self.plain or self.status == "succeeded"


# --- helpers ---------------------------------------------------------------------------------


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _ratio(m: Measurement) -> str:
    if not m.minimum:
        return "-"
    ratio = m.emulator_calls / m.minimum
    return f"{ratio:.2f}x" if ratio >= 0.01 or not ratio else f"{ratio:.4f}x"


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def in_child(function: Any, *args: Any) -> Any:
    """`function(*args)` in a fresh interpreter (spawn): it shares no GIL with the emulators."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def child_env(database_url: str, redis_url: str, secret_key: str) -> dict[str, str]:
    """The environment of the workers and the CLI: only this run's SEGSYNC_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGSYNC_")}
    env.update(
        SEGSYNC_DATABASE_URL=database_url,
        SEGSYNC_BROKER_URL=redis_url,
        SEGSYNC_SECRET_KEY=secret_key,
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    return env


def snapshot(emulator: Emulator) -> tuple[Counter[str], Counter[int], int]:
    """The emulator's calls by route, answers by status, and length of its write log."""
    with emulator.lock:
        return Counter(emulator.calls), Counter(emulator.statuses), len(emulator.writes)


def check_records(emulator: Emulator, records: Records, since: int = 0) -> tuple[int, str]:
    """(records written, a one-line verdict): every value as expected, each written once.

    Writes are those logged after the first `since` entries; with since > 0 (a rerun with
    nothing changed) no write at all is expected.
    """
    with emulator.lock:
        writes = [
            w.record_id
            for w in emulator.writes[since:]
            if w.object_type == records.object_type and w.field == records.field
        ]
    counts = Counter(writes)
    must = set(records.to_write) if not since else set()
    wrong = sum(
        current_value(emulator, records, i) != (records.expected[i] or "") for i in records.ids
    )
    problems = [
        f"{what} {count:,}"
        for what, count in (
            ("wrong values", wrong),
            ("written twice", sum(1 for c in counts.values() if c > 1)),
            ("written needlessly", sum(1 for i in counts if i not in must)),
            ("not written", len(must - set(counts))),
        )
        if count
    ]
    verdict = "ok" if not problems else "PROBLEM: " + ", ".join(problems)
    return len(counts), verdict


@dataclass(frozen=True)
class RunDetails:
    """From the database: the run's phases, counts and retried batches."""

    seconds: float | None  # started (claimed by the plan task) -> finished
    planning: float | None  # started -> its batches enqueued (describe, read, match, diff, store)
    writing: float | None  # batches enqueued -> finished
    retried_batches: int
    counts: str


def run_details(engine: Engine, run_id: int) -> RunDetails:
    """The run's own duration, split into planning and writing, and its counts."""
    with make_session_factory(engine)() as session:
        run = session.get_one(SyncRun, run_id)
        retried = session.scalar(
            select(func.count())
            .select_from(SyncBatch)
            .where(SyncBatch.run_id == run_id, SyncBatch.attempts > 1)
        )
        enqueued = session.scalar(
            select(func.min(SyncBatch.enqueued_at)).where(SyncBatch.run_id == run_id)
        )

    def between(start: Any, end: Any) -> float | None:
        if start is None or end is None:
            return None
        # SQLite hands datetimes back naive: compare like with like.
        return float((end.replace(tzinfo=None) - start.replace(tzinfo=None)).total_seconds())

    counts = (
        f"{run.enriched:,}/{run.unchanged:,}/{run.unmatched:,}/{run.truncated:,}/{run.failed:,}"
    )
    return RunDetails(
        seconds=between(run.started_at, run.finished_at),
        planning=between(run.started_at, enqueued),
        writing=between(enqueued, run.finished_at),
        retried_batches=int(retried or 0),
        counts=counts,
    )


# --- setup -------------------------------------------------------------------------------------


def sandbox_settings(system: str, emulators: Emulators) -> tuple[dict[str, str], dict[str, str]]:
    """(settings, secrets) of a connection to the system's running emulator."""
    described = {system: emulators.describe(system), "ca_bundle": str(emulators.ca_bundle)}
    return sandbox_connection(system, described)


def field_max_length(system: str, emulators: Emulators, object_type: str, field: str) -> int | None:
    """The field's maximum length as the adapter describes it, which a run formats values to."""
    connector = build_connector(system, *sandbox_settings(system, emulators))
    try:
        return connector.describe_field(object_type, field).max_length
    finally:
        connector.close()


def connect(
    engine: Engine, system: str, emulators: Emulators, secret_key: str, records: Records
) -> str:
    """Store a connection to the system's emulator and an orchestration; returns its name."""
    settings, secrets = sandbox_settings(system, emulators)
    spec = ConnectionSpec(
        name=f"bench-{system}",
        system=system,
        settings=settings,
        secrets=secrets,
        secret_environment={},
    )
    name = f"bench {system} {records.object_type}"
    with transaction(make_session_factory(engine)) as session:
        connection = add_connection(session, spec, secret_key)
        create_orchestration(
            session,
            OrchestrationSpec(
                name=name,
                connection_id=connection.id,
                object_type=records.object_type,
                field=records.field,
                scope=Scope("all"),
            ),
        )
    return name


# --- measurements ------------------------------------------------------------------------------


def _latest_run(engine: Engine, orchestration: str) -> SyncRun:
    with make_session_factory(engine)() as session:
        found = find_orchestration(session, orchestration)
        run = session.scalars(
            select(SyncRun)
            .where(SyncRun.orchestration_id == found.id)
            .order_by(SyncRun.id.desc())
            .limit(1)
        ).one()
        return run


def timed_run(
    *,
    label: str,
    engine: Engine,
    emulator: Emulator,
    records: Records,
    orchestration: str,
    setup: str,
    env: dict[str, str],
    workers: list[WorkerProcess],
    timeout: float,
    rerun: bool,
) -> Measurement:
    """Trigger one run, wait for it, and measure it (a rerun expects no write at all)."""
    system = records.system
    routes_before, statuses_before, writes_before = snapshot(emulator)
    run, seconds, stuck = sync_queued(orchestration, env, timeout, workers)
    routes, statuses, _ = snapshot(emulator)
    routes, statuses = routes - routes_before, statuses - statuses_before
    written, verdict = check_records(emulator, records, since=writes_before if rerun else 0)
    if run is None:
        # The run cannot finish (or took too long): end it so the next measurement can start.
        latest = _latest_run(engine, orchestration)
        fail_run(make_session_factory(engine), latest.id, f"bench: {stuck}")
        run = {"run": latest.id, "status": f"STUCK {latest.status}", "reason": stuck}
        run["api_calls"] = latest.api_calls
    details = run_details(engine, int(run["run"]))
    to_write = 0 if rerun else len(records.to_write)
    reason = f" ({run['reason']})" if run.get("reason") else ""
    print(f"[{system}]   {label}: {run['status']}{reason} in {seconds:.1f} s", flush=True)
    return Measurement(
        label=label,
        setup=setup,
        records=len(records.ids),
        to_write=to_write,
        written=written,
        seconds=seconds,
        run_calls=int(run["api_calls"]),
        emulator_calls=sum(routes.values()),
        rate_limited=sum(statuses.get(code, 0) for code in RATE_LIMITED),
        minimum=minimum_calls(system, len(records.ids), to_write),
        status=f"{run['status']}{reason}",
        check=verdict,
        routes=dict(routes),
        statuses=dict(statuses),
        details=details,
    )


def measure_segsync(
    *,
    engine: Engine,
    emulator: Emulator,
    records: Records,
    orchestration: str,
    workers: int,
    args: argparse.Namespace,
    env: dict[str, str],
    redis_url: str,
    logs: Path,
    rerun: bool,
) -> list[Measurement]:
    """One full run on `workers` fresh workers (and, with `rerun`, a second one on them)."""
    system = records.system
    restore(emulator, records)
    redis.Redis.from_url(redis_url).flushdb()
    print(f"[{system}] starting {workers} worker(s) x concurrency {args.concurrency}", flush=True)
    started = start_workers(workers, args.concurrency, env, logs, f"{system}-{workers}w")
    common: dict[str, Any] = {
        "engine": engine,
        "emulator": emulator,
        "records": records,
        "orchestration": orchestration,
        "setup": f"{workers} x {args.concurrency}",
        "env": env,
        "workers": started,
        "timeout": args.timeout,
    }
    try:
        print(f"[{system}] segsync sync --queue --wait ({workers} worker(s)) ...", flush=True)
        label = f"segsync {workers} worker{'s' if workers > 1 else ''}"
        results = [timed_run(label=label, rerun=False, **common)]
        if rerun and results[0].status == "succeeded":
            print(f"[{system}] second run, nothing changed ...", flush=True)
            results.append(timed_run(label="rerun, no change", rerun=True, **common))
    finally:
        stop_workers(started)
    return results


def measure_plain(
    emulators: Emulators, emulator: Emulator, records: Records, args: argparse.Namespace
) -> Measurement:
    """The plain one-call-per-record script on the first --plain-records records to write."""
    system = records.system
    script = BENCH_VENDORS[system].plain
    assert script is not None  # main measures only systems that have one
    restore(emulator, records)
    chosen = records.to_write[: plain_count(system, args)]
    updates = [(i, records.expected[i] or "") for i in chosen]
    described = emulators.describe(system)
    ca_bundle = str(emulators.ca_bundle)
    print(f"[{system}] plain script: {len(updates):,} update calls ...", flush=True)
    job = PlainJob(
        described=described,
        ca_bundle=ca_bundle,
        object_type=records.object_type,
        field=emulator.plain_field(records.field),
        updates=updates,
        wait_429=args.plain_429_wait,
        deadline_seconds=args.timeout,
    )
    result: PlainResult = in_child(script.run, job)
    routes, statuses, _ = snapshot(emulator)
    with emulator.lock:
        written_ids = {w.record_id for w in emulator.writes if w.object_type == records.object_type}
    wrong = sum(current_value(emulator, records, i) != (records.expected[i] or "") for i in chosen)
    problems = [] if wrong == 0 else [f"{wrong:,} wrong values"]
    if result.failed:
        problems.append(f"{result.failed:,} refused (first: {result.first_error})")
    if result.written < len(updates) and not result.failed:
        problems.append(f"stopped early: {result.first_error}")
    print(f"[{system}]   plain script done in {result.seconds:.1f} s", flush=True)
    return Measurement(
        label="plain script",
        setup="1 call/record",
        records=len(updates),
        to_write=len(updates),
        written=len(written_ids),
        seconds=result.seconds,
        run_calls=result.calls,
        emulator_calls=sum(routes.values()),
        rate_limited=sum(statuses.get(code, 0) for code in RATE_LIMITED),
        minimum=len(updates) + script.logins,
        status="done" if not problems else "incomplete",
        check="ok" if not problems else "PROBLEM: " + "; ".join(problems),
        routes=dict(routes),
        statuses=dict(statuses),
        plain=True,
    )


# --- report ------------------------------------------------------------------------------------


def _detail(m: Measurement, name: str) -> str:
    value = getattr(m.details, name) if m.details else None
    return f"{value:.1f}" if value is not None else "-"


def rate_floor(calls: int, limit: int, window: float = 10.0) -> float:
    """The least time a rolling window of `limit` calls per `window` seconds allows `calls`
    accepted calls in (the first window's worth go at once)."""
    return max(0.0, (calls - limit) * window / limit)


def plain_count(system: str, args: argparse.Namespace) -> int:
    """How many records the plain script updates on `system`."""
    if system == "marketo" and args.plain_records_marketo is not None:
        return int(args.plain_records_marketo)
    return int(args.plain_records)


def report(
    system: str, records: Records, measurements: list[Measurement], args: argparse.Namespace
) -> None:
    """One table per system: a column per measurement."""
    bulk_rows = bulk_batch_size(system) or 0
    total = len(records.ids)
    to_write = len(records.to_write)
    kinds = ", ".join(f"{kind} {count:,}" for kind, count in sorted(records.kinds.items()))
    print(
        f"\n=== {system} {records.object_type}.{records.field}: {total:,} records, "
        f"{to_write:,} to write ({kinds}); {args.latency_ms:g} ms per call"
        + (f"; {args.hubspot_limit} requests per 10 s" if system == "hubspot" else "")
        + ("; 100 calls per 20 s, 10 at once" if system == "marketo" else "")
    )
    window = RATE_WINDOWS.get(system)
    if system == "hubspot":
        window = (args.hubspot_limit, 10.0)
    rows: list[tuple[str, list[str]]] = [
        ("workers x concurrency", [m.setup for m in measurements]),
        ("records", [_n(m.records) for m in measurements]),
        ("records written", [_n(m.written) for m in measurements]),
        ("seconds", [f"{m.seconds:.1f}" for m in measurements]),
        ("  run's own seconds", [_detail(m, "seconds") for m in measurements]),
        ("    planning (read+diff)", [_detail(m, "planning") for m in measurements]),
        ("    writing batches", [_detail(m, "writing") for m in measurements]),
        (
            "records per second",
            [f"{m.records / m.seconds:,.1f}" if m.finished else "-" for m in measurements],
        ),
        ("written per second", [f"{m.written / m.seconds:,.1f}" for m in measurements]),
        (
            "API calls (run count)",
            [_n(m.run_calls) if m.run_calls is not None else "-" for m in measurements],
        ),
        ("API calls (emulator)", [_n(m.emulator_calls) for m in measurements]),
        ("  of which rate-limited", [_n(m.rate_limited) for m in measurements]),
        ("theoretical minimum", [_n(m.minimum) for m in measurements]),
        (
            "ratio calls / minimum",
            [_ratio(m) for m in measurements],
        ),
    ]
    if window is not None:
        limit, seconds = window
        rows.append(
            (
                "rate-limit floor (s)",
                [
                    f"{rate_floor(m.emulator_calls - m.rate_limited, limit, seconds):.1f}"
                    for m in measurements
                ],
            )
        )
    rows += [
        (
            "run enr/unch/unm/trunc/fail",
            [m.details.counts if m.details else "-" for m in measurements],
        ),
        (
            "batches retried",
            [_n(m.details.retried_batches) if m.details else "-" for m in measurements],
        ),
        ("status", [m.status for m in measurements]),
        ("check", [m.check for m in measurements]),
    ]
    long_rows = ("status", "check")
    width = 2 + max(
        len(text)
        for text in [m.label for m in measurements]
        + [cell for label, cells in rows if label not in long_rows for cell in cells]
    )
    print(f"  {'':<28}" + "".join(f"{m.label:>{width}}" for m in measurements))
    for label, cells in rows:
        if label in long_rows and any(len(c) > width - 2 for c in cells):
            continue
        print(f"  {label:<28}" + "".join(f"{cell:>{width}}" for cell in cells))
    for m in measurements:
        if len(m.status) > width - 2 or len(m.check) > width - 2:
            print(f"  {m.label}: status {m.status}; check {m.check}")
    print("  API calls by route (emulator):")
    for m in measurements:
        shown = ", ".join(
            f"{route} {count:,}" for route, count in sorted(m.routes.items(), key=lambda r: -r[1])
        )
        answers = ", ".join(f"{status}: {count:,}" for status, count in sorted(m.statuses.items()))
        print(f"    {m.label}: {shown}  [answers {answers}]")
    for m in measurements:
        jobs = sum(n for route, n in m.routes.items() if route.endswith("/jobs/ingest"))
        if jobs:
            print(
                f"  {m.label} wrote through {jobs} Bulk API 2.0 ingest job(s) (each: create, "
                "upload, close, poll until done, read successes and failures), so its calls can "
                "fall below the minimum of the 200-record batch endpoint"
            )
    for m in measurements:
        imports = sum(n for route, n in m.routes.items() if "/api/v5/imports" in route)
        patches = m.routes.get("PATCH /api/v5/objects/prospects/{id}", 0)
        if system == "pardot" and imports and bulk_rows:
            print(
                f"  {m.label} wrote through the Import API ({imports} import call(s): create with "
                f"the first {bulk_rows:,}-row CSV, add batches, submit, poll, read errors) and "
                f"{patches:,} PATCH(es): its minimum above is the per-prospect PATCH one "
                f"({_n(m.to_write)} writes), which the import path is not bound by (at "
                f"{bulk_rows:,} rows per batch: {math.ceil(m.to_write / bulk_rows):,} batch "
                "upload(s) plus a few calls per import)"
            )
    segsync = [m for m in measurements if not m.plain and m.label != "rerun, no change"]
    segsync = [m for m in segsync if m.finished]
    for m in measurements:
        if m.plain and m.written:
            per_record = m.seconds / m.written
            print(
                f"  plain script projected: all {total:,} records "
                f"{_duration(per_record * total)}, the {to_write:,} to write "
                f"{_duration(per_record * to_write)} "
                f"({m.emulator_calls / m.written:.2f} calls per record written)"
            )
            plain_calls = m.emulator_calls / m.written * to_write
            for s in segsync:
                print(
                    f"    vs {s.label}: {_duration(s.seconds)} for all {total:,} records "
                    f"({per_record * total / s.seconds:,.1f}x faster, "
                    f"{plain_calls / s.emulator_calls:,.1f}x fewer calls)"
                )


def summary(results: list[tuple[str, Records, list[Measurement]]]) -> None:
    """A closing table of every measurement."""
    print("\n=== summary")
    header = (
        f"  {'system':<11}{'measurement':<20}{'setup':>14}{'records':>10}{'written':>10}"
        f"{'seconds':>10}{'rec/s':>10}{'calls':>9}{'minimum':>9}{'ratio':>8}  check"
    )
    print(header)
    for system, _records, measurements in results:
        for m in measurements:
            print(
                f"  {system:<11}{m.label:<20}{m.setup:>14}{_n(m.records):>10}{_n(m.written):>10}"
                f"{m.seconds:>10.1f}"
                f"{(f'{m.records / m.seconds:,.1f}' if m.finished else '-'):>10}"
                f"{_n(m.emulator_calls):>9}"
                f"{_n(m.minimum):>9}"
                f"{_ratio(m):>8}  {m.check}"
            )


# --- driver ------------------------------------------------------------------------------------


def _services() -> Any:
    """tests.services, imported by name so `mypy bench` does not type-check the tests."""
    return importlib.import_module("tests.services")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time a full segsync run through real Celery workers against the plain "
        "one-call-per-record script, on the sandbox emulators.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--records", type=int, default=100_000, help="records per system")
    parser.add_argument("--accounts", type=int, help="accounts (default: records / 2)")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="emulator latency per call")
    parser.add_argument("--systems", default=",".join(BENCHMARKED), help="systems to measure")
    parser.add_argument("--workers", default="1,2", help="worker process counts to measure")
    parser.add_argument("--concurrency", type=int, default=2, help="pool processes per worker")
    parser.add_argument(
        "--plain-records", type=int, default=5000, help="records the plain script updates"
    )
    parser.add_argument(
        "--plain-records-marketo",
        type=int,
        default=1000,
        help="records the plain script updates on Marketo (at 100 calls per 20 s)",
    )
    parser.add_argument(
        "--plain-429-wait",
        type=float,
        default=1.0,
        help="seconds the plain script sleeps after a 429 without Retry-After",
    )
    parser.add_argument(
        "--hubspot-limit",
        type=int,
        default=100,
        help="requests per rolling 10 s the HubSpot emulator allows (HubSpot: 100 for Free and "
        "Starter portals and OAuth apps, 190 for Professional and Enterprise private apps)",
    )
    parser.add_argument(
        "--rerun",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="after the last worker count, run again with nothing changed",
    )
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="longest one run or plain script may take"
    )
    parser.add_argument(
        "--postgres-url", help="an empty scratch PostgreSQL database (SQLAlchemy URL)"
    )
    parser.add_argument(
        "--postgres", action="store_true", help="start a throwaway PostgreSQL server"
    )
    parser.add_argument(
        "--keep", type=Path, help="keep the database and worker logs in this folder"
    )
    parser.add_argument("--seed", type=int, default=20251129, help="random seed of the data")
    args = parser.parse_args(argv)
    args.system_list = [s.strip() for s in args.systems.split(",") if s.strip()]
    if not args.system_list:
        parser.error(f"--systems must list some of {', '.join(BENCHMARKED)}")
    for system in args.system_list:
        refused = refusal(system)
        if refused is not None:
            # One line, not argparse's usage block: it names what to add.
            print(f"{parser.prog}: --systems: {refused}", file=sys.stderr)
            raise SystemExit(2)
    try:
        args.worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]
    except ValueError:
        parser.error("--workers must be comma-separated numbers")
    if not args.worker_counts or min(args.worker_counts) < 1:
        parser.error("--workers must list counts of at least 1")
    if (
        args.records < 10
        or args.concurrency < 1
        or min(args.plain_records, args.plain_records_marketo) < 0
    ):
        parser.error("--records must be at least 10, --concurrency 1, --plain-records 0")
    if args.postgres and args.postgres_url:
        parser.error("give --postgres or --postgres-url, not both")
    args.accounts = args.accounts or max(args.records // 2, 50)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    latency = args.latency_ms / 1000
    started = time.perf_counter()
    results: list[tuple[str, Records, list[Measurement]]] = []
    with contextlib.ExitStack() as stack:
        if args.keep:
            folder = args.keep.resolve()
            folder.mkdir(parents=True, exist_ok=True)
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="segsync-bench-")))
        services = _services()
        redis_url: str = stack.enter_context(services.redis_server())
        if args.postgres_url:
            database_url = args.postgres_url
        elif args.postgres:
            database_url = stack.enter_context(services.postgres_server())
        else:
            database_url = f"sqlite:///{folder / 'segsync.db'}"
        engine = make_engine(database_url)
        stack.callback(engine.dispose)
        where = make_url(database_url).render_as_string(hide_password=True)
        print(
            f"segsync sync benchmark: {args.records:,} records per system, {args.accounts:,} "
            f"accounts, {args.latency_ms:g} ms latency per call; workers {args.workers} with "
            f"--concurrency {args.concurrency}; database {where}; redis {redis_url}; "
            f"{os.cpu_count()} CPUs, load average {_load()}, Python {platform.python_version()}",
            flush=True,
        )
        loaded = load_accounts(engine, args.accounts, folder / "sample", args.seed)
        print(
            f"loaded {len(loaded.domains):,} accounts with domains, {loaded.segments} segments "
            f"({loaded.enrichment_segments} published for enrichment) in {loaded.seconds:.1f} s",
            flush=True,
        )
        classes = {system: BENCH_VENDORS[system].emulator for system in args.system_list}
        emulators = stack.enter_context(running_emulators(classes, latency, folder))
        if emulators.hubspot is not None:
            emulators.hubspot.requests_per_ten_seconds = args.hubspot_limit
        secret_key = new_secret_key()
        env = child_env(database_url, redis_url, secret_key)
        for system in args.system_list:
            seeding_started = time.perf_counter()
            emulator: Emulator = emulators.running[system]
            object_type, field_name = target(system, emulator)
            max_length = field_max_length(system, emulators, object_type, field_name)
            values = account_values(engine, max_length)
            seeding = Seeding(
                system=system,
                object_type=object_type,
                field=field_name,
                max_length=max_length,
                engine=engine,
                count=args.records,
                domains=loaded.domains,
                values=values,
                seed=args.seed,
            )
            records = BENCH_VENDORS[system].seed(emulator, seeding)
            orchestration = connect(engine, system, emulators, secret_key, records)
            print(
                f"[{system}] seeded {len(records.ids):,} {records.object_type} "
                f"({len(records.to_write):,} to write) in "
                f"{time.perf_counter() - seeding_started:.1f} s",
                flush=True,
            )
            measurements: list[Measurement] = []
            for number, workers in enumerate(args.worker_counts):
                last = number == len(args.worker_counts) - 1
                measurements += measure_segsync(
                    engine=engine,
                    emulator=emulator,
                    records=records,
                    orchestration=orchestration,
                    workers=workers,
                    args=args,
                    env=env,
                    redis_url=redis_url,
                    logs=folder,
                    rerun=last and args.rerun,
                )
            plain_script = BENCH_VENDORS[system].plain is not None
            if plain_count(system, args) and plain_script:
                measurements.append(measure_plain(emulators, emulator, records, args))
            report(system, records, measurements, args)
            if plain_count(system, args) and not plain_script:
                print(f"  no plain script (bench/sync_vendors.py names none for {system})")
            results.append((system, records, measurements))
        summary(results)
    print(f"\ntotal {time.perf_counter() - started:.0f} s; load average at the end {_load()}")


if __name__ == "__main__":
    main()
