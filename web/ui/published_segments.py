"""Published Segments settings: a row per segment, a checkbox per use, a confirm step, outcomes.

The form posts every shown row's boxes together with what was stored when the page was drawn
(`was` fields), so the changes are exactly the boxes the person changed, even when someone else
changed other publications meanwhile. Confirm applies them (web/ui/publication_changes.py).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from models.errors import InputError
from models.publishing import MAX_PUBLISHED_SEGMENTS, published_segment_count
from models.publishing_tables import LEGACY_USES
from models.segment_catalog import list_segments
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
# Form fields of the table: a hidden `row` per segment shown, a hidden `was` per publication
# stored when the page was drawn, and a checked `published` box per publication wanted.
ROW_FIELD = "row"
WAS_FIELD = "was"
PUBLISHED_FIELD = "published"
MAX_SEARCH_LENGTH = 200
_SOURCE_LABELS = {
    "uploaded_list": "uploaded account list",
    "crm_report_sync": "CRM report sync",
    "crm_list_sync": "CRM list sync",
    "filter": "filters",
}


def table_path(search: str) -> str:
    """The settings table's address, keeping the search."""
    return f"{PATH}?{urlencode({'q': search})}" if search else PATH


@router.get(PATH)
def published_segments_page(
    request: Request,
    who: Reader,
    q: Annotated[str, Query(max_length=MAX_SEARCH_LENGTH)] = "",
) -> Response:
    """The settings table, narrowed to segments whose name or folder contains `q`."""
    return _table_page(request, who, q.strip())


@router.post(PATH)
async def review_or_apply(request: Request, who: Changer) -> Response:
    """The table's changes for confirmation; with confirm=yes, applied and shown in place."""
    form = await request.form()
    search = _text(form, "q")[:MAX_SEARCH_LENGTH].strip()
    try:
        if _text(form, "confirm") == "yes":
            changes = parse_changes(form)
        else:
            changes = _checkbox_changes(form)
    except InputError as malformed:
        raise UiError(400, str(malformed)) from None
    if not changes:
        notice = "Nothing to change: every box is as stored."
        return await run_in_threadpool(_table_page, request, who, search, notice=notice)
    if _text(form, "confirm") != "yes":
        return await run_in_threadpool(_confirm_page, request, who, search, changes)
    outcomes = await run_in_threadpool(apply_changes, request.app.state.sessions, changes)
    return await run_in_threadpool(_table_page, request, who, search, outcomes=outcomes)


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
    # Every value must name a known use and a segment; the segment itself is checked on apply.
    before = _texts(form, WAS_FIELD)
    after = _texts(form, PUBLISHED_FIELD)
    for value in (*before, *after):
        parse_publication_value(value)
    return differences(_texts(form, ROW_FIELD), before, after)


def _table_page(
    request: Request,
    who: SignedIn,
    search: str,
    *,
    notice: str | None = None,
    outcomes: list[ChangeOutcome] | None = None,
) -> Response:
    with request.app.state.sessions() as session:
        rows = list_segments(session, search or None)
        published = published_segment_count(session)
    refused = any(outcome.refused for outcome in outcomes or [])
    return render(
        request,
        "published_segments.html",
        who,
        status_code=409 if refused else 200,
        search=search,
        rows=rows,
        published=published,
        max_published=MAX_PUBLISHED_SEGMENTS,
        publishable_uses=PUBLISHABLE_USES,
        legacy_uses=LEGACY_USES,
        use_labels=USE_LABELS,
        source_labels=_SOURCE_LABELS,
        publication_value=publication_value,
        notice=notice or (outcome_summary(outcomes) if outcomes else None),
        refused=refused,
        outcomes=outcomes_by_segment(outcomes or []),
        changes=None,
    )


def _confirm_page(
    request: Request, who: SignedIn, search: str, changes: list[WantedChange]
) -> Response:
    with request.app.state.sessions() as session:
        published = published_segment_count(session)
    return render(
        request,
        "published_segments.html",
        who,
        search=search,
        published=published,
        max_published=MAX_PUBLISHED_SEGMENTS,
        changes=changes,
        cancel_href=table_path(search),
        action=PATH,
    )
