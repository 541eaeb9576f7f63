"""Eloqua's server time (US Eastern) as its date searches are written."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from connectors.eloqua_time import eastern_offset, eastern_wall, search_wall, wall_moments
from connectors.sandbox.eloqua_model import search_moment

UTC = dt.UTC


def test_the_written_rules_agree_with_the_time_zone_database_hour_by_hour() -> None:
    eastern = zoneinfo.ZoneInfo("America/New_York")
    moment = dt.datetime(2024, 1, 1, 0, 30, tzinfo=UTC)
    while moment.year < 2028:
        assert eastern_offset(moment) == moment.astimezone(eastern).utcoffset(), moment
        assert eastern_wall(moment) == moment.astimezone(eastern).replace(tzinfo=None)
        moment += dt.timedelta(hours=1)


@pytest.mark.parametrize(
    ("since", "sent"),
    [
        # Standard time (EST, UTC-5), cut to the second.
        (dt.datetime(2026, 3, 1, 10, 34, 56, 900_000, tzinfo=UTC), "2026-03-01 05:34:56"),
        # Daylight saving time (EDT, UTC-4), from another zone.
        (
            dt.datetime(2026, 7, 1, 12, 0, 1, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            "2026-07-01 06:00:01",
        ),
        # 01:30 EDT on 1 November 2026: 01:30 comes again an hour later in EST, so the search
        # starts at 00:30 EDT, an hour early, rather than possibly an hour late.
        (dt.datetime(2026, 11, 1, 5, 30, tzinfo=UTC), "2026-11-01 00:30:00"),
        # 01:30 EST, the second time round: no reading of it is later than the moment.
        (dt.datetime(2026, 11, 1, 6, 30, tzinfo=UTC), "2026-11-01 01:30:00"),
    ],
)
def test_a_search_moment_is_never_read_after_the_moment(since: dt.datetime, sent: str) -> None:
    assert search_wall(since) == sent
    wall = dt.datetime.strptime(sent, "%Y-%m-%d %H:%M:%S")
    assert wall_moments(wall) and all(moment <= since for moment in wall_moments(wall))


def test_wall_times_mean_two_moments_in_november_and_none_in_the_skipped_hour() -> None:
    assert wall_moments(dt.datetime(2026, 11, 1, 1, 30)) == [
        dt.datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
        dt.datetime(2026, 11, 1, 6, 30, tzinfo=UTC),
    ]
    assert wall_moments(dt.datetime(2026, 3, 8, 2, 30)) == []
    assert wall_moments(dt.datetime(2026, 3, 8, 3, 30)) == [
        dt.datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    ]


def test_the_emulator_reads_a_search_moment_as_eastern_and_refuses_other_layouts() -> None:
    def stamp(*parts: int) -> int:
        return int(dt.datetime(*parts, tzinfo=UTC).timestamp())

    assert search_moment("2026-03-01 05:34:56") == stamp(2026, 3, 1, 10, 34, 56)
    assert search_moment("2026-07-01") == stamp(2026, 7, 1, 4)
    # The repeated hour is read as its later moment, the skipped one as standard time.
    assert search_moment("2026-11-01 01:30:00") == stamp(2026, 11, 1, 6, 30)
    assert search_moment("2026-03-08 02:30:00") == stamp(2026, 3, 8, 7, 30)
    for refused in ("2026-03-01T05:34:56", "2026-03-01 05:34:56Z", "1772362496", "yesterday"):
        assert search_moment(refused) is None
