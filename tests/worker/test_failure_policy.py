"""worker.failure_policy: each decision a connector error leads to, for the Celery tasks and for
the foreground run, in planning and in writing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from connectors.errors import (
    ConnectorError,
    DailyQuotaError,
    FatalError,
    RecordError,
    RetryableError,
)
from worker.failure_policy import (
    FOREGROUND,
    MAX_BATCH_ATTEMPTS,
    MAX_PLAN_RETRIES,
    TASK_PLANNING,
    TASK_WRITING,
    Defer,
    FailBatch,
    FailRun,
    Limits,
    Phase,
    Retry,
    budget_spent,
    decide,
    next_utc_day,
)

NOW = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)
MIDNIGHT = datetime(2026, 3, 15, tzinfo=UTC)
EVERY_LIMITS = [TASK_PLANNING, TASK_WRITING, FOREGROUND]


def test_the_next_utc_day_begins_at_midnight() -> None:
    assert next_utc_day(NOW) == MIDNIGHT
    assert next_utc_day(MIDNIGHT) == datetime(2026, 3, 16, tzinfo=UTC)
    assert next_utc_day(datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)) == datetime(
        2027, 1, 1, tzinfo=UTC
    )


@pytest.mark.parametrize("phase", list(Phase))
@pytest.mark.parametrize("limits", EVERY_LIMITS)
def test_a_spent_daily_quota_defers_the_run_to_the_next_utc_day(
    phase: Phase, limits: Limits
) -> None:
    error = DailyQuotaError("hubspot daily limit reached")
    # Whatever the attempt: waiting for the quota is no retry.
    for attempt in (1, limits.attempts, limits.attempts + 3):
        assert decide(error, phase, attempt, limits, now=NOW) == Defer(
            MIDNIGHT, "hubspot daily limit reached"
        )


@pytest.mark.parametrize("phase", list(Phase))
@pytest.mark.parametrize("limits", EVERY_LIMITS)
@pytest.mark.parametrize(
    "error",
    [
        FatalError("salesforce INVALID_FIELD: No such column 'Nope__c'"),
        ConnectorError("marketo 1003: unexpected answer"),
        RecordError("hubspot INVALID_EMAIL"),
    ],
)
def test_any_other_connector_error_fails_the_run_with_its_reason_at_once(
    error: ConnectorError, phase: Phase, limits: Limits
) -> None:
    assert decide(error, phase, 1, limits, now=NOW) == FailRun(str(error))


@pytest.mark.parametrize("phase", list(Phase))
@pytest.mark.parametrize("limits", EVERY_LIMITS)
def test_a_refusal_is_retried_after_the_vendors_wait(phase: Phase, limits: Limits) -> None:
    error = RetryableError("hubspot rate limit", retry_after=7.5)
    for attempt in range(1, limits.attempts):
        assert decide(error, phase, attempt, limits) == Retry(7.5)


@pytest.mark.parametrize("phase", list(Phase))
@pytest.mark.parametrize("limits", EVERY_LIMITS)
def test_the_vendors_wait_is_capped(phase: Phase, limits: Limits) -> None:
    error = RetryableError("pardot 66: daily export limit, retry later", retry_after=3600)
    assert decide(error, phase, 1, limits) == Retry(60.0)


@pytest.mark.parametrize("phase", list(Phase))
def test_the_tasks_back_off_from_one_second_and_the_foreground_from_two(phase: Phase) -> None:
    error = RetryableError("salesforce 503")  # no Retry-After
    waits = [decide(error, phase, attempt, TASK_WRITING) for attempt in range(1, 8)]
    assert waits == [Retry(w) for w in (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0)]
    waits = [
        decide(error, phase, attempt, replace(FOREGROUND, attempts=8)) for attempt in range(1, 8)
    ]
    assert waits == [Retry(w) for w in (2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0)]


def test_a_long_backoff_stays_capped_and_does_not_overflow() -> None:
    error = RetryableError("salesforce 503")
    many = Limits(attempts=10_000, max_wait=60.0, first_wait=1.0, tasks=True)
    assert decide(error, Phase.WRITING, 5_000, many) == Retry(60.0)


def test_a_plan_refused_past_its_retries_fails_the_run_in_the_tasks() -> None:
    error = RetryableError("hubspot rate limit")
    assert TASK_PLANNING.attempts == MAX_PLAN_RETRIES + 1
    last_retry = decide(error, Phase.PLANNING, MAX_PLAN_RETRIES, TASK_PLANNING)
    assert isinstance(last_retry, Retry)
    assert decide(error, Phase.PLANNING, MAX_PLAN_RETRIES + 1, TASK_PLANNING) == FailRun(
        f"gave up planning after {MAX_PLAN_RETRIES} retries: hubspot rate limit"
    )


def test_a_batch_refused_at_its_last_attempt_fails_the_run_and_its_records_in_the_tasks() -> None:
    error = RetryableError("hubspot rate limit", retry_after=1.0)
    assert TASK_WRITING.attempts == MAX_BATCH_ATTEMPTS
    before_last = decide(error, Phase.WRITING, MAX_BATCH_ATTEMPTS - 1, TASK_WRITING, which="b")
    assert before_last == Retry(1.0)
    assert decide(
        error, Phase.WRITING, MAX_BATCH_ATTEMPTS, TASK_WRITING, which="batch 2/3"
    ) == FailBatch(
        f"batch 2/3 still failing after {MAX_BATCH_ATTEMPTS} attempts: hubspot rate limit"
    )


@pytest.mark.parametrize("phase", list(Phase))
def test_the_foreground_gives_up_after_its_attempts_and_fails_only_the_run(phase: Phase) -> None:
    error = RetryableError("marketo 606: rate limit")
    limits = replace(FOREGROUND, attempts=3)
    assert [decide(error, phase, attempt, limits) for attempt in (1, 2)] == [
        Retry(2.0),
        Retry(4.0),
    ]
    assert decide(error, phase, 3, limits) == FailRun(
        "gave up after 3 attempts: marketo 606: rate limit"
    )


def test_a_spent_budget_defers_the_run_to_the_next_utc_day_saying_which_budget() -> None:
    assert budget_spent(250, NOW) == Defer(MIDNIGHT, "daily API budget of 250 calls is spent")


def test_without_a_time_given_the_deferral_is_to_the_coming_midnight() -> None:
    before = datetime.now(UTC)
    deferral = decide(DailyQuotaError("eloqua quota"), Phase.WRITING, 1, TASK_WRITING)
    assert isinstance(deferral, Defer)
    after = datetime.now(UTC)
    assert deferral.until in {next_utc_day(before), next_utc_day(after)}
    assert budget_spent(3).until in {next_utc_day(before), next_utc_day(datetime.now(UTC))}
