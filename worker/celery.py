"""Lets `celery -A worker ...` find the app (Celery looks for a `celery` module in the package)."""

from worker.app import app

__all__ = ["app"]
