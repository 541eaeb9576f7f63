"""Runs started and stopped on request: what `segsync sync`, `segsync runs cancel` and the HTTP
API share, so that a run triggered from a shell or over HTTP is claimed, resumed, queued and
cancelled by the same code."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models.connections import Connection
from models.db import transaction
from models.errors import NotFoundError, RuleError, SegsyncError
from models.orchestrations import Orchestration, find_orchestration
from models.runs import SyncBatch, SyncRun
from worker.logs import log_context
from worker.scheduling import Work, resume_due_run
from worker.sync import cancel_run, start_run


class RunSkippedError(RuleError):
    """The orchestration already has an active run: this trigger was recorded as skipped."""

    def __init__(self, run_id: int, reason: str) -> None:
        super().__init__(f"run {run_id} skipped: {reason}")
        self.run_id = run_id
        self.reason = reason


class RunEndedError(RuleError):
    """The run to cancel has already ended."""


class BrokerUnreachableError(SegsyncError):
    """The run is stored but its task could not be sent: beat's sweeper sends it later."""


@dataclass(frozen=True)
class RunTarget:
    """The orchestration a run is for, with what its log lines carry."""

    orchestration_id: int
    name: str
    connection_name: str
    log_fields: dict[str, str]


@dataclass(frozen=True)
class StartedRun:
    """A run set going on request: a new one, or a deferred one whose day has come (`resumed`)."""

    run_id: int
    work: Work
    resumed: bool


def find_target(factory: sessionmaker[Session], name: str, *, dry_run: bool = False) -> RunTarget:
    """The orchestration called `name`; a disabled one is refused unless only planned (dry run)."""
    with transaction(factory) as session:
        orchestration = find_orchestration(session, name)
        if not orchestration.enabled and not dry_run:
            raise RuleError(f"orchestration {name!r} is disabled")
        connection = session.get_one(Connection, orchestration.connection_id)
        return RunTarget(
            orchestration.id,
            orchestration.name,
            connection.name,
            {
                "orchestration": orchestration.name,
                "system": connection.system,
                "object": orchestration.object_type,
            },
        )


def start_on_request(
    factory: sessionmaker[Session], target: RunTarget, *, full_read: bool = False
) -> StartedRun:
    """Resume the orchestration's deferred run if its day has come, else start a new one
    (`full_read`: reading every record); RunSkippedError naming the active run when one is
    going."""
    # A run deferred to a day that has come goes on now: no beat is needed to resume it.
    resumed = resume_due_run(factory, target.orchestration_id)
    if resumed is not None:
        return StartedRun(resumed[0], resumed[1], True)
    with transaction(factory) as session:
        orchestration = session.get_one(Orchestration, target.orchestration_id)
        run = start_run(session, orchestration, "manual", full_read=full_read)
        run_id, status, reason = run.id, run.status, run.reason
    if status == "skipped":
        raise RunSkippedError(run_id, reason or "another run is active")
    return StartedRun(run_id, Work([run_id], []), False)


def send_to_workers(factory: sessionmaker[Session], work: Work) -> None:
    """Send the run's planning task, or the batches left to write, to the Celery workers."""
    from worker.tasks import enqueue_batches, enqueue_run

    for planned in work.runs:
        enqueue_run(planned, factory)
    enqueue_batches(work.batches)


def queue_run(factory: sessionmaker[Session], name: str, *, full_read: bool = False) -> StartedRun:
    """Start (or resume) a run of orchestration `name` and send it to the workers, as
    `segsync sync NAME --queue [--full]` does."""
    from kombu.exceptions import OperationalError

    target = find_target(factory, name)
    started = start_on_request(factory, target, full_read=full_read)
    with log_context(run_id=started.run_id, **target.log_fields):
        try:
            send_to_workers(factory, started.work)
        except OperationalError as error:
            first = (str(error).strip().splitlines() or ["no answer"])[0]
            raise BrokerUnreachableError(
                f"run {started.run_id} is stored but the broker did not take it ({first}); "
                "beat's sweeper sends it once SEGSYNC_STALE_AFTER_SECONDS have passed"
            ) from None
    return started


@dataclass(frozen=True)
class Cancellation:
    """A run cancelled on request: its status before, and its batches by what became of them."""

    run_id: int
    previous_status: str
    batches_total: int
    batches_done: int
    batches_cancelled: int
    batches_in_flight: int

    @property
    def before_writing(self) -> bool:
        """Cancelled before it wrote anything (still queued, or running but not yet planned)."""
        return self.previous_status == "queued" or (
            self.previous_status == "running" and not self.batches_total
        )

    @property
    def summary(self) -> str:
        """What the cancellation did, in one line."""
        if self.before_writing:
            line = f"run {self.run_id} cancelled before it wrote anything"
        else:
            unwritten = _batches(self.batches_cancelled)
            line = f"run {self.run_id} cancelled: {unwritten} will not be written"
        if self.batches_in_flight:
            line += (
                f"; {_batches(self.batches_in_flight)} being written now will finish and be counted"
            )
        return line


def _batches(count: int) -> str:
    return f"{count} batch" if count == 1 else f"{count} batches"


def cancel_on_request(factory: sessionmaker[Session], run_id: int, reason: str) -> Cancellation:
    """Cancel a queued, running or deferred run at its next batch boundary, saying `reason`;
    NotFoundError when there is no such run, RunEndedError when it has already ended."""
    with factory() as session:
        run = session.get(SyncRun, run_id)
        if run is None:
            raise NotFoundError(f"no run {run_id}")
        previous_status, batches_total = run.status, run.batches_total
    if not cancel_run(factory, run_id, reason):
        with factory() as session:
            status = session.get_one(SyncRun, run_id).status
        raise RunEndedError(f"run {run_id} already ended ({status}); nothing to cancel")
    with factory() as session:
        counted = dict(
            session.execute(
                select(SyncBatch.status, func.count())
                .where(SyncBatch.run_id == run_id)
                .group_by(SyncBatch.status)
            ).all()
        )
    return Cancellation(
        run_id,
        previous_status,
        batches_total,
        batches_done=counted.get("done", 0) + counted.get("failed", 0),
        batches_cancelled=counted.get("cancelled", 0),
        batches_in_flight=counted.get("running", 0),
    )
