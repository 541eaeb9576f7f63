"""The kinds of connector error, mapped by each adapter from the status and the body.

Messages are built from the vendor's error code and text only: never a URL with a token in it, a
request body or a header, so they are safe to log and to show.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of every error an adapter raises; `str(err)` is a one-line, secret-free reason."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class RetryableError(ConnectorError):
    """Try the same call again later: rate limits, 5xx, lock contention, dropped connections."""

    def __init__(
        self, message: str, *, code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, code=code)
        # Seconds the vendor asked us to wait (Retry-After, a policy window), when it said.
        self.retry_after = retry_after


class DailyQuotaError(ConnectorError):
    """The vendor's daily API quota is spent: nothing more can be done until it resets."""


class FatalError(ConnectorError):
    """Stop the run: bad credentials, unknown object or field, missing permission."""


class RecordError(ConnectorError):
    """One record cannot be written (bad value, deleted record); the others go on.

    Raised inside an adapter that writes record by record (Pardot) and turned into that record's
    failed WriteResult (`WriteResult.refused`): a write batch reports it, never raises it.
    """
