"""Segment folders with their counts, as list_segments(folder=...) groups them."""

from __future__ import annotations

from sqlalchemy.orm import Session

from models.segment_catalog import create_segment, list_segments
from models.segment_folders import FolderOverview, SegmentFolder, segment_folders


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
