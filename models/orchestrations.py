"""Orchestrations: which connection, object and field a Segment Name orchestration keeps filled.

Every rule about creating, changing and deleting one lives here, for the CLI and the web API alike:
one orchestration per field of an object on a connection (two would overwrite each other), and no
change to what a run writes, or where, while a run of it is active.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Final, Literal, TypeAlias, TypeVar

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, as_utc, utcnow
from models.connections import Connection, lock_connection
from models.enrichment import ValueFormat
from models.errors import InputError, NotFoundError, RuleError
from models.publishing import published_uses
from models.runs import ACTIVE_RUN_STATUSES, ReadWatermark, RecordState, SyncRun
from models.schedules import check_schedule, next_fire
from models.segment_catalog import find_segment

SCOPE_KINDS = ("all", "recent", "segment")
_NAME = re.compile(r"^[\w .-]{1,100}$")
_SCOPE = re.compile(r"^(all|recent:(\d{1,4})|segment:(.+))$", re.DOTALL)
T = TypeVar("T")
# Runs between two full reads read only what the vendor changed; a full read (a reconcile)
# catches what they cannot see, such as a value someone else put in the field.
DEFAULT_RECONCILE_DAYS = 7
MAX_RECONCILE_DAYS = 365


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
    # A run reads every record (a reconcile) when the last full read is this many days old;
    # between them runs read only what the vendor changed. 0: every run reads everything.
    reconcile_days: Mapped[int] = mapped_column(
        Integer, default=DEFAULT_RECONCILE_DAYS, server_default=str(DEFAULT_RECONCILE_DAYS)
    )
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
    reconcile_days: int = DEFAULT_RECONCILE_DAYS


class _Keep(Enum):
    KEEP = "keep"


# An update leaves a setting given as KEEP as it is (None means "none": on demand, no cap).
KEEP: Final = _Keep.KEEP
Keep: TypeAlias = Literal[_Keep.KEEP]


@dataclass(frozen=True)
class OrchestrationChanges:
    """What a person changes in an orchestration; every setting left KEEP stays as it is."""

    name: str | Keep = KEEP
    connection_id: int | Keep = KEEP
    object_type: str | Keep = KEEP
    field: str | Keep = KEEP
    scope: Scope | Keep = KEEP
    delimiter: str | Keep = KEEP
    max_length: int | Keep | None = KEEP
    keep_when_empty: bool | Keep = KEEP
    daily_api_budget: int | Keep | None = KEEP
    schedule: str | Keep | None = KEEP
    reconcile_days: int | Keep = KEEP


# Settings that decide what a run writes, or where: a run planned under the old ones would write
# its planned values into the new target, so they do not change while a run is active.
_SHAPES_RUNS = (
    "connection_id",
    "object_type",
    "field",
    "scope_kind",
    "scope_days",
    "scope_segment_id",
    "delimiter",
    "max_length",
    "keep_when_empty",
)
_TARGET = ("connection_id", "object_type", "field")
# Column -> the setting's name as a person gives it.
_SETTING_NAMES = {
    "connection_id": "connection",
    "object_type": "object",
    "scope_kind": "scope",
    "scope_days": "scope",
    "scope_segment_id": "scope",
}


@dataclass(frozen=True)
class OrchestrationUpdate:
    """An updated orchestration and the names of the settings that changed (none: no-op)."""

    orchestration: Orchestration
    changed: tuple[str, ...]


def create_orchestration(session: Session, spec: OrchestrationSpec) -> Orchestration:
    """Store a new orchestration after checking every rule that needs no CRM; caller commits."""
    name = _checked_name(spec.name)
    ValueFormat(spec.delimiter, spec.max_length)  # refuses a bad delimiter or length
    schedule = check_schedule(spec.schedule) if spec.schedule else None
    _check_budget(spec.daily_api_budget)
    check_reconcile_days(spec.reconcile_days)
    _check_name_free(session, name, None)
    connection = lock_connection(session, spec.connection_id)
    kind, days, segment_id = _scope_columns(session, spec.scope)
    _refuse_conflict(session, connection, spec.object_type, spec.field, None)
    orchestration = Orchestration(
        name=name,
        connection_id=connection.id,
        object_type=spec.object_type,
        field=spec.field,
        scope_kind=kind,
        scope_days=days,
        scope_segment_id=segment_id,
        delimiter=spec.delimiter,
        max_length=spec.max_length,
        keep_when_empty=spec.keep_when_empty,
        daily_api_budget=spec.daily_api_budget,
        schedule=schedule,
        next_run_at=next_fire(schedule, utcnow()) if schedule else None,
        enabled=True,
        reconcile_days=spec.reconcile_days,
    )
    session.add(orchestration)
    session.flush()
    return orchestration


def update_orchestration(
    session: Session, name: str, changes: OrchestrationChanges
) -> OrchestrationUpdate:
    """Change orchestration `name` after checking every rule create checks, and that no active run
    would mix its old and new target; nothing changes when one is refused. The caller commits.

    A caller that changes the connection, object or field gives them as the connection describes
    them (checked through it, as for create)."""
    # Locked until commit: a run cannot start meanwhile (its row's foreign key waits on the lock).
    current = find_orchestration(session, name, lock=True)
    new_name = current.name if isinstance(changes.name, _Keep) else _checked_name(changes.name)
    delimiter = _given(changes.delimiter, current.delimiter)
    max_length = _given(changes.max_length, current.max_length)
    ValueFormat(delimiter, max_length)  # refuses a bad delimiter or length
    budget = _given(changes.daily_api_budget, current.daily_api_budget)
    _check_budget(budget)
    reconcile_days = check_reconcile_days(_given(changes.reconcile_days, current.reconcile_days))
    schedule = current.schedule
    if not isinstance(changes.schedule, _Keep):
        schedule = check_schedule(changes.schedule) if changes.schedule else None
    if new_name != current.name:
        _check_name_free(session, new_name, current.id)
    connection = lock_connection(session, _given(changes.connection_id, current.connection_id))
    if isinstance(changes.scope, _Keep):
        kind, days, segment_id = current.scope_kind, current.scope_days, current.scope_segment_id
    else:
        kind, days, segment_id = _scope_columns(session, changes.scope)
    object_type = _given(changes.object_type, current.object_type)
    field = _given(changes.field, current.field)
    wanted: dict[str, object] = {
        "name": new_name,
        "connection_id": connection.id,
        "object_type": object_type,
        "field": field,
        "scope_kind": kind,
        "scope_days": days,
        "scope_segment_id": segment_id,
        "delimiter": delimiter,
        "max_length": max_length,
        "keep_when_empty": _given(changes.keep_when_empty, current.keep_when_empty),
        "daily_api_budget": budget,
        "schedule": schedule,
        "reconcile_days": reconcile_days,
    }
    changed = [column for column, value in wanted.items() if getattr(current, column) != value]
    if set(changed) & set(_TARGET):
        _refuse_conflict(session, connection, object_type, field, current.id)
    if set(changed) & set(_SHAPES_RUNS):
        _refuse_while_active(session, current, [c for c in changed if c in _SHAPES_RUNS])
    moved = connection.id != current.connection_id or not same_target(
        current.object_type, current.field, object_type, field
    )
    for column in changed:
        setattr(current, column, wanted[column])
    if moved:
        # What it knows of records is of another field's records: the next run reads everything.
        session.execute(delete(RecordState).where(RecordState.orchestration_id == current.id))
        session.execute(delete(ReadWatermark).where(ReadWatermark.orchestration_id == current.id))
    if "schedule" in changed:
        current.next_run_at = next_fire(current.schedule, utcnow()) if current.schedule else None
    session.flush()
    names = tuple(dict.fromkeys(_SETTING_NAMES.get(column, column) for column in changed))
    return OrchestrationUpdate(current, names)


def set_orchestration_enabled(session: Session, name: str, enabled: bool) -> bool:
    """Enable or disable orchestration `name`; False when it already was. The caller commits.

    Enabling resumes the schedule from now: firings missed while disabled are not made up at once.
    """
    found = find_orchestration(session, name, lock=True)
    if found.enabled == enabled:
        return False
    found.enabled = enabled
    now = utcnow()
    missed = found.next_run_at is None or as_utc(found.next_run_at) <= now
    if enabled and found.schedule and missed:
        found.next_run_at = next_fire(found.schedule, now)
    session.flush()
    return True


def delete_orchestration(session: Session, name: str) -> None:
    """Delete orchestration `name` and its run history, unless a run of it is active."""
    found = find_orchestration(session, name, lock=True)
    active = _active_run(session, found.id)
    if active is not None:
        raise RuleError(
            f"orchestration {found.name!r} has run {active.id} active ({active.status}): "
            f"wait for it to end, or cancel it (`segsync runs cancel {active.id}`)"
        )
    session.execute(delete(Orchestration).where(Orchestration.id == found.id))


def find_orchestration(session: Session, name: str, lock: bool = False) -> Orchestration:
    """The orchestration called `name` (`lock`: its row locked until the transaction ends)."""
    query = select(Orchestration).where(Orchestration.name == name.strip())
    found = session.scalar(query.with_for_update() if lock else query)
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


def same_target(object_a: str, field_a: str, object_b: str, field_b: str) -> bool:
    """True when two object/field pairs name the same field.

    Every supported vendor matches object and field names ignoring case (Salesforce API names,
    HubSpot property names, Marketo REST names, Pardot and Eloqua field names), and so do all five
    adapters: `Segment_Names__c` and `segment_names__c` are one field.
    """
    return (
        object_a.strip().casefold() == object_b.strip().casefold()
        and field_a.strip().casefold() == field_b.strip().casefold()
    )


def _refuse_conflict(
    session: Session, connection: Connection, object_type: str, field: str, excluding: int | None
) -> None:
    others = select(Orchestration).where(Orchestration.connection_id == connection.id)
    if excluding is not None:
        others = others.where(Orchestration.id != excluding)
    for other in session.scalars(others.order_by(Orchestration.name)):
        if same_target(other.object_type, other.field, object_type, field):
            disabled = "" if other.enabled else " (disabled)"
            raise RuleError(
                f"orchestration {other.name!r}{disabled} already writes {other.object_type}."
                f"{other.field} on connection {connection.name!r}: two orchestrations on one "
                "field would overwrite each other"
            )


def _refuse_while_active(
    session: Session, orchestration: Orchestration, columns: list[str]
) -> None:
    active = _active_run(session, orchestration.id)
    if active is None:
        return
    settings = ", ".join(dict.fromkeys(_SETTING_NAMES.get(c, c) for c in columns))
    raise RuleError(
        f"orchestration {orchestration.name!r} has run {active.id} active ({active.status}): "
        f"its {settings} cannot change until it ends; wait for it, or cancel it "
        f"(`segsync runs cancel {active.id}`)"
    )


def _active_run(session: Session, orchestration_id: int) -> SyncRun | None:
    return session.scalar(
        select(SyncRun).where(
            SyncRun.orchestration_id == orchestration_id,
            SyncRun.status.in_(ACTIVE_RUN_STATUSES),
        )
    )


def _scope_columns(session: Session, scope: Scope) -> tuple[str, int | None, int | None]:
    """(kind, days, segment id) of a scope; a segment scope needs a segment published to gtm."""
    if scope.kind not in SCOPE_KINDS:
        raise InputError(f"scope kind {scope.kind!r} must be one of {', '.join(SCOPE_KINDS)}")
    if scope.kind == "recent":
        if scope.days is None or scope.days < 1:
            raise InputError("scope recent:DAYS needs DAYS of at least 1")
        return "recent", scope.days, None
    if scope.kind == "segment":
        segment = find_segment(session, scope.segment_name or "")
        if "gtm" not in published_uses(session, segment):
            raise RuleError(
                f"scope segment:{segment.name} needs a GTM segment; {segment.name!r} is not "
                "published to gtm"
            )
        return "segment", None, segment.id
    return "all", None, None


def _checked_name(text: str) -> str:
    name = text.strip()
    if not _NAME.match(name):
        raise InputError(
            f"orchestration name {text!r} must be 1-100 letters, digits, spaces, '.', '_' or '-'"
        )
    return name


def _check_name_free(session: Session, name: str, excluding: int | None) -> None:
    query = select(Orchestration.id).where(Orchestration.name == name)
    if excluding is not None:
        query = query.where(Orchestration.id != excluding)
    if session.scalar(query) is not None:
        raise RuleError(f"an orchestration named {name!r} already exists")


def check_reconcile_days(days: int) -> int:
    """`days` between full reads, or InputError naming the range."""
    if not 0 <= days <= MAX_RECONCILE_DAYS:
        raise InputError(
            f"reconcile days {days} must be 0 (every run reads everything) to {MAX_RECONCILE_DAYS}"
        )
    return days


def _check_budget(budget: int | None) -> None:
    if budget is not None and budget < 1:
        raise InputError(f"daily API budget {budget} must be at least 1")


def _given(value: T | Keep, current: T) -> T:
    return current if isinstance(value, _Keep) else value
