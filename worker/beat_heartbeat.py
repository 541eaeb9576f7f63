"""Beat's heartbeat: every tick of beat's scheduler says in the database that beat is alive.

`segsync health` reads it (models.health): beat sends no task a worker could vouch for when it is
gone, so only beat itself can say it still ticks. Nothing about the heartbeat may stop beat: a
database that is away costs one warning per failure streak, and beat goes on firing its tasks.
"""

from __future__ import annotations

import logging
import os
import socket
import time

from sqlalchemy import Engine

from models.db import make_session_factory, safe_url, transaction
from models.observability import record_heartbeat
from worker.health import BEAT_COMPONENT, bounded_engine, one_line

log = logging.getLogger(__name__)

# The longest one heartbeat may take (connecting included): beat's own work waits meanwhile.
HEARTBEAT_TIMEOUT = 5.0
# Beat ticks several times in a row when entries fall due together; one write covers them.
_MOST_OFTEN = 1.0


class BeatHeartbeat:
    """Records beat's heartbeat (component "beat", this host and pid) when asked, at most once
    a second (or twice per interval, for intervals under two seconds)."""

    def __init__(self, database_url: str, interval_seconds: float) -> None:
        self._database_url = database_url
        self._engine: Engine | None = None
        self._spacing = min(_MOST_OFTEN, interval_seconds / 2)
        self._next_at = 0.0
        self._failing = False

    def record(self) -> None:
        """Record a heartbeat now, unless one was just recorded; never raises."""
        now = time.monotonic()
        if now < self._next_at:
            return
        self._next_at = now + self._spacing
        try:
            if self._engine is None:
                self._engine = bounded_engine(self._database_url, HEARTBEAT_TIMEOUT)
            with transaction(make_session_factory(self._engine)) as session:
                record_heartbeat(session, BEAT_COMPONENT, socket.gethostname(), os.getpid())
        # Whatever the database or its driver raises: beat must go on firing its tasks.
        except Exception as error:
            if not self._failing:
                where = safe_url(self._engine) if self._engine else "the database"
                log.warning(
                    "beat: heartbeat not recorded in %s (%s); beat goes on and tries again "
                    "every tick, and `segsync health` reports beat as stale meanwhile",
                    where,
                    one_line(error),
                )
            self._failing = True
            return
        if self._failing:
            log.info("beat: heartbeat recorded again")
            self._failing = False
