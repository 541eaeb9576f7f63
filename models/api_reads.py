"""What the API reads about segments published to a use: the list and a segment's members.

Members are read in pages by keyset on the account's id, so a page boundary is a value, not an
offset: accounts added or removed between two page reads never shift the rows of the others.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.accounts import Account
from models.errors import NotFoundError
from models.publishing_tables import USES, Publication
from models.segment_catalog import find_segment
from models.segments import Segment, SegmentMembership, name_order


@dataclass(frozen=True)
class PublishedSegment:
    """A segment published for some use, as the API lists it."""

    name: str
    folder: str | None
    source: str
    members: int
    uses: tuple[str, ...]


def segments_published_for(session: Session, use: str) -> list[PublishedSegment]:
    """The segments published for `use`, each with all its uses, in name order."""
    published = select(Publication.segment_id).where(Publication.use == use)
    segments = list(session.scalars(select(Segment).where(Segment.id.in_(published))))
    uses: dict[int, set[str]] = {}
    query = select(Publication.segment_id, Publication.use).where(
        Publication.segment_id.in_(published)
    )
    for segment_id, segment_use in session.execute(query):
        uses.setdefault(segment_id, set()).add(segment_use)
    return [
        PublishedSegment(
            name=segment.name,
            folder=segment.folder,
            source=segment.source,
            members=segment.member_count,
            uses=in_use_order(uses.get(segment.id, set())),
        )
        for segment in sorted(segments, key=lambda s: name_order(s.name))
    ]


def segment_published_for(session: Session, name: str, use: str) -> Segment:
    """The segment called `name` if it is published for `use`; NotFoundError saying which is not."""
    segment = find_segment(session, name)
    published = session.scalar(
        select(Publication.use).where(Publication.segment_id == segment.id, Publication.use == use)
    )
    if published is None:
        raise NotFoundError(
            f"segment {segment.name!r} exists but is not published to {use}; "
            f"publish it with `segsync publish NAME --use {use}`"
        )
    return segment


@dataclass(frozen=True)
class MemberPage:
    """Some members of a segment in account id order, and the id to continue after (if more)."""

    accounts: list[Account]
    continue_after: int | None


def segment_members_page(
    session: Session, segment: Segment, after: int | None, limit: int
) -> MemberPage:
    """Up to `limit` members of `segment` whose account id is above `after`, in id order."""
    query = (
        select(Account)
        .join(SegmentMembership, SegmentMembership.account_id == Account.id)
        .where(SegmentMembership.segment_id == segment.id)
        .order_by(SegmentMembership.account_id)
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(SegmentMembership.account_id > after)
    # One row more than asked says whether another page follows without a count.
    accounts = list(session.scalars(query))
    more = len(accounts) > limit
    accounts = accounts[:limit]
    return MemberPage(accounts, accounts[-1].id if more else None)


def in_use_order(uses: Collection[str]) -> tuple[str, ...]:
    """`uses` in the order uses are always listed (enrichment, account_details, gtm, ...)."""
    return tuple(use for use in USES if use in uses)
