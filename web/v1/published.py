"""The published-segments settings table: a row per published segment with its uses."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from models.api_reads import in_use_order
from models.publishing import MAX_PUBLISHED_SEGMENTS, published_segment_count, published_table
from web.auth import ReadKey

router = APIRouter(tags=["publishing"])


class PublishedSegmentRow(BaseModel):
    """A published segment and every use it is published for."""

    name: str
    folder: str | None
    uses: list[str]


class PublishedTable(BaseModel):
    """The table as `segsync published` shows it, with the count against the cap."""

    segments: list[PublishedSegmentRow] = Field(description="In name order; filtered by search.")
    published: int = Field(description="Segments published, whatever the search.")
    max_published: int = Field(description="How many segments may be published at once.")
    summary: str = Field(description="'N of 200 segments published', as the CLI prints it.")


@router.get("/published", summary="The published-segments settings table.")
def published(
    request: Request,
    _key: ReadKey,
    search: Annotated[
        str | None,
        Query(max_length=255, description="Only segments whose name or folder contains this."),
    ] = None,
) -> PublishedTable:
    """A row per published segment with its uses, and how many are published of the cap."""
    with request.app.state.sessions() as session:
        rows = published_table(session, search)
        count = published_segment_count(session)
    return PublishedTable(
        segments=[
            PublishedSegmentRow(name=row.name, folder=row.folder, uses=list(in_use_order(row.uses)))
            for row in rows
        ],
        published=count,
        max_published=MAX_PUBLISHED_SEGMENTS,
        summary=f"{count} of {MAX_PUBLISHED_SEGMENTS} segments published",
    )
