"""HTTP plumbing of the Salesforce adapter: a counting requests Session and error classification."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from connectors.base import CallSlot, WriteResult
from connectors.errors import ConnectorError, DailyQuotaError, FatalError, RetryableError

_LIMIT_INFO = re.compile(r"(?:^|[;,\s])api-usage=(\d+)/(\d+)")
# Request-level codes worth trying again later: lock contention, a busy or restarting server,
# an expired query cursor (the read restarts).
_RETRYABLE_CODES = frozenset(
    {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "INVALID_QUERY_LOCATOR", "QUERY_TIMEOUT"}
)
_MAX_MESSAGE = 300
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class CountingAdapter(HTTPAdapter):
    """Counts every request sent (redirects and failed connections too), gives each a timeout,
    and shows every response to `on_response`."""

    def __init__(
        self,
        around_send: CallSlot,
        on_response: Callable[[requests.Response], None],
        timeout: float,
    ) -> None:
        super().__init__()
        self._around_send = around_send
        self._on_response = on_response
        self._timeout = timeout

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send `request` like HTTPAdapter, inside the call slot (which counts it)."""
        with self._around_send():
            response = super().send(
                request,
                stream=stream,
                timeout=self._timeout if timeout is None else timeout,
                verify=verify,
                cert=cert,
                proxies=dict(proxies) if proxies is not None else None,
            )
        self._on_response(response)
        return response


def make_session(
    ca_bundle: str | None,
    timeout: float,
    around_send: CallSlot,
    on_response: Callable[[requests.Response], None],
) -> requests.Session:
    """A requests Session that counts calls; with `ca_bundle`, verifies with that file only."""
    session = requests.Session()
    if ca_bundle:
        session.verify = ca_bundle
        # REQUESTS_CA_BUNDLE in the environment would otherwise win over Session.verify
        # (psf/requests#3829).
        session.trust_env = False
    adapter = CountingAdapter(around_send, on_response, timeout)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


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


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret replaced, on one line, cut to at most 300 characters."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    text = " ".join(text.split())
    if len(text) <= _MAX_MESSAGE:
        return text
    # Cut the middle: Salesforce echoes the offending value mid-message ("data value too large:
    # <value> (max length=255)") and the end says what was wrong.
    return f"{text[: _MAX_MESSAGE // 2]}…{text[-(_MAX_MESSAGE // 2 - 1) :]}"


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a Retry-After header given in seconds."""
    value = headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


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
    """Whether an answer says "too many requests": HTTP 429, or the concurrent-request limit."""
    if response.status_code == 429:
        return True
    # Salesforce sends REQUEST_LIMIT_EXCEEDED as 403; other bodies (a streamed result) are not read.
    if response.status_code != 403:
        return False
    code, message = error_details(response.content)
    return code == "REQUEST_LIMIT_EXCEEDED" and not _daily_total(message)


def _daily_total(message: str) -> bool:
    # REQUEST_LIMIT_EXCEEDED covers the daily total and concurrency limits; only the message tells.
    return "TotalRequests" in message


def transport_error(exc: requests.RequestException) -> RetryableError:
    """A connection failure or timeout, named without its URL or payload."""
    if isinstance(exc, ValueError):  # requests' JSONDecodeError: a proxy page, a cut body
        return RetryableError("Salesforce sent a response that is not valid JSON")
    kind = "timed out" if isinstance(exc, requests.Timeout) else "failed"
    return RetryableError(f"the connection to Salesforce {kind} ({type(exc).__name__})")


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
