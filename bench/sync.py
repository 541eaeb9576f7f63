"""Benchmark: segsync runs through real Celery workers (a first run, then incremental runs and a
reconcile), against the plain script a user would otherwise write (one update call per record
with the vendor's official client) and the batched one a competent user would write.

Run from the repository root:

    .venv/bin/python bench/sync.py                                  # 100,000 records per system
    .venv/bin/python bench/sync.py --records 5000 --plain-records 500   # a quick try
    .venv/bin/python bench/sync.py --systems hubspot --workers 1,2 --latency-ms 100
    .venv/bin/python bench/sync.py --systems marketo,pardot,eloqua

What it starts, all on 127.0.0.1 and all stopped at the end: a throwaway redis-server
(tests.services.redis_server), the emulators of --systems (Salesforce, HubSpot, Marketo, Pardot,
Eloqua) over HTTPS (a CA made for the run) answering every call after --latency-ms, and for each
worker count --workers `segsync worker` processes with --concurrency pool processes each. The
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

The workers (and the CLI) run with SEGSYNC_READ_OVERLAP_SECONDS=2: the emulators stamp every
change at once on this machine's clock, so an incremental read needs no more overlap than the
whole second a vendor rounds to plus a margin; real vendors need the default 300 s (a clock a
little behind segsync's, a change that becomes visible after its stamp). With 300 s every run of
the sequence below would read back everything changed in the five minutes before it.

For each system, each worker count in --workers (default 1), on the same workers in sequence:
  1. every record's field is put back to its initial value and the emulator's counts are reset;
     Redis is emptied (so no rate-limit window carries over) and the workers are started;
  2. "first run": `segsync sync NAME --queue --wait --json --full` (the first run of a target
     reads everything anyway; --full so that a later worker count, whose records were put back
     without a modification time, reads them too), timed from the command's start to its exit
     (the run's own started/finished times are shown too, split into planning and writing). If
     a worker logs a task that raised an unexpected error (the run would then never finish) or
     the run takes over --timeout, the wait is abandoned, the run is marked failed in the
     database and the measurement is reported as STUCK;
  3. the emulator's write log and every record's value are checked: exactly the records that
     must change were written, each once, and every record holds its expected value.
Then, unless --no-follow-ups or the first run did not succeed, each measured and checked the
same way (`segsync sync NAME --queue --wait --json`, incremental unless said):
  - "next run": it reads back the first run's writes once (the vendor stamped them after the
    watermark) and must write nothing;
  - "unchanged": a rerun with nothing changed, which must read next to nothing: its calls and
    their share of the first run's are printed against the goal (<= 1%);
  - "1% accounts": 1% of the accounts each join one more segment published for enrichment,
    straight in segment_memberships as a segment refresh would; every matched record whose
    account's value changed (recomputed with models.enrichment, cut to the field's length) must
    be written, exactly those, and the run's read calls (the emulator's calls on no write route:
    each vendor's write routes are named in bench/sync_vendors.py) must stay within 2x the
    unchanged rerun's (the minimum of an incremental read);
  - "1% edited": someone else sets the field of 1% of the records (matched ones, chosen at
    random) to a wrong value through the emulator's own edit method (its modification time
    moves: Salesforce edit_record, HubSpot edit_record, Marketo edit_lead, Pardot
    edit_prospect, Eloqua edit_contact), then an incremental run: it reads the edited records
    as changes and must restore exactly them;
  - "1% edited, full": the same records edited again, then a reconcile, `sync NAME --full`:
    it reads everything and must restore exactly the edited records.
Between two runs the bench waits until the clock is READ_OVERLAP_SECONDS + 1 s into a later
whole second than the end of the run before: a run's watermark is the start of its read less the
overlap, several vendors compare whole seconds (Pardot, Eloqua, Marketo), and the first run's
writes, stamped before the next run's read began, must not be read back again by the unchanged
rerun.

The CPU of every measured segsync run is that of the worker processes: for each worker's process
group (the worker and its pool children) user + system time from /proc/<pid>/stat, reaped
children included, before and after the run (bench/sync_cpu.py; psutil is not a dependency).
The report prints it per run and, for the first run, per 100,000 records. For HubSpot (unless
--no-hubspot-reads) it also reads every contact twice, each in a fresh child process timed by
its own process CPU around the read alone, against the same emulator with its rate limit lifted
meanwhile (the CPU is measured, not the time): with hubspot-api-client's `basic_api.get_page`
and its model objects, as the adapter read before commit c026ec6, and with the adapter's
`read_records` now. Only HubSpot's read parsing changed: the other systems' reads are not
compared.

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

Then (unless --no-batched) the batched script (bench/sync_batched.py), in a child process, from
the initial values: "batched", then "batched rerun" with nothing changed. It reads every record
each time (full pages at the vendor's page size, the official client where the plain script
uses one), compares each with the value it must hold (given the expected values, so it is not
charged for matching or computing them either) and writes the changes sequentially in batches
of the vendor's maximum: Salesforce composite/sobjects 200, HubSpot batch update 100, Marketo
Sync Leads 300, Eloqua the Bulk API contact import as segsync writes (5,000 rows an upload; REST
updates one contact per call), Pardot one PATCH per prospect (v5 has no batch update; the Import
API is not what a hand-written script reaches for). It sleeps on 429/606/615 like the plain
script. Both runs are printed beside segsync's first run and unchanged rerun. Its seconds are
those of its work alone (the child's interpreter start and imports not counted), where segsync's
run from the CLI's start to its exit (Python's start, the queueing, --wait's polling: about 2 s
of each run's seconds at this size; the run's own seconds are shown beside them). Pardot's
batched script makes one call per changed prospect: at 100,000 records it takes as long as the
plain script would on all of them.

Printed per system and measurement: records, records written, seconds, records per second, API
calls (the run's api_calls and the emulator's own count, by route, those on no write route,
and 429 answers), worker CPU seconds, the theoretical minimum and the ratio of calls to it. The
minimum is ceil(records to write / vendor batch maximum) + ceil(records read / read page) +
logins: Salesforce 200 and 2,000 and one login, HubSpot 100 and 100 and none, Marketo 300 and
300 (id windows) and one token; Pardot 1 (a PATCH per prospect) and 1,000 and none; Eloqua 3 calls
(upload, sync, sync status) per 5,000-record Bulk import batch, pages of 1,000 and the /id
discovery. Records read: all of them for the first run, the reconcile and the batched script; the
records written before for the next run; the edited ones for the incremental run after edits;
one (a read that finds nothing) for the unchanged rerun and the accounts change. Salesforce's
Bulk API 2.0 and Pardot's Import API write thousands of records per call, so a run that takes
them falls below its minimum: the report says when it did. For HubSpot and Marketo also the
floor the rate limit puts on the time ((accepted calls - limit) / limit per window: the first
window's worth go at once). Rate-limited answers are 429s, and Marketo's 606/615 (HTTP 200 with
success false). Under each table: the goals checked (unchanged rerun's share of the first run's
calls, the accounts change's reads against the unchanged rerun's, records restored after edits),
worker CPU s per 100,000 records, and the batched and plain scripts against segsync.

Options:
  --records N           records per system (default 100,000)
  --accounts N          accounts (default: records / 2)
  --latency-ms MS       emulator latency per call (default 50)
  --systems LIST        of salesforce,hubspot,marketo,pardot,eloqua (default every registry
                        system with an entry in bench/sync_vendors.py)
  --workers LIST        worker process counts to measure, each a sequence (default 1)
  --concurrency C       pool processes per worker (default 2)
  --plain-records P     records the plain script updates (default 5,000; 0 skips it)
  --plain-records-marketo P   the same for Marketo, whose 100 calls per 20 s make the plain
                        script take 20 s per 100 records (default: --plain-records, at most
                        1,000)
  --plain-429-wait S    the plain and batched scripts' sleep after a 429 without Retry-After
                        (default 1)
  --hubspot-limit N     requests per rolling 10 s the HubSpot emulator allows (default 100)
  --no-follow-ups       only the first run of each worker count
  --no-batched          skip the batched script
  --no-hubspot-reads    skip HubSpot's read CPU comparison (SDK models against the adapter)
  --timeout S           the longest one run or script may take (default 3600)
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

from bench.sync_batched import BatchedJob, BatchedResult  # noqa: E402
from bench.sync_celery import (  # noqa: E402
    WorkerProcess,
    start_workers,
    stop_workers,
    sync_queued,
)
from bench.sync_cpu import (  # noqa: E402
    HubSpotRead,
    ReadCost,
    group_cpu_seconds,
    read_with_adapter,
    read_with_sdk_models,
)
from bench.sync_data import (  # noqa: E402
    Records,
    Seeding,
    account_values,
    change_segments,
    current_value,
    edit_records,
    load_accounts,
    records_to_edit,
    restore,
    revalue,
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
    write_calls,
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
# How far back of a read the next incremental one starts, for the workers: the emulators stamp
# changes at once on this machine's clock (a real vendor needs segsync's default, 300 s).
READ_OVERLAP_SECONDS = 2
# Share of the accounts whose segments change, and of the records someone else edits.
CHANGED_SHARE = 0.01
# What someone else writes into the edited records' field.
EDITED_VALUE = "edited by someone else"


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
    first: bool = False  # a first run (a full read writing every record to write)
    cpu_seconds: float | None = None  # of the worker processes (segsync) or the child (scripts)
    read_calls: int | None = None  # calls on no write route (bench/sync_vendors.py write_routes)
    note: str = ""  # a goal checked, printed under the table

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
        SEGSYNC_READ_OVERLAP_SECONDS=str(READ_OVERLAP_SECONDS),
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


def check_records(
    emulator: Emulator, records: Records, since: int, must: set[str]
) -> tuple[int, str]:
    """(records written, a one-line verdict): every value as expected, exactly the records in
    `must` written, each once, among the writes logged after the first `since` entries."""
    with emulator.lock:
        writes = [
            w.record_id
            for w in emulator.writes[since:]
            if w.object_type == records.object_type and w.field == records.field
        ]
    counts = Counter(writes)
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


@dataclass(frozen=True)
class Step:
    """One run of a measurement sequence: its label, whether it reads everything (`--full`),
    the records it must write, and its theoretical minimum of calls."""

    label: str
    full: bool
    must: set[str]
    minimum: int
    first: bool = False


def worker_cpu(workers: list[WorkerProcess]) -> float:
    """CPU seconds the workers and their pool children used so far."""
    return sum(group_cpu_seconds(worker.process.pid) for worker in workers)


def settle(after: float) -> None:
    """Wait until the clock is READ_OVERLAP_SECONDS + 1 s into a later whole second than
    `after` (epoch seconds): the next run's read then starts far enough after the writes of the
    run before that the run after it does not read them back (vendors compare whole seconds)."""
    until = math.floor(after) + READ_OVERLAP_SECONDS + 1.05
    time.sleep(max(0.0, until - time.time()))


def timed_run(
    *,
    step: Step,
    engine: Engine,
    emulator: Emulator,
    records: Records,
    orchestration: str,
    setup: str,
    env: dict[str, str],
    workers: list[WorkerProcess],
    timeout: float,
) -> Measurement:
    """Trigger one run, wait for it, and measure it: exactly `step.must` written."""
    system = records.system
    routes_before, statuses_before, writes_before = snapshot(emulator)
    cpu_before = worker_cpu(workers)
    run, seconds, stuck = sync_queued(orchestration, env, timeout, workers, full=step.full)
    cpu = worker_cpu(workers) - cpu_before
    routes, statuses, _ = snapshot(emulator)
    routes, statuses = routes - routes_before, statuses - statuses_before
    written, verdict = check_records(emulator, records, writes_before, step.must)
    if run is None:
        # The run cannot finish (or took too long): end it so the next measurement can start.
        latest = _latest_run(engine, orchestration)
        fail_run(make_session_factory(engine), latest.id, f"bench: {stuck}")
        run = {"run": latest.id, "status": f"STUCK {latest.status}", "reason": stuck}
        run["api_calls"] = latest.api_calls
    details = run_details(engine, int(run["run"]))
    reason = f" ({run['reason']})" if run.get("reason") else ""
    print(
        f"[{system}]   {step.label}: {run['status']}{reason} in {seconds:.1f} s "
        f"({run.get('read', run.get('read_mode', '?'))}), worker CPU {cpu:.1f} s",
        flush=True,
    )
    calls = sum(routes.values())
    return Measurement(
        label=step.label,
        setup=setup,
        records=len(records.ids),
        to_write=len(step.must),
        written=written,
        seconds=seconds,
        run_calls=int(run["api_calls"]),
        emulator_calls=calls,
        rate_limited=sum(statuses.get(code, 0) for code in RATE_LIMITED),
        minimum=step.minimum,
        status=f"{run['status']}{reason}",
        check=verdict,
        routes=dict(routes),
        statuses=dict(statuses),
        details=details,
        first=step.first,
        cpu_seconds=cpu,
        read_calls=calls - write_calls(system, routes),
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
    follow_ups: bool,
) -> list[Measurement]:
    """A first run on `workers` fresh workers and, with `follow_ups`, on the same workers: the
    next run, an unchanged rerun, 1% of accounts changed, 1% of records edited (an incremental
    run, then a reconcile)."""
    system = records.system
    restore(emulator, records)
    redis.Redis.from_url(redis_url).flushdb()
    print(f"[{system}] starting {workers} worker(s) x concurrency {args.concurrency}", flush=True)
    started = start_workers(workers, args.concurrency, env, logs, f"{system}-{workers}w")
    total = len(records.ids)

    def run(step: Step) -> Measurement:
        print(f"[{system}] {step.label} ({workers} worker(s)) ...", flush=True)
        return timed_run(
            step=step,
            engine=engine,
            emulator=emulator,
            records=records,
            orchestration=orchestration,
            setup=f"{workers} x {args.concurrency}",
            env=env,
            workers=started,
            timeout=args.timeout,
        )

    results: list[Measurement] = []
    try:
        to_write = set(records.to_write)
        # --full: a later worker count's records were put back without a modification time.
        first = run(
            Step("first run", True, to_write, minimum_calls(system, total, len(to_write)), True)
        )
        results.append(first)
        if not follow_ups or first.status != "succeeded":
            return results
        settle(time.time())
        results.append(run(Step("next run", False, set(), minimum_calls(system, len(to_write), 0))))
        settle(time.time())
        unchanged = run(Step("unchanged", False, set(), minimum_calls(system, 1, 0)))
        share = unchanged.emulator_calls / first.emulator_calls
        unchanged.note = (
            f"unchanged rerun: {unchanged.emulator_calls:,} calls, {share:.2%} of the first "
            f"run's {first.emulator_calls:,} (goal <= 1%: {'met' if share <= 0.01 else 'NOT met'})"
        )
        results.append(unchanged)

        changed = change_segments(engine, CHANGED_SHARE, args.seed + len(results))
        must = revalue(records, account_values(engine, records.max_length))
        print(
            f"[{system}] {len(changed):,} accounts joined one more published segment: "
            f"{len(must):,} records must change",
            flush=True,
        )
        settle(time.time())
        accounts = run(Step("1% accounts", False, must, minimum_calls(system, 1, len(must))))
        floor = max(unchanged.read_calls or 0, 1)
        reads = accounts.read_calls or 0
        accounts.note = (
            f"1% accounts changed: wrote {accounts.written:,} of the {len(must):,} affected "
            f"records ({accounts.check}); {reads:,} read calls, {reads / floor:.2f}x the "
            f"unchanged rerun's {floor:,} (goal <= 2x: "
            f"{'met' if reads <= 2 * floor else 'NOT met'})"
        )
        results.append(accounts)

        edited = records_to_edit(records, CHANGED_SHARE, args.seed)
        edit_records(emulator, records, edited, EDITED_VALUE)
        settle(time.time())
        minimum = minimum_calls(system, len(edited), len(edited))
        incremental = run(Step("1% edited", False, set(edited), minimum))
        incremental.note = (
            f"1% edited, incremental run: restored {incremental.written:,} of "
            f"{len(edited):,} ({incremental.check})"
        )
        results.append(incremental)
        edit_records(emulator, records, edited, EDITED_VALUE)
        settle(time.time())
        minimum = minimum_calls(system, total, len(edited))
        reconcile = run(Step("1% edited, full", True, set(edited), minimum))
        reconcile.note = (
            f"1% edited, reconcile (sync --full): restored {reconcile.written:,} of "
            f"{len(edited):,} ({reconcile.check})"
        )
        results.append(reconcile)
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


def measure_batched(
    emulators: Emulators, emulator: Emulator, records: Records, args: argparse.Namespace
) -> list[Measurement]:
    """The batched hand-written script: a first run from the initial values, then a rerun with
    nothing changed (it reads everything again), each in a child process of its own."""
    system = records.system
    script = BENCH_VENDORS[system].batched
    assert script is not None  # main measures only systems that have one
    restore(emulator, records)
    job = BatchedJob(
        described=emulators.describe(system),
        ca_bundle=str(emulators.ca_bundle),
        object_type=records.object_type,
        field=records.field,
        field_id=emulator.plain_field(records.field),
        expected={i: records.expected[i] or "" for i in records.ids},
        wait_429=args.plain_429_wait,
        deadline_seconds=args.timeout,
    )
    plain = BENCH_VENDORS[system].plain
    logins = BENCH_VENDORS[system].logins - (plain.logins if plain is not None else 0)
    results = []
    for label, must in (("batched", set(records.to_write)), ("batched rerun", set())):
        print(f"[{system}] batched script: {label} ...", flush=True)
        routes_before, statuses_before, writes_before = snapshot(emulator)
        result: BatchedResult = in_child(script, job)
        routes, statuses, _ = snapshot(emulator)
        routes, statuses = routes - routes_before, statuses - statuses_before
        written, verdict = check_records(emulator, records, writes_before, must)
        if result.failed or result.first_error:
            verdict += f"; {result.failed:,} refused (first: {result.first_error})"
        print(f"[{system}]   {label} done in {result.seconds:.1f} s", flush=True)
        results.append(
            Measurement(
                label=label,
                setup="sequential",
                records=len(records.ids),
                to_write=len(must),
                written=written,
                seconds=result.seconds,
                run_calls=result.calls,
                emulator_calls=sum(routes.values()),
                rate_limited=sum(statuses.get(code, 0) for code in RATE_LIMITED),
                # Its own logins (a Marketo token, Eloqua's /id), not segsync's.
                minimum=minimum_calls(system, len(records.ids), len(must)) - logins,
                status="done" if result.read == len(records.ids) else f"read {result.read:,}",
                check=verdict,
                routes=dict(routes),
                statuses=dict(statuses),
                plain=True,
                read_calls=sum(routes.values()) - write_calls(system, routes),
            )
        )
    return results


def measure_hubspot_reads(
    emulators: Emulators, emulator: Emulator, records: Records
) -> tuple[ReadCost, ReadCost]:
    """(SDK model objects as before c026ec6, the adapter now): CPU of reading every record
    once, each in a fresh child process, with the emulator's rate limit lifted meanwhile (CPU is
    measured, not time; both reads would otherwise sleep the same)."""
    hubspot = emulators.hubspot
    assert hubspot is not None
    settings, secrets = sandbox_settings("hubspot", emulators)
    job = HubSpotRead(
        settings=settings,
        secrets=secrets,
        described=emulators.describe("hubspot"),
        ca_bundle=str(emulators.ca_bundle),
        object_type=records.object_type,
        field=records.field,
    )
    limit = hubspot.requests_per_ten_seconds
    hubspot.requests_per_ten_seconds = 10**9
    try:
        before: ReadCost = in_child(read_with_sdk_models, job)
        now: ReadCost = in_child(read_with_adapter, job)
    finally:
        hubspot.requests_per_ten_seconds = limit
    return before, now


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
    # As the first run found them: the accounts change moves some records' values afterwards.
    to_write = next((m.to_write for m in measurements if m.first), len(records.to_write))
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
        (
            "  of which read (no write)",
            [_n(m.read_calls) if m.read_calls is not None else "-" for m in measurements],
        ),
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
        (
            "worker CPU s",
            [f"{m.cpu_seconds:.1f}" if m.cpu_seconds is not None else "-" for m in measurements],
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
    for m in measurements:
        if m.note:
            print(f"  {m.note}")
    segsync = [m for m in measurements if m.first and m.finished]
    for s in segsync:
        if s.cpu_seconds is not None:
            print(
                f"  worker CPU s per 100,000 records ({s.label}, {s.setup}): "
                f"{s.cpu_seconds / total * 100_000:.1f}"
            )
    unchanged = next((m for m in measurements if m.label == "unchanged" and m.finished), None)
    batched = {m.label: m for m in measurements if m.label.startswith("batched")}
    if "batched" in batched and "batched rerun" in batched:
        first, again = batched["batched"], batched["batched rerun"]
        print(
            f"  batched script: first run {_duration(first.seconds)}, "
            f"{first.emulator_calls:,} calls; rerun {_duration(again.seconds)}, "
            f"{again.emulator_calls:,} calls (it reads everything each time)"
        )
        for s in segsync:
            print(
                f"    vs segsync {s.label} ({s.setup}): {_duration(s.seconds)}, "
                f"{s.emulator_calls:,} calls (the batched script takes "
                f"{first.seconds / s.seconds:,.2f}x its time and "
                f"{first.emulator_calls / max(s.emulator_calls, 1):,.2f}x its calls)"
            )
        if unchanged is not None:
            print(
                f"    vs segsync unchanged rerun: {_duration(unchanged.seconds)}, "
                f"{unchanged.emulator_calls:,} calls (the batched rerun takes "
                f"{again.seconds / unchanged.seconds:,.2f}x its time and "
                f"{again.emulator_calls / max(unchanged.emulator_calls, 1):,.2f}x its calls)"
            )
    for m in measurements:
        if m.plain and m.label == "plain script" and m.written:
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
    parser.add_argument("--workers", default="1", help="worker process counts to measure")
    parser.add_argument("--concurrency", type=int, default=2, help="pool processes per worker")
    parser.add_argument(
        "--plain-records", type=int, default=5000, help="records the plain script updates"
    )
    parser.add_argument(
        "--plain-records-marketo",
        type=int,
        help="records the plain script updates on Marketo (at 100 calls per 20 s; default: "
        "--plain-records, at most 1,000)",
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
        "--follow-ups",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="after each first run: the next run, an unchanged rerun, 1%% of accounts changed, "
        "1%% of records edited (incremental, then a reconcile)",
    )
    parser.add_argument(
        "--batched",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure the batched hand-written script (a first run and a rerun)",
    )
    parser.add_argument(
        "--hubspot-reads",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="time by CPU a read of every HubSpot contact with SDK models and with the adapter",
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
        or min(args.plain_records, args.plain_records_marketo or 0) < 0
    ):
        parser.error("--records must be at least 10, --concurrency 1, --plain-records 0")
    if args.postgres and args.postgres_url:
        parser.error("give --postgres or --postgres-url, not both")
    args.accounts = args.accounts or max(args.records // 2, 50)
    if args.plain_records_marketo is None:
        args.plain_records_marketo = min(args.plain_records, 1000)
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
            for workers in args.worker_counts:
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
                    follow_ups=args.follow_ups,
                )
            plain_script = BENCH_VENDORS[system].plain is not None
            if plain_count(system, args) and plain_script:
                measurements.append(measure_plain(emulators, emulator, records, args))
            if args.batched and BENCH_VENDORS[system].batched is not None:
                measurements += measure_batched(emulators, emulator, records, args)
            reads = None
            if system == "hubspot" and args.hubspot_reads:
                print(f"[{system}] reading every contact twice (SDK models, adapter) ...")
                reads = measure_hubspot_reads(emulators, emulator, records)
            report(system, records, measurements, args)
            if reads is not None:
                before, now = reads
                print(
                    f"  HubSpot read of all {len(records.ids):,} {records.object_type}, "
                    f"CPU s of the reading process: hubspot-api-client get_page models (before "
                    f"c026ec6) {before.cpu_seconds:.2f} ({before.calls:,} calls, "
                    f"{before.records:,} read), adapter read_records now {now.cpu_seconds:.2f} "
                    f"({now.calls:,} calls, {now.records:,} read): "
                    f"{before.cpu_seconds / max(now.cpu_seconds, 1e-9):.1f}x less"
                )
            if plain_count(system, args) and not plain_script:
                print(f"  no plain script (bench/sync_vendors.py names none for {system})")
            results.append((system, records, measurements))
        summary(results)
    print(f"\ntotal {time.perf_counter() - started:.0f} s; load average at the end {_load()}")


if __name__ == "__main__":
    main()
