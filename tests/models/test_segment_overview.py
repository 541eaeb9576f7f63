"""The Segments screen's reads: folders with their counts, and one segment as the list shows it."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from models.errors import NotFoundError
from models.publishing import publish
from models.segment_catalog import create_segment, list_segments
from models.segment_overview import (
    FolderOverview,
    SegmentFolder,
    segment_folders,
    segment_summary,
)
from tests.factories import add_accounts


def test_folders_are_counted_in_name_order_whatever_their_case(session: Session) -> None:
    assert segment_folders(session) == FolderOverview((), 0, 0)
    for name, folder in (
        ("A", "Europe"),
        ("B", "europe"),
        ("C", "Énergie"),
        ("D", "ICP"),
        ("E", None),
        ("F", "  "),
    ):
        create_segment(session, name, filter_expression='country = "US"', folder=folder)

    overview = segment_folders(session)

    assert overview == FolderOverview(
        (SegmentFolder("Énergie", 1), SegmentFolder("Europe", 2), SegmentFolder("ICP", 1)),
        unfiled=2,
        total=6,
    )
    # Each folder's count is what listing that folder shows.
    for folder in overview.folders:
        assert len(list_segments(session, folder=folder.name)) == folder.segments
    assert len(list_segments(session, folder="")) == overview.unfiled


def test_one_segment_reads_as_its_row_in_the_list(session: Session) -> None:
    add_accounts(session, [{"external_id": "A-1", "country": "US"}, {"external_id": "A-2"}])
    create_segment(session, "Key/accounts ü", filter_expression='country = "US"', folder="ICP")
    publish(session, "Key/accounts ü", ["api", "enrichment"])

    summary = segment_summary(session, "KEY/ACCOUNTS Ü")

    assert summary == list_segments(session)[0]
    assert (summary.name, summary.members, summary.uses) == (
        "Key/accounts ü",
        1,
        ("api", "enrichment"),
    )
    with pytest.raises(NotFoundError, match="no segment named 'Key accounts'"):
        segment_summary(session, "Key accounts")
