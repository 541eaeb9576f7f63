"""Publishing and unpublishing segments for uses, with every rule of the reference document.

Both places a person publishes from (the published-segments table and the segment list) call
`publish()` / `unpublish()`; `plan_*` runs the same checks without writing, for confirmation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from models.errors import InputError, RuleError
from models.publishing_tables import (
    LEGACY_USES,
    REFERENCE_KINDS,
    USES,
    Publication,
    SegmentReference,
)
from models.segment_catalog import find_segment, matches_search
from models.segments import LIST_FILTER_KIND, Segment, SegmentMembership, name_order

MAX_PUBLISHED_SEGMENTS = 200
GTM_USE = "gtm"
GTM_SOURCES = tuple(LIST_FILTER_KIND)
GTM_FILTER_KINDS = (
    "profile_fit",
    "company_profile",
    "crm_map",
    "salesforce_report",
    "salesforce_account_list",
    "uploaded_list",
)
_SOURCE_LABELS = {
    "uploaded_list": "an uploaded account list",
    "crm_report_sync": "a CRM report sync",
    "crm_list_sync": "a CRM list sync",
    "filter": "a filter",
}
# Any constant works: it names the one lock that serialises publishing on PostgreSQL.
_PUBLISH_LOCK_KEY = 0x5E65_1C00


@dataclass(frozen=True)
class PublicationChange:
    """What publishing or unpublishing `segment` for some uses does (or would do)."""

    segment: Segment
    changed: tuple[str, ...]
    unchanged: tuple[str, ...]


def parse_uses(uses: Iterable[str]) -> tuple[str, ...]:
    """The uses named, validated and without repeats, in the order given."""
    parsed: list[str] = []
    for use in uses:
        key = use.strip().lower()
        if key not in USES:
            raise InputError(f"unknown use {use!r} (uses: {', '.join(USES)})")
        if key not in parsed:
            parsed.append(key)
    if not parsed:
        raise InputError("name at least one use")
    return tuple(parsed)


def published_uses(session: Session, segment: Segment) -> set[str]:
    """The uses `segment` is published for."""
    return set(session.scalars(select(Publication.use).where(Publication.segment_id == segment.id)))


def published_segment_count(session: Session) -> int:
    """How many segments are published, each counted once whatever its uses."""
    return session.scalar(select(func.count(func.distinct(Publication.segment_id)))) or 0


def gtm_ineligibility(segment: Segment) -> str | None:
    """Why `segment` cannot be a GTM segment, or None when it can."""
    if segment.source not in GTM_SOURCES:
        return (
            f"its source is {_SOURCE_LABELS.get(segment.source, segment.source)}; only segments "
            "from an uploaded account list, a CRM report sync or a CRM list sync can be"
        )
    offending = [f for f in segment.filters if f.kind not in GTM_FILTER_KINDS]
    if offending:
        described = ", ".join(f"{f.description!r} ({f.kind})" for f in offending)
        return (
            f"filter {described} is dynamic; GTM segments may only use filters of kinds "
            f"{', '.join(GTM_FILTER_KINDS)}"
        )
    return None


def plan_publish(session: Session, segment_name: str, uses: Sequence[str]) -> PublicationChange:
    """Check publishing `segment_name` for `uses` against every rule, without writing."""
    segment = find_segment(session, segment_name)
    wanted = parse_uses(uses)
    current = published_uses(session, segment)
    new = tuple(use for use in wanted if use not in current)
    for use in new:
        if use in LEGACY_USES:
            raise RuleError(
                f"{use} is a legacy use: segments can be unpublished from it but not newly "
                "published"
            )
    if GTM_USE in new:
        reason = gtm_ineligibility(segment)
        if reason is not None:
            raise RuleError(f"segment {segment.name!r} cannot be published to gtm: {reason}")
    if new and not current:
        count = published_segment_count(session)
        if count >= MAX_PUBLISHED_SEGMENTS:
            raise RuleError(
                f"cannot publish {segment.name!r}: {count} segments are already published and "
                f"at most {MAX_PUBLISHED_SEGMENTS} may be at once; unpublish one to make room"
            )
    return PublicationChange(segment, new, tuple(use for use in wanted if use in current))


def publish(session: Session, segment_name: str, uses: Sequence[str]) -> PublicationChange:
    """Publish `segment_name` for `uses`; the caller commits. Safe under concurrent publishers."""
    _lock_publishing(session)
    change = plan_publish(session, segment_name, uses)
    for use in change.changed:
        session.add(Publication(segment_id=change.segment.id, use=use))
    session.flush()
    return change


def plan_unpublish(session: Session, segment_name: str, uses: Sequence[str]) -> PublicationChange:
    """Check unpublishing `segment_name` from `uses`, without writing."""
    segment = find_segment(session, segment_name)
    wanted = parse_uses(uses)
    current = published_uses(session, segment)
    removed = tuple(use for use in wanted if use in current)
    if GTM_USE in removed:
        references = segment_references(session, segment)
        if references:
            named = ", ".join(f"{REFERENCE_KINDS[r.kind]} {r.title!r}" for r in references)
            raise RuleError(
                f"cannot unpublish {segment.name!r} from gtm: it is used by {named}; "
                "remove those first"
            )
    return PublicationChange(segment, removed, tuple(use for use in wanted if use not in current))


def unpublish(session: Session, segment_name: str, uses: Sequence[str]) -> PublicationChange:
    """Unpublish `segment_name` from `uses`; the caller commits."""
    _lock_publishing(session)
    change = plan_unpublish(session, segment_name, uses)
    if change.changed:
        session.execute(
            delete(Publication).where(
                Publication.segment_id == change.segment.id, Publication.use.in_(change.changed)
            )
        )
    return change


def segment_references(session: Session, segment: Segment) -> list[SegmentReference]:
    """The saved reports and custom 6QAs that use `segment`."""
    return list(
        session.scalars(
            select(SegmentReference)
            .where(SegmentReference.segment_id == segment.id)
            .order_by(SegmentReference.kind, SegmentReference.title)
        )
    )


def add_reference(session: Session, segment_name: str, kind: str, title: str) -> bool:
    """Record that a saved report or custom 6QA uses a GTM segment; False if already recorded."""
    if kind not in REFERENCE_KINDS:
        raise InputError(f"unknown reference kind {kind!r} (kinds: {', '.join(REFERENCE_KINDS)})")
    title = title.strip()
    if not title:
        raise InputError("a reference needs a non-empty title")
    _lock_publishing(session)
    segment = find_segment(session, segment_name)
    if GTM_USE not in published_uses(session, segment):
        raise RuleError(
            f"segment {segment.name!r} is not published to gtm; only GTM segments can be used "
            f"by a {REFERENCE_KINDS[kind]}"
        )
    exists = session.scalar(
        select(SegmentReference.id).where(
            SegmentReference.segment_id == segment.id,
            SegmentReference.kind == kind,
            SegmentReference.title == title,
        )
    )
    if exists is not None:
        return False
    session.add(SegmentReference(segment_id=segment.id, kind=kind, title=title))
    session.flush()
    return True


def remove_reference(session: Session, segment_name: str, kind: str, title: str) -> bool:
    """Forget that a report or custom 6QA uses a segment; False if it was not recorded."""
    segment = find_segment(session, segment_name)
    result = session.execute(
        delete(SegmentReference).where(
            SegmentReference.segment_id == segment.id,
            SegmentReference.kind == kind,
            SegmentReference.title == title.strip(),
        )
    )
    return bool(getattr(result, "rowcount", 0))


@dataclass(frozen=True)
class PublishedRow:
    """One row of the published-segments settings table."""

    name: str
    folder: str | None
    uses: frozenset[str]


def published_table(session: Session, search: str | None = None) -> list[PublishedRow]:
    """Every published segment with its uses, optionally only names/folders containing `search`."""
    query = select(Segment.id, Segment.name, Segment.folder, Publication.use).join(
        Publication, Publication.segment_id == Segment.id
    )
    rows: dict[int, tuple[str, str | None, set[str]]] = {}
    for segment_id, name, folder, use in session.execute(query):
        if matches_search(search, name, folder):
            rows.setdefault(segment_id, (name, folder, set()))[2].add(use)
    return sorted(
        (PublishedRow(name, folder, frozenset(uses)) for name, folder, uses in rows.values()),
        key=lambda row: name_order(row.name),
    )


def _lock_publishing(session: Session) -> None:
    # SQLite transactions already start with BEGIN IMMEDIATE (models.db); PostgreSQL needs an
    # explicit lock so two publishers cannot both see 199 published segments and both add one.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PUBLISH_LOCK_KEY})


def account_segment_names(session: Session, account_id: int, use: str) -> list[str]:
    """Names of the segments published for `use` that contain the account, in name order."""
    names = session.scalars(
        select(Segment.name)
        .join(SegmentMembership, SegmentMembership.segment_id == Segment.id)
        .join(Publication, Publication.segment_id == Segment.id)
        .where(SegmentMembership.account_id == account_id, Publication.use == use)
    )
    return sorted(names, key=name_order)
