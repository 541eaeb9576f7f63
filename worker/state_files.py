"""Where segsync's Celery programs keep their own files: the state folder (SEGSYNC_STATE_DIR).

Celery beat and Flower default to files in the folder they are started from, which is wherever an
operator or a service manager happens to be; the state folder makes that one known place.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from celery.beat import PersistentScheduler

# Beat's schedule (last run times of its static entries) and Flower's --persistent database.
BEAT_SCHEDULE_NAME = "celerybeat-schedule"
FLOWER_DB_NAME = "flower"


class StateFolderError(Exception):
    """The state folder cannot be created or written; the message is one line."""


def ensure_state_folder(folder: Path) -> Path:
    """Create `folder` (and its parents) if it is missing; refuse, in one line, if it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = error.strerror or str(error)
        raise StateFolderError(
            f"cannot create the state folder {folder} ({reason}): "
            "set SEGSYNC_STATE_DIR to a folder segsync may write"
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StateFolderError(
            f"cannot write in the state folder {folder}: "
            "set SEGSYNC_STATE_DIR to a folder segsync may write"
        )
    return folder


class StateFolderScheduler(PersistentScheduler):  # type: ignore[misc]
    """Celery's default beat scheduler, which first creates the folder of its schedule file, and
    records beat's heartbeat in the database on every tick (worker.beat_heartbeat).

    It is what `celery -A worker beat` uses too (celeryconfig.beat_scheduler), so beat started
    either way refuses an unusable folder in one line instead of a traceback, and says it is alive.
    """

    # Set by Celery's __init__ (beat_max_loop_interval or its default), lowered by ours.
    max_interval: float

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Celery's scheduler, ticking at least once per beat interval (its heartbeat's pace)."""
        # Here, not at the top: celeryconfig imports this module, and the CLI imports that.
        from worker.beat_heartbeat import BeatHeartbeat
        from worker.settings import Settings

        super().__init__(*args, **kwargs)
        settings = Settings()
        # Celery sleeps up to max_interval (5 min by default) when nothing is due; `segsync
        # health` counts beat as gone after three intervals without a heartbeat.
        self.max_interval = min(self.max_interval, settings.beat_interval_seconds)
        self._heartbeat = BeatHeartbeat(settings.database_url, settings.beat_interval_seconds)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        """Record the heartbeat, then do Celery's tick (send what is due)."""
        self._heartbeat.record()
        return float(super().tick(*args, **kwargs))

    def setup_schedule(self) -> None:
        """Create the schedule file's folder, then open the schedule as Celery does."""
        try:
            ensure_state_folder(Path(self.schedule_filename).parent)
        except StateFolderError as error:
            # On the real stderr (beat has put a logger in sys.stderr's place), then SystemExit,
            # not an exception: beat logs any exception with its traceback.
            print(f"segsync: {error}", file=sys.__stderr__)
            raise SystemExit(1) from None
        super().setup_schedule()
