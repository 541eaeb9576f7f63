"""Orchestrations: which connection, object and field a Segment Name orchestration keeps filled."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, utcnow
from models.enrichment import ValueFormat
from models.errors import InputError, NotFoundError, RuleError
from models.publishing import published_uses
from models.schedules import check_schedule, next_fire
from models.segment_catalog import find_segment

SCOPE_KINDS = ("all", "recent", "segment")
_NAME = re.compile(r"^[\w .-]{1,100}$")
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


@dataclass(frozen=True)
class OrchestrationSpec:
    """What a person gives to create an orchestration."""

    name: str
    connection_id: int
    object_type: str
    field: str
    scope: Scope
    delimiter: str = ";"
    max_length: int | None = None
    keep_when_empty: bool = False
    daily_api_budget: int | None = None
    schedule: str | None = None


def create_orchestration(session: Session, spec: OrchestrationSpec) -> Orchestration:
    """Store a new orchestration after checking every rule that needs no CRM; caller commits."""
    name = spec.name.strip()
    if not _NAME.match(name):
        raise InputError(
            f"orchestration name {spec.name!r} must be 1-100 letters, digits, spaces, '.', '_' "
            "or '-'"
        )
    ValueFormat(spec.delimiter, spec.max_length)  # refuses a bad delimiter or length
    schedule = check_schedule(spec.schedule) if spec.schedule else None
    if spec.daily_api_budget is not None and spec.daily_api_budget < 1:
        raise InputError(f"daily API budget {spec.daily_api_budget} must be at least 1")
    if session.scalar(select(Orchestration.id).where(Orchestration.name == name)) is not None:
        raise RuleError(f"an orchestration named {name!r} already exists")
    segment_id = None
    if spec.scope.kind == "segment":
        segment = find_segment(session, spec.scope.segment_name or "")
        if "gtm" not in published_uses(session, segment):
            raise RuleError(
                f"scope segment:{segment.name} needs a GTM segment; {segment.name!r} is not "
                "published to gtm"
            )
        segment_id = segment.id
    orchestration = Orchestration(
        name=name,
        connection_id=spec.connection_id,
        object_type=spec.object_type,
        field=spec.field,
        scope_kind=spec.scope.kind,
        scope_days=spec.scope.days,
        scope_segment_id=segment_id,
        delimiter=spec.delimiter,
        max_length=spec.max_length,
        keep_when_empty=spec.keep_when_empty,
        daily_api_budget=spec.daily_api_budget,
        schedule=schedule,
        next_run_at=next_fire(schedule, utcnow()) if schedule else None,
        enabled=True,
    )
    session.add(orchestration)
    session.flush()
    return orchestration


def find_orchestration(session: Session, name: str) -> Orchestration:
    """The orchestration called `name`."""
    found = session.scalar(select(Orchestration).where(Orchestration.name == name.strip()))
    if found is None:
        raise NotFoundError(f"no orchestration named {name!r}")
    return found


def scope_text(orchestration: Orchestration, segment_name: str | None) -> str:
    """The scope as a person writes it."""
    if orchestration.scope_kind == "recent":
        return f"recent:{orchestration.scope_days}"
    if orchestration.scope_kind == "segment":
        return f"segment:{segment_name}"
    return "all"
