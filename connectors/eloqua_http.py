"""The Eloqua adapter's HTTP: credentials, base URL discovery at login.eloqua.com/id, error mapping.

Eloqua serves each instance from one of several pods, so every call goes to the base URL that
`GET https://login.eloqua.com/id` names ("Determining base URLs"). Oracle's advice for a 401 is to
call /id again: the instance may have moved pods, or the credentials are no longer valid. So a 401
re-discovers the base URL and repeats the call once; a second refusal (or /id's own refusal,
"Not authenticated.") is fatal. With Basic credentials nothing can be renewed; nor is an OAuth
access token: Eloqua hands out a new refresh token with every refresh, and an adapter has nowhere
to keep it, so an expired token ends in FatalError too.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from connectors import http
from connectors.errors import ConnectorError, DailyQuotaError, FatalError, RetryableError
from connectors.http import Counted, VendorHttp, redact, retry_after

log = logging.getLogger(__name__)

_NOT_AUTHENTICATED = "Not authenticated."
# Query parameters of a call.
_Params = Mapping[str, str | int] | None


@dataclass(frozen=True)
class Credentials:
    """How to authenticate: Basic ("Site\\User:password") or an OAuth bearer token."""

    site: str | None
    username: str | None
    password: str | None
    access_token: str | None

    def header(self) -> str:
        """The Authorization header value."""
        if self.access_token:
            return f"Bearer {self.access_token}"
        pair = f"{self.site}\\{self.username}:{self.password}"
        return "Basic " + base64.b64encode(pair.encode()).decode()


class EloquaHttp:
    """Authenticated calls to one Eloqua instance, each counted just before it is sent."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        login_url: str,
        ca_bundle: str | None,
        timeout: float,
        connector: Counted,
    ) -> None:
        self._credentials = credentials
        self._login_url = login_url.rstrip("/")
        self._authorization = credentials.header()
        self._lock = threading.Lock()
        self._base_url: str | None = None
        self._http = VendorHttp(
            connector, ca_bundle=ca_bundle, timeout=timeout, proxies_from_environment=False
        )

    @property
    def base_url(self) -> str | None:
        """The instance's base URL once discovered."""
        return self._base_url

    # ---- discovery --------------------------------------------------------------------------

    def discover(self) -> str:
        """Ask /id for the instance's base URL (and so check the credentials); cache it."""
        response = self._send("GET", f"{self._login_url}/id", what="discovering the base URL")
        body = _json(response.content)
        if response.status_code == 401 or body == _NOT_AUTHENTICATED:
            who = "OAuth token" if self._credentials.access_token else "credentials"
            site = f" for site {self._credentials.site}" if self._credentials.site else ""
            raise FatalError(
                f"eloqua refused the {who}{site} (Not authenticated.)", code="NOT_AUTHENTICATED"
            )
        if response.status_code != 200:
            raise self._failure(response, "discovering the base URL")
        urls = body.get("urls") if isinstance(body, dict) else None
        base = urls.get("base") if isinstance(urls, dict) else None
        if not isinstance(base, str) or not base.startswith(("https://", "http://")):
            raise FatalError("eloqua's /id answer names no base URL", code="NO_BASE_URL")
        with self._lock:
            if base.rstrip("/") != self._base_url:
                log.info("eloqua instance base URL is %s", base)
            self._base_url = base.rstrip("/")
            return self._base_url

    # ---- calls ------------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: _Params = None,
        body: bytes | None = None,
        keep: Collection[int] = (),
    ) -> requests.Response:
        """One call to `path` under the base URL: 2xx and `keep` statuses are returned.

        A 401 re-discovers the base URL and repeats the call once; every other failure becomes
        a RetryableError, DailyQuotaError or FatalError.
        """
        base = self._base_url or self.discover()
        response = self._send(method, base + path, what=what, params=params, body=body)
        if response.status_code == 401:
            log.info("eloqua answered 401 while %s; discovering the base URL again", what)
            base = self.discover()
            response = self._send(method, base + path, what=what, params=params, body=body)
            if response.status_code == 401:
                raise FatalError(
                    f"eloqua refused the credentials while {what} (401 twice)",
                    code="NOT_AUTHENTICATED",
                )
        if 200 <= response.status_code < 300 or response.status_code in keep:
            return response
        raise self._failure(response, what)

    def _send(
        self, method: str, url: str, *, what: str, params: _Params = None, body: bytes | None = None
    ) -> requests.Response:
        headers = {"Authorization": self._authorization, "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
        return self._http.request(method, url, what=what, params=params, data=body, headers=headers)

    def _failure(self, response: requests.Response, what: str) -> ConnectorError:
        """Map a failed answer's status and body to the connector error kinds."""
        status = response.status_code
        message = self.clean(describe_body(response.content))
        if status == 429:
            # Eloqua has no daily API quota; the sandbox says "daily" when it simulates one.
            if "daily" in message.lower():
                return DailyQuotaError(
                    f"eloqua's daily API limit is spent ({message})", code="DAILY"
                )
            wait = retry_after(response.headers)
            return RetryableError(
                f"eloqua is throttling requests (429) while {what}",
                code="TOO_MANY_REQUESTS",
                retry_after=wait,
            )
        if status >= 500 or status == 408:
            return RetryableError(
                f"eloqua answered {status} while {what}: {message}",
                code=str(status),
                retry_after=retry_after(response.headers),
            )
        if status == 403:
            return FatalError(f"eloqua denied access while {what}: {message}", code="403")
        return FatalError(f"eloqua refused {what} ({status}): {message}", code=str(status))

    def clean(self, text: str) -> str:
        """`text` clipped, with this connection's secrets blanked out."""
        secrets = (
            self._credentials.password,
            self._credentials.access_token,
            self._authorization.partition(" ")[2],
        )
        return redact(text, secrets)


def _json(content: bytes) -> Any:
    try:
        return json.loads(content) if content else None
    except ValueError:
        return None


def json_object(response: requests.Response) -> dict[str, Any]:
    """The answer's body as a JSON object ({} when it is not one)."""
    return http.json_object(response.content)


def describe_body(content: bytes) -> str:
    """A one-line reason from an error body: Bulk `failures`, REST parameter errors, or text."""
    parsed = _json(content)
    if isinstance(parsed, dict) and isinstance(parsed.get("failures"), list):
        parts = []
        for failure in parsed["failures"]:
            if isinstance(failure, dict):
                where = failure.get("field") or failure.get("parameter") or "request"
                parts.append(f"{where}: {failure.get('constraint') or failure.get('message')}")
        return "; ".join(parts) or "refused"
    if isinstance(parsed, list):
        parts = [
            f"{item.get('parameter')}: {(item.get('requirement') or {}).get('type')}"
            for item in parsed
            if isinstance(item, dict)
        ]
        return "; ".join(parts) or "refused"
    if isinstance(parsed, str):
        return parsed
    text = content.decode("utf-8", "replace").strip()
    return " ".join(text.split()) or "no details"
