"""Lets `celery -A worker ...` find the app (Celery looks for a `celery` module in the package)."""

from worker.app import app
from worker.flower_gate import close_open_flower_handlers

# `celery -A worker flower` serves through the same gate as `segsync flower`: Flower never shows
# segsync's app in the open. The celery command has imported Flower's command already.
close_open_flower_handlers()

__all__ = ["app"]
