"""The Celery application of segsync's workers (`celery -A worker worker`)."""

from __future__ import annotations

from celery import Celery

from worker.broker_loss import survive_broker_loss
from worker.celery_logging import log_like_segsync

# A Redis restart while a task runs must not stop the worker (worker/broker_loss.py).
survive_broker_loss()

app = Celery("segsync", include=["worker.tasks"])
app.config_from_object("celeryconfig")
# SEGSYNC_LOG_FORMAT=json: Celery's own lines are JSON too, and carry the run they are about.
log_like_segsync(app)
