"""Imports every table module so that Base.metadata knows the whole schema."""

from models import (
    accounts,
    connections,
    observability,
    orchestrations,
    publishing_tables,
    runs,
    segments,
)

__all__ = [
    "accounts",
    "connections",
    "observability",
    "orchestrations",
    "publishing_tables",
    "runs",
    "segments",
]
