"""The HTTP plumbing every adapter shares; each adapter keeps only its vendor's URLs, auth and
error mapping.

`VendorHttp` is one vendor's `requests` session: the CA file, timeouts, retries of failed
connects only, every request sent inside the connector's call slot (which counts it in
`api_calls`), every HTTP 429 counted in `throttled`, and a dropped connection raised as
RetryableError. `AccessToken` keeps a token until it runs out or is refused; `redact`,
`retry_after` and `json_object` are the small rules every adapter applies to answers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from connectors.base import CallSlot
from connectors.errors import FatalError, RetryableError

# Seconds to wait for a connection; the read timeout is each vendor's setting.
CONNECT_TIMEOUT = 10.0
# The longest message an adapter puts in an error or a failed WriteResult.
MESSAGE_LIMIT = 300
# A secret shorter than this is not looked for: it would blank out ordinary words.
_SHORTEST_SECRET = 4
Answer = TypeVar("Answer")


class Counted(Protocol):
    """What a VendorHttp sends for and reports to: a Connector."""

    @property
    def system(self) -> str:
        """The vendor's name, as errors give it."""

    def _vendor_call(self) -> AbstractContextManager[None]:
        """The call slot one request is sent in (it counts the call)."""

    def _note_throttled(self) -> None:
        """Count one "too many requests" answer."""

    def _close_with(self, close: Callable[[], None]) -> None:
        """Have `close` called when the connector is closed."""


class _CountingAdapter(HTTPAdapter):
    """Sends each request inside the call slot (which counts it, redirects and SDK calls too),
    with the session's default timeout, and shows each answer to `on_answer`."""

    def __init__(
        self,
        vendor_call: CallSlot,
        on_answer: Callable[[requests.Response], None],
        timeout: tuple[float, float],
    ) -> None:
        # Retry only failed connects (nothing was sent); anything else is the caller's to retry.
        # respect_retry_after_header=False: otherwise urllib3 retries a GET's 429/503 carrying
        # Retry-After despite status=0, then raises RetryError and hides the vendor's answer.
        retry = Retry(
            total=1,
            connect=1,
            read=0,
            status=0,
            other=0,
            redirect=0,
            respect_retry_after_header=False,
        )
        super().__init__(max_retries=retry)
        self._vendor_call = vendor_call
        self._on_answer = on_answer
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
        """Send `request` like HTTPAdapter, inside the call slot."""
        with self._vendor_call():
            response = super().send(
                request,
                stream=stream,
                timeout=self._timeout if timeout is None else timeout,
                verify=verify,
                cert=cert,
                proxies=dict(proxies) if proxies is not None else None,
            )
        self._on_answer(response)
        return response


class VendorHttp:
    """One vendor's session for `connector`: every request sent in its call slot, every 429
    counted as throttled, network errors retryable, closed with the connector."""

    def __init__(
        self,
        connector: Counted,
        *,
        ca_bundle: str | None,
        timeout: float,
        on_answer: Callable[[requests.Response], None] | None = None,
        proxies_from_environment: bool = True,
    ) -> None:
        self.vendor = connector.system
        self._throttled = connector._note_throttled
        self._on_answer = on_answer
        self.session = requests.Session()
        if ca_bundle or not proxies_from_environment:
            # REQUESTS_CA_BUNDLE would override `verify` (psf/requests#3829), and proxies from
            # the environment would apply: the session takes neither from the environment.
            self.session.trust_env = False
        if ca_bundle:
            self.session.verify = ca_bundle
        adapter = _CountingAdapter(
            connector._vendor_call, self._answered, (min(CONNECT_TIMEOUT, timeout), timeout)
        )
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        connector._close_with(self.close)

    def request(
        self, method: str, url: str, *, what: str | None = None, **options: Any
    ) -> requests.Response:
        """`session.request(...)`; a failed connection or timeout is a RetryableError."""
        try:
            return self.session.request(method, url, **options)
        except requests.RequestException as exc:
            error = self.connection_error(exc, what)
        # Raised outside the except block: the requests exception (and its URL) stays out.
        raise error

    def connection_error(
        self, exc: requests.RequestException, what: str | None = None
    ) -> RetryableError:
        """The RetryableError a requests exception stands for, named without URL or payload."""
        while_ = f" while {what}" if what else ""
        if isinstance(exc, ValueError):  # requests' JSONDecodeError: a proxy page, a cut body
            return RetryableError(
                f"{self.vendor} sent an answer that is not valid JSON{while_}", code="UNREADABLE"
            )
        kind = "timed out" if isinstance(exc, requests.Timeout) else "failed"
        return RetryableError(
            f"the connection to {self.vendor} {kind}{while_} ({type(exc).__name__})",
            code="CONNECTION",
        )

    def close(self) -> None:
        """Release the session's connections."""
        self.session.close()

    def _answered(self, response: requests.Response) -> None:
        if response.status_code == 429:
            self._throttled()
        if self._on_answer is not None:
            self._on_answer(response)


class AccessToken:
    """A bearer token from `obtain()`, kept until it runs out or the vendor refuses it.

    `obtain` returns the token and the seconds it may be used for (the adapter's own margin
    already taken off). A token given outright (`given`, no `obtain`) is never renewed.
    """

    def __init__(
        self,
        obtain: Callable[[], tuple[str, float]] | None,
        *,
        given: str | None = None,
    ) -> None:
        self._obtain = obtain
        self._token = given
        self._use_until = float("inf") if given else 0.0

    @property
    def renewable(self) -> bool:
        """Whether a refused or spent token can be replaced."""
        return self._obtain is not None

    @property
    def current(self) -> str | None:
        """The token held now, if any (for redaction)."""
        return self._token

    def value(self) -> str:
        """The token, obtained afresh when there is none or its time is up."""
        if self._obtain is not None and (
            self._token is None or time.monotonic() >= self._use_until
        ):
            token, seconds = self._obtain()
            self._token, self._use_until = token, time.monotonic() + seconds
        assert self._token is not None
        return self._token

    def forget(self) -> None:
        """Drop the token, so the next `value()` obtains a new one."""
        if self._obtain is not None:
            self._use_until = 0.0

    def send(self, call: Callable[[], Answer], refused: Callable[[Answer], bool]) -> Answer:
        """`call()`, made once more with a new token when its answer says the token was
        `refused` and it can be renewed."""
        answer = call()
        if refused(answer) and self.renewable:
            self.forget()
            answer = call()
        return answer


def require_one_login(token: str | None, parts: Iterable[str | None], refusal: str) -> None:
    """FatalError(`refusal`) unless a connection has either `token` or every one of `parts`."""
    given = [bool(part) for part in parts]
    if bool(token) == any(given) or not (token or all(given)):
        raise FatalError(refusal)


def require_web_url(vendor: str, name: str, url: str) -> None:
    """FatalError unless the setting `name` is an https:// (or http://) URL."""
    if not url.startswith(("https://", "http://")):
        raise FatalError(f"{vendor} {name} must start with https://, got {url!r}")


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret blanked out, on one line, cut to at most MESSAGE_LIMIT
    characters in the middle (a vendor echoes the refused value mid-message; the end says what
    was wrong)."""
    for secret in secrets:
        if secret and len(secret) >= _SHORTEST_SECRET:
            text = text.replace(secret, "[redacted]")
    text = " ".join(text.split())
    if len(text) <= MESSAGE_LIMIT:
        return text
    return f"{text[: MESSAGE_LIMIT // 2]}…{text[-(MESSAGE_LIMIT // 2 - 1) :]}"


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a Retry-After header given in seconds (None when absent or unreadable)."""
    try:
        seconds = float(headers.get("Retry-After") or "")
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def json_object(content: bytes) -> dict[str, Any]:
    """A body as a JSON object ({} when it is empty or not one)."""
    try:
        parsed = json.loads(content) if content else None
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
