"""What a connector error does to a run: retry the plan or batch, defer the run, or fail it.

The one rule for the Celery tasks (worker.tasks) and the foreground `segsync sync`
(worker.sync.run_in_foreground). It only decides; worker.sync records the decision in the
database (worker.sync.settle_plan, settle_batch) and the caller waits or schedules the retry.

- A spent daily quota defers the run to the next UTC day, when quotas and budgets reset.
- A retryable refusal (rate limit, 5xx, lock) is tried again after the vendor's wait, or a
  doubling backoff, until the attempts allowed are spent; then the run fails.
- Anything else (bad credentials, unknown field) fails the run with the vendor's reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from connectors.errors import ConnectorError, DailyQuotaError, RetryableError
from models.base import utcnow

# After this many retries of a refused plan the run fails (the Celery task's max_retries too).
MAX_PLAN_RETRIES = 5
# After this many attempts a batch's vendor still refusing fails the run (the count lives in the
# database, SyncBatch.attempts, so it holds across redeliveries).
MAX_BATCH_ATTEMPTS = 8
# The longest a task waits in the worker before a retry.
MAX_RETRY_COUNTDOWN = 60.0
# The longest the foreground run sleeps before retrying a plan or batch.
MAX_FOREGROUND_WAIT = 60.0
# Attempts of one plan or one batch in the foreground, the first included.
FOREGROUND_ATTEMPTS = 5
# Backoff exponents stop here: the wait is capped long before, and 2.0**n must not overflow.
_MAX_DOUBLINGS = 30


class Phase(Enum):
    """What the refused call was doing."""

    PLANNING = "planning"
    WRITING = "writing"


@dataclass(frozen=True)
class Limits:
    """How long one way of running a sync (the Celery tasks, the foreground) retries."""

    # Attempts of one plan or batch, the first included, before the run fails.
    attempts: int
    # The longest wait before the next attempt.
    max_wait: float
    # The wait after a first refusal when the vendor named none; doubled at each attempt.
    first_wait: float
    # The Celery tasks: a batch given up lists its records as failed (so `runs show` names them),
    # and the reasons are phrased as README's "Celery" section documents them.
    tasks: bool


TASK_PLANNING = Limits(MAX_PLAN_RETRIES + 1, MAX_RETRY_COUNTDOWN, first_wait=1.0, tasks=True)
TASK_WRITING = Limits(MAX_BATCH_ATTEMPTS, MAX_RETRY_COUNTDOWN, first_wait=1.0, tasks=True)
FOREGROUND = Limits(FOREGROUND_ATTEMPTS, MAX_FOREGROUND_WAIT, first_wait=2.0, tasks=False)


@dataclass(frozen=True)
class Retry:
    """Try the same plan or batch again in `wait` seconds."""

    wait: float


@dataclass(frozen=True)
class FailRun:
    """End the run as failed with `reason`, its one line in `segsync runs show`."""

    reason: str


@dataclass(frozen=True)
class FailBatch(FailRun):
    """FailRun, and list the batch's records as failed with the same reason: its retries are
    spent and nobody writes it, and `runs show` then names them."""


@dataclass(frozen=True)
class Defer:
    """Park the run until `until`, saying why: it is resumed then, with the batches it had left
    (worker.scheduling.resume_deferred_runs)."""

    # Midnight UTC, when vendors' daily quotas and segsync's budgets reset.
    until: datetime
    reason: str


Decision = Retry | Defer | FailRun


class Refused(Exception):
    """A plan the vendor refused, with the decision already recorded for its run."""

    def __init__(self, error: ConnectorError, decision: Decision) -> None:
        super().__init__(str(error))
        self.error = error
        self.decision = decision


def next_utc_day(now: datetime) -> datetime:
    """Midnight UTC after `now`: when vendors' daily quotas and segsync's budgets reset."""
    return (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def budget_spent(budget: int, now: datetime | None = None) -> Defer:
    """The run whose orchestration spent its daily API budget of `budget` calls waits a day."""
    return Defer(next_utc_day(now or utcnow()), f"daily API budget of {budget} calls is spent")


def decide(
    error: ConnectorError,
    phase: Phase,
    attempt: int,
    limits: Limits,
    *,
    which: str = "batch",
    now: datetime | None = None,
) -> Decision:
    """What `error`, raised by attempt `attempt` (1 for the first) of a plan or of the batch
    `which` ("batch 2/5"), does to its run under `limits`."""
    if isinstance(error, DailyQuotaError):
        return Defer(next_utc_day(now or utcnow()), str(error))
    if not isinstance(error, RetryableError):
        return FailRun(str(error))
    if attempt < limits.attempts:
        backoff = limits.first_wait * 2.0 ** min(attempt - 1, _MAX_DOUBLINGS)
        return Retry(min(error.retry_after or backoff, limits.max_wait))
    if not limits.tasks:
        return FailRun(f"gave up after {attempt} attempts: {error}")
    if phase is Phase.PLANNING:
        return FailRun(f"gave up planning after {attempt - 1} retries: {error}")
    return FailBatch(f"{which} still failing after {attempt} attempts: {error}")
