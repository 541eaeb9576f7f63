"""The Celery application of segsync's workers (`celery -A worker worker`)."""

from __future__ import annotations

from celery import Celery

from worker.broker_loss import survive_broker_loss

# A Redis restart while a task runs must not stop the worker (worker/broker_loss.py).
survive_broker_loss()

app = Celery("segsync", include=["worker.tasks"])
app.config_from_object("celeryconfig")
