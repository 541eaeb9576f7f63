"""Runs on demand: queue a run of an orchestration, read one run, cancel one.

The same worker functions as `segsync sync NAME --queue`, `segsync runs show ID` and
`segsync runs cancel ID` do the work (worker.run_control, worker.run_details).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from models.runs import ACTIVE_RUN_STATUSES
from web.auth import ReadKey, TriggerKey
from web.errors import ApiError, ErrorResponse
from web.v1.names import NO_NUL
from worker.run_control import BrokerUnreachableError, cancel_on_request, queue_run
from worker.run_details import run_details

router = APIRouter(tags=["runs"])

OrchestrationName = Annotated[
    str, Path(min_length=1, max_length=255, pattern=NO_NUL, description="The orchestration's name.")
]
# Run ids are the database's 32-bit integers: a larger one cannot exist (and must not reach SQL).
RunId = Annotated[int, Path(ge=1, le=2_147_483_647, description="The run's id.")]
NO_BROKER = (
    "runs cannot be queued: no broker is configured; set SEGSYNC_BROKER_URL for `segsync api`"
)


def _error(description: str) -> dict[str, object]:
    return {"model": ErrorResponse, "description": description}


class QueuedRun(BaseModel):
    """A run set going: queued anew, or a deferred run whose day has come, resumed."""

    run: int
    orchestration: str
    status: str = Field(description="queued, or running for a resumed run.")
    resumed: bool = Field(description="True when a deferred run was resumed instead.")
    location: str = Field(description="Where to follow it (also the Location header).")


class RunCounts(BaseModel):
    """The run's counts so far (final once it has ended)."""

    eligible: int
    enriched: int
    unchanged: int
    unmatched: int
    truncated: int
    failed: int
    api_calls: int


class FailedRecordView(BaseModel):
    """A record the run could not write, with the vendor's code and message."""

    record_id: str
    code: str | None
    message: str | None


class RunView(BaseModel):
    """One run as `segsync runs show ID` shows it."""

    run: int
    orchestration: str
    status: str = Field(description="queued, running, deferred, succeeded, partial, failed, ...")
    active: bool = Field(description="True while queued, running or deferred.")
    reason: str | None = Field(description="Why it did not succeed (or was skipped, deferred).")
    trigger: str
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    resume_at: datetime | None
    duration_seconds: float | None
    records_read: int
    read: str | None = Field(
        description="How its planner read: full, or incremental (the records changed since ...)."
    )
    batches_done: int
    batches_total: int
    counts: RunCounts
    failures: list[FailedRecordView]


class CancelledRun(BaseModel):
    """A run cancelled: what became of its batches."""

    run: int
    status: str
    batches_done: int
    batches_cancelled: int
    batches_in_flight: int = Field(description="Being written now: they finish and are counted.")
    message: str


@router.post(
    "/orchestrations/{name}/runs",
    status_code=202,
    summary="Queue a run of the orchestration on the workers.",
    responses={
        404: _error("No orchestration has that name."),
        409: _error("A run is active already (named), or the orchestration is disabled."),
        503: _error("No broker is configured, or it did not take the run."),
    },
)
def trigger_run(
    request: Request,
    response: Response,
    name: OrchestrationName,
    _key: TriggerKey,
    full: Annotated[
        bool,
        Query(
            description="Read every record (a reconcile), not only those the vendor changed "
            "since the last run, as `segsync sync NAME --full`."
        ),
    ] = False,
) -> QueuedRun:
    """As `segsync sync NAME --queue [--full]`: 202 with the run and a Location to follow it."""
    if not request.app.state.database.settings.broker_url:
        raise ApiError(503, NO_BROKER)
    try:
        started = queue_run(request.app.state.sessions, name, full_read=full)
    except BrokerUnreachableError as error:
        raise ApiError(503, str(error)) from None
    location = f"/v1/runs/{started.run_id}"
    response.headers["Location"] = location
    return QueuedRun(
        run=started.run_id,
        orchestration=name.strip(),
        status="running" if started.resumed else "queued",
        resumed=started.resumed,
        location=location,
    )


@router.get(
    "/runs/{run_id}",
    summary="One run: status, reason, counts, times and the records it could not write.",
    responses={404: _error("No run has that id.")},
)
def show_run(request: Request, run_id: RunId, _key: ReadKey) -> RunView:
    """As `segsync runs show ID --json`, with times in ISO 8601 (UTC)."""
    with request.app.state.sessions() as session:
        details = run_details(session, run_id)
    return RunView(
        run=details.run_id,
        orchestration=details.orchestration,
        status=details.status,
        active=details.status in ACTIVE_RUN_STATUSES,
        reason=details.reason,
        trigger=details.trigger,
        created_at=details.created_at,
        started_at=details.started_at,
        finished_at=details.finished_at,
        resume_at=details.resume_at,
        duration_seconds=details.seconds,
        records_read=details.records_read,
        read=details.read,
        batches_done=details.batches_done,
        batches_total=details.batches_total,
        counts=RunCounts(**details.counts),
        failures=[
            FailedRecordView(record_id=f.record_id, code=f.code, message=f.message)
            for f in details.failures
        ],
    )


@router.post(
    "/runs/{run_id}/cancel",
    summary="Cancel a queued, running or deferred run at its next batch boundary.",
    responses={
        404: _error("No run has that id."),
        409: _error("The run has already ended."),
    },
)
def cancel(request: Request, run_id: RunId, key: TriggerKey) -> CancelledRun:
    """As `segsync runs cancel ID`: pending batches are never written; one in flight finishes."""
    reason = f"cancelled through the API (key {key.name!r})"
    done = cancel_on_request(request.app.state.sessions, run_id, reason)
    return CancelledRun(
        run=run_id,
        status="cancelled",
        batches_done=done.batches_done,
        batches_cancelled=done.batches_cancelled,
        batches_in_flight=done.batches_in_flight,
        message=done.summary,
    )
