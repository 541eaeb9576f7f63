"""Planning a run: the field's value format, then read every target record, match it to an
account and compare its value with the desired one (DESIGN.md §3 steps 2-5).

The same `diff` serves a run's planner (worker.sync.plan_run) and a dry run (worker.dry_run).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import Connector
from connectors.errors import FatalError
from models.accounts import Account
from models.base import utcnow
from models.db import transaction
from models.enrichment import ValueFormat, enrichment_values
from models.matching import AccountIndex, MatchKeys, build_account_index, match_keys, record_keys
from models.orchestrations import Orchestration
from models.record_states import Observation, ReadChoice, known_records, store_observations
from models.segments import SegmentMembership

# The planner stores how many records it has read every READ_NOTE_EVERY records, at most every
# READ_NOTE_INTERVAL seconds: progress an operator sees before any batch exists, and the moment
# it learns that the run was cancelled (it then stops reading).
READ_NOTE_EVERY = 100
READ_NOTE_INTERVAL = 0.25
# What a read found is stored as record state this many records at a time.
_OBSERVATIONS_STORED_EVERY = 2000
# A dry run, and a vendor that cannot tell what changed, read everything.
FULL_READ = ReadChoice(True, None, "a full read")
# Told of progress: ("read", records read and compared, None), ("write", batches done, batches).
Progress = Callable[[str, int, int | None], None]
# Asked while reading, with the records read so far: False stops the plan (run cancelled).
KeepReading = Callable[[int], bool]


@dataclass
class Plan:
    """What a run would write: (record id, new value) per record to change, and the counts."""

    updates: list[tuple[str, str]]
    records_read: int = 0
    eligible: int = 0
    unchanged: int = 0
    unmatched: int = 0
    truncated: int = 0
    # The first changes with the value each record holds now: (record id, current, new).
    first_changes: list[tuple[str, str | None, str]] = field(default_factory=list)


def _scope_accounts(orchestration: Orchestration) -> Select[int] | None:
    # recent:DAYS covers accounts created or changed (by an import) in the last DAYS days.
    if orchestration.scope_kind == "recent" and orchestration.scope_days:
        since = utcnow() - timedelta(days=orchestration.scope_days)
        return select(Account.id).where(Account.updated_at >= since)
    if orchestration.scope_kind == "segment" and orchestration.scope_segment_id is not None:
        return select(SegmentMembership.account_id).where(
            SegmentMembership.segment_id == orchestration.scope_segment_id
        )
    return None


def value_format(orchestration: Orchestration, connector: Connector) -> ValueFormat:
    """How the orchestration's values are written to its field (described by the vendor)."""
    return format_for(orchestration, describe_target(orchestration, connector))


def describe_target(orchestration: Orchestration, connector: Connector) -> int | None:
    """The target field's own maximum length (None: unlimited), as the vendor describes it;
    FatalError when the field is missing or not writable."""
    described = connector.describe_field(orchestration.object_type, orchestration.field)
    if not described.writable:
        raise FatalError(f"field {described.name} on {described.object_type} is not writable")
    return described.max_length


def format_for(orchestration: Orchestration, field_max_length: int | None) -> ValueFormat:
    """How the orchestration's values are written to a field of `field_max_length`."""
    limits = [n for n in (orchestration.max_length, field_max_length) if n]
    return ValueFormat(orchestration.delimiter, min(limits) if limits else None)


@dataclass
class _Comparison:
    """Compares records with their accounts' desired values, adding to a plan."""

    plan: Plan
    index: AccountIndex
    # Account id -> (value, names dropped to fit).
    desired: dict[int, tuple[str, int]]
    # Whether an account in no published segment has its records cleared.
    clear_empty: bool
    changes_kept: int

    def compare(self, record_id: str, keys: MatchKeys, current: str) -> None:
        """Count the record, and plan its write when its value is not its account's."""
        plan = self.plan
        account_id = match_keys(self.index, keys)
        if account_id is None:
            plan.unmatched += 1
            return
        if account_id not in self.desired:
            return  # outside the orchestration's scope
        value, dropped = self.desired[account_id]
        if not value and not self.clear_empty:
            return
        plan.eligible += 1
        plan.truncated += bool(dropped)
        if current == value:
            plan.unchanged += 1
        else:
            plan.updates.append((record_id, value))
            if len(plan.first_changes) < self.changes_kept:
                plan.first_changes.append((record_id, current or None, value))


def diff(
    factory: sessionmaker[Session],
    orchestration: Orchestration,
    connector: Connector,
    fmt: ValueFormat,
    progress: Progress | None,
    keep_reading: KeepReading,
    changes_kept: int = 0,
    read: ReadChoice = FULL_READ,
    remember: bool = False,
) -> Plan | None:
    """Read the target records (all, or those the vendor changed since `read.since`), match them
    to accounts and compare: what to write, and the counts (with the first `changes_kept`
    changes). An incremental read compares every record it did not read from its state
    (models.record_states). `remember`: store what was read as the records' state. None when
    `keep_reading` said stop."""
    with factory() as session:
        connection = session.connection()
        scope = _scope_accounts(orchestration)
        desired = {
            v.account_id: (v.value, v.dropped) for v in enrichment_values(connection, fmt, scope)
        }
        index = build_account_index(connection, connector.system)
    # Stale names are cleared only when every account is in scope (as the reference product).
    clear_empty = orchestration.scope_kind == "all" and not orchestration.keep_when_empty
    plan = Plan(updates=[])
    comparison = _Comparison(plan, index, desired, clear_empty, changes_kept)
    observed: list[Observation] = []
    read_ids: set[str] = set()
    noted_at = -math.inf
    object_type, target = orchestration.object_type, orchestration.field
    records = (
        connector.read_records(object_type, target)
        if read.since is None
        else connector.read_records(object_type, target, modified_since=read.since)
    )
    for number, record in enumerate(records, start=1):
        plan.records_read = number
        if number % READ_NOTE_EVERY == 0:
            if progress is not None:
                progress("read", number, None)
            if time.monotonic() - noted_at >= READ_NOTE_INTERVAL:
                noted_at = time.monotonic()
                if not keep_reading(number):
                    return None
        keys = record_keys(
            linked_account_id=record.linked_account_id, email=record.email, website=record.website
        )
        current = record.value or ""
        if remember:
            observed.append(Observation(record.id, keys, current))
            if len(observed) >= _OBSERVATIONS_STORED_EVERY:
                _remember(factory, orchestration.id, observed)
        if not read.full:
            read_ids.add(record.id)
        comparison.compare(record.id, keys, current)
    if remember:
        _remember(factory, orchestration.id, observed)
    if not read.full:
        with factory() as session:
            for known in known_records(session.connection(), orchestration.id, read_ids):
                comparison.compare(known.record_id, known.keys, known.value)
    if progress is not None:
        progress("read", plan.records_read, None)
    return plan


def _remember(
    factory: sessionmaker[Session], orchestration_id: int, observed: list[Observation]
) -> None:
    """Store, and let go of, what the read found so far (facts, whoever plans the run)."""
    with transaction(factory) as session:
        store_observations(session, orchestration_id, observed, utcnow())
    observed.clear()
