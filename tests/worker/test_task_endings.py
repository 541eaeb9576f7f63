"""worker.task_endings: how long a planner is given before it is presumed gone, and why a
task's run failed."""

from __future__ import annotations

from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded

from worker.health import run_limits
from worker.settings import Settings
from worker.task_endings import TaskWork, failure_reason, planning_lease


def test_the_planning_lease_is_the_limit_and_twice_the_kill_margin() -> None:
    # The margin is a tenth of the limit, at least 2 s and at most a minute.
    assert planning_lease(10) == timedelta(seconds=10 + 2 * 2)
    assert planning_lease(300) == timedelta(seconds=300 + 2 * 30)
    assert planning_lease(1800) == timedelta(seconds=1800 + 2 * 60)


def test_health_allows_planning_the_sweepers_lease() -> None:
    settings = Settings(plan_time_limit_seconds=300)
    assert run_limits(settings).planning_lease == timedelta(seconds=360)


PLANNING = TaskWork(1, "planning", "SEGSYNC_PLAN_TIME_LIMIT_SECONDS", 3.0)


def _raised_while_handling(first: BaseException, second: BaseException) -> BaseException:
    try:
        try:
            raise first
        except BaseException:
            raise second  # noqa: B904 - the implicit context is what a failed rollback leaves
    except BaseException as raised:
        return raised


def test_the_soft_limit_is_the_reason_even_when_a_rollback_failed_after_it() -> None:
    # The limit's signal landed inside a query; the rollback then found the connection busy.
    busy = RuntimeError("sending query failed: another command is already in progress")
    raised = _raised_while_handling(SoftTimeLimitExceeded(), busy)
    assert failure_reason(raised, PLANNING).startswith("planning took longer than 3 s; raise ")


def test_an_error_with_no_time_limit_behind_it_is_unexpected() -> None:
    raised = _raised_while_handling(ValueError("bad page"), RuntimeError("rollback failed"))
    assert failure_reason(raised, PLANNING) == (
        "planning failed unexpectedly: RuntimeError: rollback failed"
    )
