"""A run's page: its outcome, times and counts, and the records it could not write with the
vendor's codes, downloadable as CSV (worker.run_details, as `segsync runs show ID` and
GET /v1/runs/{id})."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from models.runs import ACTIVE_RUN_STATUSES
from web.ui.orchestrations import COUNT_TITLES, history_path, shown_time
from web.ui.signed_in import Reader
from web.ui.templating import render
from worker.run_details import FailedRecord, run_details

router = APIRouter(include_in_schema=False)

# Run ids are the database's 32-bit integers: a larger one cannot exist (and must not reach SQL).
RunId = Annotated[int, Path(ge=1, le=2_147_483_647)]
FAILED_COLUMNS = ("record_id", "code", "message")
# A cell starting with one of these is a formula to a spreadsheet (=HYPERLINK(...) from a
# vendor's message would run when opened): such a cell is written after a single quote.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str | None) -> str:
    """`value` as a CSV cell no spreadsheet reads as a formula (None: empty)."""
    if value is None:
        return ""
    return f"'{value}" if value.startswith(_FORMULA_STARTS) else value


def failed_records_csv(failures: list[FailedRecord]) -> str:
    """The failed records as CSV: a header row, then one row per record, in the order they
    failed."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(FAILED_COLUMNS)
    for failure in failures:
        writer.writerow(
            spreadsheet_safe(value) for value in (failure.record_id, failure.code, failure.message)
        )
    return out.getvalue()


@router.get("/runs/{run_id}")
def run_page(
    request: Request,
    who: Reader,
    run_id: RunId,
    started: Annotated[Literal["queued", "resumed"] | None, Query()] = None,
) -> Response:
    """The run's outcome, times, counts and failed records; whether it is still going."""
    with request.app.state.sessions() as session:
        details = run_details(session, run_id)  # no such run: the 404 page
    return render(
        request,
        "run.html",
        who,
        run=details,
        active=details.status in ACTIVE_RUN_STATUSES,
        started=started,
        count_titles=COUNT_TITLES,
        history=history_path(details.orchestration),
        shown_time=shown_time,
    )


@router.get("/runs/{run_id}/failed.csv")
def failed_records_download(request: Request, _who: Reader, run_id: RunId) -> Response:
    """The run's failed records (record id, vendor code, message) as a CSV download."""
    with request.app.state.sessions() as session:
        details = run_details(session, run_id)
    # The byte-order mark tells Excel the file is UTF-8 (vendors' messages are not all ASCII).
    body = "\ufeff" + failed_records_csv(details.failures)
    filename = f"segsync-run-{run_id}-failed-records.csv"
    return Response(
        body.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
