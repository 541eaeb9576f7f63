"""The Celery application of segsync's workers (`celery -A worker worker`)."""

from __future__ import annotations

from celery import Celery

app = Celery("segsync", include=["worker.tasks"])
app.config_from_object("celeryconfig")
