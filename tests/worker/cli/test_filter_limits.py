"""`segsync segments create --filter` at and past the filter limits, run as a shell runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from models.accounts import Account
from models.db import make_engine, make_session_factory
from models.filters import MAX_COMPARISONS, MAX_DEPTH, MAX_DIGITS, MAX_LENGTH, MAX_LIST_VALUES
from models.segments import Segment, SegmentMembership
from tests.factories import write_csv

SEGSYNC = str(Path(sys.executable).parent / "segsync")


def segsync(database_url: str, *args: str | bytes) -> subprocess.CompletedProcess[str]:
    """Run the installed `segsync` on the database; bytes arguments reach argv undecoded."""
    env = {**os.environ, "SEGSYNC_DATABASE_URL": database_url}
    return subprocess.run(
        [SEGSYNC, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def refusal(database_url: str, expression: str | bytes) -> str:
    """The one line `segments create --filter expression` exits 1 with."""
    done = segsync(database_url, "segments", "create", "Refused", "--filter", expression)
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_filters_past_a_limit_exit_1_with_the_limit_and_position(database_url: str) -> None:
    assert refusal(database_url, "(" * 2000 + 'industry = "x"' + ")" * 2000) == (
        f"segsync: filter: too deeply nested (at most {MAX_DEPTH} levels of parentheses)"
        f" at position {MAX_DEPTH + 1}"
    )
    assert refusal(database_url, " or ".join(['industry = "x"'] * 3000)) == (
        f"segsync: filter: too long (at most {MAX_LENGTH} characters) at position {MAX_LENGTH + 1}"
    )
    chain = " or ".join(["crm.a = 1"] * (MAX_COMPARISONS + 1))
    assert refusal(database_url, chain) == (
        f"segsync: filter: too many comparisons (at most {MAX_COMPARISONS})"
        f" at position {MAX_COMPARISONS * len('crm.a = 1 or ') + 1}"
    )
    values = ",".join(["1"] * (MAX_LIST_VALUES + 1))
    assert refusal(database_url, f"crm.a in ({values})") == (
        f"segsync: filter: too many values in one list (at most {MAX_LIST_VALUES})"
        f" at position {len('crm.a in (') + 2 * MAX_LIST_VALUES + 1}"
    )
    # A byte that is not UTF-8 (a Latin-1 "ÿ" typed in the wrong terminal): no traceback.
    assert refusal(database_url, b'name = "\xff"') == (
        "segsync: filter: character U+DCFF is not allowed at position 9"
    )
    listed = segsync(database_url, "segments", "list", "--json")
    assert (listed.returncode, listed.stdout.strip()) == (0, "[]")


def at_every_limit() -> str:
    """A filter at all the limits at once that selects A-2, A-3 and A-4 of the accounts below."""
    in_list = ", ".join(["7", *(str(100_000 + n) for n in range(MAX_LIST_VALUES - 1))])
    innermost = " or ".join(
        [
            f"crm.score in ({in_list})",
            'country = "de"',
            "employee_count > " + "9" * MAX_DIGITS,  # nobody
            *["crm.tier is empty"] * (MAX_COMPARISONS - MAX_DEPTH - 4),
        ]
    )
    # Each `or` level adds a comparison nobody matches, each `and` level one everybody matches; the
    # most nested group is written last, the worst order for SQLite's parser.
    expression = innermost
    for level in range(MAX_DEPTH):
        if level % 2:
            expression = f"crm.score != 999 and ({expression})"
        else:
            expression = f'crm.tier = "none" or ({expression})'
    head = f'{expression} or name contains "'
    return head + "%" * (MAX_LENGTH - len(head) - 1) + '"'  # nobody


def test_a_filter_at_every_limit_creates_its_segment(database_url: str, tmp_path: Path) -> None:
    accounts = write_csv(
        tmp_path / "accounts.csv",
        ["external_id", "country", "employee_count", "crm.tier", "crm.score"],
        [
            ["A-1", "US", "1200", "gold", "42"],
            ["A-2", "DE", "500", "", "n/a"],
            ["A-3", "FR", "50", "silver", "7"],
            ["A-4", "US", "", "", ""],
        ],
    )
    assert segsync(database_url, "accounts", "import", str(accounts)).returncode == 0
    expression = at_every_limit()
    assert len(expression) == MAX_LENGTH
    assert expression.count("(") == MAX_DEPTH + 1  # one of them opens the list
    created = segsync(database_url, "segments", "create", "At the limits", "--filter", expression)
    assert created.returncode == 0, created.stderr
    assert "created segment 'At the limits' (filter, 3 members)" in created.stdout
    refreshed = segsync(database_url, "segments", "refresh", "At the limits")
    assert refreshed.returncode == 0, refreshed.stderr
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            members = session.scalars(
                select(Account.external_id)
                .join(SegmentMembership, SegmentMembership.account_id == Account.id)
                .join(Segment, Segment.id == SegmentMembership.segment_id)
                .where(Segment.name == "At the limits")
            )
            assert sorted(members) == ["A-2", "A-3", "A-4"]
            segment = session.scalar(select(Segment).where(Segment.name == "At the limits"))
            assert segment is not None and len(segment.filters) == MAX_COMPARISONS
    finally:
        engine.dispose()
