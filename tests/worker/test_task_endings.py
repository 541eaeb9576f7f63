"""worker.task_endings: how long a planner is given before it is presumed gone."""

from __future__ import annotations

from datetime import timedelta

from worker.health import run_limits
from worker.settings import Settings
from worker.task_endings import planning_lease


def test_the_planning_lease_is_the_limit_and_twice_the_kill_margin() -> None:
    # The margin is a tenth of the limit, at least 2 s and at most a minute.
    assert planning_lease(10) == timedelta(seconds=10 + 2 * 2)
    assert planning_lease(300) == timedelta(seconds=300 + 2 * 30)
    assert planning_lease(1800) == timedelta(seconds=1800 + 2 * 60)


def test_health_allows_planning_the_sweepers_lease() -> None:
    settings = Settings(plan_time_limit_seconds=300)
    assert run_limits(settings).planning_lease == timedelta(seconds=360)
