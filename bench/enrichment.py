"""Benchmark: enrichment values for every account by each of its two reads, against a plain scan
of the memberships and each read's own rows streamed with no Python work (the floors).

Run from the repository root:

    .venv/bin/python bench/enrichment.py                       # 1,000,000 accounts, both backends
    .venv/bin/python bench/enrichment.py --accounts 20000      # a quick try
    .venv/bin/python bench/enrichment.py --backends sqlite --sqlite-path /tmp/bench.db
    .venv/bin/python bench/enrichment.py --backends sqlite --sqlite-path /tmp/bench.db --reuse

For each backend it builds a database at the head schema (models.db.upgrade) holding N accounts,
500 segments (200 published for enrichment, a few others for other uses) and about
N x --memberships-per-account memberships (seeded random: some accounts in no segment, some in
many; segments of uneven popularity; names with spaces, punctuation, `;` and non-ASCII letters).
Data is loaded through the raw driver, then ANALYZEd: SQLite by executemany in big transactions
(foreign key checks off, a 512 MB page cache, the account-order membership index dropped and
rebuilt after), PostgreSQL by COPY then VACUUM ANALYZE (so index-only scans can skip the heap).
The load runs in a child process too; its time includes generating the data.

It then times, each in a fresh child process (spawned, so the child's peak RSS is that
measurement's own; it is read from /proc/self/status VmHWM, as ru_maxrss survives exec):
- plain scan: `SELECT account_id, segment_id FROM segment_memberships` streamed through
  SQLAlchemy with the execution options enrichment uses, only counting the rows (all the
  memberships, more rows than enrichment needs when some segments are not published for it);
- a floor per read of enrichment (models.enrichment.READS: "rows", one row per membership grouped
  in Python; "aggregated", one row per account with its segment ids aggregated by the database):
  the very statement and parameters enrichment_values executes with that read (captured from its
  first fetch, outside the timing), replayed with the same streaming options, only counting the
  rows: the cost of the database and driver alone. The honest floor is the lower of the two;
- enrichment, once per read: iterating `enrichment_values(connection, ValueFormat(max_length=...),
  read=...)`, counting accounts, non-empty values and truncated values (nothing is kept).
Each is run --repeats times; the best (warm cache) time is reported, with per read the ratios
enrichment / plain scan, enrichment / honest floor and enrichment / its own statement's floor, and
whether the goals are met: enrichment within 2x of the plain scan and within 1.3x of the honest
floor, peak memory under 1 GB. It ends with the faster read and whether models.enrichment's
PREFERRED_READ uses it on that backend. Timings never fail the run.

Options:
  --accounts N                   number of accounts (default 1,000,000)
  --memberships-per-account M    average memberships per account (default 5)
  --segments S                   number of segments (default 500)
  --enrichment-segments E        segments published for enrichment (default 200)
  --backends LIST                comma-separated: sqlite,postgresql (default both)
  --postgres-url URL             an existing, empty scratch database (default: start a throwaway
                                 server with tests.services.postgres_server)
  --sqlite-path PATH             SQLite file (default: a temporary file, removed at the end)
  --reuse                        use the data already in --sqlite-path / --postgres-url as is
  --max-length L                 the value's maximum length (default 255)
  --repeats R                    runs of each measurement, best reported (default 2)
  --seed S                       random seed of the data (default 20251129)
  --profile                      also run enrichment once under cProfile and print the top entries
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import cProfile
import importlib
import itertools
import pstats
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, TypeVar

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from sqlalchemy import Connection, Engine, event, make_url, select, text  # noqa: E402

from models.db import make_engine, upgrade  # noqa: E402
from models.enrichment import (  # noqa: E402
    ENRICHMENT_USE,
    READ_AGGREGATED,
    READ_ROWS,
    READS,
    STREAM_BATCH,
    ValueFormat,
    enrichment_values,
    preferred_read,
)
from models.segments import SegmentMembership  # noqa: E402

BACKENDS = ("sqlite", "postgresql")
MB = 1024 * 1024
TIMESTAMP = "2025-01-01 00:00:00+00:00"
OTHER_USES = ("account_details", "gtm", "api")
# Accounts generated (and rows inserted) per batch: bounds the loader's memory.
LOAD_BATCH_ACCOUNTS = 50_000
# SQLite: commit after about this many membership rows.
SQLITE_COMMIT_ROWS = 1_000_000
GOAL_RATIO = 2.0
GOAL_FLOOR_RATIO = 1.3
GOAL_PEAK_MB = 1024.0

T = TypeVar("T")

# --- data -----------------------------------------------------------------------------------

_REGIONS = (
    "EMEA",
    "NA",
    "APAC",
    "LATAM",
    "DACH",
    "Nordics",
    "UK&I",
    "ANZ",
    "Benelux",
    "Île-de-France",
    "Québec",
    "São Paulo",
    "München",
    "Zürich",
    "Kraków",
    "Türkiye",
    "España",
    "Ελλάδα",
    "日本",
    "Østlandet",
)
_AUDIENCES = (
    "Enterprise",
    "Mid-Market",
    "SMB",
    "Strategic accounts",
    "Tier 1",
    "Tier 2",
    "High intent",
    "Churn risk",
    "Open opps",
    "Product-qualified",
    "ABM",
    "Décideurs IT",
    "Fintech",
    "Health & Life Sciences",
    "Retail / E-commerce",
    "Manufacturing",
    "Öffentlicher Sektor",
    "Señales de compra",
)
_SUFFIXES = (
    "",
    "",
    "",
    " (FY25)",
    " – Q3",
    ": top 500",
    " v2",
    "; expansion",
    " [test]",
    " & partners",
    " — visited pricing page in the last 30 days, not yet contacted by sales",
    " (legacy; do not use)",
)


@dataclass(frozen=True)
class Dataset:
    """What to build: sizes and the seed; the same arguments always build the same data."""

    accounts: int
    memberships_per_account: float
    segments: int
    enrichment_segments: int
    seed: int


@dataclass(frozen=True)
class SegmentRow:
    id: int
    name: str
    folder: str | None
    uses: tuple[str, ...]


def segment_rows(dataset: Dataset) -> list[SegmentRow]:
    """The segments: unique names (ignoring case), some published for enrichment or other uses."""
    rng = random.Random(dataset.seed)
    combos = list(itertools.product(_REGIONS, _AUDIENCES, _SUFFIXES))
    rng.shuffle(combos)
    names: list[str] = []
    keys: set[str] = set()
    for region, audience, suffix in combos:
        name = f"{region} {audience}{suffix}"
        if name.casefold() not in keys:
            keys.add(name.casefold())
            names.append(name)
        if len(names) == dataset.segments:
            break
    while len(names) < dataset.segments:  # more segments than combinations: number them
        name = f"Segment nº {len(names) + 1}"
        keys.add(name.casefold())
        names.append(name)
    ids = list(range(1, dataset.segments + 1))
    enrichment = set(rng.sample(ids, min(dataset.enrichment_segments, len(ids))))
    # A few segments published for other uses: some also for enrichment, some not.
    others = rng.sample(ids, min(30, len(ids)))
    rows = []
    for segment_id, name in zip(ids, names, strict=True):
        uses: list[str] = []
        if segment_id in enrichment:
            uses.append(ENRICHMENT_USE)
        if segment_id in others:
            uses.append(OTHER_USES[segment_id % len(OTHER_USES)])
        folder = None if segment_id % 4 == 0 else f"Folder {segment_id % 17}"
        rows.append(SegmentRow(segment_id, name, folder, tuple(uses)))
    return rows


def account_batches(dataset: Dataset) -> Iterator[list[tuple[int, str, str, str]]]:
    """(id, external_id, name, domain) in batches, in id order."""
    for start in range(1, dataset.accounts + 1, LOAD_BATCH_ACCOUNTS):
        stop = min(start + LOAD_BATCH_ACCOUNTS, dataset.accounts + 1)
        yield [
            (i, f"0018a00001{i:08d}", f"Account {i} Ltd", f"account{i}.example.com")
            for i in range(start, stop)
        ]


def membership_batches(
    dataset: Dataset, member_counts: list[int]
) -> Iterator[list[tuple[int, int]]]:
    """(segment_id, account_id) in batches, in account then segment order.

    About 10% of accounts are in no segment; the others are in a gamma-distributed number of
    segments (mean chosen so the overall mean is --memberships-per-account, at most 60), picked
    with uneven popularity. `member_counts[segment_id]` is incremented as rows are made.
    """
    rng = random.Random(dataset.seed + 1)
    segment_ids = list(range(1, dataset.segments + 1))
    rng.shuffle(segment_ids)
    cumulative = list(itertools.accumulate(1.0 / (rank + 10) ** 0.8 for rank in segment_ids))
    total_weight = cumulative[-1]
    max_per_account = min(60, dataset.segments)
    scale = dataset.memberships_per_account / 0.9 / 2.0
    batch: list[tuple[int, int]] = []
    for account_id in range(1, dataset.accounts + 1):
        if scale <= 0 or rng.random() < 0.1:
            count = 0
        else:
            count = min(int(rng.gammavariate(2.0, scale) + 0.5), max_per_account)
        chosen: set[int] = set()
        while len(chosen) < count:
            chosen.add(segment_ids[bisect.bisect(cumulative, rng.random() * total_weight)])
        for segment_id in sorted(chosen):
            batch.append((segment_id, account_id))
            member_counts[segment_id] += 1
        if account_id % LOAD_BATCH_ACCOUNTS == 0:
            yield batch
            batch = []
    if batch:
        yield batch


# --- loading ---------------------------------------------------------------------------------


def table_is_empty(engine: Engine) -> bool:
    with engine.connect() as connection:
        return connection.execute(text("SELECT 1 FROM accounts LIMIT 1")).first() is None


def load_sqlite(engine: Engine, dataset: Dataset) -> None:
    """executemany on the raw sqlite3 connection; the account-order index is built afterwards."""
    segments = segment_rows(dataset)
    member_counts = [0] * (dataset.segments + 1)
    raw = engine.raw_connection()
    try:
        db: Any = raw.driver_connection  # sqlite3.Connection, in autocommit mode (see models.db)
        db.execute("PRAGMA foreign_keys = OFF")  # the generated data is consistent by design
        db.execute("PRAGMA cache_size = -524288")  # 512 MB page cache while loading
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO segments (id, name, name_key, folder, source, created_at, member_count)"
            " VALUES (?, ?, ?, ?, 'filter', ?, 0)",
            [(s.id, s.name, s.name.casefold(), s.folder, TIMESTAMP) for s in segments],
        )
        db.executemany(
            "INSERT INTO publications (segment_id, use, published_at) VALUES (?, ?, ?)",
            [(s.id, use, TIMESTAMP) for s in segments for use in s.uses],
        )
        for batch in account_batches(dataset):
            db.executemany(
                "INSERT INTO accounts (id, external_id, name, domain, crm_attributes,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, '{}', ?, ?)",
                [(*row, TIMESTAMP, TIMESTAMP) for row in batch],
            )
        db.execute("COMMIT")
        db.execute("BEGIN")
        db.execute("DROP INDEX ix_segment_memberships_account_segment")
        pending = 0
        for memberships in membership_batches(dataset, member_counts):
            db.executemany(
                "INSERT INTO segment_memberships (segment_id, account_id) VALUES (?, ?)",
                memberships,
            )
            pending += len(memberships)
            if pending >= SQLITE_COMMIT_ROWS:
                db.execute("COMMIT")
                db.execute("BEGIN")
                pending = 0
        db.execute(
            "CREATE INDEX ix_segment_memberships_account_segment"
            " ON segment_memberships (account_id, segment_id)"
        )
        db.executemany(
            "UPDATE segments SET member_count = ? WHERE id = ?",
            [(member_counts[s.id], s.id) for s in segments],
        )
        db.execute("COMMIT")
        db.execute("ANALYZE")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()
        engine.dispose()  # drop the connection whose pragmas were changed


def load_postgresql(
    engine: Engine,
    dataset: Dataset,
    publications: Iterable[tuple[int, str]] | None = None,
    domain_of: Callable[[int, str], str] | None = None,
) -> None:
    """COPY through psycopg, then VACUUM ANALYZE.

    `publications` ((segment id, use) pairs) replaces each segment's own uses; `domain_of(account
    id, dataset domain)` the domain stored (bench/api.py needs registrable ones).
    """
    segments = segment_rows(dataset)
    if publications is None:
        publications = [(s.id, use) for s in segments for use in s.uses]
    domain_of = domain_of or (lambda _account_id, given: given)
    member_counts = [0] * (dataset.segments + 1)
    raw = engine.raw_connection()
    try:
        pg: Any = raw.driver_connection  # psycopg.Connection
        with pg.cursor() as cursor:
            with cursor.copy(
                "COPY segments (id, name, name_key, folder, source, created_at, member_count)"
                " FROM STDIN"
            ) as copy:
                for s in segments:
                    copy.write_row(
                        (s.id, s.name, s.name.casefold(), s.folder, "filter", TIMESTAMP, 0)
                    )
            with cursor.copy(
                "COPY publications (segment_id, use, published_at) FROM STDIN"
            ) as copy:
                for segment_id, use in publications:
                    copy.write_row((segment_id, use, TIMESTAMP))
            with cursor.copy(
                "COPY accounts (id, external_id, name, domain, crm_attributes, created_at,"
                " updated_at) FROM STDIN"
            ) as copy:
                for batch in account_batches(dataset):
                    copy.write(
                        "".join(
                            f"{i}\t{ext}\t{name}\t{domain_of(i, domain)}\t{{}}\t{TIMESTAMP}"
                            f"\t{TIMESTAMP}\n"
                            for i, ext, name, domain in batch
                        )
                    )
            with cursor.copy(
                "COPY segment_memberships (segment_id, account_id) FROM STDIN"
            ) as copy:
                for memberships in membership_batches(dataset, member_counts):
                    copy.write("".join(f"{s}\t{a}\n" for s, a in memberships))
            cursor.executemany(
                "UPDATE segments SET member_count = %s WHERE id = %s",
                [(member_counts[s.id], s.id) for s in segments],
            )
            # The sequences follow the ids given, as after ordinary inserts.
            for table in ("accounts", "segments"):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" (SELECT max(id) FROM {table}))"
                )
        pg.commit()
        pg.autocommit = True
        pg.execute("VACUUM ANALYZE")
    finally:
        raw.close()
        engine.dispose()


@dataclass(frozen=True)
class DataSummary:
    accounts: int
    segments: int
    enrichment_segments: int
    memberships: int
    enrichment_rows: int  # rows of the enrichment join: one per account and enrichment membership
    accounts_with_enrichment: int


def summarise(engine: Engine) -> DataSummary:
    enrichment_ids = f"(SELECT segment_id FROM publications WHERE use = '{ENRICHMENT_USE}')"
    with engine.connect() as connection:

        def count(sql: str) -> int:
            return int(connection.execute(text(sql)).scalar_one())

        in_enrichment = count(
            "SELECT count(DISTINCT account_id) FROM segment_memberships"
            f" WHERE segment_id IN {enrichment_ids}"
        )
        enrichment_memberships = count(
            f"SELECT count(*) FROM segment_memberships WHERE segment_id IN {enrichment_ids}"
        )
        accounts = count("SELECT count(*) FROM accounts")
        return DataSummary(
            accounts=accounts,
            segments=count("SELECT count(*) FROM segments"),
            enrichment_segments=count(
                f"SELECT count(*) FROM publications WHERE use = '{ENRICHMENT_USE}'"
            ),
            memberships=count("SELECT count(*) FROM segment_memberships"),
            enrichment_rows=enrichment_memberships + accounts - in_enrichment,
            accounts_with_enrichment=in_enrichment,
        )


# --- measurements (each in a fresh child process) ----------------------------------------------


@dataclass(frozen=True)
class Measurement:
    seconds: list[float]
    rows: int  # plain scan and honest floor: rows iterated
    accounts: int  # enrichment: values yielded
    non_empty: int
    truncated: int
    rss_start_mb: float
    peak_rss_mb: float

    @property
    def best(self) -> float:
        return min(self.seconds)


def _current_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), in MB.

    Not getrusage's ru_maxrss: that survives exec, so a child started by multiprocessing's
    "spawn" (fork + exec) would report at least its parent's size at fork time. VmHWM belongs to
    the process's own address space, which exec replaces.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def plain_scan(engine: Engine) -> tuple[int, int, int, int]:
    query = select(SegmentMembership.account_id, SegmentMembership.segment_id)
    rows = 0
    with engine.connect() as connection:
        result = connection.execution_options(stream_results=True, yield_per=STREAM_BATCH).execute(
            query
        )
        for _row in result:
            rows += 1
    return rows, 0, 0, 0


def enrichment_statement(engine: Engine, max_length: int, read: str) -> tuple[str, Any]:
    """The SQL statement and parameters enrichment_values streams its rows from, as executed.

    Captured from the driver cursor while enrichment_values fetches its first value, so the
    honest floor replays exactly what enrichment runs (not a copy of the query that could drift).
    """
    executed: list[tuple[str, Any]] = []

    def record(
        _conn: Connection,
        _cursor: Any,
        statement: str,
        parameters: Any,
        _context: Any,
        _executemany: bool,
    ) -> None:
        executed.append((statement, parameters))

    with engine.connect() as connection:
        event.listen(connection, "before_cursor_execute", record)
        # One value is enough: its fetch executes the query; closing the connection ends it.
        next(enrichment_values(connection, ValueFormat(max_length=max_length), read=read), None)
        event.remove(connection, "before_cursor_execute", record)
    if not executed:
        raise SystemExit("enrichment_values executed no SQL: nothing to replay as the floor")
    return executed[-1]  # the streamed query comes after the segment names are read


def honest_floor(engine: Engine, statement: str, parameters: Any) -> tuple[int, int, int, int]:
    rows = 0
    with engine.connect() as connection:
        result = connection.execution_options(
            stream_results=True, yield_per=STREAM_BATCH
        ).exec_driver_sql(statement, parameters)
        for _row in result:
            rows += 1
    return rows, 0, 0, 0


def enrichment_pass(
    engine: Engine, max_length: int, read: str | None = None
) -> tuple[int, int, int, int]:
    fmt = ValueFormat(max_length=max_length)
    accounts = non_empty = truncated = 0
    with engine.connect() as connection:
        for value in enrichment_values(connection, fmt, read=read):
            accounts += 1
            if value.value:
                non_empty += 1
            if value.dropped:
                truncated += 1
    return 0, accounts, non_empty, truncated


def measure(
    url: str, kind: str, repeats: int, max_length: int, read: str = READ_ROWS
) -> Measurement:
    """Run one measurement ("plain", "floor" or "enrichment", the last two with enrichment's
    `read`) `repeats` times in this process."""
    rss_start = _current_rss_mb()
    engine = make_engine(url)
    run: Callable[[], tuple[int, int, int, int]]
    if kind == "plain":
        run = lambda: plain_scan(engine)  # noqa: E731
    elif kind == "floor":
        statement, parameters = enrichment_statement(engine, max_length, read)
        run = lambda: honest_floor(engine, statement, parameters)  # noqa: E731
    else:
        run = lambda: enrichment_pass(engine, max_length, read)  # noqa: E731
    seconds = []
    counts = (0, 0, 0, 0)
    for _ in range(repeats):
        started = time.perf_counter()
        counts = run()
        seconds.append(time.perf_counter() - started)
    engine.dispose()
    rows, accounts, non_empty, truncated = counts
    return Measurement(seconds, rows, accounts, non_empty, truncated, rss_start, _peak_rss_mb())


def in_child(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in a fresh interpreter (spawn), so its memory is its own."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def profile_enrichment(url: str, max_length: int, top: int = 25) -> None:
    engine = make_engine(url)
    enrichment_pass(engine, max_length)  # warm the cache first
    profiler = cProfile.Profile()
    profiler.enable()
    enrichment_pass(engine, max_length)
    profiler.disable()
    engine.dispose()
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(top)


# --- report ------------------------------------------------------------------------------------


def _n(value: int) -> str:
    return f"{value:,}"


def report(
    backend: str,
    where: str,
    summary: DataSummary,
    load_seconds: float | None,
    load_peak_mb: float,
    plain: Measurement,
    floors: dict[str, Measurement],
    enrichments: dict[str, Measurement],
    chosen: str,
) -> None:
    """Print one backend's table: the plain scan, and per read its floor and its enrichment."""
    loaded = (
        "reused"
        if load_seconds is None
        else f"generated and loaded in {load_seconds:.1f} s (peak RSS {load_peak_mb:.0f} MB)"
    )
    print(f"\n=== {backend}: {where}")
    print(
        f"data: {_n(summary.accounts)} accounts, {_n(summary.segments)} segments"
        f" ({summary.enrichment_segments} for enrichment), {_n(summary.memberships)} memberships;"
        f" {loaded}"
    )
    width = 15
    runs = (plain, floors[READ_ROWS], floors[READ_AGGREGATED], *enrichments.values())
    rows = [
        (
            "",
            "plain scan",
            "floor: rows",
            "floor: aggr.",
            *(f"enr.: {r[:5]}." for r in enrichments),
        ),
        ("rows scanned", *(_n(m.rows) if m.rows else "-" for m in runs)),
        ("accounts", "-", "-", "-", *(_n(m.accounts) for m in enrichments.values())),
        ("  with a value", "-", "-", "-", *(_n(m.non_empty) for m in enrichments.values())),
        ("  truncated", "-", "-", "-", *(_n(m.truncated) for m in enrichments.values())),
        ("seconds (best)", *(f"{m.best:.2f}" for m in runs)),
        ("  all runs", *(" ".join(f"{s:.2f}" for s in m.seconds) for m in runs)),
        ("RSS at start (MB)", *(f"{m.rss_start_mb:.0f}" for m in runs)),
        ("peak RSS (MB)", *(f"{m.peak_rss_mb:.0f}" for m in runs)),
    ]
    for label, *cells in rows:
        print(f"  {label:<18}" + "".join(f"{cell:>{width}}" for cell in cells))
    print("  floor: rows streams the one-row-per-membership statement enrichment's rows read runs")
    print("  (one row per enrichment membership, plus one per account in no enrichment segment);")
    print("  floor: aggr. the one-row-per-account statement its aggregated read runs. Both count")
    print("  rows only: the database and driver alone. The honest floor is the lower of the two.")
    if floors[READ_ROWS].rows != summary.enrichment_rows:
        print(
            f"  WARNING: the rows floor streamed {_n(floors[READ_ROWS].rows)} rows, not the"
            f" {_n(summary.enrichment_rows)} the enrichment join should produce"
        )
    honest = min(floor.best for floor in floors.values())
    for read, enrichment in enrichments.items():
        ratio = enrichment.best / plain.best if plain.best else float("inf")
        floor_ratio = enrichment.best / honest if honest else float("inf")
        own = floors[read].best
        own_ratio = enrichment.best / own if own else float("inf")
        peak = enrichment.peak_rss_mb
        print(
            f"  {read:<10} enrichment {enrichment.best:.2f} s:"
            f" / plain scan {ratio:.2f}x (goal <= {GOAL_RATIO:g}x:"
            f" {'MET' if ratio <= GOAL_RATIO else 'NOT MET'});"
            f" / honest floor {floor_ratio:.2f}x (aim <= {GOAL_FLOOR_RATIO:g}x:"
            f" {'MET' if floor_ratio <= GOAL_FLOOR_RATIO else 'NOT MET'});"
            f" / its own statement's floor {own_ratio:.2f}x;"
            f" peak {peak:.0f} MB (goal < 1 GB: {'MET' if peak < GOAL_PEAK_MB else 'NOT MET'})"
        )
    fastest = min(enrichments, key=lambda read: enrichments[read].best)
    agrees = "agrees" if fastest == chosen else "DISAGREES: update models.enrichment.PREFERRED_READ"
    print(f"  faster read here: {fastest}; models.enrichment uses {chosen} on {backend}: {agrees}")


# --- driver ------------------------------------------------------------------------------------


def prepare(url: str, dataset: Dataset, reuse: bool) -> float | None:
    """Create the schema and load the data; the load time, or None when existing data is reused."""
    engine = make_engine(url)
    try:
        upgrade(engine)
        if not table_is_empty(engine):
            if reuse:
                return None
            raise SystemExit(
                f"{engine.url.render_as_string(hide_password=True)} already has accounts:"
                " give an empty database, or --reuse to benchmark the data it holds"
            )
        started = time.perf_counter()
        if engine.dialect.name == "sqlite":
            load_sqlite(engine, dataset)
        else:
            load_postgresql(engine, dataset)
        return time.perf_counter() - started
    finally:
        engine.dispose()


def prepare_and_summarise(
    url: str, dataset: Dataset, reuse: bool
) -> tuple[float | None, DataSummary, float]:
    """prepare() then summarise(), with this process's peak RSS (run in a child)."""
    load_seconds = prepare(url, dataset, reuse)
    engine = make_engine(url)
    summary = summarise(engine)
    engine.dispose()
    return load_seconds, summary, _peak_rss_mb()


def run_backend(backend: str, url: str, dataset: Dataset, args: argparse.Namespace) -> None:
    where = make_url(url).render_as_string(hide_password=True)
    print(f"\n[{backend}] preparing {where} ...", flush=True)
    load_seconds, summary, load_peak = in_child(prepare_and_summarise, url, dataset, args.reuse)
    print(f"[{backend}] measuring plain scan x{args.repeats} ...", flush=True)
    plain = in_child(measure, url, "plain", args.repeats, args.max_length)
    floors: dict[str, Measurement] = {}
    enrichments: dict[str, Measurement] = {}
    for read in READS:
        print(f"[{backend}] measuring the {read} read's floor x{args.repeats} ...", flush=True)
        floors[read] = in_child(measure, url, "floor", args.repeats, args.max_length, read)
    for read in READS:
        print(f"[{backend}] measuring enrichment, {read} read, x{args.repeats} ...", flush=True)
        enrichments[read] = in_child(
            measure, url, "enrichment", args.repeats, args.max_length, read
        )
    chosen = preferred_read(backend)
    report(backend, where, summary, load_seconds, load_peak, plain, floors, enrichments, chosen)
    if args.profile:
        print(f"\n[{backend}] cProfile of one enrichment pass (in this process):")
        profile_enrichment(url, args.max_length)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except the empty ones (flags, and options whose help says what happens)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time enrichment_values against a plain scan of segment_memberships and"
        " against its own query's rows streamed with no Python work.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--accounts", type=int, default=1_000_000, help="number of accounts")
    parser.add_argument(
        "--memberships-per-account",
        type=float,
        default=5.0,
        help="average number of segments an account is in",
    )
    parser.add_argument("--segments", type=int, default=500, help="number of segments")
    parser.add_argument(
        "--enrichment-segments", type=int, default=200, help="segments published for enrichment"
    )
    parser.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help="comma-separated backends to run: sqlite, postgresql",
    )
    parser.add_argument(
        "--postgres-url",
        help="SQLAlchemy URL of an empty scratch PostgreSQL database"
        " (default: start a throwaway server)",
    )
    parser.add_argument(
        "--sqlite-path", type=Path, help="SQLite file (default: a temporary file, removed after)"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="benchmark the data already in --sqlite-path / --postgres-url instead of refusing",
    )
    parser.add_argument("--max-length", type=int, default=255, help="the value's maximum length")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each measurement")
    parser.add_argument("--seed", type=int, default=20251129, help="random seed of the data")
    parser.add_argument(
        "--profile", action="store_true", help="also cProfile one enrichment pass per backend"
    )
    args = parser.parse_args(argv)
    args.backend_list = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(args.backend_list) - set(BACKENDS)
    if unknown or not args.backend_list:
        parser.error(f"--backends must list some of {', '.join(BACKENDS)}")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def throwaway_postgres() -> contextlib.AbstractContextManager[str]:
    """tests.services.postgres_server(), imported only when needed.

    Imported by name so that `mypy bench/enrichment.py` does not type-check the tests package
    (which is outside the project's mypy `packages`).
    """
    services = importlib.import_module("tests.services")
    server: contextlib.AbstractContextManager[str] = services.postgres_server()
    return server


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    dataset = Dataset(
        accounts=args.accounts,
        memberships_per_account=args.memberships_per_account,
        segments=args.segments,
        enrichment_segments=args.enrichment_segments,
        seed=args.seed,
    )
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        for backend in args.backend_list:
            if backend == "sqlite":
                if args.sqlite_path is not None:
                    path = args.sqlite_path
                else:
                    tmpdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="segsync-"))
                    path = Path(tmpdir) / "bench.db"
                url = f"sqlite:///{path}"
            elif args.postgres_url:
                url = args.postgres_url
            else:
                url = stack.enter_context(throwaway_postgres())
            run_backend(backend, url, dataset, args)
    own_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\ntotal {time.perf_counter() - started:.0f} s; this process's ru_maxrss {own_peak:.0f} MB"
    )


if __name__ == "__main__":
    main()
