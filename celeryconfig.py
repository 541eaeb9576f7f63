"""Celery settings of segsync's workers (DESIGN.md §4): at-least-once delivery made safe.

Correctness lives in the database (conditional UPDATEs), so these settings only make sure a task
is redelivered rather than lost, and never waits long inside the broker.
"""

from __future__ import annotations

from worker.settings import Settings
from worker.state_files import BEAT_SCHEDULE_NAME

_settings = Settings()

broker_url = _settings.broker_url or "memory://"
# Nothing reads task results: run and batch state is in the database.
task_ignore_result = True
result_backend = None

# JSON only: task arguments are ids, never pickled objects, credentials or record payloads.
task_serializer = "json"
accept_content = ["json"]
result_serializer = "json"

# Acknowledge after the task ran, and hand a task back when its worker dies mid-way; the attempt
# cap lives in the database (SyncBatch.attempts), not in the broker.
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1

# A message not acknowledged within the visibility timeout is delivered again; every time limit
# stays well under it so a slow task is killed before it is handed to a second worker.
VISIBILITY_TIMEOUT = 3600
broker_transport_options = {"visibility_timeout": VISIBILITY_TIMEOUT}
# Beat's short tasks (dispatch_due, sweep). Planning and writing set their own on their tasks
# (worker/tasks.py), from SEGSYNC_PLAN_TIME_LIMIT_SECONDS and SEGSYNC_BATCH_TIME_LIMIT_SECONDS
# (at most 3,300 s, killed at most a minute later: under the visibility timeout).
task_soft_time_limit = 900
task_time_limit = 1200
broker_connection_retry_on_startup = True

task_default_queue = "segsync"
# Events let Flower show tasks as they happen.
worker_send_task_events = True
task_send_sent_event = True

beat_schedule = {
    # One static entry: orchestration schedules live in the database and are claimed by
    # compare-and-set, so a second beat does no harm and schedules change without restarts.
    "dispatch-due": {"task": "segsync.dispatch_due", "schedule": _settings.beat_interval_seconds},
    "sweep": {"task": "segsync.sweep", "schedule": _settings.beat_interval_seconds},
}
# Beat's schedule file lives in the state folder, never in whatever folder beat started from;
# the scheduler creates that folder on first use (or refuses in one line).
beat_schedule_filename = str(_settings.state_dir / BEAT_SCHEDULE_NAME)
beat_scheduler = "worker.state_files:StateFolderScheduler"
timezone = "UTC"
enable_utc = True
