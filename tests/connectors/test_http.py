"""connectors.http: the session every adapter sends through, its token, redaction, Retry-After."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import responses

from connectors.errors import FatalError, RetryableError
from connectors.http import (
    MESSAGE_LIMIT,
    AccessToken,
    VendorHttp,
    redact,
    require_one_login,
    require_web_url,
    retry_after,
)

URL = "https://api.vendor.test/v1/things"


class Counts:
    """Stands in for the connector: slots entered, 429s counted, what close() would call."""

    system = "vendor"

    def __init__(self) -> None:
        self.slots = 0
        self.throttled = 0
        self._in_slot = False
        self.answers: list[int] = []
        self.closers: list[Callable[[], None]] = []

    @contextmanager
    def _vendor_call(self) -> Iterator[None]:
        self.slots += 1
        self._in_slot = True
        try:
            yield
        finally:
            self._in_slot = False

    def _note_throttled(self) -> None:
        self.throttled += 1

    def _close_with(self, close: Callable[[], None]) -> None:
        self.closers.append(close)

    def answered(self, response: requests.Response) -> None:
        # Every answer is shown after its slot is left: a slow hook holds no vendor place.
        assert not self._in_slot
        self.answers.append(response.status_code)


def vendor_http(counts: Counts, **options: object) -> VendorHttp:
    return VendorHttp(
        counts,
        ca_bundle=options.pop("ca_bundle", None),  # type: ignore[arg-type]
        timeout=30.0,
        on_answer=counts.answered,
        **options,  # type: ignore[arg-type]
    )


@responses.activate
def test_every_request_is_sent_in_a_slot_and_every_429_counted_as_throttled() -> None:
    responses.get(URL, json={"ok": True})
    responses.get(URL, status=429, headers={"Retry-After": "3"})
    responses.get(URL, status=503)
    counts = Counts()
    http = vendor_http(counts)
    statuses = [http.request("GET", URL).status_code for _ in range(3)]
    assert statuses == [200, 429, 503]
    assert (counts.slots, counts.throttled, counts.answers) == (3, 1, [200, 429, 503])
    # The connector's close() closes the session; a later request opens a new connection.
    assert counts.closers == [http.close]


@responses.activate
@pytest.mark.parametrize(
    ("failure", "words"),
    [(requests.ConnectionError("reset"), "failed"), (requests.ReadTimeout("slow"), "timed out")],
)
def test_a_network_failure_is_retryable_and_names_no_url(failure: Exception, words: str) -> None:
    responses.get(URL, body=failure)
    counts = Counts()
    with pytest.raises(RetryableError) as raised:
        vendor_http(counts).request("GET", URL, what="reading things")
    assert str(raised.value) == (
        f"the connection to vendor {words} while reading things ({type(failure).__name__})"
    )
    assert raised.value.code == "CONNECTION" and raised.value.__context__ is None
    assert "vendor.test" not in str(raised.value) and counts.slots == 1


def test_a_ca_bundle_replaces_the_environment_and_proxies_can_be_refused() -> None:
    counts = Counts()
    with_ca = vendor_http(counts, ca_bundle="/etc/segsync/ca.pem").session
    assert with_ca.verify == "/etc/segsync/ca.pem" and with_ca.trust_env is False
    default = vendor_http(counts).session
    assert default.verify is True and default.trust_env is True
    no_proxies = vendor_http(counts, proxies_from_environment=False).session
    assert no_proxies.verify is True and no_proxies.trust_env is False


class _Throttling(BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        self.send_response(429)
        self.send_header("Retry-After", "1")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_urllib3_does_not_retry_a_429_with_retry_after_on_its_own() -> None:
    # A real server: `responses` would stand in for urllib3 and its retries.
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Throttling)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        counts = Counts()
        url = f"http://127.0.0.1:{server.server_address[1]}/limited"
        response = vendor_http(counts).request("GET", url)
    finally:
        server.shutdown()
        server.server_close()
    assert response.status_code == 429 and response.headers["Retry-After"] == "1"
    assert _Throttling.hits == 1 and counts.throttled == 1


def test_a_token_is_obtained_on_first_use_and_again_when_its_time_is_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [100.0]
    monkeypatch.setattr("connectors.http.time.monotonic", lambda: clock[0])
    issued = iter([("first", 50.0), ("second", 50.0)])
    token = AccessToken(lambda: next(issued))
    assert token.current is None
    assert token.value() == "first" and token.value() == "first"
    clock[0] += 49.9
    assert token.value() == "first"
    clock[0] += 0.1
    assert token.value() == "second" and token.current == "second"


def test_a_refused_token_is_renewed_once_and_the_call_made_again() -> None:
    issued = iter(["first", "second", "third"])
    token = AccessToken(lambda: (next(issued), 3600.0))
    sent: list[str] = []

    def call() -> int:
        sent.append(token.value())
        return 401

    assert token.send(call, lambda status: status == 401) == 401
    assert sent == ["first", "second"]


def test_a_token_given_outright_is_never_renewed() -> None:
    token = AccessToken(None, given="given")
    sent: list[str] = []

    def call() -> int:
        sent.append(token.value())
        return 401

    token.forget()
    assert not token.renewable and token.send(call, lambda status: status == 401) == 401
    assert sent == ["given"]


def test_redaction_blanks_secrets_keeps_one_line_and_cuts_the_middle() -> None:
    text = redact("refused\n  token abcd-1234 and x", ["abcd-1234", None, "x"])
    # A secret under four characters is not looked for: it would blank ordinary letters.
    assert text == "refused token [redacted] and x"
    long = redact("start " + "v" * 500 + " (max length=255)", [])
    assert len(long) == MESSAGE_LIMIT
    assert long.startswith("start ") and long.endswith("(max length=255)") and "…" in long


@pytest.mark.parametrize(
    ("header", "seconds"), [("7", 7.0), ("0.5", 0.5), ("-1", None), ("soon", None), (None, None)]
)
def test_retry_after_is_read_in_seconds(header: str | None, seconds: float | None) -> None:
    headers = {"Retry-After": header} if header is not None else {}
    assert retry_after(headers) == seconds


@pytest.mark.parametrize(
    ("token", "parts", "accepted"),
    [
        ("t", (None, None), True),
        (None, ("id", "secret"), True),
        ("t", ("id", None), False),  # both ways at once
        (None, ("id", None), False),  # half of one way
        (None, (None, None), False),  # neither
    ],
)
def test_a_connection_logs_in_exactly_one_way(
    token: str | None, parts: tuple[str | None, ...], accepted: bool
) -> None:
    if accepted:
        require_one_login(token, parts, "needs one way")
    else:
        with pytest.raises(FatalError, match="^needs one way$"):
            require_one_login(token, parts, "needs one way")


def test_a_vendor_url_must_be_a_web_url() -> None:
    require_web_url("vendor", "base_url", "https://api.vendor.test")
    require_web_url("vendor", "base_url", "http://127.0.0.1:8443")
    with pytest.raises(
        FatalError, match="^vendor base_url must start with https://, got 'ftp://x'$"
    ):
        require_web_url("vendor", "base_url", "ftp://x")
