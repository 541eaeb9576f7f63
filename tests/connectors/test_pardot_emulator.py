"""The Pardot emulator itself: v5 shapes, limits, error codes, imports and faults over HTTPS."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

import connectors.sandbox.pardot as sandbox
from connectors.sandbox.pardot import (
    SEGMENT_FIELD,
    TEXT_MAX_LENGTH,
    TOKEN_PATH,
    PardotEmulator,
)
from connectors.sandbox.pardot_imports import ERROR_COLUMN, stamp
from connectors.sandbox.salesforce_store import make_id
from connectors.sandbox.server import EmulatorServer, Request
from connectors.sandbox.tls import SandboxCertificates


class Api:
    """A bare HTTPS client of one emulator with its describe() token and business unit."""

    def __init__(self, emulator: PardotEmulator, ca_bundle: str) -> None:
        self.emulator = emulator
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = ca_bundle
        self.token = emulator.access_token
        self.unit = emulator.business_unit_id

    def headers(self, **extra: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.token}",
            "Pardot-Business-Unit-Id": self.unit,
        } | extra

    def call(self, method: str, path: str, **options: Any) -> requests.Response:
        headers = self.headers(**options.pop("headers", {}))
        url = path if "://" in path else f"{self.emulator.base_url}/api/v5/{path}"
        return self.session.request(method, url, headers=headers, **options)

    def query(self, **params: Any) -> requests.Response:
        return self.call("GET", "objects/prospects", params=params)

    def patch(self, prospect_id: str, body: Any, **params: str) -> requests.Response:
        return self.call("PATCH", f"objects/prospects/{prospect_id}", json=body, params=params)

    def create_import(
        self, spec: dict[str, Any], rows: list[list[str]] | None
    ) -> requests.Response:
        if rows is None:  # an import without a file yet is created with a JSON body
            return self.call("POST", "imports", json=spec)
        files = {"file": ("batch.csv", to_csv(rows), "text/csv")}
        return self.call("POST", "imports", data={"input": json.dumps(spec)}, files=files)

    def import_status(self, import_id: int) -> dict[str, Any]:
        fields = "status,createdCount,updatedCount,errorCount,errorsRef"
        answer: dict[str, Any] = self.call(
            "GET", f"imports/{import_id}", params={"fields": fields}
        ).json()
        return answer

    def refresh(self, **overrides: str) -> requests.Response:
        form = {
            "grant_type": "refresh_token",
            "client_id": self.emulator.client_id,
            "client_secret": self.emulator.client_secret,
            "refresh_token": self.emulator.refresh_token,
        } | overrides
        return self.session.post(f"{self.emulator.base_url}{TOKEN_PATH}", data=form)


def to_csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode()


def upsert(fields: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
    return (
        {"operation": "Upsert", "object": "Prospect", "status": "Ready"}
        | ({"fields": fields} if fields else {})
        | options
    )


def failure(answer: requests.Response) -> tuple[int, int]:
    return answer.status_code, answer.json()["code"]


@pytest.fixture
def start(sandbox_certificates: SandboxCertificates) -> Iterator[Callable[..., Api]]:
    """Serve an emulator built with the given options; a client of it."""
    servers: list[EmulatorServer] = []

    def make(**options: Any) -> Api:
        emulator = PardotEmulator(**options)
        server = EmulatorServer(emulator, sandbox_certificates)
        server.start()
        servers.append(server)
        return Api(emulator, str(sandbox_certificates.ca_bundle))

    yield make
    for server in servers:
        server.stop()


# ---- seed data and helpers ----------------------------------------------------------------


def test_seeding_is_deterministic_and_linked_to_the_salesforce_sandbox() -> None:
    first, second = PardotEmulator(records=30), PardotEmulator(records=30)
    prospect = first.record("prospects", "1001")
    assert prospect == second.record("prospects", "1001")
    assert prospect["email"] == "ada.archer@company1.com"
    assert prospect["company"] == "Company 1"
    assert prospect["salesforceAccountId"] == make_id("001", 1)
    assert prospect[SEGMENT_FIELD] is None and prospect["isDeleted"] is False
    assert first.record("prospects", "1002")["website"] == "https://www.company1.com"
    assert first.record("prospects", "1002")["salesforceAccountId"] is None
    assert first.record("prospects", "1010")["email"].endswith("@gmail.com")
    assert PardotEmulator().add_records("prospects", [{}]) == ["1001"]
    with pytest.raises(KeyError):
        first.add_records("prospects", [{"nope": 1}])
    with pytest.raises(KeyError):
        first.record("leads", "1001")


def test_describe_and_route_names() -> None:
    emulator = PardotEmulator()
    described = emulator.describe()
    assert set(described) == {"base_url", "access_token", "business_unit_id", "oauth", "fields"}
    assert described["fields"] == {"prospects": SEGMENT_FIELD}
    assert (
        described["business_unit_id"].startswith("0Uv") and len(described["business_unit_id"]) == 18
    )
    assert described["oauth"]["token_url"].endswith(TOKEN_PATH)
    request = Request("GET", "/api/v5/imports/12/errors", {}, {}, b"")
    assert emulator.route_name(request) == "/api/v5/imports/{id}/errors"


# ---- authentication -----------------------------------------------------------------------


def test_tokens_business_unit_and_their_error_codes(start: Callable[..., Api]) -> None:
    api = start(records=2)
    assert api.query(fields="id").status_code == 200
    api.token = "00Dnope"
    assert failure(api.query(fields="id")) == (401, 184)
    api.token = api.emulator.access_token
    api.unit = ""
    assert failure(api.query(fields="id")) == (400, 181)
    api.unit = "0Uv5g000000OTHERAA"
    assert failure(api.query(fields="id")) == (400, 201)


def test_the_oauth_refresh_grant_and_its_errors(start: Callable[..., Api]) -> None:
    api = start(records=1)
    answer = api.refresh().json()
    assert answer["token_type"] == "Bearer" and "pardot_api" in answer["scope"]
    api.token = answer["access_token"]
    assert api.query(fields="id").status_code == 200
    errors = [
        api.refresh(grant_type="password").json()["error"],
        api.refresh(client_id="other").json()["error"],
        api.refresh(client_secret="wrong").json()["error"],
        api.refresh(refresh_token="revoked").json()["error"],
    ]
    assert errors == [
        "unsupported_grant_type",
        "invalid_client_id",
        "invalid_client",
        "invalid_grant",
    ]


def test_the_token_endpoint_takes_client_credentials_in_a_basic_header(
    start: Callable[..., Api],
) -> None:
    api = start(records=1)
    url = f"{api.emulator.base_url}{TOKEN_PATH}"
    form = {"grant_type": "refresh_token", "refresh_token": api.emulator.refresh_token}
    # requests form-urlencodes neither part; ids and secrets here need no escaping.
    answer = api.session.post(
        url, data=form, auth=(api.emulator.client_id, api.emulator.client_secret)
    )
    assert answer.status_code == 200, answer.text
    api.token = answer.json()["access_token"]
    assert api.query(fields="id").status_code == 200
    wrong = api.session.post(url, data=form, auth=(api.emulator.client_id, "wrong"))
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_client")
    garbled = api.session.post(url, data=form, headers={"Authorization": "Basic %%%"})
    assert (garbled.status_code, garbled.json()["error"]) == (400, "invalid_client")


def test_the_token_endpoint_takes_parameters_in_the_query_string(
    start: Callable[..., Api],
) -> None:
    api = start(records=1)
    url = f"{api.emulator.base_url}{TOKEN_PATH}"
    parameters = {
        "grant_type": "refresh_token",
        "client_id": api.emulator.client_id,
        "client_secret": api.emulator.client_secret,
        "refresh_token": api.emulator.refresh_token,
    }
    answer = api.session.post(url, params=parameters)
    assert answer.status_code == 200, answer.text
    api.token = answer.json()["access_token"]
    assert api.query(fields="id").status_code == 200
    # Parameters in the body win over the same ones in the query string.
    revoked = api.session.post(url, params=parameters, data={"refresh_token": "revoked"})
    assert revoked.json()["error"] == "invalid_grant"


def test_expire_token_expires_every_token_until_a_refresh_or_reset(
    start: Callable[..., Api],
) -> None:
    api = start(records=1)
    api.emulator.faults.inject("expire_token")
    assert failure(api.query(fields="id")) == (401, 184)
    api.token = api.refresh().json()["access_token"]
    assert api.query(fields="id").status_code == 200
    api.emulator.reset()
    api.token = api.emulator.access_token
    assert api.query(fields="id").status_code == 200


def test_a_session_times_out_after_its_last_use(
    start: Callable[..., Api], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox, "SESSION_SECONDS", 0.3)
    api = start(records=1)
    api.token = api.refresh().json()["access_token"]
    for _ in range(3):
        time.sleep(0.15)
        assert api.query(fields="id").status_code == 200  # each use extends the session
    time.sleep(0.4)
    assert failure(api.query(fields="id")) == (401, 184)


# ---- limits -------------------------------------------------------------------------------


def test_faults_answer_with_the_concurrency_and_daily_codes(start: Callable[..., Api]) -> None:
    api = start(records=1)
    api.emulator.faults.inject("rate_limit")
    api.emulator.faults.inject("daily_limit")
    assert failure(api.query(fields="id")) == (429, 66)
    assert failure(api.query(fields="id")) == (429, 122)
    assert api.query(fields="id").status_code == 200


def test_the_daily_limit_is_enforced_and_usage_returned_on_request(
    start: Callable[..., Api],
) -> None:
    api = start(records=1, daily_limit=2)
    plain = api.query(fields="id")
    asked = api.call(
        "GET", "objects/prospects", params={"fields": "id"}, headers={"X-Return-Api-Usage": "1"}
    )
    assert "x-api-usage" not in plain.headers and asked.headers["x-api-usage"] == "2/2"
    assert failure(api.query(fields="id")) == (429, 122)
    api.emulator.reset()
    assert api.query(fields="id").status_code == 200


def test_at_most_max_concurrent_calls_are_in_flight(start: Callable[..., Api]) -> None:
    api = start(records=1, max_concurrent=3, latency=0.5)
    statuses: list[int] = []
    together = threading.Barrier(5)

    def call() -> None:
        together.wait()
        statuses.append(api.query(fields="id").status_code)

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 200, 200, 429, 429]
    assert api.query(fields="id").status_code == 200  # the slots are free again


# ---- querying and reading prospects -------------------------------------------------------


def test_query_pages_with_a_next_page_url_that_carries_only_the_token(
    start: Callable[..., Api],
) -> None:
    api = start(records=1500)
    first = api.query(fields=f"id,email,{SEGMENT_FIELD}", limit=1000, orderBy="id ASC").json()
    assert len(first["values"]) == 1000
    assert set(first["values"][0]) == {"id", "email", SEGMENT_FIELD}
    assert first["nextPageUrl"].endswith(f"?nextPageToken={first['nextPageToken']}")
    rest = api.call("GET", first["nextPageUrl"]).json()
    assert (
        len(rest["values"]) == 500 and rest["nextPageUrl"] is None and rest["nextPageToken"] is None
    )
    assert rest["values"][0]["id"] == first["values"][-1]["id"] + 1
    assert set(rest["values"][0]) == {"id", "email", SEGMENT_FIELD}  # the token keeps the fields
    assert failure(api.call("GET", first["nextPageUrl"])) == (400, 211)  # used once


def test_query_refuses_what_v5_refuses(start: Callable[..., Api]) -> None:
    api = start(records=300)
    assert api.query(fields="id").json()["nextPageToken"]  # 200 a page by default
    token = api.query(fields="id").json()["nextPageToken"]
    assert failure(api.query(nextPageToken=token, limit=5)) == (400, 5)
    assert failure(api.query()) == (400, 13)
    assert failure(api.query(fields="id,Nope__c")) == (400, 180)
    assert failure(api.query(fields="id", limit=1001)) == (400, 23)
    assert failure(api.query(fields="id", orderBy="email")) == (400, 19)
    assert failure(api.query(fields="id", idAfter=3)) == (400, 5)


def test_query_filters_on_ids_orders_and_leaves_deleted_prospects_out(
    start: Callable[..., Api],
) -> None:
    api = start(records=10)
    api.emulator.delete_record("prospects", "1005")

    def ids(**params: Any) -> list[int]:
        return [item["id"] for item in api.query(fields="id", **params).json()["values"]]

    assert ids(idGreaterThan=1002, idLessThan=1008) == [1003, 1004, 1006, 1007]
    assert ids(idGreaterThanOrEqualTo=1009, orderBy="id DESC") == [1010, 1009]
    assert ids(idLessThanOrEqualTo=1006, deleted="true") == [1005]
    assert len(ids(deleted="all")) == 10


def stamped(api: Api, *seconds: int) -> list[str]:
    """New prospects updated at these seconds past 2026-01-01T00:00:00 UTC."""
    rows = [{"updatedAt": f"2026-01-01T00:00:{second:02d}+00:00"} for second in seconds]
    return api.emulator.add_records("prospects", rows)


def test_query_filters_on_updated_at_after_strictly_or_from_a_moment(
    start: Callable[..., Api],
) -> None:
    api = start()
    stamped(api, 1, 2, 3, 4)  # prospects 1001 to 1004

    def ids(**params: Any) -> list[int]:
        return [item["id"] for item in api.query(fields="id", **params).json()["values"]]

    assert ids(updatedAtAfter="2026-01-01T00:00:02+00:00") == [1003, 1004]
    assert ids(updatedAtAfterOrEqualTo="2026-01-01T00:00:02+00:00") == [1002, 1003, 1004]
    # Another offset is the same moment; a fraction falls between two stamped seconds.
    assert ids(updatedAtAfter="2026-01-01T01:00:02+01:00") == [1003, 1004]
    assert ids(updatedAtAfter="2025-12-31T19:00:01.5-05:00") == [1002, 1003, 1004]
    # Without an offset: the business unit's time zone, UTC in the sandbox.
    assert ids(updatedAtAfter="2026-01-01T00:00:01Z", updatedAtBefore="2026-01-01T00:00:04") == [
        1002,
        1003,
    ]
    assert ids(updatedAtBeforeOrEqualTo="2026-01-01T00:00:02+00:00", orderBy="id DESC") == [
        1002,
        1001,
    ]
    assert ids(createdAtAfter="2026-01-01T00:00:00+00:00") == [1001, 1002, 1003, 1004]


def test_a_filtered_query_keeps_its_filter_across_pages(start: Callable[..., Api]) -> None:
    api = start()
    stamped(api, 5, 1, 6, 7)  # 1002 is older than the rest
    first = api.query(fields="id", limit=2, updatedAtAfter="2026-01-01T00:00:04+00:00").json()
    rest = api.call("GET", first["nextPageUrl"]).json()
    assert [item["id"] for item in first["values"] + rest["values"]] == [1001, 1003, 1004]


def test_a_malformed_time_filter_is_refused_with_the_invalid_timestamp_code(
    start: Callable[..., Api],
) -> None:
    api = start()
    stamped(api, 1)
    for value in ("yesterday", "2026-01-01", "2026-13-01T00:00:00Z", "2026-01-01T00:00:00+0100"):
        answer = api.query(fields="id", updatedAtAfter=value)
        assert answer.status_code == 400
        assert answer.json() == {"code": 7, "message": f"Invalid timestamp: updatedAtAfter={value}"}
    # An offset's `+` sent bare arrives as a space: the moment is not one.
    bare = "objects/prospects?fields=id&updatedAtAfter=2026-01-01T00:00:00+00:00"
    assert failure(api.call("GET", bare)) == (400, 7)
    assert failure(api.query(fields="id", updatedAtSince="2026-01-01T00:00:00Z")) == (400, 5)


def test_updated_at_moves_on_creation_patch_import_and_edit_to_the_second(
    start: Callable[..., Api],
) -> None:
    api = start(records=4, import_polls=0)
    # Seeded prospects predate the sandbox, on fixed moments.
    assert api.emulator.record("prospects", "1001")["updatedAt"] == "2024-01-01T00:16:41+00:00"
    since = stamp()
    [added] = api.emulator.add_records("prospects", [{"email": "new@example.com"}])
    assert api.patch("1001", {SEGMENT_FIELD: "A"}).status_code == 204
    created = api.create_import(upsert(), [["matchId", SEGMENT_FIELD], ["1002", "B"]]).json()
    assert api.import_status(created["id"])["status"] == "Complete"
    api.emulator.edit_prospect("1003", {"email": "moved@elsewhere.example"})

    for prospect_id in (added, "1001", "1002", "1003"):
        updated = api.emulator.record("prospects", prospect_id)["updatedAt"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", updated)  # to the second
        assert dt.datetime.fromisoformat(updated) >= dt.datetime.fromisoformat(since)
    changed = api.query(fields="id,email", updatedAtAfterOrEqualTo=since).json()["values"]
    assert [item["id"] for item in changed] == [1001, 1002, 1003, int(added)]
    assert changed[2]["email"] == "moved@elsewhere.example"
    with pytest.raises(KeyError, match="updatedAt"):
        api.emulator.edit_prospect("1004", {"updatedAt": since})
    with pytest.raises(KeyError, match="Nope__c"):
        api.emulator.edit_prospect("1004", {"Nope__c": "x"})


def test_the_page_token_sequence_stops_at_its_record_ceiling(start: Callable[..., Api]) -> None:
    api = start(records=30, page_token_record_limit=20)
    first = api.query(fields="id", limit=10).json()
    second = api.call("GET", first["nextPageUrl"])
    assert second.json()["nextPageUrl"] is None
    assert second.headers["Pardot-Warning"].startswith("203;")


def test_a_page_token_expires(start: Callable[..., Api], monkeypatch: pytest.MonkeyPatch) -> None:
    api = start(records=5)
    following = api.query(fields="id", limit=2).json()["nextPageUrl"]
    monkeypatch.setattr(sandbox, "PAGE_TOKEN_SECONDS", 0.0)
    assert failure(api.call("GET", following)) == (400, 210)


def test_read_one_prospect_and_a_deleted_one(start: Callable[..., Api]) -> None:
    api = start(records=2)
    answer = api.call("GET", "objects/prospects/1001", params={"fields": f"email,{SEGMENT_FIELD}"})
    assert answer.json() == {
        "id": 1001,
        "email": "ada.archer@company1.com",
        SEGMENT_FIELD: None,
    }
    api.emulator.delete_record("prospects", "1001")
    assert failure(api.call("GET", "objects/prospects/1001", params={"fields": "id"})) == (404, 192)
    assert failure(api.call("GET", "objects/prospects/99", params={"fields": "id"})) == (404, 192)


# ---- updating prospects -------------------------------------------------------------------


def test_patch_sets_the_given_fields_and_answers_the_fields_asked_for(
    start: Callable[..., Api],
) -> None:
    api = start(records=1)
    answer = api.patch("1001", {SEGMENT_FIELD: "A;B"}, fields=f"id,{SEGMENT_FIELD},email")
    assert answer.json() == {
        "id": 1001,
        SEGMENT_FIELD: "A;B",
        "email": "ada.archer@company1.com",
    }
    assert api.patch("1001", {SEGMENT_FIELD: ""}).status_code == 204
    assert api.emulator.record("prospects", "1001")[SEGMENT_FIELD] is None
    assert [(w.record_id, w.field, w.value) for w in api.emulator.writes] == [
        ("1001", SEGMENT_FIELD, "A;B"),
        ("1001", SEGMENT_FIELD, None),
    ]


def test_patch_refusals_and_their_codes(start: Callable[..., Api]) -> None:
    api = start(records=2)
    api.emulator.delete_record("prospects", "1002")
    assert failure(api.patch("1001", {"Nope__c": "x"})) == (400, 180)
    assert failure(api.patch("1001", {"salesforceAccountId": "001x"})) == (400, 180)
    assert failure(api.patch("1001", {SEGMENT_FIELD: "x" * (TEXT_MAX_LENGTH + 1)})) == (400, 154)
    assert failure(api.patch("1001", {SEGMENT_FIELD: 5})) == (400, 154)
    assert failure(api.patch("1001", [])) == (400, 150)
    assert failure(api.patch("1002", {SEGMENT_FIELD: "x"})) == (404, 219)
    assert failure(api.patch("77", {SEGMENT_FIELD: "x"})) == (404, 192)
    assert failure(api.call("DELETE", "objects/prospects/1001")) == (405, 60)
    assert failure(api.call("GET", "objects/opportunities", params={"fields": "id"})) == (404, 198)
    assert api.emulator.writes == []


def test_a_record_failure_waits_for_each_record_s_next_write(start: Callable[..., Api]) -> None:
    api = start(records=3)
    api.emulator.faults.inject("record_failure", record_ids=["1002", "1003"], code=85)
    assert api.patch("1001", {SEGMENT_FIELD: "a"}).status_code == 204
    assert failure(api.patch("1002", {SEGMENT_FIELD: "b"})) == (400, 85)
    assert api.patch("1002", {SEGMENT_FIELD: "b"}).status_code == 204
    assert failure(api.patch("1003", {SEGMENT_FIELD: "c"})) == (400, 85)


def test_custom_fields_are_queried_with_their_field_ids(start: Callable[..., Api]) -> None:
    api = start()
    api.emulator.add_custom_field("Interests", "Checkbox", multiple_responses=True)
    fields = "id,name,fieldId,type,isRecordMultipleResponses"
    values = api.call("GET", "objects/custom-fields", params={"fields": fields}).json()["values"]
    assert [(v["fieldId"], v["type"], v["isRecordMultipleResponses"]) for v in values] == [
        ("Segment_Names", "Text", False),
        ("Interests", "Checkbox", True),
    ]
    assert failure(api.call("GET", "objects/custom-fields", params={"fields": "id,length"})) == (
        400,
        180,
    )


# ---- the Import API -----------------------------------------------------------------------


def test_an_import_runs_waiting_processing_complete_and_lists_its_errors(
    start: Callable[..., Api],
) -> None:
    api = start(records=4, import_polls=1)
    api.emulator.delete_record("prospects", "1003")
    rows = [
        ["matchId", SEGMENT_FIELD],
        ["1001", "A"],
        ["1003", "C"],
        ["9999", "D"],
        ["1004", "x" * 256],
    ]
    created = api.create_import(upsert(), rows)
    assert created.status_code == 201 and created.json()["status"] == "Waiting"
    import_id = created.json()["id"]

    assert api.import_status(import_id)["status"] == "Processing"
    assert api.emulator.writes == []  # nothing is applied before the import completes
    done = api.import_status(import_id)
    errors = api.call("GET", f"imports/{import_id}/errors")

    assert (done["status"], done["updatedCount"], done["errorCount"]) == ("Complete", 1, 3)
    assert done["errorsRef"].endswith(f"/api/v5/imports/{import_id}/errors")
    listed = list(csv.DictReader(io.StringIO(errors.text)))
    assert [(row["matchId"], bool(row[ERROR_COLUMN])) for row in listed] == [
        ("1003", True),
        ("9999", True),
        ("1004", True),
    ]
    assert "recycle bin" in listed[0][ERROR_COLUMN]
    assert api.emulator.record("prospects", "1001")[SEGMENT_FIELD] == "A"


def test_blank_cells_overwrite_only_fields_whose_null_overwrite_is_set(
    start: Callable[..., Api],
) -> None:
    api = start(records=2, import_polls=0)
    for prospect_id in ("1001", "1002"):
        api.patch(prospect_id, {SEGMENT_FIELD: "Old", "jobTitle": "CTO"})
    rows = [["matchId", SEGMENT_FIELD, "jobTitle"], ["1001", "", ""], ["1002", "New", ""]]

    created = api.create_import(upsert({SEGMENT_FIELD: {"nullOverwrite": True}}), rows).json()
    api.import_status(created["id"])

    first, second = (
        api.emulator.record("prospects", "1001"),
        api.emulator.record("prospects", "1002"),
    )
    assert (first[SEGMENT_FIELD], first["jobTitle"]) == (None, "CTO")  # jobTitle: Pardot's default
    assert (second[SEGMENT_FIELD], second["jobTitle"]) == ("New", "CTO")
    assert second["email"] == "brook.archer@company1.com"  # not in the CSV: untouched


def test_overwrite_false_keeps_a_value_that_is_there(start: Callable[..., Api]) -> None:
    api = start(records=2, import_polls=0)
    api.patch("1001", {"jobTitle": "CTO"})
    rows = [["matchId", "jobTitle"], ["1001", "CEO"], ["1002", "CFO"]]
    created = api.create_import(upsert({"jobTitle": {"overwrite": False}}), rows).json()
    api.import_status(created["id"])
    assert api.emulator.record("prospects", "1001")["jobTitle"] == "CTO"
    assert api.emulator.record("prospects", "1002")["jobTitle"] == "CFO"


def test_an_open_import_takes_batches_until_it_is_submitted(start: Callable[..., Api]) -> None:
    api = start(records=3, import_polls=0)
    header = ["matchId", SEGMENT_FIELD]
    import_id = api.create_import(upsert(status="Open"), [header, ["1001", "a"]]).json()["id"]
    batch = {"file": ("b.csv", to_csv([header, ["1002", "b"]]), "text/csv")}
    assert api.call("POST", f"imports/{import_id}/batches", files=batch).status_code == 201
    other = {"file": ("c.csv", to_csv([["matchId", "jobTitle"], ["1003", "c"]]), "text/csv")}
    assert failure(api.call("POST", f"imports/{import_id}/batches", files=other)) == (400, 159)

    submitted = api.call("PATCH", f"imports/{import_id}", json={"status": "Ready"})
    again = api.call("PATCH", f"imports/{import_id}", json={"status": "Ready"})
    late = api.call("POST", f"imports/{import_id}/batches", files=batch)

    assert submitted.json()["status"] == "Waiting"
    assert (failure(again), failure(late)) == ((400, 155), (400, 161))
    assert api.import_status(import_id)["updatedCount"] == 2


def test_import_refusals_and_their_codes(start: Callable[..., Api]) -> None:
    api = start(records=1)
    good = [["matchId", SEGMENT_FIELD], ["1001", "a"]]
    empty = api.create_import(upsert(status="Open"), None).json()["id"]
    assert failure(api.call("PATCH", f"imports/{empty}", json={"status": "Ready"})) == (400, 156)
    assert failure(api.call("PATCH", f"imports/{empty}", json={"status": "Done"})) == (400, 154)
    assert failure(api.create_import(upsert(), None)) == (400, 162)
    assert failure(api.create_import(upsert(operation="Delete"), good)) == (400, 154)
    assert failure(api.create_import(upsert(), [["matchId", SEGMENT_FIELD]])) == (400, 159)
    assert failure(api.create_import(upsert(), [["matchId", "Nope__c"], ["1001", "a"]])) == (
        400,
        130,
    )
    assert failure(api.create_import(upsert(), [["matchId", "id"], ["1001", "2"]])) == (400, 130)
    assert failure(api.create_import(upsert({"jobTitle": {}}), good)) == (400, 227)
    both = [["matchId", "matchEmail", SEGMENT_FIELD], ["1001", "a@b.example", "a"]]
    assert failure(api.create_import(upsert(), both)) == (400, 159)
    assert failure(api.create_import(upsert(), [[SEGMENT_FIELD], ["a"]])) == (400, 13)
    assert failure(api.call("GET", f"imports/{empty}/errors")) == (400, 161)
    assert failure(api.call("GET", "imports/999", params={"fields": "status"})) == (404, 109)


def test_imports_can_create_restore_and_match_by_email(start: Callable[..., Api]) -> None:
    api = start(records=2, import_polls=0)
    api.emulator.delete_record("prospects", "1002")
    rows = [
        ["matchEmail", "email", "campaignId", SEGMENT_FIELD],
        ["new@x.example", "new@x.example", "1", "N"],
    ]
    created = api.create_import(upsert(createOnNoMatch=True), rows).json()
    restored = api.create_import(
        upsert(restoreDeleted=True), [["matchId", SEGMENT_FIELD], ["1002", "R"]]
    ).json()

    assert api.import_status(created["id"])["createdCount"] == 1
    assert api.import_status(restored["id"])["updatedCount"] == 1
    assert api.emulator.record("prospects", "1003")[SEGMENT_FIELD] == "N"
    assert api.emulator.record("prospects", "1002")["isDeleted"] is False


def test_the_daily_import_batches_and_batches_per_import_are_limited(
    start: Callable[..., Api],
) -> None:
    api = start(records=1, import_batches_per_day=11)
    rows = [["matchId", SEGMENT_FIELD], ["1001", "a"]]
    import_id = api.create_import(upsert(status="Open"), rows).json()["id"]
    batch = {"file": ("b.csv", to_csv(rows), "text/csv")}
    answers = [api.call("POST", f"imports/{import_id}/batches", files=batch) for _ in range(10)]
    assert [a.status_code for a in answers[:9]] == [201] * 9
    assert failure(answers[9]) == (400, 160)
    assert api.create_import(upsert(), rows).status_code == 201
    assert failure(api.create_import(upsert(), rows)) == (400, 164)


def test_a_record_failure_fails_that_row_of_an_import(start: Callable[..., Api]) -> None:
    api = start(records=2, import_polls=0)
    api.emulator.faults.inject("record_failure", record_ids=["1002"])
    rows = [["matchId", SEGMENT_FIELD], ["1001", "a"], ["1002", "b"]]
    done = api.import_status(api.create_import(upsert(), rows).json()["id"])
    assert (done["updatedCount"], done["errorCount"]) == (1, 1)
    assert api.emulator.record("prospects", "1002")[SEGMENT_FIELD] is None
