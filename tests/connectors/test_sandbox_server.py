"""connectors.sandbox.server.CallCounts: the sliding window and daily total emulators limit."""

from __future__ import annotations

import datetime as dt

from connectors.sandbox.server import CallCounts


def test_forget_before_drops_the_moments_up_to_the_windows_start() -> None:
    counts = CallCounts()
    counts.moments.extend([1.0, 2.0, 3.0])
    counts.daily = 3

    counts.forget_before(2.0)

    assert (list(counts.moments), counts.daily) == ([3.0], 3)


def test_a_new_utc_day_starts_the_daily_total_over() -> None:
    counts = CallCounts(daily=7, day=dt.date(2020, 1, 1))

    counts.forget_before(0.0)

    assert (counts.daily, counts.day) == (0, dt.datetime.now(dt.UTC).date())


def test_clear_forgets_every_call() -> None:
    counts = CallCounts(daily=2)
    counts.moments.append(5.0)

    counts.clear()

    assert (list(counts.moments), counts.daily) == ([], 0)
