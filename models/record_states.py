"""What an orchestration knows of its target records, and how its next run reads them.

A run reads everything (a full read) the first time, on the orchestration's reconcile cadence,
when asked (`segsync sync --full`), or when the vendor cannot say what changed; otherwise it reads
only what the vendor changed after the watermark (an incremental read) and compares every other
record from its state (models.runs.RecordState): its match keys and the value it holds.

The watermark is the moment the last read began, less an overlap: a record the vendor stamps a
little before it becomes visible (a long transaction's commit), or a vendor clock a little behind
segsync's, is read again rather than missed. It moves only with a planned run (in the planner's
own transaction), so a read that failed is read again from the same moment.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from models.base import as_utc
from models.matching import MatchKeys
from models.orchestrations import Orchestration
from models.runs import ReadWatermark, RecordState

# Default overlap of an incremental read with the one before (SEGSYNC_READ_OVERLAP_SECONDS).
DEFAULT_READ_OVERLAP = timedelta(minutes=5)
# Rows per upsert statement: under SQLite's limit on bound parameters.
_UPSERT_ROWS = 1000


@dataclass(frozen=True)
class ReadChoice:
    """How a run reads: everything, or what changed after `since`; and why.

    An incremental read also carries the target field's maximum length as the last full read
    described it (None: unlimited), so the run does not describe the field again: a field the
    vendor changed meanwhile is refused by the vendor at the write, and described afresh by the
    next full read."""

    full: bool
    since: datetime | None
    reason: str
    field_max_length: int | None = None

    @property
    def mode(self) -> str:
        """ "full" or "incremental", as the run records it."""
        return "full" if self.full else "incremental"


def read_description(mode: str | None, since: datetime | None) -> str | None:
    """How a run read, as every interface shows it (None before its planner read)."""
    if mode is None:
        return None
    if mode == "incremental" and since is not None:
        return f"incremental: records changed since {as_utc(since):%Y-%m-%d %H:%M:%S} UTC"
    return mode


def choose_read(
    session: Session,
    orchestration: Orchestration,
    *,
    now: datetime,
    full_requested: bool,
    reads_modified: bool,
) -> ReadChoice:
    """How the orchestration's run starting `now` reads its records (see the module rule)."""
    mark = session.get(ReadWatermark, orchestration.id)
    if full_requested:
        return ReadChoice(True, None, "a full read was asked for")
    if not reads_modified:
        return ReadChoice(True, None, "the vendor cannot tell which records changed")
    if mark is None:
        return ReadChoice(True, None, "the first read of this target")
    if orchestration.reconcile_days == 0:
        return ReadChoice(True, None, "every run reads everything (reconcile days 0)")
    full_at = as_utc(mark.full_read_at) if mark.full_read_at is not None else None
    if full_at is None or now - full_at >= timedelta(days=orchestration.reconcile_days):
        return ReadChoice(True, None, f"the {orchestration.reconcile_days}-day reconcile is due")
    since = as_utc(mark.modified_since)
    reason = f"records changed since {since:%Y-%m-%d %H:%M:%S} UTC"
    return ReadChoice(False, since, reason, mark.field_max_length)


def advance_watermark(
    session: Session,
    orchestration_id: int,
    choice: ReadChoice,
    read_started: datetime,
    overlap: timedelta,
    field_max_length: int | None,
) -> None:
    """After a planned read that began at `read_started`: the next read starts `overlap` before
    it; a full read also keeps the field's described `field_max_length` and forgets the records
    it did not see (deleted or merged in the CRM)."""
    mark = session.get(ReadWatermark, orchestration_id)
    since = read_started - overlap
    if mark is None:
        mark = ReadWatermark(orchestration_id=orchestration_id, modified_since=since)
        session.add(mark)
    else:
        # Never backwards: an overlap made longer must not read again what was read.
        mark.modified_since = max(as_utc(mark.modified_since), since)
    if choice.full:
        mark.full_read_at = read_started
        mark.field_max_length = field_max_length
        session.execute(
            delete(RecordState).where(
                RecordState.orchestration_id == orchestration_id,
                or_(RecordState.seen_at.is_(None), RecordState.seen_at < read_started),
            )
        )
    session.flush()


@dataclass(frozen=True)
class Observation:
    """One record as a read found it: its match keys and the value it holds."""

    record_id: str
    keys: MatchKeys
    value: str


def store_observations(
    session: Session, orchestration_id: int, observations: Sequence[Observation], at: datetime
) -> None:
    """Upsert what a read found of each record (a few statements, not one per record)."""
    rows = [
        {
            "orchestration_id": orchestration_id,
            "record_id": seen.record_id,
            "value": seen.value,
            "link": seen.keys.link,
            "email_domain": seen.keys.email_domain,
            "website_domain": seen.keys.website_domain,
            "seen_at": at,
            "written_at": at,
        }
        for seen in observations
    ]
    _upsert_states(session, rows)


def store_written(
    session: Session, orchestration_id: int, written: Sequence[tuple[str, str]], at: datetime
) -> None:
    """Upsert the value each (record id, value) written holds now; its match keys stay."""
    rows = [
        {"orchestration_id": orchestration_id, "record_id": record_id, "value": value,
         "written_at": at}
        for record_id, value in written
    ]  # fmt: skip
    _upsert_states(session, rows)


def _upsert_states(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert the rows, or update the columns they give of the records already known, in
    slices under SQLite's limit on bound parameters (a bulk batch writes 10,000 records)."""
    if not rows:
        return
    upsert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    updated = [column for column in rows[0] if column not in ("orchestration_id", "record_id")]
    for start in range(0, len(rows), _UPSERT_ROWS):
        statement = upsert(RecordState).values(rows[start : start + _UPSERT_ROWS])
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["orchestration_id", "record_id"],
                set_={column: statement.excluded[column] for column in updated},
            )
        )


def known_records(
    connection: Connection, orchestration_id: int, skip: Iterable[str] = ()
) -> Iterator[Observation]:
    """Every record the orchestration knows, as last read or written, but those in `skip`;
    streamed, in record id order. Rows only ever written (no keys read) are left out."""
    skipped = set(skip)
    rows = connection.execution_options(stream_results=True, yield_per=10_000).execute(
        select(
            RecordState.record_id,
            RecordState.value,
            RecordState.link,
            RecordState.email_domain,
            RecordState.website_domain,
        )
        .where(RecordState.orchestration_id == orchestration_id, RecordState.seen_at.is_not(None))
        .order_by(RecordState.record_id)
    )
    for record_id, value, link, email_domain, website_domain in rows:
        if record_id not in skipped:
            yield Observation(record_id, MatchKeys(link, email_domain, website_domain), value)
