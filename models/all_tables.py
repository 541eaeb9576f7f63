"""Imports every table module so that Base.metadata knows the whole schema."""

from models import (
    accounts,
    api_keys,
    connections,
    crm_sources,
    observability,
    orchestrations,
    publishing_tables,
    runs,
    segment_refreshes,
    segments,
    sign_in_sessions,
    users,
)

__all__ = [
    "accounts",
    "api_keys",
    "connections",
    "crm_sources",
    "observability",
    "orchestrations",
    "publishing_tables",
    "runs",
    "segment_refreshes",
    "segments",
    "sign_in_sessions",
    "users",
]
