"""The Marketo emulator itself: Marketo's shapes, limits, error codes and faults over HTTPS."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from connectors.sandbox.marketo import SEGMENT_FIELD, STRING_MAX_LENGTH, MarketoEmulator
from connectors.sandbox.server import EmulatorServer
from connectors.sandbox.tls import SandboxCertificates


class Api:
    """A bare HTTPS client of one emulator, with a token from its identity endpoint."""

    def __init__(self, emulator: MarketoEmulator, ca_bundle: str) -> None:
        self.emulator = emulator
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = ca_bundle
        self.token: str | None = None

    def identity(self, method: str = "GET", **overrides: str) -> requests.Response:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.emulator.client_id,
            "client_secret": self.emulator.client_secret,
        } | overrides
        url = f"{self.emulator.base_url}/identity/oauth/token"
        if method == "POST":
            return self.session.post(url, data=form)
        return self.session.get(url, params=form)

    def login(self) -> Api:
        self.token = self.identity().json()["access_token"]
        return self

    def get(self, path: str, **params: Any) -> Any:
        return self.raw("GET", path, params=params).json()

    def post(self, path: str, body: Any) -> Any:
        return self.raw("POST", path, json=body).json()

    def raw(self, method: str, path: str, **options: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers |= options.pop("headers", {})
        return self.session.request(
            method, self.emulator.base_url + path, headers=headers, **options
        )

    def sync(self, inputs: list[dict[str, Any]], **options: Any) -> Any:
        body = {"action": "updateOnly", "lookupField": "id", "input": inputs} | options
        return self.post("/rest/v1/leads.json", body)


@pytest.fixture
def start(sandbox_certificates: SandboxCertificates) -> Iterator[Callable[..., Api]]:
    """Serve an emulator built with the given options; a logged-in client of it."""
    servers: list[EmulatorServer] = []

    def make(**options: Any) -> Api:
        emulator = MarketoEmulator(**options)
        server = EmulatorServer(emulator, sandbox_certificates)
        server.start()
        servers.append(server)
        return Api(emulator, str(sandbox_certificates.ca_bundle)).login()

    yield make
    for server in servers:
        server.stop()


def error_of(body: dict[str, Any]) -> tuple[str, str]:
    assert body["success"] is False and "requestId" in body
    [error] = body["errors"]
    return error["code"], error["message"]


def test_seeding_is_deterministic_and_realistic() -> None:
    first, second = MarketoEmulator(records=20), MarketoEmulator(records=20)
    lead = first.record("leads", "1")
    stamps = ("createdAt", "updatedAt")
    assert {k: v for k, v in lead.items() if k not in stamps} == {
        k: v for k, v in second.record("leads", "1").items() if k not in stamps
    }
    assert lead["email"] == "ada.archer@company0.com"
    assert (lead["company"], lead["website"], lead[SEGMENT_FIELD]) == ("Company 0", None, None)
    assert first.record("leads", "2")["website"] == "https://www.company0.com"
    assert first.record("leads", "12")["email"] == "brook.bell@company5.com"
    # A minute apart, the newest at today's midnight (UTC).
    midnight = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert first.record("leads", "20")["createdAt"] == midnight.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert first.record("leads", "19")["createdAt"].endswith("T23:59:00Z")
    assert MarketoEmulator().add_records("leads", [{}]) == ["1"]
    with pytest.raises(ValueError, match="no settable field 'nope'"):
        MarketoEmulator().add_records("leads", [{"nope": "x"}])
    with pytest.raises(KeyError):
        MarketoEmulator().add_records("contacts", [{}])


def test_identity_get_or_post_gives_the_same_token_until_it_expires(
    start: Callable[..., Api],
) -> None:
    api = start()
    first = api.identity().json()
    assert set(first) == {"access_token", "token_type", "expires_in", "scope"}
    assert first["token_type"] == "bearer" and 3590 <= first["expires_in"] <= 3600
    again = api.identity("POST").json()
    assert again["access_token"] == first["access_token"]
    api.emulator.expire_tokens()
    renewed = api.identity().json()
    assert renewed["access_token"] != first["access_token"]

    refused = api.identity(client_secret="guess")
    assert refused.status_code == 401
    assert refused.json() == {
        "error": "invalid_client",
        "error_description": "Bad client credentials",
    }
    assert api.identity(grant_type="password").status_code == 400


def test_tokens_are_checked_on_every_call(start: Callable[..., Api]) -> None:
    api = start(records=1)
    assert api.get("/rest/v1/leads/describe.json")["success"] is True
    token = api.token
    api.token = None
    assert error_of(api.get("/rest/v1/leads/describe.json"))[0] == "600"
    # The access_token query parameter is being removed by Marketo: only the header counts.
    assert error_of(api.get("/rest/v1/leads/describe.json", access_token=token))[0] == "600"
    api.token = "0c2a4b1e-0000-0000-0000-000000000000:sj"
    assert error_of(api.get("/rest/v1/leads/describe.json")) == ("601", "Access token invalid")
    api.token = token
    api.emulator.faults.inject("expire_token")
    assert error_of(api.get("/rest/v1/leads/describe.json")) == ("602", "Access token expired")
    api.login()
    assert api.get("/rest/v1/leads/describe.json")["success"] is True


def test_describe_lists_fields_with_types_and_lengths(start: Callable[..., Api]) -> None:
    fields = {f["rest"]["name"]: f for f in start().get("/rest/v1/leads/describe.json")["result"]}
    segment = fields[SEGMENT_FIELD]
    assert segment["dataType"] == "string" and segment["length"] == STRING_MAX_LENGTH == 255
    assert segment["rest"] == {"name": SEGMENT_FIELD, "readOnly": False}
    assert {"id", "displayName", "soap"} <= set(segment)
    assert fields["id"]["rest"]["readOnly"] is True and "length" not in fields["id"]
    assert {"email", "website", "company", "firstName", "lastName"} <= set(fields)


def test_get_leads_by_filter_type(start: Callable[..., Api]) -> None:
    api = start(records=5)
    body = api.get(
        "/rest/v1/leads.json",
        filterType="id",
        filterValues="4,2,999",
        fields=f"email,{SEGMENT_FIELD}",
    )
    assert body["success"] is True and "nextPageToken" not in body
    assert body["result"] == [
        {"id": 2, "email": "brook.archer@company0.com", SEGMENT_FIELD: None},
        {"id": 4, "email": "dana.archer@company1.com", SEGMENT_FIELD: None},
    ]
    plain = api.get(
        "/rest/v1/leads.json", filterType="email", filterValues="ADA.archer@company0.com"
    )
    assert set(plain["result"][0]) == {
        "id",
        "email",
        "updatedAt",
        "createdAt",
        "firstName",
        "lastName",
    }
    none = api.get("/rest/v1/leads.json", filterType="id", filterValues="404")
    assert none == {"requestId": none["requestId"], "success": True, "result": []}


def test_get_leads_pages_with_next_page_token(start: Callable[..., Api]) -> None:
    api = start(records=7)
    query = {"filterType": "id", "filterValues": ",".join(map(str, range(1, 8))), "batchSize": 3}
    pages, token = [], None
    while True:
        body = api.get(
            "/rest/v1/leads.json", **query, **({"nextPageToken": token} if token else {})
        )
        pages.append([lead["id"] for lead in body["result"]])
        if not body.get("moreResult"):
            break
        token = body["nextPageToken"]
    assert pages == [[1, 2, 3], [4, 5, 6], [7]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"filterValues": "1"}, ("1003", "filterType cannot be blank")),
        (
            {"filterType": "firstName", "filterValues": "Ada"},
            ("1011", "Field 'firstName' not supported"),
        ),
        (
            {"filterType": "id", "filterValues": ",".join(map(str, range(301)))},
            ("1003", "Too many filterValues"),
        ),
        (
            {"filterType": "id", "filterValues": "1", "fields": "nope"},
            ("1006", "Field 'nope' not found"),
        ),
        ({"filterType": "id", "filterValues": "abc"}, ("1001", "Invalid value 'abc'")),
        (
            {"filterType": "company", "filterValues": "Company 0"},
            ("1003", "Too many results match the filter"),
        ),
    ],
)
def test_get_leads_refusals(
    start: Callable[..., Api], query: dict[str, str], expected: tuple[str, str]
) -> None:
    api = start()
    api.emulator.add_records("leads", [{"company": "Company 0"}] * 1001)
    code, message = error_of(api.get("/rest/v1/leads.json", **query))
    assert code == expected[0] and message.startswith(expected[1])


def test_a_get_uri_over_8k_is_refused_with_414(start: Callable[..., Api]) -> None:
    api = start()
    answer = api.raw(
        "GET", "/rest/v1/leads.json", params={"filterType": "email", "filterValues": "x" * 9000}
    )
    assert answer.status_code == 414


def test_sync_updates_in_input_order_and_logs_each_write(start: Callable[..., Api]) -> None:
    api = start(records=3)
    body = api.sync(
        [
            {"id": 2, SEGMENT_FIELD: "A;B"},
            {"id": 404, SEGMENT_FIELD: "X"},
            {"id": 1, SEGMENT_FIELD: "C"},
        ]
    )
    assert body["success"] is True
    assert body["result"] == [
        {"id": 2, "status": "updated"},
        {"status": "skipped", "reasons": [{"code": "1004", "message": "Lead not found"}]},
        {"id": 1, "status": "updated"},
    ]
    assert api.emulator.record("leads", "2")[SEGMENT_FIELD] == "A;B"
    writes = [(w.record_id, w.field, w.value) for w in api.emulator.writes]
    assert writes == [("2", SEGMENT_FIELD, "A;B"), ("1", SEGMENT_FIELD, "C")]
    assert api.emulator.writes[0].call == api.emulator.writes[1].call
    cleared = api.sync([{"id": 2, SEGMENT_FIELD: None}, {"id": 1, SEGMENT_FIELD: ""}])
    assert [r["status"] for r in cleared["result"]] == ["updated", "updated"]
    assert api.emulator.record("leads", "2")[SEGMENT_FIELD] is None
    assert api.emulator.record("leads", "1")[SEGMENT_FIELD] is None
    by_email = api.sync(
        [{"email": "ada.archer@company0.com", "company": "Acme"}], lookupField="email"
    )
    assert by_email["result"] == [{"id": 1, "status": "updated"}]


def test_sync_skips_leads_whose_values_marketo_refuses(start: Callable[..., Api]) -> None:
    api = start(records=4)
    fits = "y" * STRING_MAX_LENGTH
    body = api.sync(
        [
            {"id": 1, SEGMENT_FIELD: "x" * (STRING_MAX_LENGTH + 1)},
            {"id": 2, "nope": "x"},
            {"id": 3, "createdAt": "2020-01-01T00:00:00Z"},
            {"id": "three", SEGMENT_FIELD: "x"},
            {SEGMENT_FIELD: "x"},
            {"id": 4, SEGMENT_FIELD: fits},
        ]
    )
    reasons = [r.get("reasons", [{}])[0].get("code") for r in body["result"]]
    assert reasons == ["1003", "1006", "1003", "1001", "1002", None]
    assert "256 characters" in body["result"][0]["reasons"][0]["message"]
    assert body["result"][1]["reasons"][0]["message"] == "Field 'nope' not found"
    assert api.emulator.record("leads", "4")[SEGMENT_FIELD] == fits
    assert [w.record_id for w in api.emulator.writes] == ["4"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"action": "updateOnly", "lookupField": "id", "input": [{"id": n} for n in range(301)]},
            "1003",
        ),
        ({"action": "createOrUpdate", "input": [{"email": "a@b.example"}]}, "1003"),
        (
            {"action": "updateOnly", "lookupField": "firstName", "input": [{"firstName": "A"}]},
            "1011",
        ),
        ({"action": "updateOnly", "lookupField": "id", "input": []}, "1003"),
        (["not", "an", "object"], "609"),
    ],
)
def test_sync_refuses_a_malformed_request(
    start: Callable[..., Api], body: Any, expected: str
) -> None:
    api = start(records=1)
    assert error_of(api.post("/rest/v1/leads.json", body))[0] == expected
    assert error_of(api.post("/rest/v1/leads.json", "{not json"))[0] == "609"
    assert api.emulator.writes == []


def test_injected_record_failures_skip_only_those_leads(start: Callable[..., Api]) -> None:
    api = start(records=3)
    api.emulator.faults.inject("record_failure", record_ids=["2"], code="1007")
    body = api.sync([{"id": n, SEGMENT_FIELD: "v"} for n in (1, 2, 3)])
    assert [r["status"] for r in body["result"]] == ["updated", "skipped", "updated"]
    assert body["result"][1]["reasons"][0]["code"] == "1007"
    assert api.sync([{"id": 2, SEGMENT_FIELD: "v"}])["result"][0]["status"] == "updated"


def test_the_rate_limit_counts_successful_calls_in_a_sliding_window(
    start: Callable[..., Api],
) -> None:
    api = start(calls_per_twenty_seconds=3, window_seconds=0.4)
    answers = [api.get("/rest/v1/stats/usage.json") for _ in range(4)]
    assert [a["success"] for a in answers] == [True, True, True, False]
    assert error_of(answers[3]) == ("606", "Max rate limit '3' exceeded with in '0.4' secs")
    # Refused calls count against neither the rate nor the quota.
    assert answers[2]["result"][0]["total"] == 3
    time.sleep(0.45)
    assert api.get("/rest/v1/stats/usage.json")["result"][0]["total"] == 4


def test_the_daily_quota(start: Callable[..., Api]) -> None:
    api = start(daily_quota=2)
    answers = [api.get("/rest/v1/stats/usage.json") for _ in range(3)]
    assert error_of(answers[2]) == ("607", "Daily quota reached")
    assert answers[1]["result"][0]["users"] == [{"userId": api.emulator.api_user, "count": 2}]
    api.emulator.reset()
    assert api.get("/rest/v1/stats/usage.json")["result"][0]["total"] == 1


def test_at_most_max_concurrent_calls_are_in_flight(start: Callable[..., Api]) -> None:
    api = start(latency=0.3, max_concurrent=2)
    answers: list[Any] = []

    def call() -> None:
        answers.append(api.get("/rest/v1/stats/usage.json"))

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    refused = [a for a in answers if not a["success"]]
    assert len(answers) == 3 and len(refused) == 1
    assert error_of(refused[0]) == ("615", "Concurrent access limit reached")


@pytest.mark.parametrize(("fault", "code"), [("rate_limit", "606"), ("daily_limit", "607")])
def test_injected_limits(start: Callable[..., Api], fault: str, code: str) -> None:
    api = start()
    api.emulator.faults.inject(fault, count=2)
    answers = [api.get("/rest/v1/stats/usage.json") for _ in range(3)]
    assert [a["success"] for a in answers] == [False, False, True]
    assert error_of(answers[0])[0] == code


def test_new_lead_activities_page_from_a_paging_token(start: Callable[..., Api]) -> None:
    api = start(records=5)
    api.emulator.delete_record("leads", "5")
    [added] = api.emulator.add_records("leads", [{"email": "new@company9.com"}])
    second = api.emulator.record("leads", "2")["createdAt"]  # three minutes before midnight
    third = api.emulator.record("leads", "3")["createdAt"]
    # Activities after the token's moment: lead 2's, created at that very second, is not one.
    since = api.get("/rest/v1/activities/pagingtoken.json", sinceDatetime=second)
    token = since["nextPageToken"]
    first = api.get(
        "/rest/v1/activities.json", nextPageToken=token, activityTypeIds="12", batchSize=2
    )
    assert first["moreResult"] is True
    assert [a["leadId"] for a in first["result"]] == [3, 4]
    activity = first["result"][0]
    assert activity["activityTypeId"] == 12 and activity["primaryAttributeValueId"] == 3
    assert activity["activityDate"] == third
    assert activity["marketoGUID"] == str(activity["id"])
    rest = api.get(
        "/rest/v1/activities.json", nextPageToken=first["nextPageToken"], activityTypeIds="12"
    )
    assert [a["leadId"] for a in rest["result"]] == [int(added)]
    assert rest["moreResult"] is False and rest["nextPageToken"]
    # Nothing more: no result member at all, and the token still comes back.
    empty = api.get(
        "/rest/v1/activities.json", nextPageToken=rest["nextPageToken"], activityTypeIds="12"
    )
    assert "result" not in empty and empty["nextPageToken"]
    other = api.get("/rest/v1/activities.json", nextPageToken=token, activityTypeIds="1,6")
    assert "result" not in other


def changes_since(api: Api, moment: dt.datetime, fields: str, **params: Any) -> Any:
    """Get Lead Changes from a paging token for `moment`."""
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    token = api.get("/rest/v1/activities/pagingtoken.json", sinceDatetime=stamp)
    return api.get(
        "/rest/v1/activities/leadchanges.json",
        nextPageToken=token["nextPageToken"],
        fields=fields,
        **params,
    )


def test_lead_changes_list_new_leads_and_changes_of_the_fields_asked(
    start: Callable[..., Api],
) -> None:
    api = start(records=3)
    old_email = api.emulator.record("leads", "1")["email"]
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    api.emulator.edit_lead("1", {"email": "moved@elsewhere.example", "firstName": "Other"})
    api.sync([{"id": 2, SEGMENT_FIELD: "Tier 1"}, {"id": 3, SEGMENT_FIELD: None}])
    [added] = api.emulator.add_records("leads", [{"email": "new@acme.example"}])

    answer = changes_since(api, before, f"email,{SEGMENT_FIELD}")

    assert answer["success"] is True and answer["moreResult"] is False
    # firstName was not asked for; lead 3's field was empty and stays so (no change).
    changes = answer["result"]
    assert [(a["leadId"], a["activityTypeId"]) for a in changes] == [
        (1, 13),
        (2, 13),
        (int(added), 12),
    ]
    edited, written, created = changes
    assert edited["fields"] == [
        {"id": 48, "name": "email", "newValue": "moved@elsewhere.example", "oldValue": old_email}
    ]
    assert edited["primaryAttributeValue"] == "Email Address"
    assert {"name": "Reason", "value": "Changed by user"} in edited["attributes"]
    assert written["fields"] == [
        {"id": 1001, "name": SEGMENT_FIELD, "newValue": "Tier 1", "oldValue": None}
    ]
    assert {"name": "Source", "value": "Web service API"} in written["attributes"]
    assert created["primaryAttributeValueId"] == int(added)
    # Activity dates are whole seconds; the edit moved updatedAt to its own.
    assert all(len(a["activityDate"]) == len("2024-05-01T00:00:00Z") for a in changes)
    assert api.emulator.record("leads", "1")["updatedAt"] == edited["activityDate"]
    assert api.emulator.record("leads", "1")["email"] == "moved@elsewhere.example"
    # Changes to other fields only: the new lead alone.
    other = changes_since(api, before, "lastName")["result"]
    assert [(a["leadId"], a["activityTypeId"]) for a in other] == [(int(added), 12)]


def test_lead_changes_page_by_batch_size_and_by_lead(start: Callable[..., Api]) -> None:
    api = start(records=4)
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    for lead_id in ("1", "2", "3", "4", "2"):
        api.emulator.edit_lead(lead_id, {"email": f"{time.monotonic_ns()}@x.example"})

    first = changes_since(api, before, "email", batchSize=3)
    assert first["moreResult"] is True and [a["leadId"] for a in first["result"]] == [1, 2, 3]
    rest = api.get(
        "/rest/v1/activities/leadchanges.json",
        nextPageToken=first["nextPageToken"],
        fields="email",
    )
    assert rest["moreResult"] is False and [a["leadId"] for a in rest["result"]] == [4, 2]
    only = changes_since(api, before, "email", leadIds="2,4")
    assert [a["leadId"] for a in only["result"]] == [2, 4, 2]
    # A deleted lead's activities go with it.
    api.emulator.delete_record("leads", "2")
    assert [a["leadId"] for a in changes_since(api, before, "email")["result"]] == [1, 3, 4]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"fields": "email"}, "1003"),
        ({"nextPageToken": "GE======"}, "1003"),
        ({"nextPageToken": "GE======", "fields": "noSuchField"}, "1006"),
        ({"nextPageToken": "!!", "fields": "email"}, "1001"),
        ({"nextPageToken": "GE======", "fields": "email", "leadIds": "x"}, "1003"),
    ],
)
def test_lead_changes_refusals(start: Callable[..., Api], query: dict[str, str], code: str) -> None:
    answer = start().get("/rest/v1/activities/leadchanges.json", **query)
    assert error_of(answer)[0] == code


def test_edit_lead_refuses_what_a_user_cannot_edit(start: Callable[..., Api]) -> None:
    api = start(records=1)
    for fields in ({"noSuchField": "x"}, {"createdAt": "2020-01-01T00:00:00Z"}):
        with pytest.raises(ValueError, match="no editable field"):
            api.emulator.edit_lead("1", fields)
    assert [a["activityTypeId"] for a in api.emulator.activities()] == [12]


@pytest.mark.parametrize(
    ("path", "query", "code"),
    [
        ("/rest/v1/activities/pagingtoken.json", {}, "1003"),
        ("/rest/v1/activities/pagingtoken.json", {"sinceDatetime": "yesterday"}, "1001"),
        ("/rest/v1/activities.json", {"activityTypeIds": "12"}, "1003"),
        ("/rest/v1/activities.json", {"nextPageToken": "GE======"}, "1003"),
        ("/rest/v1/activities.json", {"nextPageToken": "!!", "activityTypeIds": "12"}, "1001"),
        ("/rest/v1/nothing.json", {}, "610"),
    ],
)
def test_activity_and_routing_refusals(
    start: Callable[..., Api], path: str, query: dict[str, str], code: str
) -> None:
    assert error_of(start().get(path, **query))[0] == code


def test_describe_and_stats(start: Callable[..., Api]) -> None:
    api = start(records=1)
    described = api.emulator.describe()
    assert set(described) == {"base_url", "client_id", "client_secret", "fields"}
    assert described["fields"] == {"leads": SEGMENT_FIELD}
    assert described["base_url"].startswith("https://127.0.0.1:")
    api.get("/rest/v1/leads.json", filterType="id", filterValues="1")
    api.sync([{"id": 1, SEGMENT_FIELD: "x"}])
    stats = api.session.get(f"{api.emulator.base_url}/__sandbox/stats").json()
    assert stats["calls"] == {
        "GET /identity/oauth/token": 1,
        "GET /rest/v1/leads.json": 1,
        "POST /rest/v1/leads.json": 1,
    }
    assert stats["writes"] == 1


# ---- Bulk Lead Extract ----------------------------------------------------------------------

EXPORTS = "/bulk/v1/leads/export"


def export_job(api: Api, start: str, end: str, fields: list[str] | None = None) -> str:
    body = {
        "fields": fields or ["id", "email", SEGMENT_FIELD],
        "format": "CSV",
        "filter": {"createdAt": {"startAt": start, "endAt": end}},
    }
    answer = api.post(f"{EXPORTS}/create.json", body)
    assert answer["success"] is True, answer
    [job] = answer["result"]
    assert job["status"] == "Created" and job["format"] == "CSV"
    return str(job["exportId"])


def test_a_lead_export_runs_from_created_to_a_verified_file(start: Callable[..., Api]) -> None:
    api = start()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    old = now - dt.timedelta(days=40)
    api.emulator.add_records("leads", [{"email": "old@acme.example", "createdAt": old}])
    ids = api.emulator.add_records(
        "leads", [{"email": "ada@acme.example", SEGMENT_FIELD: "A, B"}, {"email": None}]
    )
    api.emulator.exports.export_seconds = 0.3
    since = (now - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    until = (now + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    export_id = export_job(api, since, until)

    # Not enqueued, then queued or processing: no file yet, and a plain-text 404 says so.
    early = api.raw("GET", f"{EXPORTS}/{export_id}/file.json")
    assert early.status_code == 404 and early.headers["Content-Type"].startswith("text/plain")
    [queued] = api.post(f"{EXPORTS}/{export_id}/enqueue.json", None)["result"]
    assert queued["status"] == "Queued" and "queuedAt" in queued
    [running] = api.get(f"{EXPORTS}/{export_id}/status.json")["result"]
    assert running["status"] == "Processing" and "fileChecksum" not in running
    time.sleep(0.35)
    [done] = api.get(f"{EXPORTS}/{export_id}/status.json")["result"]

    assert done["status"] == "Completed" and done["numberOfRecords"] == 2
    file = api.raw("GET", f"{EXPORTS}/{export_id}/file.json")
    assert file.status_code == 200
    # The lead created 40 days ago is outside the range; an empty field is written `null`.
    assert (
        file.text
        == f'id,email,{SEGMENT_FIELD}\n{ids[0]},ada@acme.example,"A, B"\n{ids[1]},null,null\n'
    )
    assert done["fileSize"] == len(file.content)
    assert done["fileChecksum"] == "sha256:" + hashlib.sha256(file.content).hexdigest()
    part = api.raw("GET", f"{EXPORTS}/{export_id}/file.json", headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == file.content[:10]
    assert part.headers["Content-Range"] == f"bytes 0-9/{len(file.content)}"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"fields": []}, "1003"),
        ({"fields": ["id", "nope"]}, "1006"),
        ({"format": "XML"}, "1003"),
        ({"filter": {"staticListId": 7}}, "1035"),
        ({"filter": {"createdAt": {"startAt": "2024-01-01T00:00:00Z"}}}, "1003"),
        (
            {"filter": {"createdAt": {"startAt": "2024-01-01T00:00:00Z", "endAt": "yesterday"}}},
            "1001",
        ),
        # More than 31 days.
        (
            {
                "filter": {
                    "createdAt": {
                        "startAt": "2024-01-01T00:00:00Z",
                        "endAt": "2024-02-01T00:00:01Z",
                    }
                }
            },
            "1003",
        ),
    ],
)
def test_lead_export_refusals(start: Callable[..., Api], change: dict[str, Any], code: str) -> None:
    body = {
        "fields": ["id"],
        "filter": {
            "createdAt": {"startAt": "2024-01-01T00:00:00Z", "endAt": "2024-02-01T00:00:00Z"}
        },
    } | change
    assert error_of(start().post(f"{EXPORTS}/create.json", body))[0] == code


def test_the_export_queue_and_daily_allocation_are_limited(start: Callable[..., Api]) -> None:
    api = start()
    api.emulator.add_records("leads", [{"email": "ada@acme.example"}])
    api.emulator.exports.export_seconds = 60.0
    window = ("2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z")
    for _ in range(10):
        assert api.post(f"{EXPORTS}/{export_job(api, *window)}/enqueue.json", None)["success"]
    eleventh = export_job(api, *window)
    assert error_of(api.post(f"{EXPORTS}/{eleventh}/enqueue.json", None)) == (
        "1029",
        "Too many jobs in queue",
    )
    # Cancelling frees a place in the queue.
    first = next(iter(api.emulator.exports.jobs))
    [cancelled] = api.post(f"{EXPORTS}/{first}/cancel.json", None)["result"]
    assert cancelled["status"] == "Cancelled"
    assert api.post(f"{EXPORTS}/{eleventh}/enqueue.json", None)["success"] is True

    spent = start()
    spent.emulator.exports.daily_allocation = 0
    job = export_job(spent, *window)
    assert error_of(spent.post(f"{EXPORTS}/{job}/enqueue.json", None)) == (
        "1029",
        "Export daily quota exceeded",
    )
    assert error_of(spent.get(f"{EXPORTS}/unknown/status.json"))[0] == "1003"


def test_an_injected_export_failure_ends_the_job_failed(start: Callable[..., Api]) -> None:
    api = start()
    api.emulator.faults.inject("export_failed")
    job = export_job(api, "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z")
    api.post(f"{EXPORTS}/{job}/enqueue.json", None)
    [failed] = api.get(f"{EXPORTS}/{job}/status.json")["result"]
    assert failed["status"] == "Failed" and failed["errorMsg"]
    assert api.raw("GET", f"{EXPORTS}/{job}/file.json").status_code == 404
