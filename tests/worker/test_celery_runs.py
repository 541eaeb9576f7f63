"""`segsync sync NAME --queue --wait` and `segsync runs cancel` against a real Celery worker.

The CLI runs in its own process, as a person runs it, with stderr a pipe (not a terminal). Where a
test must see a stage (reading, writing, a batch in flight), the HubSpot emulator holds the
matching requests until the test has seen it: nothing depends on how fast the machine is.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Callable

from connectors.sandbox.server import Emulator, Request, Response
from models.runs import SyncRun
from tests.worker.celery_processes import SEGSYNC
from tests.worker.celery_stack import (
    Stack,
    assert_each_written_once,
    finished_tasks,
    wait_until,
)
from tests.worker.test_celery_e2e import seed

# Generous bounds for a loaded machine; every wait ends as soon as its condition holds.
BOUND = 120.0
LIST_CONTACTS = "/crm/v3/objects/contacts"
UPDATE_CONTACTS = "/crm/v3/objects/contacts/batch/update"


class Gate:
    """Holds the emulator's answers to the requests `held` picks until the gate is opened."""

    def __init__(self, emulator: Emulator, held: Callable[[Request], bool]) -> None:
        self._opened = threading.Event()
        self._lock = threading.Lock()
        self.waiting = 0
        handle = emulator.handle

        def gated(request: Request, call: int) -> Response:
            if held(request) and not self._opened.is_set():
                with self._lock:
                    self.waiting += 1
                # Bounded so that a failed test never leaves a request hanging for ever.
                self._opened.wait(BOUND)
            return handle(request, call)

        emulator.handle = gated  # type: ignore[method-assign]

    def open(self) -> None:
        self._opened.set()


class Following:
    """`segsync sync ... --queue --wait` in its own process, its stderr collected as it comes."""

    def __init__(self, stack: Stack, *args: str) -> None:
        self.process = subprocess.Popen(
            [SEGSYNC, "sync", *args, "--queue", "--wait"],
            env=stack.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._stderr = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        while chunk := self.process.stderr.read1(4096):
            self._stderr.extend(chunk)

    @property
    def stderr(self) -> str:
        """Everything written to stderr so far, undecoded line ends and all."""
        return bytes(self._stderr).decode()

    def showed(self, text: str) -> bool:
        return text in self.stderr

    def finish(self) -> tuple[int, str, str]:
        """Exit status, stdout and stderr once the command ended."""
        assert self.process.stdout is not None
        stdout = self.process.stdout.read().decode()
        status = self.process.wait(timeout=BOUND)
        self._reader.join(timeout=BOUND)
        return status, stdout, self.stderr


def sync(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SEGSYNC, "sync", *args],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=BOUND,
    )


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("segsync: ")]
    assert len(lines) == 1, stderr
    return lines[0]


def test_wait_shows_reading_then_writing_and_exits_0_when_the_run_succeeds(stack: Stack) -> None:
    expected = seed(stack.sandbox, "hubspot", "contacts", 300, stack.companies)
    stack.orchestration("contacts", "hs", "contacts")
    hubspot = stack.hubspot
    # The second page of the read, and every write, wait until the test saw the stage before.
    reading = Gate(hubspot, lambda r: r.path == LIST_CONTACTS and r.param("after") is not None)
    stack.worker("one", concurrency=1)
    writing = Gate(hubspot, lambda r: r.path == UPDATE_CONTACTS)

    follow = Following(stack, "contacts")
    wait_until(lambda: follow.showed("reading: 100 records"), BOUND, "records read", stack.tails)
    assert stack.batches(1) == [] and hubspot.writes == []
    reading.open()
    wait_until(lambda: follow.showed("writing: 0/3 batches"), BOUND, "batches planned")
    writing.open()
    status, stdout, stderr = follow.finish()

    assert status == 0, (stdout, stderr, stack.tails())
    assert "succeeded" in stdout
    # stderr is a pipe: plain lines, no carriage returns, and not a line per poll.
    assert "\r" not in stderr
    lines = stderr.splitlines()
    first_seen = ("run 1 queued: waiting for a worker", "run 1 reading: 0 records")
    assert lines[0] in (*first_seen, "run 1 reading: 100 records"), lines
    assert lines.index("run 1 reading: 100 records") < lines.index("run 1 writing: 0/3 batches")
    assert re.fullmatch(r"run 1 writing: [0-3]/3 batches", lines[-1]), lines
    assert len(lines) <= 8, lines
    assert_each_written_once(stack.sandbox, "hubspot", "contacts", expected)


def test_wait_exits_1_saying_so_when_records_failed_and_the_run_is_partial(stack: Stack) -> None:
    ids = list(seed(stack.sandbox, "hubspot", "contacts", 150, stack.companies))
    stack.orchestration("contacts", "hs", "contacts")
    # Each of the two batch updates takes one: the failing ids are in whichever is first.
    stack.hubspot.faults.inject(
        "record_failure", count=2, record_ids=ids[3:5], code="INVALID_EMAIL"
    )
    stack.worker("one")

    done = sync(stack, "contacts", "--queue", "--wait", "--json")

    assert done.returncode == 1, (done.stdout, done.stderr, stack.tails())
    run = json.loads(done.stdout)
    assert (run["status"], run["enriched"], run["failed"]) == ("partial", 148, 2)
    see = f"see `segsync runs show {run['run']}`"
    assert one_line(done.stderr) == f"segsync: run {run['run']} partial: 2 records failed: {see}"
    shown = stack.cli.json("runs", "show", str(run["run"]))
    assert [(f["record_id"], f["code"]) for f in shown["failures"]] == [  # type: ignore[index]
        (ids[3], "INVALID_EMAIL"),
        (ids[4], "INVALID_EMAIL"),
    ]


def test_wait_exits_1_with_the_reason_when_the_run_fails(stack: Stack) -> None:
    seed(stack.sandbox, "hubspot", "contacts", 50, stack.companies)
    stack.orchestration("contacts", "hs", "contacts")
    stack.hubspot.remove_property("contacts", "segment_names")  # an admin deleted it
    stack.worker("one")

    done = sync(stack, "contacts", "--queue", "--wait")

    assert done.returncode == 1, (done.stdout, done.stderr, stack.tails())
    reason = one_line(done.stderr)
    assert reason.startswith("segsync: run 1 failed: ") and "segment_names" in reason, reason
    assert stack.run(1).status == "failed" and stack.hubspot.writes == []


def test_wait_exits_1_when_the_run_is_deferred_saying_it_is_not_done(stack: Stack) -> None:
    seed(stack.sandbox, "hubspot", "contacts", 150, stack.companies)
    stack.orchestration("contacts", "hs", "contacts", "--daily-api-budget", "1")
    stack.worker("one")

    done = sync(stack, "contacts", "--queue", "--wait")

    assert done.returncode == 1, (done.stdout, done.stderr, stack.tails())
    reason = one_line(done.stderr)
    assert reason.startswith("segsync: run 1 deferred until ") and ", not done: " in reason
    assert "daily API budget of 1 calls is spent" in reason
    assert stack.run(1).status == "deferred"


def test_wait_gives_up_after_its_timeout_and_the_run_goes_on(stack: Stack) -> None:
    expected = seed(stack.sandbox, "hubspot", "contacts", 120, stack.companies)
    stack.orchestration("contacts", "hs", "contacts")
    # No worker yet: the run cannot end while the command waits.

    done = sync(stack, "contacts", "--queue", "--wait", "--timeout", "1.5", "--json")

    assert done.returncode == 1, (done.stdout, done.stderr)
    assert json.loads(done.stdout)["status"] == "queued"
    assert one_line(done.stderr) == (
        "segsync: run 1 still queued: waiting for a worker after 1.5 s; it goes on: follow it "
        "with `segsync runs show 1`, stop it with `segsync runs cancel 1`"
    )
    stack.worker("late")
    run = stack.finished(1, timeout=BOUND)
    assert run.status == "succeeded", (run.reason, stack.tails())
    assert_each_written_once(stack.sandbox, "hubspot", "contacts", expected)


def test_runs_cancel_stops_a_running_run_at_the_next_batch(stack: Stack) -> None:
    seed(stack.sandbox, "hubspot", "contacts", 1000, stack.companies)
    stack.orchestration("contacts", "hs", "contacts")
    hubspot = stack.hubspot
    updates: list[Request] = []

    def after_the_first(request: Request) -> bool:
        if request.path != UPDATE_CONTACTS:
            return False
        updates.append(request)
        return len(updates) > 1

    # The first batch is written; the second reaches HubSpot and waits there.
    in_flight = Gate(hubspot, after_the_first)
    worker = stack.worker("one", concurrency=1)
    follow = Following(stack, "contacts")

    def second_batch_in_flight() -> bool:
        batches = stack.batches(1)
        return in_flight.waiting == 1 and [b.status for b in batches[:2]] == ["done", "running"]

    wait_until(second_batch_in_flight, BOUND, "batch 1 written, batch 2 in flight", stack.tails)
    said = stack.cli.ok("runs", "cancel", "1").stdout
    in_flight.open()

    assert said.strip() == (
        "run 1 cancelled: 8 batches will not be written; 1 batch being written now will "
        "finish and be counted"
    )
    status, _stdout, stderr = follow.finish()
    assert status == 1
    assert one_line(stderr) == "segsync: run 1 cancelled: cancelled by `segsync runs cancel`"
    # Every write task the worker was sent has run (the cancelled ones returned at once).
    wait_until(
        lambda: finished_tasks(worker, "segsync.write_batch") == 10,
        BOUND,
        "all ten write tasks to end",
        stack.tails,
    )
    batches = stack.batches(1)
    assert [b.status for b in batches] == ["done", "done", *["cancelled"] * 8]
    written = {record_id for b in batches[:2] for record_id, _value in b.updates}
    assert {w.record_id for w in hubspot.writes} == written
    assert len(hubspot.writes) == 200 and len(updates) == 2
    run: SyncRun = stack.run(1)
    # The batch in flight finished and was counted; the run stays cancelled.
    assert (run.status, run.enriched, run.batches_done, run.batches_total) == (
        "cancelled",
        200,
        2,
        10,
    )
    assert re.search(r"\bcancelled\b", stack.cli.ok("runs", "contacts").stdout)
