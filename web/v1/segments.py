"""Segments published to `api`: the list of them, each one's members page by page, and a CRM
segment's source and recent refreshes."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from models.api_reads import segment_members_page, segment_published_for, segments_published_for
from models.crm_segment_overview import crm_segment_history, crm_sources_by_segment
from models.refresh_history import RECENT_REFRESHES
from models.segment_catalog import MAX_NAME_LENGTH
from web.auth import ReadKey
from web.errors import ErrorResponse
from web.v1.account_fields import AccountFields, fields_of
from web.v1.cursors import decode_cursor, encode_cursor
from web.v1.names import NO_NUL
from web.v1.refreshes import CrmSourceView, SegmentRefreshes, refresh_view, source_view

router = APIRouter(tags=["segments"])

API_USE = "api"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# Refreshes one answer lists at most (each carries up to 100 unmatched rows).
MAX_REFRESHES = 100

SegmentName = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        pattern=NO_NUL,
        description="The segment's name, any case; percent-encode it (a slash may stay as is).",
    ),
]


class SegmentSummary(BaseModel):
    """A segment published to api."""

    name: str
    folder: str | None
    source: str = Field(description="uploaded_list, crm_report_sync, crm_list_sync or filter.")
    members: int = Field(description="Accounts in the segment as of its last refresh.")
    uses: list[str] = Field(description="Every use the segment is published for.")
    crm_source: CrmSourceView | None = Field(
        description="Where its members are read from, for a segment read from a CRM (its "
        "refreshes: /v1/segments/{name}/refreshes); null for one defined in segsync."
    )


class SegmentList(BaseModel):
    """The segments published to api, in name order."""

    segments: list[SegmentSummary]


class MemberPage(BaseModel):
    """One page of a segment's accounts, in a fixed order, and where the next page starts."""

    segment: str
    accounts: list[AccountFields]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at end.")
    next: str | None = Field(description="The next page's path and query; null at the end.")


@router.get("/segments", summary="The segments published to api, in name order.")
def list_segments(request: Request, _key: ReadKey) -> SegmentList:
    """Name, folder, source, member count and uses of every segment published to api, and
    where a CRM segment's members are read from."""
    with request.app.state.sessions() as session:
        rows = segments_published_for(session, API_USE)
        crm = crm_sources_by_segment(session)
    return SegmentList(
        segments=[
            SegmentSummary(
                name=row.name,
                folder=row.folder,
                source=row.source,
                members=row.members,
                uses=list(row.uses),
                crm_source=source_view(crm[row.name]) if row.name in crm else None,
            )
            for row in rows
        ]
    )


@router.get(
    "/segments/{name:path}/accounts",
    summary="The accounts of a segment published to api, a page at a time.",
    responses={
        400: {"model": ErrorResponse, "description": "The cursor is not one this API gave out."},
        404: {
            "model": ErrorResponse,
            "description": "No segment has that name, or it exists but is not published to api.",
        },
    },
)
def segment_accounts(
    request: Request,
    response: Response,
    name: SegmentName,
    _key: ReadKey,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description="Accounts per page.")
    ] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None, Query(description="`next_cursor` of the previous page; omit for the first.")
    ] = None,
) -> MemberPage:
    """Pages follow account order by a key, not an offset: an account present throughout the
    reading appears exactly once, whatever is added or removed between pages."""
    with request.app.state.sessions() as session:
        segment = segment_published_for(session, name, API_USE)
        after = decode_cursor(cursor, segment.id) if cursor is not None else None
        page = segment_members_page(session, segment, after, limit)
        accounts = [fields_of(account) for account in page.accounts]
        segment_id, segment_name = segment.id, segment.name
    next_cursor = None
    next_path = None
    if page.continue_after is not None:
        next_cursor = encode_cursor(segment_id, page.continue_after)
        query = urlencode({"limit": limit, "cursor": next_cursor})
        next_path = f"/v1/segments/{quote(segment_name, safe='')}/accounts?{query}"
        response.headers["Link"] = f'<{next_path}>; rel="next"'
    return MemberPage(
        segment=segment_name, accounts=accounts, next_cursor=next_cursor, next=next_path
    )


@router.get(
    "/segments/{name:path}/refreshes",
    summary="A CRM segment's source and its newest refreshes, with their churn.",
    responses={
        404: {
            "model": ErrorResponse,
            "description": "No segment has that name, or it exists but is not published to api.",
        },
    },
)
def segment_refreshes(
    request: Request,
    name: SegmentName,
    _key: ReadKey,
    limit: Annotated[
        int, Query(ge=1, le=MAX_REFRESHES, description="Refreshes to list, newest first.")
    ] = RECENT_REFRESHES,
) -> SegmentRefreshes:
    """As `segsync segments show NAME`: the report, list view or list read, through which
    connection and on which schedule, and each refresh's entered, exited and unmatched counts,
    churn and unmatched rows. A segment not read from a CRM answers with no source and says so."""
    with request.app.state.sessions() as session:
        segment = segment_published_for(session, name, API_USE)
        history = crm_segment_history(session, segment, limit)
        return SegmentRefreshes(
            segment=segment.name,
            source=segment.source,
            crm_source=source_view(history.source) if history.source is not None else None,
            detail=history.not_from_crm,
            refreshes=[refresh_view(refresh) for refresh in history.refreshes],
        )
