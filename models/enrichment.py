"""Enrichment values: each account's enrichment-published segment names, formatted for one field.

The value rule, as documented in the README:
- names are sorted alphabetically ignoring case and accents (ties broken by the exact name) and
  joined by the delimiter;
- a name that contains the delimiter has each visible ASCII character of that occurrence replaced
  by its full-width form (`;` -> `；`, `,` -> `，`, `|` -> `｜`), so splitting the value on the
  delimiter always gives back one entry per segment and the name still reads the same to a person;
- with a maximum length, whole names are dropped from the end until the value fits; a name is never
  cut, and the number dropped is reported;
- an account in no published segment gets the empty value.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import ColumnElement, Connection, Select, String, and_, cast, func, select

from models.accounts import Account
from models.errors import InputError
from models.publishing_tables import Publication
from models.segments import Segment, SegmentMembership, name_order
from models.vocabulary import DEFAULT_DELIMITER

ENRICHMENT_USE = "enrichment"
MAX_DELIMITER_LENGTH = 5
# Rows fetched per round trip when streaming: big enough to amortise, small enough for memory.
STREAM_BATCH = 10_000


def _fullwidth(text: str) -> str:
    """Visible ASCII characters (! to ~) as their full-width forms (U+FF01 to U+FF5E)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@dataclass(frozen=True)
class ValueFormat:
    """How names become one field value: the delimiter and the field's maximum length."""

    delimiter: str = DEFAULT_DELIMITER
    max_length: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= len(self.delimiter) <= MAX_DELIMITER_LENGTH:
            raise InputError(
                f"delimiter {self.delimiter!r} must be 1 to {MAX_DELIMITER_LENGTH} characters"
            )
        if _fullwidth(self.delimiter) == self.delimiter:
            raise InputError(
                f"delimiter {self.delimiter!r} must contain a visible ASCII character "
                "(such as ; , or |) so names containing it can be told apart"
            )
        if self.max_length is not None and self.max_length < 1:
            raise InputError(f"maximum length {self.max_length} must be at least 1")

    def escape(self, name: str) -> str:
        """`name` with every occurrence of the delimiter made harmless (see the module rule)."""
        replacement = _fullwidth(self.delimiter)
        # Each pass turns ASCII into non-ASCII characters, so the loop ends; it repeats because
        # a replacement can join the characters around it into a new occurrence.
        while self.delimiter in name:
            name = name.replace(self.delimiter, replacement)
        return name


@dataclass(frozen=True)
class FormattedValue:
    """A field value and how many names were dropped to fit the maximum length."""

    value: str
    names: int
    dropped: int


def join_names(escaped_sorted: list[str], fmt: ValueFormat) -> FormattedValue:
    """Join already escaped, sorted names, dropping whole names from the end to fit."""
    value = fmt.delimiter.join(escaped_sorted)
    if fmt.max_length is None or len(value) <= fmt.max_length:
        return FormattedValue(value, len(escaped_sorted), 0)
    kept = 0
    length = 0
    for name in escaped_sorted:
        added = len(name) + (len(fmt.delimiter) if kept else 0)
        if length + added > fmt.max_length:
            break
        length += added
        kept += 1
    return FormattedValue(
        fmt.delimiter.join(escaped_sorted[:kept]), kept, len(escaped_sorted) - kept
    )


def format_value(names: Iterable[str], fmt: ValueFormat) -> FormattedValue:
    """The field value for an account in the segments `names`."""
    ordered = sorted(names, key=name_order)
    return join_names([fmt.escape(name) for name in ordered], fmt)


class AccountValue(NamedTuple):
    """One account's desired field value."""

    # A named tuple, not a frozen dataclass: one is made per account (millions), and a frozen
    # dataclass takes about four times as long to construct (0.9 against 0.2 us here).

    account_id: int
    value: str
    names: int
    dropped: int


def enrichment_segment_names(connection: Connection) -> dict[int, str]:
    """segment id -> name of every segment published for enrichment."""
    rows = connection.execute(
        select(Segment.id, Segment.name)
        .join(Publication, Publication.segment_id == Segment.id)
        .where(Publication.use == ENRICHMENT_USE)
    )
    return {segment_id: name for segment_id, name in rows}


# How enrichment_values reads an account's segments: "rows" streams one (account, segment) row per
# membership and groups them in Python; "aggregated" has the database group them (one row per
# account with its segment ids in one string: PostgreSQL string_agg, SQLite group_concat).
READ_ROWS = "rows"
READ_AGGREGATED = "aggregated"
READS = (READ_ROWS, READ_AGGREGATED)
# The faster read per dialect, measured by bench/enrichment.py (defaults: 1,000,000 accounts,
# 4,999,930 memberships, 200 segments published for enrichment, max length 255; best of two, each
# in a fresh process), run of 2026-12-05 02:21 UTC on the shared 2-core machine:
#   SQLite 3.40     rows 3.24 s, aggregated 3.37 s (floors: rows 2.23 s, aggregated 2.21 s)
#   PostgreSQL 15   rows 3.07 s, aggregated 2.91 s (floors: rows 1.75 s, aggregated 1.42 s)
# On SQLite the two are within the machine's noise (the run before, 02:17, with the aggregated
# loop not yet inlined, had rows 4.54 s and aggregated 4.03 s): group_concat saves Python the
# grouping but SQLite does the same work instead; rows is kept, as this run found it faster.
# On PostgreSQL the aggregated read was faster in both runs (4.37 against 2.96 s at 02:17).
# Also measured and dropped: PostgreSQL building the whole value (string_agg of the escaped names
# ORDER BY rank, from arrays indexed by segment id): Python's share fell to ~0.7 s a million
# accounts, but the query alone took about twice the ids' (200,000 accounts: 0.83 s against
# 0.44 s), and the whole pass was slower than the rows read (0.97 s against 0.59 s).
PREFERRED_READ = {"sqlite": READ_ROWS, "postgresql": READ_AGGREGATED}


def preferred_read(dialect_name: str) -> str:
    """The read enrichment_values uses on this dialect unless told otherwise."""
    return PREFERRED_READ.get(dialect_name, READ_ROWS)


def enrichment_values(
    connection: Connection,
    fmt: ValueFormat,
    accounts: Select[int] | None = None,
    read: str | None = None,
) -> Iterator[AccountValue]:
    """Every account's value (or those `accounts` selects by id), in account id order.

    One streamed SQL pass over accounts left-joined to their memberships; memory stays flat
    whatever the number of accounts. `read` (READ_ROWS or READ_AGGREGATED) chooses how the
    memberships come back; by default the faster one for the connection's dialect.
    """
    if read is None:
        read = preferred_read(connection.dialect.name)
    if read not in READS:
        raise ValueError(f"unknown enrichment read {read!r}: one of {', '.join(READS)}")
    names = enrichment_segment_names(connection)
    # Rank each published segment once, so an account's names sort as integers, not strings.
    ranked = sorted(names, key=lambda segment_id: name_order(names[segment_id]))
    rank = {segment_id: position for position, segment_id in enumerate(ranked)}
    escaped = [fmt.escape(names[segment_id]) for segment_id in ranked]
    if read == READ_AGGREGATED:
        yield from _aggregated_values(connection, fmt, accounts, list(names), rank, escaped)
    else:
        yield from _row_values(connection, fmt, accounts, list(names), rank, escaped)


def _membership_join(published: list[int]) -> ColumnElement[bool]:
    """The outer join condition: an account's memberships of segments in `published`."""
    return and_(
        SegmentMembership.account_id == Account.id,
        # `+ 0` keeps the IN list out of the index lookup: SQLite would otherwise probe
        # (account_id, segment_id) once per published segment for every account (~6x a
        # plain scan); with it each account's index range is read once and filtered.
        # PostgreSQL's plan (a merge join of two index-only scans) is the same either way.
        (SegmentMembership.segment_id + 0).in_(published),
    )


def _streaming(connection: Connection) -> Connection:
    return connection.execution_options(stream_results=True, yield_per=STREAM_BATCH)


def _row_values(
    connection: Connection,
    fmt: ValueFormat,
    accounts: Select[int] | None,
    published: list[int],
    rank: dict[int, int],
    escaped: list[str],
) -> Iterator[AccountValue]:
    query = (
        select(Account.id, SegmentMembership.segment_id)
        .outerjoin(SegmentMembership, _membership_join(published))
        .order_by(Account.id)
    )
    if accounts is not None:
        query = query.where(Account.id.in_(accounts.scalar_subquery()))
    current: int | None = None
    ranks: list[int] = []
    for account_id, segment_id in _streaming(connection).execute(query):
        if account_id != current:
            if current is not None:
                yield _account_value(current, ranks, escaped, fmt)
                ranks = []
            current = account_id
        if segment_id is not None:
            ranks.append(rank[segment_id])
    if current is not None:
        yield _account_value(current, ranks, escaped, fmt)


def _aggregated_values(
    connection: Connection,
    fmt: ValueFormat,
    accounts: Select[int] | None,
    published: list[int],
    rank: dict[int, int],
    escaped: list[str],
) -> Iterator[AccountValue]:
    # The database concatenates each account's segment ids, in no order Python relies on: SQLite's
    # group_concat orders only from 3.44 on (ORDER BY inside the aggregate), and the order that
    # matters is Python's name_order anyway, so Python maps each id to its rank and sorts.
    segment_id_text = cast(SegmentMembership.segment_id, String)
    if connection.dialect.name == "postgresql":
        aggregated = func.string_agg(segment_id_text, ",")
    else:
        aggregated = func.group_concat(segment_id_text, ",")
    query = (
        select(Account.id, aggregated)
        .outerjoin(SegmentMembership, _membership_join(published))
        .group_by(Account.id)
        .order_by(Account.id)
    )
    if accounts is not None:
        query = query.where(Account.id.in_(accounts.scalar_subquery()))
    # This loop runs once per account (millions): it is _account_value inlined, with a shortcut
    # for the many accounts in a single published segment.
    rank_of_text = {str(segment_id): position for segment_id, position in rank.items()}
    name_of_text = {text: escaped[position] for text, position in rank_of_text.items()}
    delimiter = fmt.delimiter
    max_length = fmt.max_length
    for account_id, segment_ids in _streaming(connection).execute(query):
        if segment_ids is None:  # in no published segment: the aggregate of no rows
            yield AccountValue(account_id, "", 0, 0)
            continue
        if "," not in segment_ids:
            names = [name_of_text[segment_ids]]
            value = names[0]
        else:
            ranks = sorted([rank_of_text[segment_id] for segment_id in segment_ids.split(",")])
            names = [escaped[r] for r in ranks]
            value = delimiter.join(names)
        if max_length is None or len(value) <= max_length:
            yield AccountValue(account_id, value, len(names), 0)
        else:
            formatted = join_names(names, fmt)
            yield AccountValue(account_id, formatted.value, formatted.names, formatted.dropped)


def _account_value(
    account_id: int, ranks: list[int], escaped: list[str], fmt: ValueFormat
) -> AccountValue:
    # This runs once per account (millions): the common cases skip the general formatting.
    if not ranks:
        return AccountValue(account_id, "", 0, 0)
    ranks.sort()
    names = [escaped[r] for r in ranks]
    value = fmt.delimiter.join(names)
    if fmt.max_length is None or len(value) <= fmt.max_length:
        return AccountValue(account_id, value, len(names), 0)
    formatted = join_names(names, fmt)
    return AccountValue(account_id, formatted.value, formatted.names, formatted.dropped)
