"""Eloqua's server time: US Eastern, the time zone its date searches are read in.

Oracle's "Time zones across Eloqua": "Oracle Eloqua servers are set to Eastern Standard Time
(EST)", and date-time criteria (contact filters, segments, program comparisons) are Eastern
(North America) time, between GMT-5 and GMT-4 with daylight saving. Its REST pages do not say
which time zone a `search` on a date field means; Eastern is the documented server zone, and
the safe guess: were Eloqua to read the moment as UTC, a search would start 4-5 hours early and
read more, never less.

The rules are written out (US daylight saving since 2007: from the second Sunday of March,
02:00 local, to the first Sunday of November, 02:00 local) rather than taken from the system's
time zone database, which a slim container may lack.
"""

from __future__ import annotations

import datetime as dt

_STANDARD = dt.timedelta(hours=-5)
_DAYLIGHT = dt.timedelta(hours=-4)
_HOUR = dt.timedelta(hours=1)
# How a search writes a moment: to the second.
WALL_FORMAT = "%Y-%m-%d %H:%M:%S"


def _sunday(year: int, month: int, nth: int) -> dt.date:
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(6 - first.weekday()) % 7 + 7 * (nth - 1))


def eastern_offset(moment: dt.datetime) -> dt.timedelta:
    """US Eastern's offset from UTC at an aware moment (-4 h in daylight saving, else -5 h)."""
    utc = moment.astimezone(dt.UTC).replace(tzinfo=None)
    # 02:00 EST is 07:00 UTC; 02:00 EDT is 06:00 UTC.
    starts = dt.datetime.combine(_sunday(utc.year, 3, 2), dt.time(7))
    ends = dt.datetime.combine(_sunday(utc.year, 11, 1), dt.time(6))
    return _DAYLIGHT if starts <= utc < ends else _STANDARD


def eastern_wall(moment: dt.datetime) -> dt.datetime:
    """An aware moment as a naive US Eastern wall time."""
    utc = moment.astimezone(dt.UTC)
    return (utc + eastern_offset(utc)).replace(tzinfo=None)


def wall_moments(wall: dt.datetime) -> list[dt.datetime]:
    """The UTC moments a naive Eastern wall time can mean: two in the hour that repeats when
    daylight saving ends, none in the hour skipped when it starts, one otherwise."""
    found = []
    for offset in (_DAYLIGHT, _STANDARD):
        moment = (wall - offset).replace(tzinfo=dt.UTC)
        if eastern_offset(moment) == offset:
            found.append(moment)
    return found


def search_wall(since: dt.datetime) -> str:
    """The Eastern wall time, to the second, that no reading of can fall after `since` (aware).

    The wall time is cut to the second (a search compares whole seconds). In the hour that
    repeats in November it could also mean an hour later, so there the wall time of an hour
    before is sent: that search reads an hour more, and misses nothing.
    """
    wall = eastern_wall(since).replace(microsecond=0)
    if any(moment > since for moment in wall_moments(wall)):
        wall = eastern_wall(since - _HOUR).replace(microsecond=0)
    return wall.strftime(WALL_FORMAT)
