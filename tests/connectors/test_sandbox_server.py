"""connectors.sandbox.server.CallCounts: the sliding window and daily total emulators limit."""

from __future__ import annotations

import datetime as dt

import pytest

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


def test_an_emulator_takes_its_settings_by_keyword_over_the_vendors_values() -> None:
    from connectors.sandbox.hubspot import HubSpotEmulator
    from connectors.sandbox.marketo import MarketoEmulator

    hubspot = HubSpotEmulator(records=4, requests_per_ten_seconds=7, leads_enabled=False)
    default = HubSpotEmulator()

    assert (hubspot.requests_per_ten_seconds, hubspot.secondly_limit) == (7, 7)
    assert (default.requests_per_ten_seconds, default.daily_limit) == (100, 250_000)
    assert hubspot.leads_enabled is False and default.leads_enabled is True
    assert hubspot.seeded.numbers and not default.seeded.numbers
    # Marketo sleeps inside its concurrency count, not before the call as the server would.
    marketo = MarketoEmulator(latency=0.2)
    assert (marketo.latency, marketo.response_seconds) == (0.0, 0.2)


def test_an_unknown_setting_is_refused_naming_the_ones_there_are() -> None:
    from connectors.sandbox.pardot import PardotEmulator

    with pytest.raises(TypeError) as refused:
        PardotEmulator(max_concurent=3)

    assert str(refused.value) == (
        "PardotEmulator has no setting 'max_concurent' (its settings: max_concurrent, "
        "daily_limit, page_token_record_limit, import_polls, import_batches_per_day)"
    )


def test_record_of_an_object_the_emulator_does_not_hold_is_a_key_error() -> None:
    from connectors.sandbox.marketo import MarketoEmulator

    marketo = MarketoEmulator(records=2)

    assert marketo.record("leads", "1")["id"] == 1
    with pytest.raises(KeyError):
        marketo.record("contacts", "1")
