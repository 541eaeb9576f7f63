"""Imports every table module so that Base.metadata knows the whole schema."""

from models import accounts, connections, publishing_tables, segments

__all__ = ["accounts", "connections", "publishing_tables", "segments"]
