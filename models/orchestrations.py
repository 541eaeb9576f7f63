"""Orchestrations: which connection, object and field a Segment Name orchestration keeps filled."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow
from models.errors import InputError

SCOPE_KINDS = ("all", "recent", "segment")
_SCOPE = re.compile(r"^(all|recent:(\d{1,4})|segment:(.+))$", re.DOTALL)


class Orchestration(Base):
    """Keep `field` on every `object_type` record of a connection filled with segment names."""

    __tablename__ = "orchestrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    connection_id: Mapped[int] = mapped_column(
        ForeignKey("connections.id", ondelete="RESTRICT"), index=True
    )
    object_type: Mapped[str] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(255))
    # Five-field cron expression (UTC); None runs only on demand.
    schedule: Mapped[str | None] = mapped_column(String(100))
    scope_kind: Mapped[str] = mapped_column(String(16), default="all")
    scope_days: Mapped[int | None] = mapped_column(Integer)
    scope_segment_id: Mapped[int | None] = mapped_column(
        ForeignKey("segments.id", ondelete="RESTRICT")
    )
    delimiter: Mapped[str] = mapped_column(String(5), default=";")
    # None: the field's own maximum length, as the connection describes it.
    max_length: Mapped[int | None] = mapped_column(Integer)
    keep_when_empty: Mapped[bool] = mapped_column(Boolean, default=False)
    daily_api_budget: Mapped[int | None] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # When the schedule next fires; beats claim it with compare-and-set.
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


@dataclass(frozen=True)
class Scope:
    """Which accounts an orchestration covers: all, recently changed, or a GTM segment's."""

    kind: str
    days: int | None = None
    segment_name: str | None = None


def parse_scope(text: str) -> Scope:
    """`all`, `recent:DAYS` or `segment:NAME`."""
    match = _SCOPE.match(text.strip())
    if match is None:
        raise InputError(f"scope {text!r} must be all, recent:DAYS or segment:NAME")
    if match.group(2) is not None:
        days = int(match.group(2))
        if days < 1:
            raise InputError(f"scope {text!r}: DAYS must be at least 1")
        return Scope("recent", days=days)
    if match.group(3) is not None:
        return Scope("segment", segment_name=match.group(3).strip())
    return Scope("all")
