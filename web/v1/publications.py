"""Publishing and unpublishing one segment for one use, by the rules `segsync publish` keeps.

Both verbs call models.publishing's publish() / unpublish(), as the command line does: the 200
cap, GTM eligibility and report references refuse with the command's own one-line reason (409).
Repeating a request changes nothing and answers the same, saying `changed: false`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from models.api_reads import in_use_order
from models.db import transaction
from models.publishing import (
    MAX_PUBLISHED_SEGMENTS,
    PublicationChange,
    publish,
    published_segment_count,
    published_uses,
    unpublish,
)
from models.publishing_tables import USES
from web.auth import PublishKey
from web.errors import ErrorResponse
from web.v1.names import NO_NUL

router = APIRouter(tags=["publishing"])

SegmentName = Annotated[
    str,
    Path(
        min_length=1, max_length=255, pattern=NO_NUL, description="The segment's name (any case)."
    ),
]
Use = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=NO_NUL,
        description=f"One of {', '.join(USES)} (sales_intelligence: unpublish only; legacy).",
    ),
]
_REFUSALS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorResponse, "description": "An unknown use (the message names the uses)."},
    404: {"model": ErrorResponse, "description": "No segment has that name."},
    409: {
        "model": ErrorResponse,
        "description": "A publishing rule refuses (the 200 cap, GTM eligibility, references), "
        "with the same reason `segsync publish` / `unpublish` gives.",
    },
}


class PublicationState(BaseModel):
    """A segment's uses after a publish or unpublish, and how many segments are published."""

    segment: str = Field(description="The segment's name as stored.")
    use: str
    changed: bool = Field(description="False when the segment already was as asked.")
    uses: list[str] = Field(description="Every use the segment is published for now.")
    published_segments: int = Field(description="Segments published now, each counted once.")
    max_published_segments: int = MAX_PUBLISHED_SEGMENTS
    message: str = Field(description="What happened, in the command line's words.")


_Apply = Callable[[Session, str, Sequence[str]], PublicationChange]


def _change(
    request: Request, name: str, use: str, apply: _Apply, words: tuple[str, str, str]
) -> PublicationState:
    """Apply the change in one transaction and describe the segment after it."""
    verb, preposition, unchanged = words
    with transaction(request.app.state.sessions) as session:
        change = apply(session, name, [use])
        segment = change.segment
        uses = list(in_use_order(published_uses(session, segment)))
        count = published_segment_count(session)
        stored_name = segment.name
    changed = bool(change.changed)
    used = (change.changed or change.unchanged)[0]
    if changed:
        message = (
            f"{verb} {stored_name!r} {preposition} {used} "
            f"({count} of {MAX_PUBLISHED_SEGMENTS} segments published)"
        )
    else:
        message = f"{stored_name!r} is {unchanged} {used}; nothing changed"
    return PublicationState(
        segment=stored_name,
        use=used,
        changed=changed,
        uses=uses,
        published_segments=count,
        message=message,
    )


def _publication_route(
    method: str, summary: str, apply: _Apply, words: tuple[str, str, str], doc: str
) -> None:
    """Route `method` on a segment's publication for one use to `apply` (publish or unpublish)."""

    def change(request: Request, name: SegmentName, use: Use, _key: PublishKey) -> PublicationState:
        return _change(request, name, use, apply, words)

    change.__doc__ = doc
    router.add_api_route(
        "/segments/{name:path}/publications/{use}",
        change,
        methods=[method],
        name=f"{apply.__name__}_segment",
        summary=summary,
        responses=_REFUSALS,
    )


_publication_route(
    "PUT",
    "Publish the segment for one use (idempotent).",
    publish,
    ("published", "to", "already published to"),
    "As `segsync publish NAME --use USE --yes`; a second PUT answers `changed: false`.",
)
_publication_route(
    "DELETE",
    "Unpublish the segment from one use (idempotent).",
    unpublish,
    ("unpublished", "from", "not published to"),
    "As `segsync unpublish NAME --use USE --yes`; a second DELETE answers `changed: false`.",
)
