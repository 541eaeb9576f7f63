"""Reliability through real Celery programs (DESIGN.md §4): two workers and two beats, a worker
killed with SIGKILL mid-run, retryable vendor faults, fatal vendor faults.

Everything is real: `segsync worker` and `segsync beat` child processes, the test run's Redis as
broker and shared rate-limit store, SQLite and PostgreSQL, HTTPS to the sandbox emulators. The
emulators' write logs say which record got which value through which call.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from celery import Celery
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from connectors.sandbox.hubspot import SEGMENT_PROPERTY
from connectors.sandbox.server import Emulator
from models.base import utcnow
from models.orchestrations import Orchestration
from models.runs import SyncBatch, SyncRun
from tests.worker.celery_processes import (
    CeleryProcess,
)
from tests.worker.celery_stack import (
    Stack,
    assert_each_written_once,
    finished_tasks,
    ready,
    wait_until,
)
from tests.worker.test_celery_e2e import field_value, seed

# ---- two workers, two beats ---------------------------------------------------------------------


def test_two_workers_and_two_beats_start_a_due_run_once_within_the_shared_rate_limit(
    stack: Stack,
) -> None:
    hubspot = stack.hubspot
    # HubSpot's own limit (100 requests per rolling 10 s) is also what the workers' shared limiter
    # allows (connectors.ratelimit.vendor_limits), and the workers read no setting that lowers it.
    # So the run is made big enough to need more than 100 calls: 60 pages read and 60 batches
    # written. Four worker processes unthrottled make those calls in a few seconds and HubSpot
    # would answer 429; throttled together through Redis they take just over 10 s and it never has
    # to.
    assert hubspot.requests_per_ten_seconds == 100 and hubspot.window_seconds == 10.0
    expected = seed(stack.sandbox, "hubspot", "contacts", 6000, stack.companies)
    # Fires once a year: the only firing in this test is the one made due below.
    stack.orchestration("yearly", "hs", "contacts", "--schedule", "0 0 1 1 *")
    # A write waits in the shared limiter for up to 30 s (connector_factory.RATE_LIMIT_WAIT) while
    # it holds its batch's lease; the lease must outlast that wait, or the sweeper would hand the
    # batch to a second worker meanwhile (production's lease is 600 s).
    stack.env["SEGSYNC_BATCH_LEASE_SECONDS"] = "60"
    workers = [stack.worker("one", wait=False), stack.worker("two", wait=False)]
    beats = [stack.beat("one", wait=False), stack.beat("two", wait=False)]
    ready(workers, beats)

    with Session(stack.database) as session:
        session.execute(
            update(Orchestration)
            .where(Orchestration.name == "yearly")
            .values(next_run_at=utcnow() - timedelta(minutes=1))
        )
        session.commit()
        orchestration_id = session.scalars(
            select(Orchestration.id).where(Orchestration.name == "yearly")
        ).one()
    # Besides the two beats' own dispatch_due every second, deliver a burst of dispatch_due at
    # once (what two beats plus a redelivery produce), so the four worker processes really race
    # to claim the same firing.
    client = Celery("reliability-test", broker=stack.redis_url)
    try:
        for _ in range(6):
            client.send_task("segsync.dispatch_due", queue="segsync")
    finally:
        client.close()

    def runs() -> list[SyncRun]:
        with Session(stack.database) as session:
            query = select(SyncRun).where(SyncRun.orchestration_id == orchestration_id)
            return list(session.scalars(query.order_by(SyncRun.id)))

    started = wait_until(runs, 30, "the scheduled run to start", stack.tails)[0]
    run = stack.finished(started.id, timeout=90)
    assert run.status == "succeeded", (run.reason, stack.tails())
    assert run.trigger == "schedule"
    assert run.enriched == len(expected) and run.failed == 0
    for beat in beats:
        assert "Sending due task dispatch-due" in beat.output()
    # Exactly one run for that firing: no second run, not even one recorded as skipped.
    assert [(r.id, r.status) for r in runs()] == [(run.id, "succeeded")]
    assert_each_written_once(stack.sandbox, "hubspot", "contacts", expected)

    # The shared limit held: HubSpot never had to refuse a call, though the run needed more calls
    # than its window allows.
    statuses = Counter(hubspot.statuses)
    assert statuses[429] == 0, statuses
    assert sum(statuses.values()) > hubspot.requests_per_ten_seconds, statuses


# ---- a worker killed mid-run --------------------------------------------------------------------


def test_a_worker_killed_mid_run_leaves_a_run_that_a_new_worker_completes(stack: Stack) -> None:
    hubspot = stack.hubspot
    expected = seed(stack.sandbox, "hubspot", "contacts", 1500, stack.companies)
    stack.orchestration("killed", "hs", "contacts")
    # The fourth batch update reaches HubSpot and stops there until released: killed now, the
    # worker never learns that this batch's write lands.
    hubspot.faults.inject("hold", after=3, path="/batch/update$")
    doomed = stack.worker("doomed", concurrency=1)
    run_id = stack.queue("killed")

    def mid_write() -> SyncBatch | None:
        if hubspot.held == 0:
            return None
        batches = stack.batches(run_id)
        running = [b for b in batches if b.status == "running"]
        return running[0] if len(running) == 1 else None

    interrupted = wait_until(mid_write, 60, "a fourth batch being written", stack.tails)
    doomed.kill()  # the whole process group, with no chance to clean up or acknowledge
    at_kill = stack.batches(run_id)
    assert len(at_kill) == 15
    assert sum(b.status == "done" for b in at_kill) == 3
    # The write the dead worker sent still lands: its batch's records now hold their values.
    hubspot.release()
    wait_until(lambda: hubspot.updates_in_flight == 0, 30, "the interrupted write to land")
    landed = {w.record_id for w in hubspot.writes}
    assert {record_id for record_id, _value in interrupted.updates} <= landed

    # A new worker takes the queued batches; a beat's sweeper re-sends the one whose lease the
    # dead worker still holds once it expires, and any whose message the dead worker had taken.
    ready([stack.worker("rescuer", wait=False)], [stack.beat("sweeper", wait=False)])
    run = stack.finished(run_id, timeout=60)
    assert run.status == "succeeded", (run.reason, stack.tails())
    assert (run.batches_done, run.batches_total) == (15, 15)
    assert run.enriched == len(expected) and run.failed == 0
    batches = {b.id: b for b in stack.batches(run_id)}
    assert all(b.status == "done" for b in batches.values())
    assert batches[interrupted.id].attempts == 2  # taken again after the lease expired
    assert_each_written_once(stack.sandbox, "hubspot", "contacts", expected)


def test_a_worker_killed_while_planning_leaves_a_run_that_is_planned_again(
    stack: Stack,
) -> None:
    hubspot = stack.hubspot
    expected = seed(stack.sandbox, "hubspot", "contacts", 1500, stack.companies)
    stack.orchestration("replanned", "hs", "contacts")
    # Planning may take 15 s, time enough to see it stopped below and kill its worker; the
    # sweeper plans the run anew once its planner is surely gone
    # (worker.task_endings.planning_lease).
    stack.env["SEGSYNC_PLAN_TIME_LIMIT_SECONDS"] = "15"
    # The fourth page of the read (15 pages) stops at HubSpot until released: the kill lands in
    # the middle of the read.
    hubspot.faults.inject("hold", after=3, path="^/crm/v3/objects/contacts$", method="GET")
    doomed = stack.worker("doomed", concurrency=1)
    run_id = stack.queue("replanned")

    wait_until(lambda: hubspot.held == 1, 60, "the fourth page of the read", stack.tails)
    doomed.kill()
    assert stack.run(run_id).status == "running"
    assert stack.batches(run_id) == []  # killed before anything was planned
    hubspot.release()

    ready([stack.worker("rescuer", wait=False)], [stack.beat("sweeper", wait=False)])
    run = stack.finished(run_id, timeout=120)
    assert run.status == "succeeded", (run.reason, stack.tails())
    assert run.plan_attempts == 2
    assert run.enriched == len(expected) and run.failed == 0
    assert_each_written_once(stack.sandbox, "hubspot", "contacts", expected)


def test_planning_past_its_time_limit_fails_the_run_saying_so(stack: Stack) -> None:
    hubspot = stack.hubspot
    seed(stack.sandbox, "hubspot", "contacts", 1500, stack.companies)
    stack.orchestration("slow", "hs", "contacts")
    stack.env["SEGSYNC_PLAN_TIME_LIMIT_SECONDS"] = "3"
    hubspot.latency = 0.5  # 15 pages: 7.5 s of reading
    stack.worker("patient", concurrency=1)
    run_id = stack.queue("slow")

    run = stack.finished(run_id, timeout=30)

    assert run.status == "failed", stack.tails()
    assert "planning took longer than 3 s" in (run.reason or "")
    assert "SEGSYNC_PLAN_TIME_LIMIT_SECONDS" in (run.reason or "")
    assert stack.batches(run_id) == [] and hubspot.writes == []


# ---- retryable faults ---------------------------------------------------------------------------


def test_retryable_faults_end_in_a_complete_run(stack: Stack) -> None:
    hubspot, salesforce = stack.hubspot, stack.salesforce
    # HubSpot's 429 says when to retry through its interval header: 1 s here instead of 10 s.
    hubspot.window_seconds = 1.0
    oauth = stack.sandbox.describe()["hubspot"]["oauth"]
    # OAuth, because HubSpot's private-app tokens never expire (its expire_token fault only
    # affects OAuth access tokens).
    stack.cli.ok(
        "connections",
        "add",
        "hs-oauth",
        "--system",
        "hubspot",
        "--set",
        f"base_url={hubspot.base_url}",
        "--set",
        f"ca_bundle={stack.sandbox.describe()['ca_bundle']}",
        "--set",
        f"client_id={oauth['client_id']}",
        "--secret",
        f"client_secret={oauth['client_secret']}",
        "--secret",
        f"refresh_token={oauth['refresh_token']}",
    )
    expected_hs = seed(stack.sandbox, "hubspot", "contacts", 800, stack.companies)
    expected_sf = seed(stack.sandbox, "salesforce", "Lead", 1000, stack.companies)
    stack.orchestration("hs faults", "hs-oauth", "contacts")
    stack.orchestration("sf faults", "sf", "Lead")
    # One worker process: its calls reach each emulator one at a time, so each fault meets a known
    # call (an expired token meets a call that carries one, not the process's first token request).
    worker = stack.worker("faults", concurrency=1)
    hubspot.reset()
    salesforce.reset()

    # Faults that meet the runs' first calls (planning: field lookup, reads).
    hubspot.faults.inject("rate_limit", count=2)
    salesforce.faults.inject("server_error", count=1)
    salesforce.faults.inject("expire_token")  # the session dies: the connector logs in again

    # Faults that meet the writes: armed now, each lets its run's first write call through and
    # meets the write calls after it (retries included), however long any call takes. Reads and
    # token requests neither meet nor count for them.
    def on_hubspot_writes(kind: str, count: int = 1, **params: Any) -> None:
        hubspot.faults.inject(kind, count, after=1, path="/batch/update$", **params)

    def on_salesforce_writes(kind: str, count: int = 1, **params: Any) -> None:
        path = "/composite/sobjects$"
        salesforce.faults.inject(kind, count, after=1, path=path, method="PATCH", **params)

    on_hubspot_writes("rate_limit", count=3)  # a burst of TEN_SECONDLY_ROLLING 429s
    on_hubspot_writes("server_error", count=2, status=502)
    on_hubspot_writes("drop_connection")
    on_hubspot_writes("expire_token")  # OAuth access tokens expire: refresh and resend
    on_salesforce_writes("rate_limit")  # REQUEST_LIMIT_EXCEEDED (concurrent requests)
    on_salesforce_writes("server_error", count=1, status=500)
    on_salesforce_writes("drop_connection")
    on_salesforce_writes("expire_token")
    runs = {"hubspot": stack.queue("hs faults"), "salesforce": stack.queue("sf faults")}

    for system, run_id in runs.items():
        run = stack.finished(run_id, timeout=120)
        assert run.status == "succeeded", (system, run.reason, stack.tails())
        assert run.failed == 0, system
    # Every injected fault was met...
    for emulator in (hubspot, salesforce):
        left = [(f.kind, f.count, f.path) for f in emulator.faults.pending()]
        assert not left, f"{emulator.name} faults never met: {left}"
    statuses = Counter(hubspot.statuses)
    assert statuses[429] == 5 and statuses[401] >= 1, statuses
    # ...retried by the worker rather than absorbed somewhere unseen...
    assert "Retry in" in worker.output()
    # ...and nothing was lost or written twice.
    assert_each_written_once(stack.sandbox, "hubspot", "contacts", expected_hs)
    assert_each_written_once(stack.sandbox, "salesforce", "Lead", expected_sf)


# ---- fatal faults -------------------------------------------------------------------------------


def _fails_after_two_batches(
    stack: Stack,
    worker: CeleryProcess,
    emulator: Emulator,
    run_id: int,
    repair: Callable[[], None] | None = None,
) -> SyncRun:
    """The run, whose third write call meets a fatal fault armed before it was queued, fails with
    two batches written, and no call is made after."""
    run = stack.finished(run_id, timeout=90)
    assert run.status == "failed", (run.status, run.reason, stack.tails())
    with emulator.lock:
        writes, calls = len(emulator.writes), sum(emulator.calls.values())
    if repair is not None:
        # The vendor would accept writes again: whatever segsync still sends would now land.
        repair()
    # Wait until the worker has taken every batch's message (each returns at once now).
    total = run.batches_total
    wait_until(
        lambda: finished_tasks(worker, "segsync.write_batch") >= total,
        60,
        f"all {total} batch tasks",
        stack.tails,
    )
    with emulator.lock:
        assert (len(emulator.writes), sum(emulator.calls.values())) == (writes, calls)
    assert emulator.faults.pending() == []
    batches = stack.batches(run_id)
    done = [b for b in batches if b.status == "done"]
    assert len(done) == 2 < total
    assert writes == sum(len(b.updates) for b in done)
    return run


def _reason_shown(stack: Stack, run: SyncRun, secrets: list[str]) -> str:
    """The run's reason, as `runs show` prints it; no secret anywhere a person would look."""
    assert run.reason
    shown = stack.cli.json("runs", "show", str(run.id))
    assert isinstance(shown, dict)
    assert (shown["status"], shown["reason"]) == ("failed", run.reason)
    text = stack.cli.ok("runs", "show", str(run.id)).stdout
    assert "failed" in text and run.reason.splitlines()[0][:60] in text
    for secret in secrets:
        assert secret not in text and secret not in run.reason
        for process in stack.processes:
            assert secret not in process.output(), process.log.name
    return run.reason


def test_a_field_deleted_mid_run_fails_the_run_and_nothing_more_is_written(stack: Stack) -> None:
    hubspot = stack.hubspot
    expected = seed(stack.sandbox, "hubspot", "contacts", 800, stack.companies)
    stack.orchestration("hs fatal", "hs", "contacts")
    worker = stack.worker("fatal", concurrency=1)
    # An admin deletes the field just before the third batch update arrives.
    hubspot.faults.inject(
        "remove_property",
        after=2,
        path="/batch/update$",
        object_type="contacts",
        name=SEGMENT_PROPERTY,
    )
    run_id = stack.queue("hs fatal")
    run = _fails_after_two_batches(
        stack,
        worker,
        hubspot,
        run_id,
        repair=lambda: hubspot.restore_property("contacts", SEGMENT_PROPERTY),
    )
    reason = _reason_shown(stack, run, [hubspot.describe()["access_token"]])
    assert reason == "field segment_names not found on contacts"
    # What was written before the failure holds its value; the rest still holds the old one.
    written = {w.record_id for w in hubspot.writes}
    for record_id, value in expected.items():
        now = field_value(stack.sandbox, "hubspot", "contacts", record_id)
        assert now == (value if record_id in written else "Stale"), record_id


def test_credentials_revoked_mid_run_fail_the_run_and_nothing_more_is_sent(stack: Stack) -> None:
    salesforce = stack.salesforce
    described = stack.sandbox.describe()
    token = described["salesforce"]["access_token"]
    # A session given outright (auth=session): when Salesforce expires it, segsync cannot log in
    # again, so the run must stop rather than retry.
    stack.cli.ok(
        "connections",
        "add",
        "sf-session",
        "--system",
        "salesforce",
        "--set",
        "auth=session",
        "--set",
        f"instance_url={salesforce.base_url}",
        "--set",
        f"ca_bundle={described['ca_bundle']}",
        "--secret",
        f"access_token={token}",
    )
    seed(stack.sandbox, "salesforce", "Lead", 1000, stack.companies)
    stack.orchestration("sf fatal", "sf-session", "Lead")
    worker = stack.worker("fatal", concurrency=1)
    # Salesforce ends the session just before the third sObject Collections update.
    salesforce.faults.inject("expire_token", after=2, path="/composite/sobjects$", method="PATCH")
    run_id = stack.queue("sf fatal")
    run = _fails_after_two_batches(stack, worker, salesforce, run_id)
    reason = _reason_shown(stack, run, [token, described["salesforce"]["password"]])
    assert "INVALID_SESSION_ID" in reason and "cannot renew" in reason, reason
