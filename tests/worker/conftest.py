"""Fixtures shared by the worker tests."""

from __future__ import annotations

from tests.worker.celery_stack import stack

__all__ = ["stack"]
