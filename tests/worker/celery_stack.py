"""The stack the real-Celery tests run on: a database, the emulators, the CLI, and `segsync
worker` / `segsync beat` processes, with helpers that wait on conditions (never on time alone)."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
import redis
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session

from connectors.sandbox import cluster
from connectors.sandbox.cluster import Sandbox
from connectors.sandbox.hubspot import HubSpotEmulator
from connectors.sandbox.salesforce import SalesforceEmulator
from connectors.sandbox.server import Emulator, Request, Response
from models.runs import SyncBatch, SyncRun
from tests.worker.celery_processes import (
    BEAT_STARTED,
    SEGSYNC,
    WORKER_READY,
    CeleryProcess,
    start_beat,
    start_worker,
)
from tests.worker.cli.test_main import Cli
from tests.worker.test_celery_e2e import field_value, load, worker_environment

T = TypeVar("T")
ACTIVE = ("queued", "running")
POLL = 0.05


class RecordingHubSpot(HubSpotEmulator):
    """HubSpot's emulator that also notes the status of every API answer (429s included), can
    make batch updates alone slow, and can lose and regain its segment property as if an admin
    deleted and re-created it: at once, or at a known call through a `remove_property` fault
    (params object_type and name; e.g. after=2, path="/batch/update$": at the third write).
    A `hold` fault stops the request it meets until `release()`: a worker can be killed while
    that call is surely in flight."""

    def __init__(self, records: int = 0, latency: float = 0.0) -> None:
        super().__init__(records=records, latency=latency)
        self.statuses: list[int] = []
        # Seconds each batch update takes before it is applied (reads stay fast); lowering it
        # shortens the updates already waiting too.
        self.write_latency = 0.0
        # Batch updates received and not yet applied.
        self.updates_in_flight = 0
        # Requests a `hold` fault stopped, not yet released.
        self.held = 0
        self._released = threading.Event()
        self._removed: dict[str, Any] = {}

    def handle(self, request: Request, call: int) -> Response:
        if (removal := self.faults.take("remove_property")) is not None:
            self.remove_property(str(removal.params["object_type"]), str(removal.params["name"]))
        updating = request.path.endswith("/batch/update")
        if updating:
            with self.lock:
                self.updates_in_flight += 1
            self._write_delay()
        if self.faults.take("hold") is not None:
            with self.lock:
                self.held += 1
            # Bounded, so a test that fails before releasing it leaves no thread behind for long.
            self._released.wait(timeout=120)
            with self.lock:
                self.held -= 1
        try:
            response = super().handle(request, call)
        finally:
            if updating:
                with self.lock:
                    self.updates_in_flight -= 1
        with self.lock:
            self.statuses.append(response.status)
        return response

    def _write_delay(self) -> None:
        # Until write_latency seconds have passed since the update arrived, reading the setting
        # anew at each step: a test that lowers it to 0 ends the updates in flight at once
        # instead of waiting out the long latency it had set.
        arrived = time.monotonic()
        while (left := arrived + self.write_latency - time.monotonic()) > 0:
            time.sleep(min(left, POLL))

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self.statuses.clear()

    def release(self) -> None:
        """Let every request a `hold` fault stopped (and any it meets later) go on."""
        self._released.set()

    def remove_property(self, object_type: str, name: str) -> None:
        with self.lock:
            self._removed[name] = self._properties[object_type].pop(name)

    def restore_property(self, object_type: str, name: str) -> None:
        with self.lock:
            self._properties[object_type][name] = self._removed.pop(name)


@dataclass
class Stack:
    """The database, the emulators, the CLI and the Celery programs one test started."""

    cli: Cli
    sandbox: Sandbox
    env: dict[str, str]
    companies: dict[str, str]
    database: Engine
    redis_url: str
    logs: Path
    processes: list[CeleryProcess] = field(default_factory=list)

    @property
    def hubspot(self) -> RecordingHubSpot:
        return cast(RecordingHubSpot, self.sandbox.emulators["hubspot"])

    @property
    def salesforce(self) -> SalesforceEmulator:
        return cast(SalesforceEmulator, self.sandbox.emulators["salesforce"])

    def worker(self, name: str, concurrency: int = 2, *, wait: bool = True) -> CeleryProcess:
        log = self.logs / f"worker-{name}.log"
        process = start_worker(self.env, log, name, concurrency, wait=wait)
        self.processes.append(process)
        return process

    def beat(self, name: str, *, wait: bool = True) -> CeleryProcess:
        schedule = self.logs / f"beat-{name}.schedule"
        process = start_beat(self.env, self.logs / f"beat-{name}.log", schedule, wait=wait)
        self.processes.append(process)
        return process

    def orchestration(self, name: str, connection: str, object_type: str, *extra: str) -> None:
        field_name = "segment_names" if connection.startswith("hs") else "Segment_Names__c"
        self.cli.ok(
            "orchestrations",
            "create",
            name,
            "--connection",
            connection,
            "--object",
            object_type,
            "--field",
            field_name,
            *extra,
        )

    def send_queue(self, orchestration: str) -> subprocess.CompletedProcess[str]:
        """`segsync sync NAME --queue` in its own process, as a person runs it; what it printed.

        (Its own process: worker.tasks caches its settings per process, so an in-process CLI
        call would enqueue through the database of whichever test first imported it.)
        """
        return subprocess.run(
            [SEGSYNC, "sync", orchestration, "--queue"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def queue(self, orchestration: str) -> int:
        """`send_queue`, which must succeed: the queued run's id."""
        done = self.send_queue(orchestration)
        assert done.returncode == 0, done.stderr
        found = re.fullmatch(r"run (\d+) queued\s*", done.stdout)
        assert found, done.stdout
        return int(found[1])

    def run(self, run_id: int) -> SyncRun:
        with Session(self.database) as session:
            return session.get_one(SyncRun, run_id)

    def batches(self, run_id: int) -> list[SyncBatch]:
        with Session(self.database) as session:
            query = select(SyncBatch).where(SyncBatch.run_id == run_id).order_by(SyncBatch.number)
            return list(session.scalars(query))

    def done_batches(self, run_id: int) -> int:
        return sum(batch.status == "done" for batch in self.batches(run_id))

    def finished(self, run_id: int, timeout: float) -> SyncRun:
        """The run once it left queued/running (deferred counts as left)."""

        def ended() -> SyncRun | None:
            run = self.run(run_id)
            return None if run.status in ACTIVE else run

        return wait_until(ended, timeout, f"run {run_id} to finish", self.tails)

    def tails(self) -> str:
        return "\n".join(f"--- {p.log.name}\n{p.output()[-2500:]}" for p in self.processes)


def ready(workers: list[CeleryProcess], beats: list[CeleryProcess]) -> None:
    """Wait for programs started together (wait=False) to be ready: they start in parallel."""
    for worker in workers:
        worker.wait_for(WORKER_READY)
    for beat in beats:
        beat.wait_for(BEAT_STARTED)


def wait_until(
    found: Callable[[], T | None], timeout: float, what: str, context: Callable[[], str] = str
) -> T:
    """Poll `found` until it returns something truthy; fail with `context()` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = found()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{context()}")
        time.sleep(POLL)


@pytest.fixture
def stack(
    database_url: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Stack]:
    redis.Redis.from_url(redis_url).flushdb()
    with open_stack(database_url, redis_url, tmp_path, monkeypatch) as built:
        yield built


@contextmanager
def open_stack(
    database_url: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Stack]:
    """A Stack whose programs use `redis_url` as broker (the `stack` fixture's, or a test's
    own redis-server that it stops and starts); its programs are killed on exit."""
    monkeypatch.setitem(
        cluster.EMULATORS,
        "hubspot",
        lambda records, latency: RecordingHubSpot(records=records, latency=latency),
    )
    # Plain engine for the test's own reads: no BEGIN IMMEDIATE, so polling never holds SQLite's
    # write lock against the workers.
    database = create_engine(database_url)
    with Sandbox(["salesforce", "hubspot"]) as sandbox:
        env = worker_environment(database_url, redis_url)
        cli = Cli(database_url)
        cli.env.update({k: v for k, v in env.items() if k.startswith("SEGSYNC_")})
        companies = load(cli, sandbox, tmp_path)
        built = Stack(cli, sandbox, env, companies, database, redis_url, tmp_path)
        try:
            yield built
        finally:
            for process in built.processes:
                process.kill()
            database.dispose()


def assert_each_written_once(
    sandbox: Sandbox, system: str, object_type: str, expected: dict[str, str]
) -> None:
    """Every record holds its expected value and was written exactly once (all started stale)."""
    emulator: Emulator = sandbox.emulators[system]
    writes = Counter(w.record_id for w in emulator.writes if w.object_type == object_type)
    twice = {record_id: n for record_id, n in writes.items() if n > 1}
    assert not twice, f"{len(twice)} {system} {object_type} written more than once: {twice}"
    missed = sorted(set(expected) - set(writes))
    assert not missed, f"{len(missed)} {system} {object_type} never written: {missed[:20]}"
    wrong = {
        record_id: (value, actual)
        for record_id, value in expected.items()
        if (actual := field_value(sandbox, system, object_type, record_id)) != value
    }
    assert not wrong, f"{len(wrong)} {system} {object_type} hold the wrong value: {wrong}"


def finished_tasks(worker: CeleryProcess, task: str) -> int:
    """How many `task` executions the worker logged as finished (returned without a retry)."""
    return len(re.findall(rf"Task {re.escape(task)}\[[^\]]+\] succeeded", worker.output()))
