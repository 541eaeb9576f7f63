"""Creating, finding, listing and refreshing segments (their definitions and memberships)."""

from __future__ import annotations

import csv
import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import ColumnElement, and_, delete, func, insert, literal, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.accounts import Account
from models.base import utcnow
from models.domains import registrable_domain
from models.errors import InputError, NotFoundError, RuleError
from models.filters import parse_filter
from models.publishing_tables import Publication
from models.segments import (
    LIST_FILTER_KIND,
    SOURCES,
    Segment,
    SegmentFilter,
    SegmentListEntry,
    SegmentMembership,
    name_order,
)

MAX_NAME_LENGTH = 255
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
_LIST_COLUMNS = ("external_id", "domain", "website")


def clean_segment_name(name: str) -> str:
    """`name` trimmed, refused when empty, too long or holding control characters."""
    cleaned = name.strip()
    if not cleaned:
        raise InputError("a segment name cannot be empty")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise InputError(f"segment name is {len(cleaned)} characters; at most {MAX_NAME_LENGTH}")
    if _CONTROL_CHARACTERS.search(cleaned):
        raise InputError(f"segment name {cleaned!r} contains a control character")
    return cleaned


def name_key(name: str) -> str:
    """What makes two segment names the same: case and surrounding spaces do not count."""
    return name.strip().casefold()


def matches_search(search: str | None, *texts: str | None) -> bool:
    """True when `search` is empty or appears, ignoring case, in one of `texts`."""
    if not search:
        return True
    needle = search.strip().casefold()
    return any(needle in text.casefold() for text in texts if text)


def find_segment(session: Session, name: str) -> Segment:
    """The segment called `name` (any case), or NotFoundError suggesting close names."""
    segment = session.scalar(select(Segment).where(Segment.name_key == name_key(name)))
    if segment is not None:
        return segment
    names = list(session.scalars(select(Segment.name)))
    close = difflib.get_close_matches(name, names, n=3)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    raise NotFoundError(f"no segment named {name!r}{hint}")


@dataclass(frozen=True)
class ListEntry:
    """One line of an account list file."""

    line: int
    external_id: str | None
    domain: str | None


def read_account_list(path: Path) -> list[ListEntry]:
    """The entries of a CSV account list with an `external_id` and/or `domain`/`website` column."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [cell.strip().lower() for cell in next(reader, [])]
            columns = {name: header.index(name) for name in _LIST_COLUMNS if name in header}
            if "external_id" not in columns and not {"domain", "website"} & set(columns):
                raise InputError(
                    f"{path}: needs a header row with an external_id, domain or website column"
                )
            entries = [
                entry
                for number, row in enumerate(reader, start=2)
                if (entry := _list_entry(path, number, row, columns)) is not None
            ]
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    except csv.Error as exc:
        raise InputError(f"{path}: not a valid CSV file: {exc}") from None
    if not entries:
        raise InputError(f"{path}: the list has no accounts")
    return entries


def _list_entry(path: Path, line: int, row: list[str], columns: dict[str, int]) -> ListEntry | None:
    def cell(column: str) -> str:
        index = columns.get(column)
        return row[index].strip() if index is not None and index < len(row) else ""

    external_id = cell("external_id") or None
    raw_domain = cell("domain") or cell("website")
    if external_id is None and not raw_domain:
        return None
    try:
        domain = registrable_domain(raw_domain) if raw_domain else None
    except InputError as exc:
        raise InputError(f"{path}:{line}: {exc}") from None
    return ListEntry(line, external_id, domain)


def create_segment(
    session: Session,
    name: str,
    *,
    list_path: Path | None = None,
    filter_expression: str | None = None,
    source: str | None = None,
    folder: str | None = None,
) -> Segment:
    """Create a segment from a list, a filter or both, and compute its members; caller commits."""
    name = clean_segment_name(name)
    if list_path is None and filter_expression is None:
        raise InputError("a segment needs --list FILE, --filter EXPR, or both")
    source = source or ("uploaded_list" if list_path is not None else "filter")
    if source not in SOURCES:
        raise InputError(f"unknown source {source!r} (sources: {', '.join(SOURCES)})")
    if source == "filter" and list_path is not None:
        raise InputError("a segment with source filter takes no --list; pick a list source")
    if source != "filter" and list_path is None:
        raise InputError(f"source {source} needs --list FILE with the list's accounts")
    parsed = parse_filter(filter_expression) if filter_expression is not None else None
    entries = read_account_list(list_path) if list_path is not None else []
    check_segment_name_free(session, name)

    segment = Segment(
        name=name,
        name_key=name_key(name),
        folder=(folder or "").strip() or None,
        source=source,
        filter_expression=parsed.expression if parsed else None,
    )
    filters: list[SegmentFilter] = []
    if list_path is not None:
        description = f"{list_path.name} ({len(entries)} entries)"
        filters.append(SegmentFilter(kind=LIST_FILTER_KIND[source], description=description))
    if parsed is not None:
        filters.extend(SegmentFilter(kind=c.kind, description=c.text) for c in parsed.comparisons)
    for position, segment_filter in enumerate(filters, start=1):
        segment_filter.position = position
    segment.filters = filters
    add_segment(session, segment)
    if entries:
        session.execute(
            insert(SegmentListEntry),
            [
                {
                    "segment_id": segment.id,
                    "line": e.line,
                    "external_id": e.external_id,
                    "domain": e.domain,
                }
                for e in entries
            ],
        )
    refresh_membership(session, segment)
    return segment


def check_segment_name_free(session: Session, name: str) -> None:
    """RuleError when a segment called `name` (in any case) exists."""
    if session.scalar(select(Segment.id).where(Segment.name_key == name_key(name))) is not None:
        raise RuleError(f"a segment named {name.strip()!r} already exists")


def add_segment(session: Session, segment: Segment) -> None:
    """Store a new segment, refused when another session stored its name meanwhile."""
    session.add(segment)
    try:
        session.flush()
    except IntegrityError:
        # Another session created the same name between our check and our insert.
        raise RuleError(f"a segment named {segment.name!r} already exists") from None


def _membership_condition(segment: Segment) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = []
    if segment.source != "filter":
        in_list = SegmentListEntry.segment_id == segment.id
        conditions.append(
            or_(
                Account.external_id.in_(
                    select(SegmentListEntry.external_id).where(
                        in_list, SegmentListEntry.external_id.is_not(None)
                    )
                ),
                Account.domain.in_(
                    select(SegmentListEntry.domain).where(
                        in_list, SegmentListEntry.domain.is_not(None)
                    )
                ),
            )
        )
    if segment.filter_expression is not None:
        conditions.append(parse_filter(segment.filter_expression).where_clause())
    return and_(*conditions)


def refresh_membership(session: Session, segment: Segment) -> int:
    """Recompute `segment`'s members in one INSERT ... SELECT; returns the member count.

    Refused for a segment read from a CRM: only a refresh from its CRM knows its members."""
    _refuse_crm_segment(session, segment)
    session.execute(delete(SegmentMembership).where(SegmentMembership.segment_id == segment.id))
    session.execute(
        insert(SegmentMembership).from_select(
            ["segment_id", "account_id"],
            select(literal(segment.id), Account.id).where(_membership_condition(segment)),
        )
    )
    segment.member_count = (
        session.scalar(select(func.count()).where(SegmentMembership.segment_id == segment.id)) or 0
    )
    segment.refreshed_at = utcnow()
    session.flush()
    return segment.member_count


def refresh_segments(session: Session, names: list[str] | None = None) -> list[Segment]:
    """Recompute the members of the named segments (all when none are named, but those read
    from a CRM, which models.segment_refreshes refreshes); caller commits."""
    if names:
        segments = [find_segment(session, name) for name in names]
    else:
        # Imported here: CRM sources build on this module, not the other way round.
        from models.crm_sources import CrmSource

        segments = sorted(
            session.scalars(select(Segment).where(~Segment.id.in_(select(CrmSource.segment_id)))),
            key=lambda s: name_order(s.name),
        )
    for segment in segments:
        refresh_membership(session, segment)
    return segments


def _refuse_crm_segment(session: Session, segment: Segment) -> None:
    from models.crm_sources import crm_source, source_kind

    source = crm_source(session, segment)
    if source is not None:
        raise RuleError(
            f"segment {segment.name!r} is read from {source_kind(source).title} "
            f"{source.crm_object_id}: its members change only by a refresh from the CRM"
        )


@dataclass(frozen=True)
class SegmentRow:
    """One row of the segment list."""

    name: str
    folder: str | None
    source: str
    members: int
    uses: tuple[str, ...]
    filters: tuple[tuple[str, str], ...]


def list_segments(
    session: Session, search: str | None = None, folder: str | None = None
) -> list[SegmentRow]:
    """Segments whose name or folder contains `search`, optionally only those in `folder`."""
    uses: dict[int, list[str]] = {}
    for segment_id, use in session.execute(select(Publication.segment_id, Publication.use)):
        uses.setdefault(segment_id, []).append(use)
    rows = []
    for segment in sorted(session.scalars(select(Segment)), key=lambda s: name_order(s.name)):
        if folder is not None and name_key(segment.folder or "") != name_key(folder):
            continue
        if not matches_search(search, segment.name, segment.folder):
            continue
        rows.append(segment_row(segment, uses.get(segment.id, [])))
    return rows


def segment_row(segment: Segment, uses: Iterable[str]) -> SegmentRow:
    """`segment` as the segment list shows it, published for `uses`."""
    return SegmentRow(
        name=segment.name,
        folder=segment.folder,
        source=segment.source,
        members=segment.member_count,
        uses=tuple(sorted(uses)),
        filters=tuple((f.kind, f.description) for f in segment.filters),
    )


def unmatched_list_entries(session: Session, segment: Segment) -> int:
    """How many lines of the segment's list name no known account."""
    matched = select(Account.id).where(
        or_(
            Account.external_id == SegmentListEntry.external_id,
            Account.domain == SegmentListEntry.domain,
        )
    )
    query = select(func.count()).where(SegmentListEntry.segment_id == segment.id, ~matched.exists())
    return session.scalar(query) or 0
