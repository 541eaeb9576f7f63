"""The two reads of enrichment_values (rows grouped in Python, ids aggregated by the database) give
the same values as the value rule, on both backends, for randomised names and lengths."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from models.accounts import Account
from models.enrichment import (
    ENRICHMENT_USE,
    READ_AGGREGATED,
    READ_ROWS,
    READS,
    AccountValue,
    ValueFormat,
    enrichment_values,
    format_value,
    preferred_read,
)
from models.publishing_tables import Publication
from models.segments import Segment, SegmentMembership
from tests.factories import add_accounts, add_bare_segments

# Pieces of names: accents, case, the delimiters, spaces, and accent-only differences (ties).
_PIECES = ("a", "A", "é", "É", "e", "E", "z", "Ö", "o", ";", ",", "|", " ", "-", "ß", "1", "ﬁ")
_DELIMITERS = (";", ",", "|", " | ", ";;")
_MAX_LENGTHS = (None, 1, 4, 12, 30, 80, 255)


def _random_names(rng: random.Random, count: int) -> list[str]:
    names: dict[str, str] = {}  # name_key (casefold, unique in the table) -> name
    while len(names) < count:
        name = "".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 8)))
        names.setdefault(name.casefold(), name)
    return list(names.values())


def _seed_random_data(session: Session, rng: random.Random) -> dict[int, list[str]]:
    """Segments, publications and memberships; account id -> its enrichment segments' names."""
    names = _random_names(rng, 30)
    add_bare_segments(session, names)
    segments = {sid: name for sid, name in session.execute(select(Segment.id, Segment.name))}
    published = {segment_id for segment_id in segments if rng.random() < 0.7}
    session.execute(
        insert(Publication),
        [{"segment_id": segment_id, "use": ENRICHMENT_USE} for segment_id in published]
        + [
            {"segment_id": segment_id, "use": "gtm"}
            for segment_id in segments
            if rng.random() < 0.3
        ],
    )
    add_accounts(session, [{"external_id": f"acct-{n}"} for n in range(80)])
    account_ids = list(session.execute(select(Account.id)).scalars())
    expected: dict[int, list[str]] = {}
    memberships = []
    for account_id in account_ids:
        # Some accounts in nothing, some in segments not published for enrichment only, some in
        # many (so long values are truncated).
        chosen = rng.sample(sorted(segments), rng.choice((0, 0, 1, 2, 3, 6, 12, 25)))
        memberships += [{"segment_id": s, "account_id": account_id} for s in chosen]
        expected[account_id] = [segments[s] for s in chosen if s in published]
    if memberships:
        session.execute(insert(SegmentMembership), memberships)
    session.flush()
    return expected


def _by_rule(expected: dict[int, list[str]], fmt: ValueFormat) -> list[AccountValue]:
    """The values as the documented rule (format_value) makes them, in account id order."""
    values = []
    for account_id in sorted(expected):
        formatted = format_value(expected[account_id], fmt)
        values.append(AccountValue(account_id, formatted.value, formatted.names, formatted.dropped))
    return values


@pytest.mark.parametrize("seed", range(4))
def test_both_reads_give_the_rule_s_values_and_dropped_counts(session: Session, seed: int) -> None:
    rng = random.Random(seed)
    expected = _seed_random_data(session, rng)
    connection = session.connection()
    formats = [ValueFormat(delimiter=d, max_length=m) for d in _DELIMITERS for m in _MAX_LENGTHS]
    truncated = 0
    for fmt in formats:
        want = _by_rule(expected, fmt)
        for read in READS:
            assert list(enrichment_values(connection, fmt, read=read)) == want, (read, fmt)
        assert list(enrichment_values(connection, fmt)) == want, fmt  # the dialect's default
        truncated += sum(1 for value in want if value.dropped)
    assert truncated, "the data must make some values too long, or the length rule goes untested"
    assert any(not names for names in expected.values())


@pytest.mark.parametrize("read", READS)
def test_both_reads_keep_to_the_accounts_selected(session: Session, read: str) -> None:
    expected = _seed_random_data(session, random.Random(99))
    fmt = ValueFormat(max_length=20)
    chosen = sorted(expected)[::3]
    scope = select(Account.id).where(Account.id.in_(chosen))
    values = list(enrichment_values(session.connection(), fmt, scope, read=read))
    assert values == [v for v in _by_rule(expected, fmt) if v.account_id in set(chosen)]


def test_an_account_in_no_published_segment_gets_the_empty_value_by_both_reads(
    session: Session,
) -> None:
    add_bare_segments(session, ["Only GTM"])
    add_accounts(session, [{"external_id": "lonely"}, {"external_id": "gtm-only"}])
    segment_id = session.execute(select(Segment.id)).scalar_one()
    gtm_account = session.execute(
        select(Account.id).where(Account.external_id == "gtm-only")
    ).scalar_one()
    session.execute(insert(Publication), [{"segment_id": segment_id, "use": "gtm"}])
    session.execute(
        insert(SegmentMembership), [{"segment_id": segment_id, "account_id": gtm_account}]
    )
    for read in READS:
        values = list(enrichment_values(session.connection(), ValueFormat(), read=read))
        assert [(v.value, v.names, v.dropped) for v in values] == [("", 0, 0), ("", 0, 0)]


def test_each_dialect_has_a_measured_read_and_unknown_reads_are_refused(session: Session) -> None:
    assert preferred_read("sqlite") in READS
    assert preferred_read("postgresql") in READS
    assert preferred_read("mysql") == READ_ROWS  # no measurement: the portable read
    with pytest.raises(ValueError, match="unknown enrichment read"):
        next(enrichment_values(session.connection(), ValueFormat(), read="guess"))
    assert READ_AGGREGATED != READ_ROWS
