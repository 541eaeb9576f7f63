"""Segments: folders, search, each segment's source, filters, members and uses; Publish Segment;
a CRM segment's last refresh on its row, and its refresh history (churn, unmatched rows).

Publish Segment offers the uses a segment is not yet published for; the chosen ones go through
the confirm step and are applied by web/ui/publication_changes (as on Published Segments).
Unpublishing is done from Published Segments, as in the reference.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from models.crm_segment_overview import crm_segment_history, crm_segment_overviews
from models.refresh_history import RECENT_REFRESHES
from models.segment_catalog import SegmentRow, find_segment, list_segments
from models.segment_overview import segment_folders, segment_summary
from models.sign_in_sessions import SignedIn
from web.ui.orchestrations import shown_time
from web.ui.publication_changes import (
    PUBLISHABLE_USES,
    USE_LABELS,
    ChangeOutcome,
    WantedChange,
    apply_changes,
    differences,
    outcome_summary,
    parse_changes,
    publication_value,
)
from web.ui.signed_in import Changer, Reader, UiError
from web.ui.templating import render

router = APIRouter(include_in_schema=False)

# How the screen names a segment's source and its filters' kinds (the reference's words).
SOURCE_LABELS: dict[str, object] = {
    "uploaded_list": "Uploaded list",
    "crm_report_sync": "CRM report sync",
    "crm_list_sync": "CRM list sync",
    "filter": "Filter",
}
FILTER_KIND_LABELS: dict[str, object] = {
    "profile_fit": "Account Profile Fit",
    "company_profile": "Company Profile",
    "crm_map": "CRM & MAP",
    "salesforce_report": "Accounts in Salesforce Report",
    "salesforce_account_list": "Salesforce Account List",
    "uploaded_list": "Uploaded Account List",
    "intent": "Intent",
    "engagement": "Engagement",
    "buying_stage": "Buying Stage",
}
# What each use means, under its checkbox (from the reference's "Uses for published segments").
USE_HINTS = {
    "enrichment": "The segment's name can be written to CRM records by orchestrations.",
    "account_details": "Listed on the Account Details page of the accounts it holds.",
    "gtm": (
        "Go-to-market segment: uploaded lists, CRM report and list syncs, "
        "and filters that are not dynamic."
    ),
    "api": "Readable through the HTTP API.",
    "sales_intelligence": "Legacy: unpublish it from Published Segments.",
}
_LABELS: dict[str, Any] = {
    "source_labels": SOURCE_LABELS,
    "kind_labels": FILTER_KIND_LABELS,
    "use_labels": USE_LABELS,
    "use_order": tuple(USE_LABELS),
}
_PUBLISH_PATH = "/segments/publish"
_REFRESHES_PATH = "/segments/refreshes"


@router.get("/segments")
def segments_page(
    request: Request,
    who: Reader,
    q: Annotated[str, Query(max_length=200)] = "",
    folder: Annotated[str | None, Query(max_length=300)] = None,
) -> Response:
    """Every segment, or those of one folder (`folder=` alone: in no folder) matching `q`."""
    search = q.strip()
    with request.app.state.sessions() as session:
        rows = list_segments(session, search or None, folder)
        folders = segment_folders(session)
        crm = crm_segment_overviews(session)
    return render(
        request,
        "segments.html",
        who,
        search=search,
        folder=folder,
        rows=rows,
        folders=folders,
        crm=crm,
        refreshes_href=refreshes_href,
        **_LABELS,
    )


@router.get(_REFRESHES_PATH)
def refreshes_page(
    request: Request, who: Reader, name: Annotated[str, Query(max_length=1000)]
) -> Response:
    """Segment `name`'s CRM source and its last refreshes: counts, churn, unmatched rows."""
    with request.app.state.sessions() as session:
        segment = find_segment(session, name)
        history = crm_segment_history(session, segment)
        shown = {"name": segment.name, "source": segment.source, "members": segment.member_count}
    # The unmatched rows shown are the newest succeeded refresh's: a failed one matched nothing.
    last_read = next((r for r in history.refreshes if r.status == "succeeded"), None)
    return render(
        request,
        "segments_refreshes.html",
        who,
        segment=shown,
        history=history,
        last_read=last_read,
        limit=RECENT_REFRESHES,
        shown_time=shown_time,
        **_LABELS,
    )


def refreshes_href(name: str) -> str:
    """The refresh history page of segment `name` (names are free text: url-encoded)."""
    return f"{_REFRESHES_PATH}?{urlencode({'name': name})}"


@router.get(_PUBLISH_PATH)
def publish_segment_page(
    request: Request, who: Reader, name: Annotated[str, Query(max_length=1000)]
) -> Response:
    """The Publish Segment options of segment `name` (viewers see them, but cannot send them)."""
    return _publish_page(request, who, _summary(request, name))


@router.post(_PUBLISH_PATH)
async def publish_segment(request: Request, who: Changer) -> Response:
    """Chosen uses: the confirm step; with confirm=yes, the changes applied and their outcomes."""
    form = await request.form()
    return await run_in_threadpool(_publish_posted, request, who, form)


def _publish_posted(request: Request, who: SignedIn, form: FormData) -> Response:
    name = form.get("name")
    if not isinstance(name, str) or not name.strip():
        raise UiError(400, "the form names no segment: open Publish Segment from the Segments list")
    segment = _summary(request, name)
    if form.get("confirm") == "yes":
        changes = parse_changes(form)
        _refuse_other_changes(segment, changes)
        outcomes = apply_changes(request.app.state.sessions, changes)
        return _publish_page(request, who, _summary(request, segment.name), outcomes=outcomes)
    chosen = [use for use in form.getlist("use") if isinstance(use, str)]
    before = {publication_value(segment.name, use) for use in segment.uses}
    after = before | {publication_value(segment.name, use) for use in chosen}
    changes = differences([segment.name], before, after)
    if not changes:
        error = "choose a use this segment is not published for yet"
        return _publish_page(request, who, segment, error=error, status_code=400)
    return _publish_page(request, who, segment, changes=changes)


def _refuse_other_changes(segment: SegmentRow, changes: list[WantedChange]) -> None:
    # This page only publishes its own segment; anything else in the form did not come from it.
    for change in changes:
        if not change.publish or change.segment != segment.name:
            raise UiError(
                400,
                f"Publish Segment for {segment.name!r} cannot make this change: "
                f"{change.describe()}; publish another segment from its own page and "
                "unpublish from Published Segments",
            )
    if not changes:
        raise UiError(400, "the confirmed form holds no change: choose the uses again")


def _summary(request: Request, name: str) -> SegmentRow:
    with request.app.state.sessions() as session:
        return segment_summary(session, name)


def _publish_page(
    request: Request,
    who: SignedIn,
    segment: SegmentRow,
    *,
    changes: list[WantedChange] | None = None,
    outcomes: list[ChangeOutcome] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    # Legacy uses are offered only to show that the segment is published for them.
    offered = [use for use in USE_LABELS if use in PUBLISHABLE_USES or use in segment.uses]
    return render(
        request,
        "segments_publish.html",
        who,
        status_code=status_code,
        segment=segment,
        offered=offered,
        use_hints=USE_HINTS,
        changes=changes or [],
        outcomes={outcome.change.use: outcome for outcome in outcomes or []},
        summary=outcome_summary(outcomes) if outcomes else None,
        refused=any(outcome.refused for outcome in outcomes or []),
        error=error,
        page_href=f"{_PUBLISH_PATH}?{urlencode({'name': segment.name})}",
        **_LABELS,
    )
