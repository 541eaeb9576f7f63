"""A Redis restart while a run's batches are being sent (DESIGN.md §4): the batches are stored,
so the run goes on once Redis is back, and every record is written exactly once.

Everything is real: a redis-server of this test's own (stopped and started again on its port,
keeping nothing on disk, as a restart without persistence), `segsync worker` and `segsync beat`
child processes, SQLite and PostgreSQL, HTTPS to the HubSpot emulator.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models.base import utcnow
from models.orchestrations import Orchestration
from models.runs import SyncRun
from tests.services import free_port, redis_command
from tests.worker.celery_stack import (
    Stack,
    assert_each_written_once,
    open_stack,
    ready,
    wait_until,
)
from tests.worker.test_celery_e2e import seed

# Generous bounds for a loaded machine; every wait ends as soon as its condition holds.
STARTUP = 60.0
FINISH = 120.0
# Beat's two tasks, run as a worker runs them but in a process of their own (worker.tasks keeps
# its settings per process), whose broker is down.
BEAT_TASKS = "from worker.tasks import dispatch_due, sweep; dispatch_due(); sweep()"
UNSENT = "not sent, the broker is unreachable"


class RestartableRedis:
    """A redis-server of one test that keeps nothing on disk and can stop and start again on
    the same port (the broker's URL stays the same, its queues come back empty)."""

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="segsync-redis-restart-"))
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._server: subprocess.Popen[bytes] | None = None
        self._starts = 0

    def start(self) -> None:
        """Start the server and wait until it answers."""
        binary = shutil.which("redis-server")
        assert binary, "redis-server not found (Debian/Ubuntu: apt-get install redis-server)"
        self._starts += 1
        log = self.workdir / f"server-{self._starts}.log"
        self._server = subprocess.Popen(
            redis_command(binary, self.port, self.workdir, log),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_timeout=1)

        def answers() -> bool:
            assert self._server is not None and self._server.poll() is None, log.read_text()
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        wait_until(answers, STARTUP, f"redis-server on port {self.port}")
        client.close()

    def stop(self) -> None:
        """Stop the server; everything it held is gone."""
        if self._server is None:
            return
        self._server.terminate()
        try:
            self._server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._server.kill()
            self._server.wait()
        self._server = None

    def close(self) -> None:
        """Stop the server and remove its folder."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture
def broker() -> Iterator[RestartableRedis]:
    server = RestartableRedis()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def restart_stack(
    database_url: str,
    broker: RestartableRedis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Stack]:
    """The stack of the other Celery tests, on this test's own Redis (the session's must not be
    stopped under other tests)."""
    with open_stack(database_url, broker.url, tmp_path, monkeypatch) as built:
        yield built


def test_redis_restarting_while_a_run_sends_its_batches_leaves_them_for_the_sweeper(
    restart_stack: Stack, broker: RestartableRedis
) -> None:
    stack, hubspot = restart_stack, restart_stack.hubspot
    expected = seed(stack.sandbox, "hubspot", "contacts", 1500, stack.companies)
    stack.orchestration("restarted", "hs", "contacts")
    # The last of the read's 15 pages stops at HubSpot until released: Redis is stopped while
    # the planner waits for it, so the planner then stores its batches and finds no broker.
    hubspot.faults.inject("hold", after=14, path="^/crm/v3/objects/contacts$", method="GET")
    worker = stack.worker("planner", wait=False)
    ready([worker], [stack.beat("sweeper", wait=False)])
    run_id = stack.queue("restarted")

    wait_until(lambda: hubspot.held == 1, STARTUP, "the last page of the read", stack.tails)
    broker.stop()
    hubspot.release()

    warning = f"run {run_id}: 15 batches stored but not sent"

    def publish_failed() -> SyncRun | None:
        run = stack.run(run_id)
        if run.status not in ("queued", "running") or warning in worker.output():
            return run
        return None

    # The planner stored its batches, could not send them, and left the run to the sweeper.
    run = wait_until(publish_failed, FINISH, "the planner's publish to fail", stack.tails)
    assert run.status == "running", (run.status, run.reason, stack.tails())
    assert run.batches_total == 15 and run.batches_done == 0
    batches = stack.batches(run_id)
    assert len(batches) == 15 and all(b.status == "pending" for b in batches)
    assert hubspot.writes == []

    # Back without the messages it held (none were sent): beat's sweeper sends the stored
    # batches again once SEGSYNC_STALE_AFTER_SECONDS has passed.
    broker.start()
    run = stack.finished(run_id, timeout=FINISH)
    assert run.status == "succeeded", (run.reason, stack.tails())
    assert (run.batches_done, run.batches_total) == (15, 15)
    assert run.enriched == len(expected) and run.failed == 0
    assert_each_written_once(stack.sandbox, "hubspot", "contacts", expected)
    # The same worker wrote them: it lost the broker, lived on and connected again.
    assert "Connection to broker lost" in worker.output()
    assert worker.process.poll() is None, worker.output()[-3000:]


def test_dispatch_and_sweep_with_the_broker_down_leave_their_runs_for_the_next_sweep(
    restart_stack: Stack, broker: RestartableRedis
) -> None:
    stack = restart_stack
    contacts = seed(stack.sandbox, "hubspot", "contacts", 300, stack.companies)
    leads = seed(stack.sandbox, "salesforce", "Lead", 400, stack.companies)
    stack.orchestration("queued", "hs", "contacts")
    stack.orchestration("due", "sf", "Lead", "--schedule", "0 0 1 1 *")
    # Queued while no worker runs, then Redis restarts without its message: only the sweeper can
    # send it again. The scheduled one is due, for dispatch_due to start.
    queued_id = stack.queue("queued")
    broker.stop()
    long_ago = utcnow() - timedelta(minutes=5)
    with Session(stack.database) as session:
        session.execute(update(SyncRun).where(SyncRun.id == queued_id).values(enqueued_at=long_ago))
        session.execute(
            update(Orchestration).where(Orchestration.name == "due").values(next_run_at=long_ago)
        )
        session.commit()

    done = subprocess.run(
        [sys.executable, "-c", BEAT_TASKS],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    # Neither task fails: each logs one warning naming the run it could not send.
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    with Session(stack.database) as session:
        due_id = session.scalars(
            select(SyncRun.id)
            .join(Orchestration, Orchestration.id == SyncRun.orchestration_id)
            .where(Orchestration.name == "due")
        ).one()
    warnings = [line for line in done.stderr.splitlines() if UNSENT in line]
    assert len(warnings) == 2, done.stderr
    assert warnings[0].startswith(f"runs [{due_id}] {UNSENT}"), warnings
    assert warnings[1].startswith(f"runs [{queued_id}] {UNSENT}"), warnings
    assert "SEGSYNC_STALE_AFTER_SECONDS" in warnings[1]
    # Both runs wait, queued, and neither is marked as sent.
    for run_id in (due_id, queued_id):
        run = stack.run(run_id)
        assert run.status == "queued", (run_id, run.status, run.reason)
    assert stack.run(due_id).enqueued_at is None
    queued_at = stack.run(queued_id).enqueued_at
    assert queued_at is not None and queued_at.replace(tzinfo=None) <= long_ago.replace(tzinfo=None)

    # Redis back: the sweeper sends both, and each is written once.
    broker.start()
    ready([stack.worker("rescuer", wait=False)], [stack.beat("sweeper", wait=False)])
    for run_id in (due_id, queued_id):
        run = stack.finished(run_id, timeout=FINISH)
        assert run.status == "succeeded", (run_id, run.reason, stack.tails())
    assert_each_written_once(stack.sandbox, "hubspot", "contacts", contacts)
    assert_each_written_once(stack.sandbox, "salesforce", "Lead", leads)
