"""Small builders for test data: accounts, CSV files and segments."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from models.accounts import Account
from models.segments import Segment


def add_accounts(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert accounts given as dicts of column values (external_id required)."""
    session.execute(insert(Account), [{"crm_attributes": {}, **row} for row in rows])
    session.flush()


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    """Write a CSV file and return its path."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def add_bare_segments(session: Session, names: Sequence[str], source: str = "filter") -> None:
    """Segments with no definition or members: enough for counting publications."""
    session.add_all(
        Segment(name=name, name_key=name.casefold(), source=source, member_count=0)
        for name in names
    )
    session.flush()
