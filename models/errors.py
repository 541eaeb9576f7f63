"""The errors the domain raises: each carries a one-line message meant for a person."""

from __future__ import annotations


class SegsyncError(Exception):
    """Base of every refusal the domain makes; `str(err)` is a complete one-line reason."""


class NotFoundError(SegsyncError):
    """A named thing (account, segment) does not exist."""


class InputError(SegsyncError):
    """Input that cannot be understood: a malformed file, value, expression or name."""


class RuleError(SegsyncError):
    """Input that is understood but a product rule refuses (limit, eligibility, references)."""


class SchemaNotCurrentError(SegsyncError):
    """The database has not been created or migrated to this version of segsync."""
