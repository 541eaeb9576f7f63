"""Cron schedules of orchestrations (UTC): validation and the next time one fires."""

from __future__ import annotations

from datetime import UTC, datetime

from croniter import CroniterBadCronError, croniter

from models.errors import InputError


def check_schedule(expression: str) -> str:
    """`expression` normalised, or InputError when it is not a five-field cron expression."""
    normalised = " ".join(expression.split())
    if len(normalised.split(" ")) != 5:
        raise InputError(
            f"schedule {expression!r} must have five fields: minute hour day month weekday "
            "(e.g. '0 2 * * *' for 02:00 UTC daily)"
        )
    try:
        croniter(normalised)
    except (CroniterBadCronError, ValueError) as exc:
        raise InputError(f"schedule {expression!r} is not a valid cron expression: {exc}") from None
    return normalised


def next_fire(expression: str, after: datetime) -> datetime:
    """The first time strictly after `after` at which `expression` fires (UTC)."""
    start = after.astimezone(UTC)
    fired: datetime = croniter(expression, start).get_next(datetime)
    return fired.astimezone(UTC)
