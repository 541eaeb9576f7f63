"""Benchmark: the API's hot path, `GET /v1/accounts/{key}/segments`, under load from wrk.

Run from the repository root:

    .venv/bin/python bench/api.py                                  # 1,000,000 accounts
    .venv/bin/python bench/api.py --accounts 20000 --seconds 10    # a quick try
    .venv/bin/python bench/api.py --processes 2 --keys domain --connections 64

What it starts, on 127.0.0.1, all stopped at the end: a throwaway PostgreSQL server
(tests.services.postgres_server; or --postgres-url, an empty scratch database), a throwaway
redis-server as the broker, whose per-key rate limit counts every request (SEGSYNC_API_RATE_LIMIT
set far above what is reached), and for each
measurement one `segsync api --workers N` (the real command, its access log on, as deployed),
loaded by `wrk` (the Debian package `wrk`), a separate C program: no load comes from the server's
own process. wrk runs a Lua script that picks a random key from a file of keys for each request.

Data, loaded by COPY then VACUUM ANALYZE: --accounts accounts (external id `0018a00001<8 digits>`,
domain `account<i>.com`), --segments segments published to `api` plus
--other-segments not published to `api` (names, memberships and their uneven popularity from
bench/enrichment.py's generator: about 10% of accounts are in no segment, the others in a
handful, --memberships-per-account on average), one API key of scope read. The keys file holds
--sample accounts drawn at random, by external id or by domain.

Before measuring, a few keys are asked with urllib and each answer is checked against the
memberships in the database (the names of the account's `api` segments).

For each key kind in --keys and each process count in --processes: the server is started and
waited for (every process has logged its start), wrk warms it up for --warmup seconds, then
runs --seconds with --connections connections on --threads threads. Printed: requests per
second, p50, p99 and max latency, non-2xx answers and socket errors, and the load average of the
machine before the measurement (wrk and PostgreSQL share its cores with the server).

Options:
  --accounts N                  accounts (default 1,000,000)
  --segments S                  segments published to api (default 200, the cap)
  --other-segments O            segments not published to api (default 50)
  --memberships-per-account M   average segments an account is in (default 5)
  --sample K                    accounts in each keys file (default 100,000)
  --keys LIST                   of external_id,domain (default both)
  --processes LIST              server process counts (default 1,2)
  --seconds S                   length of each measurement (default 30)
  --warmup S                    wrk run before each measurement, not counted (default 5)
  --connections C               open keep-alive connections (default 16)
  --threads T                   wrk threads (default 2)
  --postgres-url URL            an empty scratch PostgreSQL database (default: a throwaway server)
  --reuse                       measure the data already in --postgres-url (loaded by an earlier
                                run with the same sizes and seed) instead of refusing it
  --keep DIR                    keep the keys files, the Lua script and the server logs in DIR
  --seed S                      random seed of the data (default 20251204)
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from sqlalchemy import Engine, make_url, text  # noqa: E402

from bench.enrichment import Dataset, load_postgresql  # noqa: E402
from models.api_keys import create_api_key  # noqa: E402
from models.db import make_engine, make_session_factory, transaction, upgrade  # noqa: E402
from models.vocabulary import USES  # noqa: E402

SEGSYNC = str(Path(sys.executable).parent / "segsync")
KEY_KINDS = ("external_id", "domain")
# The use whose segments the endpoint answers with.
API_USE = "api"
assert API_USE in USES
# A loaded 2-core machine starts FastAPI processes in seconds; give them plenty.
START_SECONDS = 120.0
# The line uvicorn logs once per server process when it is ready to serve.
STARTED_LINE = "Application startup complete"
# The per-key limit is counted on every request but never reached.
NO_LIMIT = "1000000000/60"
# Keys checked against the database before measuring.
CHECKED_KEYS = 20

# wrk's script: every thread reads the keys file and asks for a random key's segments; done()
# prints the figures as one JSON line (latencies in microseconds).
WRK_SCRIPT = r"""
local keys = {}
for line in io.lines(os.getenv("SEGSYNC_BENCH_KEYS")) do
  keys[#keys + 1] = line
end
wrk.headers["Authorization"] = "Bearer " .. os.getenv("SEGSYNC_BENCH_API_KEY")

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
end

function init(args)
  math.randomseed(thread_number * 7919 + os.time())
end

function request()
  return wrk.format("GET", "/v1/accounts/" .. keys[math.random(#keys)] .. "/segments")
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'SEGSYNC_BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d,'
      .. ' "max_us": %d, "non_2xx": %d, "connect": %d, "read": %d, "write": %d,'
      .. ' "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, errors.status, errors.connect, errors.read, errors.write, errors.timeout))
end
"""


# --- data --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiData:
    """What to build: sizes and the seed; the same arguments always build the same data."""

    accounts: int
    api_segments: int
    other_segments: int
    memberships_per_account: float
    seed: int

    def dataset(self) -> Dataset:
        """bench/enrichment.py's dataset of the same sizes (its names and memberships)."""
        return Dataset(
            accounts=self.accounts,
            memberships_per_account=self.memberships_per_account,
            segments=self.api_segments + self.other_segments,
            enrichment_segments=0,
            seed=self.seed,
        )

    def api_segment_ids(self) -> set[int]:
        """The segments published to api: a seeded sample of all of them."""
        total = self.api_segments + self.other_segments
        return set(random.Random(self.seed + 2).sample(range(1, total + 1), self.api_segments))


def external_id(account_id: int) -> str:
    """The external id bench/enrichment.py gives account `account_id`."""
    return f"0018a00001{account_id:08d}"


def domain(account_id: int) -> str:
    """Account `account_id`'s domain, a registrable one as import stores (bench/enrichment.py's
    subdomains of example.com would all be example.com to a lookup)."""
    return f"account{account_id}.com"


def load(engine: Engine, data: ApiData) -> None:
    """The accounts, segments, publications and memberships, by COPY; then VACUUM ANALYZE."""
    load_postgresql(
        engine,
        data.dataset(),
        publications=[(segment_id, API_USE) for segment_id in sorted(data.api_segment_ids())],
        domain_of=lambda account_id, _subdomain: domain(account_id),
    )


@dataclass(frozen=True)
class Loaded:
    """The database ready to serve: its figures and the API key of scope read."""

    accounts: int
    memberships: int
    api_memberships: int
    seconds: float
    reused: bool
    api_key: str


def prepare(url: str, data: ApiData, reuse: bool) -> Loaded:
    """Create the schema, load the data (unless reused) and make an API key."""
    engine = make_engine(url)
    try:
        upgrade(engine)
        with engine.connect() as connection:
            empty = connection.execute(text("SELECT 1 FROM accounts LIMIT 1")).first() is None
        if not empty and not reuse:
            raise SystemExit(
                f"{engine.url.render_as_string(hide_password=True)} already has accounts:"
                " give an empty database, or --reuse to measure the data it holds"
            )
        started = time.perf_counter()
        if empty:
            load(engine, data)
        seconds = time.perf_counter() - started
        with transaction(make_session_factory(engine)) as session:
            # A key of its own per run: a reused database keeps the keys of earlier runs.
            _row, api_key = create_api_key(session, f"bench {time.time_ns()}", "read")
        with engine.connect() as connection:

            def count(sql: str) -> int:
                return int(connection.execute(text(sql)).scalar_one())

            return Loaded(
                accounts=count("SELECT count(*) FROM accounts"),
                memberships=count("SELECT count(*) FROM segment_memberships"),
                api_memberships=count(
                    "SELECT count(*) FROM segment_memberships m JOIN publications p"
                    f" ON p.segment_id = m.segment_id AND p.use = '{API_USE}'"
                ),
                seconds=seconds,
                reused=not empty,
                api_key=api_key,
            )
    finally:
        engine.dispose()


def write_keys(folder: Path, data: ApiData, sample: int) -> dict[str, Path]:
    """A file of `sample` random accounts' keys per kind, one a line."""
    rng = random.Random(data.seed + 3)
    ids = rng.sample(range(1, data.accounts + 1), min(sample, data.accounts))
    files = {}
    for kind, key in (("external_id", external_id), ("domain", domain)):
        files[kind] = folder / f"keys-{kind}.txt"
        files[kind].write_text("".join(f"{key(i)}\n" for i in ids))
    return files


def expected_segments(engine: Engine, account_id: int) -> set[str]:
    """Names of the api segments that contain the account, read straight from the tables."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT s.name FROM segment_memberships m"
                " JOIN segments s ON s.id = m.segment_id"
                " JOIN publications p ON p.segment_id = s.id AND p.use = :use"
                " WHERE m.account_id = :account"
            ),
            {"use": API_USE, "account": account_id},
        )
        return {row[0] for row in rows}


def check_answers(base_url: str, api_key: str, url: str, data: ApiData) -> None:
    """Ask CHECKED_KEYS keys of each kind; every answer must name the account's api segments."""
    engine = make_engine(url)
    rng = random.Random(data.seed + 4)
    try:
        for account_id in rng.sample(range(1, data.accounts + 1), min(CHECKED_KEYS, data.accounts)):
            expected = expected_segments(engine, account_id)
            for key in (external_id(account_id), domain(account_id)):
                request = urllib.request.Request(
                    f"{base_url}/v1/accounts/{key}/segments",
                    headers={"Authorization": f"Bearer {api_key}"},
                )
                with urllib.request.urlopen(request, timeout=30) as answer:
                    body = json.load(answer)
                if (
                    body["account"]["external_id"] != external_id(account_id)
                    or set(body["segments"]) != expected
                ):
                    raise SystemExit(f"wrong answer for {key}: {body}, expected {expected}")
    finally:
        engine.dispose()


# --- the server and the load -------------------------------------------------------------------


def free_port() -> int:
    """tests.services.free_port(), imported by name (mypy checks no tests module from bench)."""
    port: int = importlib.import_module("tests.services").free_port()
    return port


def throwaway_postgres() -> contextlib.AbstractContextManager[str]:
    """tests.services.postgres_server(), imported by name like free_port."""
    server: contextlib.AbstractContextManager[str] = importlib.import_module(
        "tests.services"
    ).postgres_server()
    return server


def throwaway_redis() -> contextlib.AbstractContextManager[str]:
    """tests.services.redis_server(), imported by name like free_port."""
    server: contextlib.AbstractContextManager[str] = importlib.import_module(
        "tests.services"
    ).redis_server()
    return server


def _answers(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(base_url + "/healthz", timeout=2) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def running_api(url: str, redis_url: str, processes: int, log: Path) -> Iterator[str]:
    """`segsync api --workers processes` on a free port until the block ends; its base URL."""
    port = free_port()
    environment = {
        **os.environ,
        "SEGSYNC_DATABASE_URL": url,
        # As deployed: the broker's Redis counts every request of a key for all processes.
        "SEGSYNC_BROKER_URL": redis_url,
        "SEGSYNC_API_RATE_LIMIT": NO_LIMIT,
    }
    with log.open("wb") as output:
        server = subprocess.Popen(
            [SEGSYNC, "api", "--port", str(port), "--workers", str(processes)],
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_SECONDS
        # Every process must be serving, not only the first one up.
        while not (
            _answers(base_url) and log.read_text(errors="replace").count(STARTED_LINE) >= processes
        ):
            if server.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:]
                raise SystemExit(f"segsync api did not start ({processes} processes):\n{tail}")
            time.sleep(0.2)
        yield base_url
    finally:
        importlib.import_module("tests.services").stop_process_group(server)


@dataclass(frozen=True)
class Figures:
    """What wrk measured in one run."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def run_wrk(
    wrk: str,
    base_url: str,
    script: Path,
    keys: Path,
    api_key: str,
    args: argparse.Namespace,
    seconds: int,
) -> Figures:
    """wrk against base_url for `seconds`; its figures (SystemExit when it fails)."""
    done = subprocess.run(
        [
            wrk,
            "--threads",
            str(args.threads),
            "--connections",
            str(args.connections),
            "--duration",
            f"{seconds}s",
            "--timeout",
            "30s",
            "--script",
            str(script),
            base_url,
        ],
        env={**os.environ, "SEGSYNC_BENCH_KEYS": str(keys), "SEGSYNC_BENCH_API_KEY": api_key},
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("SEGSYNC_BENCH ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    figures = json.loads(lines[-1].removeprefix("SEGSYNC_BENCH "))
    return Figures(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        max_ms=figures["max_us"] / 1000,
        non_2xx=figures["non_2xx"],
        socket_errors=sum(figures[name] for name in ("connect", "read", "write", "timeout")),
    )


# --- driver ------------------------------------------------------------------------------------


def _load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _list(value: str, known: tuple[str, ...] | None = None) -> list[str]:
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items or (known is not None and not set(items) <= set(known)):
        raise argparse.ArgumentTypeError(f"a comma-separated list of {', '.join(known or ())}")
    return items


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Requests per second and latency of GET /v1/accounts/{key}/segments.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--accounts", type=int, default=1_000_000, help="accounts")
    parser.add_argument("--segments", type=int, default=200, help="segments published to api")
    parser.add_argument("--other-segments", type=int, default=50, help="segments not published")
    parser.add_argument(
        "--memberships-per-account", type=float, default=5.0, help="average segments per account"
    )
    parser.add_argument("--sample", type=int, default=100_000, help="accounts in a keys file")
    parser.add_argument(
        "--keys",
        type=lambda value: _list(value, KEY_KINDS),
        default=list(KEY_KINDS),
        help="key kinds: external_id,domain",
    )
    parser.add_argument(
        "--processes",
        type=lambda value: [int(item) for item in _list(value)],
        default=[1, 2],
        help="server process counts, e.g. 1,2",
    )
    parser.add_argument("--seconds", type=int, default=30, help="length of each measurement")
    parser.add_argument("--warmup", type=int, default=5, help="uncounted wrk run before each")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--postgres-url", help="an empty scratch PostgreSQL database")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure the data already in --postgres-url (made by this bench with the same sizes)",
    )
    parser.add_argument("--keep", type=Path, help="keep keys, script and server logs here")
    parser.add_argument("--seed", type=int, default=20251204, help="random seed of the data")
    args = parser.parse_args(argv)
    if args.accounts < 1 or args.segments < 1 or args.seconds < 1 or args.sample < 1:
        parser.error("--accounts, --segments, --sample and --seconds must be at least 1")
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads")
    if any(count < 1 for count in args.processes):
        parser.error("--processes must be counts of at least 1")
    return args


def _postgres_version(url: str) -> str:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return str(connection.execute(text("SHOW server_version")).scalar_one())
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk not found: install it (Debian/Ubuntu: apt-get install wrk)")
    data = ApiData(
        accounts=args.accounts,
        api_segments=args.segments,
        other_segments=args.other_segments,
        memberships_per_account=args.memberships_per_account,
        seed=args.seed,
    )
    with contextlib.ExitStack() as stack:
        if args.keep is not None:
            folder = args.keep
            folder.mkdir(parents=True, exist_ok=True)
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="segsync-")))
        url = args.postgres_url or stack.enter_context(throwaway_postgres())
        redis_url = stack.enter_context(throwaway_redis())
        where = make_url(url).render_as_string(hide_password=True)
        print(f"preparing {args.accounts:,} accounts in {where} ...", flush=True)
        loaded = prepare(url, data, args.reuse)
        keys = write_keys(folder, data, args.sample)
        script = folder / "segments.lua"
        script.write_text(WRK_SCRIPT)
        print(
            f"data: {loaded.accounts:,} accounts, {args.segments} segments published to api"
            f" and {args.other_segments} others, {loaded.memberships:,} memberships"
            f" ({loaded.api_memberships:,} in api segments); "
            + ("reused" if loaded.reused else f"loaded in {loaded.seconds:.0f} s")
        )
        version = subprocess.run([wrk, "--version"], capture_output=True, text=True).stdout
        print(
            f"machine: {os.cpu_count()} CPUs, {platform.machine()}, Python"
            f" {platform.python_version()}, PostgreSQL {_postgres_version(url)},"
            f" {version.split(' [')[0].strip() or 'wrk'}"
        )
        print(
            f"wrk: {args.threads} threads, {args.connections} keep-alive connections,"
            f" {args.seconds} s after {args.warmup} s of warm-up; keys drawn from"
            f" {min(args.sample, args.accounts):,} random accounts"
        )
        results: list[tuple[str, int, str, Figures]] = []
        for kind in args.keys:
            for processes in args.processes:
                log = folder / f"api-{kind}-{processes}.log"
                with running_api(url, redis_url, processes, log) as base_url:
                    check_answers(base_url, loaded.api_key, url, data)
                    if args.warmup:
                        run_wrk(
                            wrk, base_url, script, keys[kind], loaded.api_key, args, args.warmup
                        )
                    load_average = _load_average()
                    figures = run_wrk(
                        wrk, base_url, script, keys[kind], loaded.api_key, args, args.seconds
                    )
                results.append((kind, processes, load_average, figures))
                print(
                    f"  by {kind}, {processes} process(es): {figures.per_second:,.0f} req/s",
                    flush=True,
                )
        print("\nGET /v1/accounts/{key}/segments")
        header = f"{'key':<12}{'processes':>10}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
        print(f"{header}{'max ms':>9}{'requests':>11}{'non-2xx':>9}{'errors':>8}  load before")
        for kind, processes, load_average, f in results:
            print(
                f"{kind:<12}{processes:>10}{f.per_second:>10,.0f}{f.p50_ms:>9.1f}{f.p99_ms:>9.1f}"
                f"{f.max_ms:>9.1f}{f.requests:>11,}{f.non_2xx:>9}{f.socket_errors:>8}"
                f"  {load_average}"
            )
        if any(f.non_2xx or f.socket_errors for _kind, _processes, _load, f in results):
            raise SystemExit("some requests failed: see non-2xx and errors above")


if __name__ == "__main__":
    main()
