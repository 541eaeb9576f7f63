"""Tables of publishing: which segment is published for which use, and what references it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow
from models.vocabulary import REFERENCE_KINDS as REFERENCE_KINDS
from models.vocabulary import USES as USES

LEGACY_USES = ("sales_intelligence",)


class Publication(Base):
    """Segment `segment_id` is published for `use`."""

    __tablename__ = "publications"

    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True
    )
    use: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SegmentReference(Base):
    """A saved report or custom 6QA that uses a GTM segment (and so keeps it published)."""

    __tablename__ = "segment_references"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    segment_id: Mapped[int] = mapped_column(
        ForeignKey("segments.id", ondelete="RESTRICT"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (UniqueConstraint("segment_id", "kind", "title"),)
