"""Fault injection every emulator shares (connectors/sandbox/server.py): a fault fires at a known
call (`after` matching requests from now, only on a `path` and `method`), in the test's process
and over `POST /__sandbox/faults`, whatever the timing of the calls before it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from connectors.sandbox.server import Emulator, EmulatorServer, Faults, Request, Response
from connectors.sandbox.tls import SandboxCertificates

WRITE = "/crm/v3/objects/contacts/batch/update"
READ = "/crm/v3/objects/contacts"


class Echo(Emulator):
    """An emulator that answers every request 200, or 429 where a `rate_limit` fault meets it."""

    name = "echo"

    def handle(self, request: Request, call: int) -> Response:
        if self.faults.take("rate_limit") is not None:
            return Response(429, {"error": "injected rate limit"})
        return Response(body={"call": call})


class Client:
    """HTTPS to one Echo emulator: the status of each call, and its control endpoints."""

    def __init__(self, emulator: Echo, ca_bundle: str) -> None:
        self.base_url = emulator.base_url
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = ca_bundle

    def status(self, method: str, path: str) -> int:
        """The status of one call; 0 when the emulator dropped the connection."""
        try:
            return self.session.request(method, self.base_url + path, timeout=30).status_code
        except requests.ConnectionError:
            return 0

    def statuses(self, calls: list[tuple[str, str]]) -> list[int]:
        return [self.status(method, path) for method, path in calls]

    def inject(self, spec: Any) -> requests.Response:
        return self.session.post(f"{self.base_url}/__sandbox/faults", json=spec, timeout=30)

    def pending(self) -> list[dict[str, Any]]:
        answer = self.session.get(f"{self.base_url}/__sandbox/faults", timeout=30)
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = answer.json()
        return found


@pytest.fixture
def echo(sandbox_certificates: SandboxCertificates) -> Iterator[tuple[Echo, Client]]:
    emulator = Echo()
    server = EmulatorServer(emulator, sandbox_certificates)
    server.start()
    try:
        yield emulator, Client(emulator, str(sandbox_certificates.ca_bundle))
    finally:
        server.stop()


def _serve(faults: Faults, method: str, path: str, kind: str = "rate_limit") -> bool:
    """One request as the server answers it: counted, then checked for `kind`."""
    request = Request(method, path, {}, {}, b"")
    with faults.serving(request):
        return faults.take(kind) is not None


# ---- Faults in the test's own process -----------------------------------------------------------


def test_a_fault_without_options_meets_the_next_request_as_before() -> None:
    faults = Faults()
    faults.inject("rate_limit", count=2, retry_after=3)
    assert [_serve(faults, "GET", READ) for _ in range(3)] == [True, True, False]
    assert faults.pending() == []


def test_after_lets_that_many_matching_requests_pass_then_fires_count_times() -> None:
    faults = Faults()
    faults.inject("rate_limit", count=2, after=3)
    assert [_serve(faults, "POST", WRITE) for _ in range(7)] == [
        False,
        False,
        False,
        True,
        True,
        False,
        False,
    ]


def test_a_path_fault_counts_and_meets_only_requests_on_its_path() -> None:
    faults = Faults()
    faults.inject("rate_limit", after=2, path="/batch/update$")
    calls = [READ, WRITE, READ, READ, WRITE, READ, WRITE, WRITE]
    met = [path for path in calls if _serve(faults, "POST", path)]
    # Reads neither count nor meet it: it is exactly the third write.
    assert met == [WRITE]
    assert faults.pending() == []


def test_a_method_fault_ignores_other_methods_on_the_same_path() -> None:
    faults = Faults()
    path = "/services/data/v59.0/composite/sobjects"
    faults.inject("expire_token", after=1, path="/composite/sobjects", method="patch")
    met = [
        method
        for method in ("GET", "PATCH", "GET", "GET", "PATCH", "PATCH")
        if _serve(faults, method, path, "expire_token")
    ]
    assert met == ["PATCH"]
    # The second PATCH met it: one GET after it proves GETs were never counted either.
    assert faults.pending() == []


def test_a_request_other_faults_answer_still_counts_for_a_waiting_fault() -> None:
    # The generic faults answer before the emulator checks its own: a dropped write is still the
    # write it was, so the rate limit still meets the third write, not the fourth.
    faults = Faults()
    faults.inject("drop_connection", path="/batch/update")
    faults.inject("rate_limit", after=2, path="/batch/update")
    outcomes = []
    for _ in range(4):
        with faults.serving(Request("POST", WRITE, {}, {}, b"")):
            if faults.take("drop_connection") is not None:
                outcomes.append("dropped")
            elif faults.take("rate_limit") is not None:
                outcomes.append("429")
            else:
                outcomes.append("ok")
    assert outcomes == ["dropped", "ok", "429", "ok"]


def test_faults_of_one_kind_fire_in_the_order_they_became_due() -> None:
    faults = Faults()
    faults.inject("server_error", after=1, status=502)
    faults.inject("server_error", status=500)
    taken = []
    for _ in range(3):
        with faults.serving(Request("GET", READ, {}, {}, b"")):
            fault = faults.take("server_error")
            taken.append(fault.params["status"] if fault else None)
    assert taken == [500, 502, None]


def test_a_path_fault_is_never_taken_outside_a_request() -> None:
    faults = Faults()
    faults.inject("rate_limit", path="/batch/update")
    faults.inject("slow")
    assert faults.take("rate_limit") is None
    assert faults.take("slow") is not None
    [left] = faults.pending()
    assert (left.kind, left.count, left.path) == ("rate_limit", 1, "/batch/update")


def test_pending_lists_what_is_left_of_each_fault_and_clear_forgets_it() -> None:
    faults = Faults()
    faults.inject("rate_limit", count=3, after=1, path="/batch/update", status=429)
    faults.inject("slow", seconds=0.1)
    for _ in range(3):
        _serve(faults, "POST", WRITE)
    [rate, slow] = faults.pending()
    assert (rate.kind, rate.count, rate.after, rate.seen, rate.params) == (
        "rate_limit",
        1,
        1,
        3,
        {"status": 429},
    )
    assert (slow.kind, slow.count, slow.params) == ("slow", 1, {"seconds": 0.1})
    faults.clear()
    assert faults.pending() == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"count": 0}, "fault rate_limit: count must be at least 1, not 0"),
        ({"after": -1}, "fault rate_limit: after must be 0 or more, not -1"),
        ({"path": "(batch"}, "fault rate_limit: path '(batch' is not a regular expression"),
    ],
)
def test_a_fault_that_could_never_fire_as_meant_is_refused(
    options: dict[str, Any], message: str
) -> None:
    faults = Faults()
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        faults.inject("rate_limit", **options)
    assert faults.pending() == []


# ---- over HTTPS and /__sandbox/faults -----------------------------------------------------------


def test_the_control_endpoint_arms_a_fault_for_the_third_write(echo: tuple[Echo, Client]) -> None:
    emulator, client = echo
    answer = client.inject({"kind": "rate_limit", "count": 2, "after": 2, "path": "/batch/update"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "injected": "rate_limit",
        "count": 2,
        "after": 2,
        "path": "/batch/update",
    }
    calls = [("GET", READ), ("POST", WRITE), ("GET", READ), ("POST", WRITE)]
    calls += [("POST", WRITE), ("GET", READ), ("POST", WRITE), ("POST", WRITE)]
    assert client.statuses(calls) == [200, 200, 200, 200, 429, 200, 429, 200]
    assert client.pending() == []
    assert emulator.faults.pending() == []


def test_generic_faults_take_after_and_path_over_https(echo: tuple[Echo, Client]) -> None:
    _emulator, client = echo
    spec = {"kind": "server_error", "after": 1, "path": "/batch/update", "status": 502}
    assert client.inject(spec).status_code == 200
    assert (
        client.inject({"kind": "drop_connection", "after": 3, "method": "GET"}).status_code == 200
    )
    calls = [("POST", WRITE), ("GET", READ), ("GET", READ), ("POST", WRITE), ("GET", READ)]
    calls += [("GET", READ), ("POST", WRITE)]
    assert client.statuses(calls) == [200, 200, 200, 502, 200, 0, 200]
    assert client.pending() == []


def test_the_control_endpoint_shows_pending_faults(echo: tuple[Echo, Client]) -> None:
    _emulator, client = echo
    assert client.inject({"kind": "rate_limit", "after": 2, "path": "/batch/update"}).ok
    client.statuses([("POST", WRITE), ("GET", READ)])
    assert client.pending() == [
        {
            "kind": "rate_limit",
            "count": 1,
            "params": {},
            "after": 2,
            "path": "/batch/update",
            "method": None,
            "seen": 1,
        }
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"count": 2}, "a fault needs a kind"),
        ([1, 2], "a fault must be a JSON object"),
        ({"kind": "rate_limit", "after": "3"}, "fault rate_limit: after must be an integer"),
        ({"kind": "rate_limit", "count": True}, "fault rate_limit: count must be an integer"),
        ({"kind": "rate_limit", "path": 7}, "fault rate_limit: path must be a string"),
        ({"kind": "rate_limit", "after": -2}, "fault rate_limit: after must be 0 or more, not -2"),
        ({"kind": "rate_limit", "path": "[a"}, "fault rate_limit: path '[a' is not a regular"),
    ],
)
def test_the_control_endpoint_refuses_a_bad_fault_saying_why(
    echo: tuple[Echo, Client], spec: Any, message: str
) -> None:
    _emulator, client = echo
    answer = client.inject(spec)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith(message), answer.json()
    assert client.pending() == []
    assert client.status("POST", WRITE) == 200
