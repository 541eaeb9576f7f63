"""Every way a run's Celery task can end leaves the run `failed` with a one-line reason, never
`queued` or `running` with nobody working on it, and the orchestration's next trigger runs.

Real `segsync worker` processes, the test run's Redis, SQLite and PostgreSQL, HTTPS to the HubSpot
emulator, whose faults fire on the calls they name (every call, or every batch update).
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

from sqlalchemy import Engine

from models.runs import SyncRun
from tests.worker.celery_processes import CeleryProcess
from tests.worker.celery_stack import Stack, assert_each_written_once, wait_until
from tests.worker.test_celery_e2e import seed
from worker.sandbox_connections import sandbox_connection
from worker.tasks import MAX_BATCH_ATTEMPTS, MAX_PLAN_RETRIES

BATCH_UPDATE = "/batch/update$"
# Generous: the machine running these tests is loaded.
RUN_ENDS = 120.0


def failed_with(stack: Stack, run_id: int) -> str:
    """Wait for the run to end; it failed, and `runs show` gives its one-line reason."""
    run = stack.finished(run_id, timeout=RUN_ENDS)
    assert run.status == "failed", (run.status, run.reason, stack.tails())
    reason = run.reason or ""
    assert reason and "\n" not in reason and "Traceback" not in reason, reason
    shown = stack.cli.json("runs", "show", str(run_id))
    assert isinstance(shown, dict)
    assert (shown["status"], shown["reason"]) == ("failed", reason)
    assert reason in stack.cli.ok("runs", "show", str(run_id)).stdout
    return reason


def next_trigger_succeeds(stack: Stack, orchestration: str) -> SyncRun:
    """The orchestration's next trigger is queued (not skipped behind the failed run) and runs."""
    run_id = stack.queue(orchestration)  # refuses a run recorded as skipped
    run = stack.finished(run_id, timeout=RUN_ENDS)
    assert run.status == "succeeded", (run.status, run.reason, stack.tails())
    return run


def pool_process(worker: CeleryProcess) -> int:
    """The pid of the one pool process (concurrency 1) of a running worker."""

    def children() -> list[int] | None:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # gone meanwhile
            # pid (comm) state ppid ...: comm may hold spaces, so read after its closing ')'.
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == worker.process.pid:
                found.append(int(entry.name))
        return found if len(found) == 1 else None

    return wait_until(children, 60, "the worker's pool process")[0]


def rename_table(database: Engine, old: str, new: str) -> None:
    with database.begin() as connection:
        connection.exec_driver_sql(f"ALTER TABLE {old} RENAME TO {new}")


# ---- retries spent ------------------------------------------------------------------------------


def test_planning_refused_past_its_retries_fails_the_run_and_the_next_trigger_runs(
    stack: Stack,
) -> None:
    hubspot = stack.hubspot
    hubspot.window_seconds = 1.0  # its 429 says: retry in 1 s
    expected = seed(stack.sandbox, "hubspot", "contacts", 300, stack.companies)
    stack.orchestration("refused", "hs", "contacts")
    stack.worker("refusals", concurrency=1)
    hubspot.reset()
    # Every call is refused: each planning attempt meets a 429 at its first call.
    hubspot.faults.inject("rate_limit", count=10_000)

    reason = failed_with(stack, stack.queue("refused"))

    assert reason.startswith(f"gave up planning after {MAX_PLAN_RETRIES} retries: "), reason
    assert "hubspot rate limit TEN_SECONDLY_ROLLING" in reason, reason
    # Celery's own default (3 retries) did not cut in: the task's max_retries is the cap.
    assert Counter(hubspot.statuses) == {429: MAX_PLAN_RETRIES + 1}
    hubspot.faults.clear()
    next_trigger_succeeds(stack, "refused")
    assert_each_written_once(stack.sandbox, "hubspot", "contacts", expected)


def test_writes_refused_past_the_attempt_cap_fail_the_run_and_the_next_trigger_runs(
    stack: Stack,
) -> None:
    hubspot = stack.hubspot
    hubspot.window_seconds = 1.0
    expected = seed(stack.sandbox, "hubspot", "contacts", 250, stack.companies)
    stack.orchestration("unwritable", "hs", "contacts")
    stack.worker("refusals", concurrency=1)
    hubspot.reset()
    # Planning reads freely; every batch update is refused.
    hubspot.faults.inject("rate_limit", count=10_000, path=BATCH_UPDATE)
    run_id = stack.queue("unwritable")

    reason = failed_with(stack, run_id)

    attempts = f"still failing after {MAX_BATCH_ATTEMPTS} attempts: hubspot rate limit"
    assert reason.startswith("batch ") and "/3 " + attempts in reason, reason
    batches = stack.batches(run_id)
    assert len(batches) == 3 and hubspot.writes == []
    given_up = [b for b in batches if b.status == "failed"]
    assert len(given_up) == 1 and given_up[0].attempts == MAX_BATCH_ATTEMPTS
    hubspot.faults.clear()
    next_trigger_succeeds(stack, "unwritable")
    assert_each_written_once(stack.sandbox, "hubspot", "contacts", expected)


# ---- an unexpected exception --------------------------------------------------------------------


def test_an_unexpected_exception_fails_the_run_and_the_next_trigger_runs(stack: Stack) -> None:
    seed(stack.sandbox, "hubspot", "contacts", 250, stack.companies)
    stack.orchestration("broken", "hs", "contacts")
    stack.worker("broken", concurrency=1)
    # A database the code does not expect (as one migrated by hand): storing what the planner
    # read of the records raises an error no task handles.
    rename_table(stack.database, "record_states", "record_states_elsewhere")
    run_id = stack.queue("broken")

    reason = failed_with(stack, run_id)

    assert reason.startswith("planning failed unexpectedly: "), reason
    assert " failed unexpectedly: " in reason and "record_states" in reason, reason
    assert any(error in reason for error in ("ProgrammingError", "OperationalError")), reason
    rename_table(stack.database, "record_states_elsewhere", "record_states")
    run = next_trigger_succeeds(stack, "broken")
    assert run.enriched + run.unchanged == 250


# ---- a secret missing from the worker's environment ---------------------------------------------


def test_a_secret_missing_from_the_worker_environment_fails_the_run_saying_which(
    stack: Stack,
) -> None:
    hubspot = stack.hubspot
    variable = "SEGSYNC_TEST_ENDINGS_HUBSPOT_TOKEN"
    settings, secrets = sandbox_connection("hubspot", stack.sandbox.describe())
    token = secrets["access_token"]
    # The operator's shell has it (creating the orchestration checks the field with it)...
    stack.cli.env[variable] = token
    stack.cli.ok(
        "connections", "add", "hs-env", "--system", "hubspot",
        *(f"--set={key}={value}" for key, value in settings.items()),
        "--secret-env", f"access_token={variable}",
    )  # fmt: skip
    expected = seed(stack.sandbox, "hubspot", "contacts", 150, stack.companies)
    stack.orchestration("from env", "hs-env", "contacts")
    # ...the worker's environment does not.
    stack.env.pop(variable, None)
    without = stack.worker("secretless", concurrency=1)
    hubspot.reset()

    reason = failed_with(stack, stack.queue("from env"))

    assert reason.startswith("on worker secretless@"), reason
    assert f"reads secret access_token from ${variable}, which is not set" in reason, reason
    assert sum(hubspot.calls.values()) == 0  # nothing was sent without credentials
    for process in stack.processes:
        assert token not in process.output()
    # A worker whose environment has it takes the next trigger.
    without.stop()
    stack.env[variable] = token
    stack.worker("with-secret", concurrency=1)
    next_trigger_succeeds(stack, "from env")
    assert_each_written_once(stack.sandbox, "hubspot", "contacts", expected)


# ---- a pool process killed ----------------------------------------------------------------------


def test_a_pool_process_killed_mid_write_does_not_fail_the_run_its_batch_comes_back(
    stack: Stack,
) -> None:
    hubspot = stack.hubspot
    expected = seed(stack.sandbox, "hubspot", "contacts", 300, stack.companies)
    stack.orchestration("oom", "hs", "contacts")
    worker = stack.worker("oom", concurrency=1)
    stack.beat("sweeper")
    hubspot.write_latency = 1.0
    run_id = stack.queue("oom")
    wait_until(lambda: hubspot.updates_in_flight > 0, 60, "a batch update", stack.tails)
    # Only the pool process dies (as by the kernel's OOM killer); the worker's main process sees
    # its task lost (WorkerLostError), which is not a way the task ended: the message goes back
    # to the broker and the batch is written once its lease has passed.
    os.kill(pool_process(worker), signal.SIGKILL)

    run = stack.finished(run_id, timeout=RUN_ENDS)

    assert run.status == "succeeded", (run.status, run.reason, stack.tails())
    assert run.reason is None and run.failed == 0
    assert "WorkerLostError" in worker.output()
    assert max(b.attempts for b in stack.batches(run_id)) == 2
    assert_each_written_once(stack.sandbox, "hubspot", "contacts", expected)


# ---- time limits --------------------------------------------------------------------------------


def test_a_batch_write_past_its_time_limit_fails_the_run_saying_so(stack: Stack) -> None:
    hubspot = stack.hubspot
    seed(stack.sandbox, "hubspot", "contacts", 200, stack.companies)
    stack.orchestration("slow writes", "hs", "contacts")
    # The worker's own setting rules, whatever the shell that queues the run has.
    stack.env["SEGSYNC_BATCH_TIME_LIMIT_SECONDS"] = "3"
    stack.worker("patient", concurrency=1)
    del stack.env["SEGSYNC_BATCH_TIME_LIMIT_SECONDS"]
    hubspot.write_latency = 8.0  # each batch update takes 8 s
    run_id = stack.queue("slow writes")

    reason = failed_with(stack, run_id)

    assert reason == (
        "writing batch 1/2 took longer than 3 s; raise SEGSYNC_BATCH_TIME_LIMIT_SECONDS"
    ), reason
    hubspot.write_latency = 0.0
    wait_until(lambda: hubspot.updates_in_flight == 0, 60, "the slow update to end")
    next_trigger_succeeds(stack, "slow writes")


def test_a_batch_write_killed_at_its_hard_time_limit_fails_the_run_saying_so(
    stack: Stack,
) -> None:
    hubspot = stack.hubspot
    seed(stack.sandbox, "hubspot", "contacts", 100, stack.companies)
    stack.orchestration("stuck writes", "hs", "contacts")
    stack.env["SEGSYNC_BATCH_TIME_LIMIT_SECONDS"] = "3"  # killed 2 s later
    # Renewed every 20 s: no lease renewal is under way when the pool process is stopped.
    stack.env["SEGSYNC_BATCH_LEASE_SECONDS"] = "60"
    worker = stack.worker("stuck", concurrency=1)
    stack.beat("sweeper")  # nothing it does brings the failed run back
    hubspot.write_latency = 10.0
    run_id = stack.queue("stuck writes")
    # The pool process is stopped in the middle of its write, as if stuck in code that never
    # returns to Python: it cannot act on the soft limit, so only the kill ends it.
    wait_until(lambda: hubspot.updates_in_flight > 0, 60, "the batch update", stack.tails)
    child = pool_process(worker)
    os.kill(child, signal.SIGSTOP)

    reason = failed_with(stack, run_id)

    assert reason == (
        "writing batch 1/1 did not stop at its time limit of 3 s and was killed after 5 s; "
        "raise SEGSYNC_BATCH_TIME_LIMIT_SECONDS"
    ), reason
    wait_until(lambda: not Path(f"/proc/{child}").exists(), 60, "the stopped process to go")
    hubspot.write_latency = 0.0
    wait_until(lambda: hubspot.updates_in_flight == 0, 60, "the stuck update to end")
    next_trigger_succeeds(stack, "stuck writes")
    assert stack.run(run_id).status == "failed"  # the sweeper left it alone


def test_planning_killed_at_its_hard_time_limit_fails_the_run_saying_so(stack: Stack) -> None:
    hubspot = stack.hubspot
    seed(stack.sandbox, "hubspot", "contacts", 300, stack.companies)
    stack.orchestration("stuck reads", "hs", "contacts")
    stack.env["SEGSYNC_PLAN_TIME_LIMIT_SECONDS"] = "3"  # killed 2 s later
    worker = stack.worker("stuck", concurrency=1)
    del stack.env["SEGSYNC_PLAN_TIME_LIMIT_SECONDS"]  # the worker's setting rules
    hubspot.reset()
    hubspot.latency = 10.0  # every answer takes 10 s
    run_id = stack.queue("stuck reads")

    def waiting_for_hubspot() -> bool:
        return stack.run(run_id).status == "running" and sum(hubspot.calls.values()) > 0

    wait_until(waiting_for_hubspot, 60, "planning's first call", stack.tails)
    child = pool_process(worker)
    os.kill(child, signal.SIGSTOP)

    reason = failed_with(stack, run_id)

    assert reason == (
        "planning did not stop at its time limit of 3 s and was killed after 5 s; "
        "raise SEGSYNC_PLAN_TIME_LIMIT_SECONDS or narrow the orchestration's scope"
    ), reason
    assert stack.batches(run_id) == []
    wait_until(lambda: not Path(f"/proc/{child}").exists(), 60, "the stopped process to go")
    hubspot.latency = 0.0
    next_trigger_succeeds(stack, "stuck reads")
