"""Segments: named sets of accounts, defined by an uploaded list, a filter expression, or both."""

from __future__ import annotations

import unicodedata
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow
from models.vocabulary import SOURCES as SOURCES

# Every kind of filter a segment definition can be made of.
FILTER_KINDS = (
    "profile_fit",
    "company_profile",
    "crm_map",
    "salesforce_report",
    "salesforce_account_list",
    "uploaded_list",
    "intent",
    "engagement",
    "buying_stage",
)

# The filter kind that stands for each list source in a segment's definition.
LIST_FILTER_KIND = {
    "uploaded_list": "uploaded_list",
    "crm_report_sync": "salesforce_report",
    "crm_list_sync": "salesforce_account_list",
}


def name_order(name: str) -> tuple[str, str, str]:
    """Alphabetical ignoring case and accents (É sorts with E), then exact: deterministic."""
    folded = name.casefold()
    bare = "".join(c for c in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(c))
    return (bare, folded, name)


class Segment(Base):
    """A named set of accounts; its name is unique whatever its case."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    # casefold(name): what makes names unique and searchable regardless of case.
    name_key: Mapped[str] = mapped_column(String(255), unique=True)
    folder: Mapped[str | None] = mapped_column(String(255), index=True)
    source: Mapped[str] = mapped_column(String(32))
    # The filter expression as written (None for a pure list segment).
    filter_expression: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    refreshed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    member_count: Mapped[int] = mapped_column(Integer, default=0)

    filters: Mapped[list[SegmentFilter]] = relationship(
        back_populates="segment",
        order_by="SegmentFilter.position",
        cascade="all, delete-orphan",
    )


class SegmentFilter(Base):
    """One filter of a segment's definition, with its kind (what GTM eligibility looks at)."""

    __tablename__ = "segment_filters"

    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    # How a person reads this filter: a comparison from the expression, or the list's file name.
    description: Mapped[str] = mapped_column(Text)

    segment: Mapped[Segment] = relationship(back_populates="filters")


class SegmentListEntry(Base):
    """One line of a list segment's uploaded list: an external id or a domain."""

    __tablename__ = "segment_list_entries"

    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True
    )
    line: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(255))
    domain: Mapped[str | None] = mapped_column(String(255))


class SegmentMembership(Base):
    """Account `account_id` is in segment `segment_id` as of the segment's last refresh."""

    __tablename__ = "segment_memberships"

    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )

    # Enrichment streams memberships in account order: this index makes that an index-only scan.
    __table_args__ = (Index("ix_segment_memberships_account_segment", "account_id", "segment_id"),)
