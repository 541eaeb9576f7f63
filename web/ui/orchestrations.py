"""Orchestrations: each with its target, schedule, next run and last outcome; "Run now"; and an
orchestration's run history with its counts.

"Run now" queues a run through worker.run_control.queue_run, as POST /v1/orchestrations/{name}/runs
and `segsync sync NAME --queue` do; what it refuses is shown in place, on the page it came from.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from models.errors import NotFoundError, RuleError, SegsyncError
from models.orchestration_status import OrchestrationStatus, orchestration_statuses
from models.run_history import RECENT_RUNS, RunSummary, recent_runs
from models.runs import RUN_COUNTS
from models.sign_in_sessions import SignedIn
from web.ui.signed_in import Changer, Reader
from web.ui.templating import render
from web.v1.names import NO_NUL
from web.v1.runs import NO_BROKER
from worker.run_control import BrokerUnreachableError, queue_run

router = APIRouter(include_in_schema=False)

LIST = "/orchestrations"
HISTORY = "/orchestrations/history"
# Where "Run now" posts; `shown_on` says which page to show a refusal on.
RUN_NOW = "/orchestrations/runs"
# How the counts are headed in tables, in RUN_COUNTS order.
COUNT_TITLES = {key: "API calls" if key == "api_calls" else key.capitalize() for key in RUN_COUNTS}

ShownOn = Literal["list", "history"]
OrchestrationName = Annotated[str, Query(min_length=1, max_length=255, pattern=NO_NUL)]


def history_path(name: str) -> str:
    """The run history page of orchestration `name` (names are free text: url-encoded)."""
    return f"{HISTORY}?{urlencode({'name': name})}"


def shown_time(moment: datetime | None) -> str:
    """A stored time as the pages show it (UTC, to the second); empty when there is none."""
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment else ""


@router.get(LIST)
def orchestrations_page(request: Request, who: Reader) -> Response:
    """Every orchestration with its target, schedule, next run, last outcome and "Run now"."""
    return _list_page(request, who)


@router.get(HISTORY)
def history_page(request: Request, who: Reader, name: OrchestrationName) -> Response:
    """One orchestration's recent runs, newest first, with their counts."""
    return _history_page(request, who, name)


@router.post(RUN_NOW)
def run_now(
    request: Request,
    who: Changer,
    name: Annotated[str, Form(min_length=1, max_length=255, pattern=NO_NUL)],
    shown_on: Annotated[ShownOn, Form()] = "list",
) -> Response:
    """Queue a run of orchestration `name` and go to its page; a refusal shown in place."""
    status, refusal = 503, NO_BROKER
    if request.app.state.database.settings.broker_url:
        try:
            started = queue_run(request.app.state.sessions, name)
        except BrokerUnreachableError as error:
            refusal = str(error)
        except NotFoundError as error:
            status, refusal = 404, str(error)
        except RuleError as error:  # disabled, or a run is active already (named)
            status, refusal = 409, str(error)
        else:
            outcome = "resumed" if started.resumed else "queued"
            return RedirectResponse(f"/runs/{started.run_id}?started={outcome}", status_code=303)
    refused = (name.strip(), refusal)
    if shown_on == "history":
        return _history_page(request, who, name, refused=refused, status_code=status)
    return _list_page(request, who, refused=refused, status_code=status)


def _list_page(
    request: Request,
    who: SignedIn,
    *,
    refused: tuple[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    with request.app.state.sessions() as session:
        statuses = orchestration_statuses(session)
    return render(
        request,
        "orchestrations.html",
        who,
        status_code=status_code,
        orchestrations=statuses,
        refused=refused,
        history_path=history_path,
        shown_time=shown_time,
        run_now_path=RUN_NOW,
    )


def _history_page(
    request: Request,
    who: SignedIn,
    name: str,
    *,
    refused: tuple[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    status: OrchestrationStatus | None = None
    runs: list[RunSummary] = []
    error: str | None = None
    try:
        with request.app.state.sessions() as session:
            runs = recent_runs(session, name)
            status = orchestration_statuses(session, name)[0]
    except SegsyncError as not_found:  # renamed or deleted since the link was made
        error, status_code = str(not_found), 404
    return render(
        request,
        "orchestration_history.html",
        who,
        status_code=status_code,
        name=name.strip(),
        orchestration=status,
        runs=runs,
        limit=RECENT_RUNS,
        error=error,
        refused=refused,
        count_titles=COUNT_TITLES,
        shown_time=shown_time,
        run_now_path=RUN_NOW,
    )
