"""Segments: creation from lists and filters, names, definitions, memberships and refresh."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.accounts import Account
from models.errors import InputError, RuleError
from models.segment_catalog import (
    create_segment,
    find_segment,
    list_segments,
    refresh_segments,
    unmatched_list_entries,
)
from models.segments import Segment, SegmentListEntry, SegmentMembership
from tests.factories import add_accounts, write_csv


@pytest.fixture
def seeded(session: Session) -> Session:
    add_accounts(
        session,
        [
            {"external_id": "A-1", "domain": "acme.com", "industry": "Software", "country": "US"},
            {
                "external_id": "A-2",
                "domain": "globex.co.uk",
                "industry": "Fintech",
                "country": "GB",
            },
            {"external_id": "A-3", "domain": "initech.io", "industry": "Software", "country": "DE"},
            {"external_id": "A-4", "domain": "umbrella.com", "industry": "Pharma", "country": "US"},
        ],
    )
    session.commit()
    return session


def members(session: Session, name: str) -> set[str]:
    segment = find_segment(session, name)
    query = (
        select(Account.external_id)
        .join(SegmentMembership, SegmentMembership.account_id == Account.id)
        .where(SegmentMembership.segment_id == segment.id)
    )
    return set(session.scalars(query))


def test_filter_segment_members_and_definition(seeded: Session) -> None:
    segment = create_segment(seeded, "  Software  ", filter_expression='industry = "software"')
    assert segment.name == "Software"
    assert segment.source == "filter"
    assert segment.member_count == 2
    assert members(seeded, "software") == {"A-1", "A-3"}
    assert [(f.kind, f.description) for f in segment.filters] == [
        ("company_profile", 'industry = "software"')
    ]


def test_list_segment_by_external_ids_and_domains(seeded: Session, tmp_path: Path) -> None:
    listed = write_csv(
        tmp_path / "list.csv",
        ["External_ID", "Website"],
        [["A-1", ""], ["", "https://www.Globex.co.uk/about"], ["", ""], ["NOPE-9", "nowhere.org"]],
    )
    segment = create_segment(seeded, "Named accounts", list_path=listed, folder=" ABM ")
    assert segment.source == "uploaded_list"
    assert segment.folder == "ABM"
    assert members(seeded, "Named accounts") == {"A-1", "A-2"}
    assert [(f.kind, f.description) for f in segment.filters] == [
        ("uploaded_list", "list.csv (3 entries)")
    ]
    assert unmatched_list_entries(seeded, segment) == 1


def test_list_narrowed_by_filter_and_list_source_kinds(seeded: Session, tmp_path: Path) -> None:
    listed = write_csv(tmp_path / "report.csv", ["domain"], [["acme.com"], ["initech.io"]])
    segment = create_segment(
        seeded,
        "US software from report",
        list_path=listed,
        source="crm_report_sync",
        filter_expression='country = "US"',
    )
    assert members(seeded, "US software from report") == {"A-1"}
    assert [f.kind for f in segment.filters] == ["salesforce_report", "company_profile"]


def test_names_are_unique_whatever_their_case(seeded: Session) -> None:
    create_segment(seeded, "Tier 1", filter_expression='country = "US"')
    with pytest.raises(RuleError, match="a segment named 'TIER 1' already exists"):
        create_segment(seeded, "TIER 1", filter_expression='country = "GB"')


@pytest.mark.parametrize(
    ("name", "message"),
    [("   ", "cannot be empty"), ("x" * 256, "at most 255"), ("tab\there", "control character")],
)
def test_bad_names_are_refused(seeded: Session, name: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        create_segment(seeded, name, filter_expression='country = "US"')


def test_definition_and_source_are_checked(seeded: Session, tmp_path: Path) -> None:
    listed = write_csv(tmp_path / "list.csv", ["external_id"], [["A-1"]])
    with pytest.raises(InputError, match="needs --list FILE, --filter EXPR, or both"):
        create_segment(seeded, "Empty")
    with pytest.raises(InputError, match="source filter takes no --list"):
        create_segment(seeded, "X", list_path=listed, source="filter")
    with pytest.raises(InputError, match="source crm_list_sync needs --list"):
        create_segment(seeded, "X", filter_expression='country = "US"', source="crm_list_sync")
    with pytest.raises(InputError, match="unknown source 'crm'"):
        create_segment(seeded, "X", list_path=listed, source="crm")


def test_bad_list_line_refuses_the_segment_and_stores_nothing(
    seeded: Session, tmp_path: Path
) -> None:
    listed = write_csv(tmp_path / "list.csv", ["domain"], [["acme.com"], ["not a domain"]])
    with pytest.raises(InputError, match=r"list\.csv:3: 'not a domain' is not a domain"):
        create_segment(seeded, "Broken", list_path=listed)
    seeded.rollback()
    assert seeded.scalar(select(func.count()).select_from(Segment)) == 0
    assert seeded.scalar(select(func.count()).select_from(SegmentListEntry)) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"name\nAcme\n", "needs a header row with an external_id, domain or website column"),
        (b"external_id\n", "the list has no accounts"),
        (b"external_id\n\xff\xfe\n", "not UTF-8 text"),
    ],
)
def test_bad_list_files_are_refused(
    seeded: Session, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        create_segment(seeded, "Broken", list_path=path)
    with pytest.raises(InputError, match="no such file"):
        create_segment(seeded, "Broken", list_path=tmp_path / "missing.csv")


def test_a_bad_filter_refuses_the_segment(seeded: Session) -> None:
    with pytest.raises(InputError, match="unknown field"):
        create_segment(seeded, "Broken", filter_expression='industy = "Software"')
    seeded.rollback()
    assert seeded.scalar(select(func.count()).select_from(Segment)) == 0


def test_refresh_picks_up_new_and_changed_accounts(seeded: Session, tmp_path: Path) -> None:
    create_segment(seeded, "Software", filter_expression='industry = "Software"')
    listed = write_csv(tmp_path / "list.csv", ["external_id"], [["A-1"], ["A-9"]])
    create_segment(seeded, "Listed", list_path=listed)
    seeded.commit()
    add_accounts(seeded, [{"external_id": "A-9", "industry": "Software"}])
    seeded.execute(
        Account.__table__.update().where(Account.external_id == "A-1").values(industry="Retail")
    )
    assert members(seeded, "Software") == {"A-1", "A-3"}  # not refreshed yet
    refreshed = refresh_segments(seeded, ["software"])
    assert [s.name for s in refreshed] == ["Software"]
    assert members(seeded, "Software") == {"A-3", "A-9"}
    assert members(seeded, "Listed") == {"A-1"}
    refresh_segments(seeded)
    assert members(seeded, "Listed") == {"A-1", "A-9"}
    assert find_segment(seeded, "Listed").member_count == 2


def test_list_search_and_folder(seeded: Session) -> None:
    create_segment(seeded, "Énergie", filter_expression='country = "DE"', folder="Europe")
    create_segment(seeded, "Software", filter_expression='industry = "Software"', folder="ICP")
    create_segment(seeded, "Pharma", filter_expression='industry = "Pharma"')
    assert [r.name for r in list_segments(seeded)] == ["Énergie", "Pharma", "Software"]
    assert [r.name for r in list_segments(seeded, search="ÉNER")] == ["Énergie"]
    assert [r.name for r in list_segments(seeded, search="icp")] == ["Software"]
    assert [r.name for r in list_segments(seeded, folder="europe")] == ["Énergie"]
    row = list_segments(seeded, search="Software")[0]
    assert (row.source, row.members, row.uses) == ("filter", 2, ())
