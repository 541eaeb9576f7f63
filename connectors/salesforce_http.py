"""What is Salesforce's own in its HTTP: error bodies, their classification, the usage header.

The session, call counting, redaction and Retry-After are connectors/http.py's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

import requests

from connectors.base import WriteResult
from connectors.errors import ConnectorError, DailyQuotaError, FatalError, RetryableError
from connectors.http import redact, retry_after

_LIMIT_INFO = re.compile(r"(?:^|[;,\s])api-usage=(\d+)/(\d+)")
# Request-level codes worth trying again later: lock contention, a busy or restarting server,
# an expired query cursor (the read restarts).
_RETRYABLE_CODES = frozenset(
    {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "INVALID_QUERY_LOCATOR", "QUERY_TIMEOUT"}
)
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def parse_limit_info(header: str | None) -> tuple[int, int] | None:
    """(used, limit) from `Sforce-Limit-Info: api-usage=18/5000`, when present."""
    match = _LIMIT_INFO.search(header or "")
    return (int(match[1]), int(match[2])) if match else None


def error_details(content: Any) -> tuple[str | None, str]:
    """(errorCode, message) from a Salesforce error body, whichever of its shapes it has."""
    if isinstance(content, bytes | str):
        try:
            content = json.loads(content)
        except ValueError:
            return None, ""
    if isinstance(content, list) and content and isinstance(content[0], dict):
        content = content[0]
    if isinstance(content, dict):
        code = content.get("errorCode") or content.get("statusCode")
        message = content.get("message") or content.get("error_description") or ""
        error = content.get("error")
        if not code and isinstance(error, str):
            # OAuth bodies carry an identifier ("invalid_grant"); anything else is prose.
            if _IDENTIFIER.match(error):
                code = error
            else:
                message = message or error
        return (str(code) if code else None), str(message)
    return None, ""


def classify(
    status: int, content: Any, headers: Mapping[str, str], secrets: Iterable[str | None]
) -> ConnectorError:
    """The connector error for a failed Salesforce REST or Bulk API response."""
    code, message = error_details(content)
    text = redact(
        f"Salesforce {code or 'error'} (HTTP {status}): {message or 'no message'}", secrets
    )
    if code == "REQUEST_LIMIT_EXCEEDED":
        if _daily_total(message):
            return DailyQuotaError(text, code=code)
        return RetryableError(text, code=code, retry_after=retry_after(headers))
    if status == 429 or status >= 500 or code in _RETRYABLE_CODES:
        return RetryableError(text, code=code, retry_after=retry_after(headers))
    return FatalError(text, code=code)


def throttling(response: requests.Response) -> bool:
    """Whether an answer is the concurrent-request limit, Salesforce's "too many requests"
    without a 429 (VendorHttp counts every 429 itself)."""
    # Salesforce sends REQUEST_LIMIT_EXCEEDED as 403; other bodies (a streamed result) are not read.
    if response.status_code != 403:
        return False
    code, message = error_details(response.content)
    return code == "REQUEST_LIMIT_EXCEEDED" and not _daily_total(message)


def _daily_total(message: str) -> bool:
    # REQUEST_LIMIT_EXCEEDED covers the daily total and concurrency limits; only the message tells.
    return "TotalRequests" in message


# Per-record codes that mean the whole run is misconfigured (the field itself cannot be written),
# not that one record is bad.
_FATAL_RECORD_CODES = frozenset(
    {"INVALID_FIELD", "INVALID_FIELD_FOR_INSERT_UPDATE", "INVALID_TYPE", "INVALID_SESSION_ID"}
)


def record_failure(
    record_id: str, code: str | None, message: str, secrets: Iterable[str | None]
) -> WriteResult:
    """A failed record's WriteResult; FatalError when the code condemns every record alike."""
    code = code or "UNKNOWN_EXCEPTION"
    text = redact(message or code, secrets)
    if code in _FATAL_RECORD_CODES:
        raise FatalError(f"Salesforce {code}: {text}", code=code)
    return WriteResult(record_id, ok=False, code=code, message=text)
