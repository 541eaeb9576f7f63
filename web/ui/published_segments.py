"""Published Segments settings: a row per segment, a checkbox per use, a confirm step, outcomes.

Each row of the form carries the uses stored when the page was drawn, so the changes are exactly
the boxes the person changed, even when someone else changed other publications meanwhile.
Confirm applies them one by one (web/ui/publication_changes.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from models.errors import InputError
from models.publishing import MAX_PUBLISHED_SEGMENTS, published_segment_count
from models.publishing_tables import LEGACY_USES, USES
from models.segment_catalog import SegmentRow, list_segments
from models.sign_in_sessions import SignedIn
from web.ui.publication_changes import (
    PUBLISHABLE_USES,
    USE_LABELS,
    ChangeOutcome,
    WantedChange,
    apply_changes,
    differences,
    outcome_summary,
    outcomes_by_segment,
    parse_changes,
    parse_publication_value,
    publication_value,
)
from web.ui.signed_in import Changer, Reader, UiError
from web.ui.templating import render

router = APIRouter(include_in_schema=False)
PATH = "/published-segments"
# Form fields of the table: a hidden `row` per segment shown ("stored,uses:name"), and a checked
# `published` box per publication wanted (publication_value).
ROW_FIELD = "row"
PUBLISHED_FIELD = "published"
# Rows per page. A page's form holds at most 1 + 5 fields per row, and Starlette refuses a
# form of more than 1,000 fields: 100 rows stay well under it.
PAGE_SIZE = 100
MAX_SEARCH_LENGTH = 200
_SOURCE_LABELS = {
    "uploaded_list": "uploaded account list",
    "crm_report_sync": "CRM report sync",
    "crm_list_sync": "CRM list sync",
    "filter": "filters",
}


def table_path(search: str, page: int = 1) -> str:
    """The settings table's address, keeping the search and the page."""
    query = {key: value for key, value in (("q", search), ("page", page)) if value and value != 1}
    return f"{PATH}?{urlencode(query)}" if query else PATH


def row_value(row: SegmentRow) -> str:
    """A row's hidden field: the uses stored when drawn, then the segment's name."""
    return f"{','.join(row.uses)}:{row.name}"


def parse_row_value(value: str) -> tuple[str, list[str]]:
    """(segment, its stored publication values) from `row_value`'s text; InputError if malformed."""
    uses, colon, segment = value.partition(":")
    stored = [use for use in uses.split(",") if use]
    if not colon or not segment.strip() or any(use not in USES for use in stored):
        raise InputError(f"form value {value!r} is not a row of stored uses and a segment name")
    return segment, [publication_value(segment, use) for use in stored]


@dataclass(frozen=True)
class TablePage:
    """The rows of one page of the table, and where that page is among all of them."""

    rows: list[SegmentRow]
    number: int
    pages: int
    total: int
    first: int


def table_page(rows: list[SegmentRow], number: int) -> TablePage:
    """Page `number` of `rows` (the last page when past it)."""
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    number = min(max(number, 1), pages)
    start = (number - 1) * PAGE_SIZE
    return TablePage(rows[start : start + PAGE_SIZE], number, pages, len(rows), start + 1)


@router.get(PATH)
def published_segments_page(
    request: Request,
    who: Reader,
    q: Annotated[str, Query(max_length=MAX_SEARCH_LENGTH)] = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    """The settings table, narrowed to segments whose name or folder contains `q`."""
    return _table_page(request, who, q.strip(), page)


@router.post(PATH)
async def review_or_apply(request: Request, who: Changer) -> Response:
    """The table's changes for confirmation; with confirm=yes, applied and shown in place."""
    form = await request.form()
    search = _text(form, "q")[:MAX_SEARCH_LENGTH].strip()
    page = int(_text(form, "page")) if _text(form, "page").isdigit() else 1
    confirmed = _text(form, "confirm") == "yes"
    try:
        changes = parse_changes(form) if confirmed else _checkbox_changes(form)
    except InputError as malformed:
        raise UiError(400, str(malformed)) from None
    if not changes:
        notice = "Nothing to change: every box is as stored."
        return await run_in_threadpool(_table_page, request, who, search, page, notice=notice)
    if not confirmed:
        return await run_in_threadpool(_confirm_page, request, who, search, page, changes)
    outcomes = await run_in_threadpool(apply_changes, request.app.state.sessions, changes)
    return await run_in_threadpool(_table_page, request, who, search, page, outcomes=outcomes)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    if value is not None and not isinstance(value, str):
        raise UiError(400, f"form field {name!r} must be text, not a file")
    return value or ""


def _texts(form: FormData, name: str) -> list[str]:
    values = form.getlist(name)
    if not all(isinstance(value, str) for value in values):
        raise UiError(400, f"form field {name!r} must be text, not a file")
    return [str(value) for value in values]


def _checkbox_changes(form: FormData) -> list[WantedChange]:
    segments: list[str] = []
    before: list[str] = []
    for value in _texts(form, ROW_FIELD):
        segment, stored = parse_row_value(value)
        segments.append(segment)
        before.extend(stored)
    after = _texts(form, PUBLISHED_FIELD)
    for value in after:
        parse_publication_value(value)  # refuses a malformed value; the segment is checked later
    return differences(segments, before, after)


def _table_page(
    request: Request,
    who: SignedIn,
    search: str,
    page: int,
    *,
    notice: str | None = None,
    outcomes: list[ChangeOutcome] | None = None,
) -> Response:
    with request.app.state.sessions() as session:
        rows = list_segments(session, search or None)
        published = published_segment_count(session)
    shown = table_page(rows, page)
    refused = any(outcome.refused for outcome in outcomes or [])
    on_page = {row.name for row in shown.rows}
    # An outcome whose row is not on this page (its segment was deleted or renamed since, or the
    # search no longer finds it) is listed under the summary instead.
    elsewhere = [o for o in outcomes or [] if o.change.segment not in on_page]
    return render(
        request,
        "published_segments.html",
        who,
        status_code=409 if refused else 200,
        search=search,
        shown=shown,
        previous_href=table_path(search, shown.number - 1) if shown.number > 1 else None,
        next_href=table_path(search, shown.number + 1) if shown.number < shown.pages else None,
        published=published,
        max_published=MAX_PUBLISHED_SEGMENTS,
        publishable_uses=PUBLISHABLE_USES,
        legacy_uses=LEGACY_USES,
        use_labels=USE_LABELS,
        source_labels=_SOURCE_LABELS,
        publication_value=publication_value,
        row_value=row_value,
        notice=notice or (outcome_summary(outcomes) if outcomes else None),
        refused=refused,
        outcomes=outcomes_by_segment(outcomes or []),
        elsewhere=elsewhere,
        changes=None,
    )


def _confirm_page(
    request: Request, who: SignedIn, search: str, page: int, changes: list[WantedChange]
) -> Response:
    with request.app.state.sessions() as session:
        published = published_segment_count(session)
    return render(
        request,
        "published_segments.html",
        who,
        search=search,
        page=page,
        published=published,
        max_published=MAX_PUBLISHED_SEGMENTS,
        changes=changes,
        cancel_href=table_path(search, page),
        action=PATH,
    )
