"""What the Segments screen shows beside the list: the folders with their counts, one segment."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.publishing import published_uses
from models.segment_catalog import SegmentRow, find_segment, name_key, segment_row
from models.segments import Segment, name_order


@dataclass(frozen=True)
class SegmentFolder:
    """A folder as list_segments(folder=...) understands it: its name and its segment count."""

    name: str
    segments: int


@dataclass(frozen=True)
class FolderOverview:
    """Every folder in name order, the segments in no folder, and all segments."""

    folders: tuple[SegmentFolder, ...]
    unfiled: int
    total: int


def segment_folders(session: Session) -> FolderOverview:
    """The folders with their segment counts; names differing only in case are one folder."""
    counted: dict[str, tuple[str, int]] = {}
    unfiled = 0
    query = select(Segment.folder, func.count()).group_by(Segment.folder)
    for folder, count in session.execute(query):
        key = name_key(folder or "")
        if folder is None or not key:
            unfiled += count
            continue
        # The folder is shown as the spelling that sorts first, whatever spelling holds most.
        shown, so_far = counted.get(key, (folder, 0))
        counted[key] = (min(shown, folder, key=name_order), so_far + count)
    folders = sorted(
        (SegmentFolder(name, count) for name, count in counted.values()),
        key=lambda f: name_order(f.name),
    )
    total = unfiled + sum(f.segments for f in folders)
    return FolderOverview(tuple(folders), unfiled, total)


def segment_summary(session: Session, name: str) -> SegmentRow:
    """The segment called `name` (any case) as the list shows it; NotFoundError if none."""
    segment = find_segment(session, name)
    return segment_row(segment, published_uses(session, segment))
