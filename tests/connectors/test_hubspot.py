"""The HubSpot adapter: documented answers parsed (responses), then the emulator over HTTPS."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import hubspot.crm.objects.api_client  # type: ignore[import-untyped]
import pytest
import requests
import responses
from responses import matchers

from connectors.base import QuotaUsage, Update
from connectors.errors import DailyQuotaError, FatalError, RetryableError
from connectors.hubspot import STRING_MAX_LENGTH, HubSpotConfig, HubSpotConnector
from connectors.sandbox.hubspot import TEXT_MAX_LENGTH, HubSpotEmulator
from connectors.sandbox.server import EmulatorServer
from connectors.sandbox.tls import SandboxCertificates
from tests.connectors.harness_hubspot import hubspot_connector

BASE = "https://hubspot.test"
TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
SECRET = "client-secret-abcdef"
REFRESH = "na1-refresh-0123456789"
CONTACTS = f"{BASE}/crm/v3/objects/contacts"
BATCH = f"{CONTACTS}/batch/update"
OAUTH = f"{BASE}/oauth/v1/token"
FIELD = "segment_names"


def private_app() -> HubSpotConnector:
    return HubSpotConnector(HubSpotConfig(access_token=TOKEN, base_url=BASE))


def oauth_app() -> HubSpotConnector:
    config = HubSpotConfig(
        client_id="client-id", client_secret=SECRET, refresh_token=REFRESH, base_url=BASE
    )
    return HubSpotConnector(config)


def contact(record_id: str, **properties: str | None) -> dict[str, Any]:
    return {
        "id": record_id,
        "properties": {"hs_object_id": record_id, **properties},
        "createdAt": "2024-01-01T00:00:00.000Z",
        "updatedAt": "2024-01-02T00:00:00.000Z",
        "archived": False,
    }


def error_body(message: str, category: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "error", "message": message, "correlationId": "c0ffee"}
    if category:
        body["category"] = category
    return body | extra


def token_answer(token: str = "CNaccess1", expires_in: int = 1800) -> dict[str, Any]:
    return {
        "token_type": "bearer",
        "refresh_token": REFRESH,
        "access_token": token,
        "expires_in": expires_in,
    }


def sent_json(call: Any) -> Any:
    return json.loads(call.request.body)


# ---- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"access_token": TOKEN, "client_id": "c", "client_secret": SECRET, "refresh_token": "r"},
        {"client_id": "c", "client_secret": SECRET},
    ],
)
def test_config_needs_exactly_one_way_to_authenticate(options: dict[str, str]) -> None:
    with pytest.raises(FatalError, match="access_token .* or client_id"):
        HubSpotConfig(**options)


def test_config_and_connector_reprs_hide_secrets() -> None:
    config = HubSpotConfig(client_id="c", client_secret=SECRET, refresh_token=REFRESH)
    shown = repr(config) + repr(HubSpotConnector(config)) + repr(private_app())
    assert SECRET not in shown and REFRESH not in shown and TOKEN not in shown
    assert "https://api.hubapi.com" in repr(config)


# ---- reading ------------------------------------------------------------------------------


@responses.activate
def test_reads_pages_by_the_after_cursor_and_maps_contacts() -> None:
    primary = {"id": "77", "type": "contact_to_company"}
    unlabeled = {"id": "88", "type": "contact_to_company_unlabeled"}
    first = contact("1", email="ada@acme.example", website="acme.example", segment_names="A;B")
    first["associations"] = {"companies": {"results": [unlabeled, primary]}}
    second = contact("2", email="bo@beta.example", segment_names="")
    responses.get(
        CONTACTS,
        json={
            "results": [first],
            "paging": {"next": {"after": "2", "link": f"{CONTACTS}?after=2"}},
        },
        match=[matchers.query_param_matcher({"limit": "100"}, strict_match=False)],
    )
    responses.get(CONTACTS, json={"results": [second]})
    connector = private_app()

    records = list(connector.read_records("Contacts", FIELD))

    assert [r.id for r in records] == ["1", "2"]
    assert records[0].email == "ada@acme.example"
    assert records[0].website == "acme.example"
    assert records[0].value == "A;B"
    assert records[0].linked_account_id == "77"  # the primary company, not the first listed
    assert records[1].value is None  # HubSpot's "" for a cleared value
    assert records[1].linked_account_id is None
    first_query = parse_qs(urlsplit(responses.calls[0].request.url or "").query)
    assert first_query["properties"] == ["email", FIELD, "website"]
    assert first_query["associations"] == ["companies"]
    assert "after" not in first_query
    second_query = parse_qs(urlsplit(responses.calls[1].request.url or "").query)
    assert second_query["after"] == ["2"]
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert connector.api_calls == 2


@responses.activate
def test_companies_match_by_domain_and_their_own_id_and_leads_by_company() -> None:
    company = contact("5", domain="acme.example", segment_names="ICP")
    responses.get(f"{BASE}/crm/v3/objects/companies", json={"results": [company]})
    lead = contact("9", hs_lead_name="Lead")
    lead["associations"] = {"companies": {"results": [{"id": "5", "type": "lead_to_company"}]}}
    responses.get(f"{BASE}/crm/v3/objects/leads", json={"results": [lead]})
    connector = private_app()

    [company_record] = connector.read_records("companies", FIELD)
    [lead_record] = connector.read_records("leads", FIELD)

    assert (company_record.website, company_record.linked_account_id) == ("acme.example", "5")
    assert company_record.value == "ICP"
    assert "associations" not in (responses.calls[0].request.url or "")
    assert (lead_record.linked_account_id, lead_record.email) == ("5", None)


@responses.activate
def test_reading_is_lazy() -> None:
    connector = private_app()
    records = connector.read_records("contacts", FIELD)
    assert connector.api_calls == 0
    responses.get(CONTACTS, json={"results": [contact("1")]})
    assert next(records).id == "1"
    assert connector.api_calls == 1


@responses.activate
def test_reads_are_parsed_from_json_without_the_sdks_models(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The SDK's model objects cost most of a read's CPU (issue 15): pages and batch reads skip it.
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("a read went through the SDK's deserializer")

    monkeypatch.setattr(hubspot.crm.objects.api_client.ApiClient, "deserialize", refuse)
    responses.get(CONTACTS, json={"results": [contact("1", segment_names="A")]})
    read = contact("1", segment_names="B")
    read["properties"] |= {"num_employees": 12, "hs_lead_status": None}
    responses.post(f"{CONTACTS}/batch/read", json={"results": [read]})
    connector = private_app()

    assert [r.value for r in connector.read_records("contacts", FIELD)] == ["A"]
    # As the SDK's dict[str, str] had them: text, or None.
    wanted = [FIELD, "num_employees", "hs_lead_status"]
    assert connector._read_properties("contacts", ["1"], wanted, what="reading") == {
        "1": {
            "hs_object_id": "1",
            "segment_names": "B",
            "num_employees": "12",
            "hs_lead_status": None,
        }
    }
    assert responses.calls[0].request.headers["Accept"] == "application/json"
    assert responses.calls[1].request.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    "answer",
    [{"body": "<html>not json</html>"}, {"json": {"results": "oops"}}, {"json": [1]}],
)
@responses.activate
def test_an_unreadable_page_is_fatal_and_says_what_was_read(answer: dict[str, Any]) -> None:
    responses.get(CONTACTS, **answer)
    with pytest.raises(FatalError, match="while reading contacts: the answer could not be read"):
        list(private_app().read_records("contacts", FIELD))


@responses.activate
def test_daily_usage_headers_become_the_quota() -> None:
    headers = {
        "X-HubSpot-RateLimit-Daily": "250000",
        "X-HubSpot-RateLimit-Daily-Remaining": "249990",
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        "X-HubSpot-RateLimit-Max": "100",
        "X-HubSpot-RateLimit-Remaining": "97",
    }
    responses.get(CONTACTS, json={"results": []}, headers=headers)
    connector = private_app()
    list(connector.read_records("contacts", FIELD))
    assert connector.quota == QuotaUsage(used=10, limit=250_000, period="daily")


@responses.activate
def test_without_daily_headers_the_ten_second_window_is_the_quota() -> None:
    # HubSpot sends no daily pair on OAuth-authenticated calls: those apps have no daily limit.
    responses.post(OAUTH, json=token_answer())
    headers = {"X-HubSpot-RateLimit-Max": "110", "X-HubSpot-RateLimit-Remaining": "100"}
    responses.get(CONTACTS, json={"results": []}, headers=headers)
    connector = oauth_app()
    list(connector.read_records("contacts", FIELD))
    assert connector.quota == QuotaUsage(used=10, limit=110, period="ten_seconds")


# ---- writing ------------------------------------------------------------------------------


def batch_answer(ids: list[str], errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": [contact(i, segment_names="x") for i in ids],
        "startedAt": "2024-01-01T00:00:00.000Z",
        "completedAt": "2024-01-01T00:00:01.000Z",
    }
    if errors is not None:
        body |= {"errors": errors, "numErrors": len(errors)}
    return body


@responses.activate
def test_a_200_batch_writes_every_record() -> None:
    responses.post(BATCH, json=batch_answer(["1", "2"]))
    connector = private_app()

    results = connector.write_batch("contacts", FIELD, [Update("1", "A;B"), Update("2", "")])

    assert [(r.record_id, r.ok) for r in results] == [("1", True), ("2", True)]
    assert sent_json(responses.calls[0]) == {
        "inputs": [
            {"id": "1", "properties": {FIELD: "A;B"}},
            {"id": "2", "properties": {FIELD: ""}},
        ]
    }
    assert connector.api_calls == 1


@responses.activate
def test_a_207_keeps_per_record_errors_apart_from_successes() -> None:
    errors: list[dict[str, Any]] = [
        {
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": "Could not get some CONTACT objects, they may be deleted or not exist.",
            "context": {"ids": ["2", "4"]},
        },
        {"status": "error", "category": "VALIDATION_ERROR", "message": "bad", "id": "5"},
    ]
    responses.post(BATCH, status=207, json=batch_answer(["1", "3"], errors))
    updates = [Update(str(n), "ICP") for n in range(1, 7)]

    results = private_app().write_batch("contacts", FIELD, updates)

    assert [r.ok for r in results] == [True, False, True, False, False, False]
    assert results[1].code == "OBJECT_NOT_FOUND" and "deleted" in (results[1].message or "")
    assert results[3].code == "OBJECT_NOT_FOUND"
    assert (results[4].code, results[4].message) == ("VALIDATION_ERROR", "bad")
    # Neither a result nor an error: never counted as written.
    assert results[5].code == "NO_RESULT"


def test_more_than_a_batch_or_a_repeated_record_is_refused_before_any_call() -> None:
    connector = private_app()
    with pytest.raises(ValueError, match="at most 100"):
        connector.write_batch("contacts", FIELD, [Update(str(n), "x") for n in range(101)])
    with pytest.raises(ValueError, match="twice"):
        connector.write_batch("contacts", FIELD, [Update("1", "x"), Update("1", "y")])
    assert connector.write_batch("contacts", FIELD, []) == []
    assert connector.api_calls == 0


def refusing(bad: set[str]) -> Any:
    """A batch/update that, like HubSpot, refuses the whole batch when any value is invalid."""

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        assert isinstance(request.body, (str, bytes))
        ids = [item["id"] for item in json.loads(request.body)["inputs"]]
        if bad & set(ids):
            item = {"isValid": False, "message": "too long", "error": "INVALID_STRING_LENGTH"}
            message = "Property values were not valid: " + json.dumps([item | {"name": FIELD}])
            return 400, {}, json.dumps(error_body(message, "VALIDATION_ERROR"))
        return 200, {}, json.dumps(batch_answer(ids))

    return answer


@responses.activate
def test_a_refused_value_is_isolated_by_splitting_the_batch() -> None:
    responses.add_callback(responses.POST, BATCH, callback=refusing({"3"}))
    connector = private_app()
    updates = [Update(str(n), "v") for n in range(1, 9)]

    results = connector.write_batch("contacts", FIELD, updates)

    assert [r.ok for r in results] == [True, True, False, True, True, True, True, True]
    assert (results[2].code, results[2].message) == ("INVALID_STRING_LENGTH", "too long")
    accepted = [
        item["id"]
        for call in responses.calls
        if isinstance(call.response, requests.Response) and call.response.status_code == 200
        for item in sent_json(call)["inputs"]
    ]
    assert sorted(accepted) == sorted(u.record_id for u in updates if u.record_id != "3")
    assert connector.api_calls == 1 + 2 + 2 + 2  # halves of 8, 4 and 2


@responses.activate
def test_an_unknown_property_stops_the_run() -> None:
    item = {"isValid": False, "message": 'Property "nope" does not exist'}
    item |= {"error": "PROPERTY_DOESNT_EXIST", "name": "nope"}
    message = "Property values were not valid: " + json.dumps([item])
    responses.post(BATCH, status=400, json=error_body(message, "VALIDATION_ERROR"))
    with pytest.raises(FatalError, match="field nope not found on contacts"):
        private_app().write_batch("contacts", "nope", [Update("1", "x"), Update("2", "y")])
    assert len(responses.calls) == 1


# ---- errors -------------------------------------------------------------------------------


def rate_limited(policy: str, message: str) -> dict[str, Any]:
    return {
        "status": "error",
        "message": message,
        "errorType": "RATE_LIMIT",
        "correlationId": "20f98dfa-05b6-4d27-8d96-ecfde54ca211",
        "policyName": policy,
    }


@responses.activate
def test_the_ten_second_limit_is_retryable_after_the_window() -> None:
    body = rate_limited("TEN_SECONDLY_ROLLING", "You have reached your ten_secondly_rolling limit.")
    responses.post(
        BATCH,
        status=429,
        json=body,
        headers={"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"},
    )
    with pytest.raises(RetryableError) as raised:
        private_app().write_batch("contacts", FIELD, [Update("1", "x")])
    assert raised.value.retry_after == 10.0
    assert raised.value.code == "TEN_SECONDLY_ROLLING"


@responses.activate
def test_retry_after_wins_over_the_window_and_secondly_waits_a_second() -> None:
    body = rate_limited("TEN_SECONDLY_ROLLING", "You have reached your ten_secondly_rolling limit.")
    responses.post(BATCH, status=429, json=body, headers={"Retry-After": "3"})
    responses.post(
        BATCH, status=429, json=rate_limited("SECONDLY", "You have reached your secondly limit.")
    )
    connector = private_app()
    with pytest.raises(RetryableError) as first:
        connector.write_batch("contacts", FIELD, [Update("1", "x")])
    with pytest.raises(RetryableError) as second:
        connector.write_batch("contacts", FIELD, [Update("1", "x")])
    assert (first.value.retry_after, second.value.retry_after) == (3.0, 1.0)


@responses.activate
def test_the_daily_limit_is_its_own_kind() -> None:
    responses.get(
        CONTACTS,
        status=429,
        json=rate_limited("DAILY", "You have reached your daily limit."),
    )
    with pytest.raises(DailyQuotaError, match="daily"):
        list(private_app().read_records("contacts", FIELD))


@responses.activate
def test_every_429_is_counted_as_throttled_and_nothing_else_is() -> None:
    ten_seconds = rate_limited("TEN_SECONDLY_ROLLING", "You have reached your limit.")
    responses.post(BATCH, status=429, json=ten_seconds, headers={"Retry-After": "1"})
    responses.post(BATCH, status=502, body="<html>Bad gateway</html>")
    responses.post(BATCH, status=429, json=rate_limited("DAILY", "You have reached your limit."))
    connector = private_app()
    with pytest.raises(RetryableError, match="TEN_SECONDLY_ROLLING"):
        connector.write_batch("contacts", FIELD, [Update("1", "x")])
    assert connector.throttled == 1
    with pytest.raises(RetryableError, match="502"):
        connector.write_batch("contacts", FIELD, [Update("1", "x")])
    assert connector.throttled == 1
    with pytest.raises(DailyQuotaError):
        connector.write_batch("contacts", FIELD, [Update("1", "x")])
    assert (connector.throttled, connector.api_calls) == (2, 3)


@responses.activate
def test_server_errors_and_dropped_connections_are_retryable() -> None:
    responses.post(BATCH, status=502, body="<html>Bad gateway</html>")
    responses.post(BATCH, body=requests.ConnectionError("connection reset"))
    connector = private_app()
    with pytest.raises(RetryableError, match="502"):
        connector.write_batch("contacts", FIELD, [Update("1", "x")])
    with pytest.raises(RetryableError, match="ConnectionError") as dropped:
        connector.write_batch("contacts", FIELD, [Update("1", "x")])
    # No requests exception is chained onto what leaves the adapter.
    assert dropped.value.__cause__ is None and dropped.value.__context__ is None


@responses.activate
def test_a_refused_private_app_token_is_fatal_at_once() -> None:
    body = error_body("Authentication credentials not found.", "INVALID_AUTHENTICATION")
    responses.get(f"{BASE}/account-info/v3/details", status=401, json=body)
    connector = private_app()
    with pytest.raises(FatalError, match="INVALID_AUTHENTICATION") as raised:
        connector.check_credentials()
    assert TOKEN not in str(raised.value)
    assert connector.api_calls == 1


@responses.activate
def test_missing_scopes_are_fatal() -> None:
    body = error_body(
        "This app hasn't been granted all required scopes to make this call.",
        "MISSING_SCOPES",
    )
    responses.post(BATCH, status=403, json=body)
    with pytest.raises(FatalError, match="MISSING_SCOPES"):
        private_app().write_batch("contacts", FIELD, [Update("1", "x")])


@responses.activate
def test_an_account_without_leads_is_fatal() -> None:
    responses.get(
        f"{BASE}/crm/v3/objects/leads",
        status=400,
        json={"status": "error", "message": "Unable to infer object type from: leads"},
    )
    with pytest.raises(FatalError, match="no leads object"):
        list(private_app().read_records("leads", FIELD))


# ---- OAuth --------------------------------------------------------------------------------


@responses.activate
def test_oauth_gets_a_token_then_refreshes_once_when_it_is_refused() -> None:
    responses.post(OAUTH, json=token_answer("CNfirst"))
    responses.post(OAUTH, json=token_answer("CNsecond"))
    expired = error_body(
        "The OAuth token used to make this call expired 2 minute(s) ago.",
        "EXPIRED_AUTHENTICATION",
    )
    responses.post(
        BATCH,
        status=401,
        json=expired,
        match=[matchers.header_matcher({"Authorization": "Bearer CNfirst"})],
    )
    responses.post(
        BATCH,
        json=batch_answer(["1"]),
        match=[matchers.header_matcher({"Authorization": "Bearer CNsecond"})],
    )
    connector = oauth_app()

    [result] = connector.write_batch("contacts", FIELD, [Update("1", "x")])

    assert result.ok
    assert connector.api_calls == 4  # token, refused call, token, call
    form = parse_qs(str(responses.calls[0].request.body))
    assert form == {
        "grant_type": ["refresh_token"],
        "client_id": ["client-id"],
        "client_secret": [SECRET],
        "refresh_token": [REFRESH],
    }


@responses.activate
def test_oauth_refused_after_a_fresh_token_is_fatal() -> None:
    responses.post(OAUTH, json=token_answer("CNone"))
    body = error_body("Authentication credentials not found.", "INVALID_AUTHENTICATION")
    responses.post(BATCH, status=401, json=body)
    connector = oauth_app()
    with pytest.raises(FatalError, match="refused the credentials"):
        connector.write_batch("contacts", FIELD, [Update("1", "x")])
    assert [c.request.url for c in responses.calls].count(OAUTH) == 2
    assert connector.api_calls == 4


@responses.activate
def test_a_token_near_its_expiry_is_refreshed_before_use() -> None:
    responses.post(OAUTH, json=token_answer("CNshort", expires_in=1))
    responses.post(OAUTH, json=token_answer("CNlong"))
    responses.get(CONTACTS, json={"results": []})
    connector = oauth_app()
    list(connector.read_records("contacts", FIELD))
    time.sleep(0.6)  # half of a one-second token: due for renewal
    list(connector.read_records("contacts", FIELD))
    used = [c.request.headers.get("Authorization") for c in responses.calls]
    assert used == [None, "Bearer CNshort", None, "Bearer CNlong"]


@responses.activate
def test_a_refused_refresh_token_is_fatal_and_never_shown() -> None:
    body = {"status": "BAD_REFRESH_TOKEN", "message": "missing or invalid refresh token"}
    responses.post(OAUTH, status=400, json=body)
    with pytest.raises(FatalError, match="BAD_REFRESH_TOKEN") as raised:
        oauth_app().check_credentials()
    assert REFRESH not in f"{raised.value!s} {raised.value!r}" and SECRET not in str(raised.value)


@responses.activate
def test_a_failing_token_endpoint_is_retryable() -> None:
    responses.post(OAUTH, status=503, json={"status": "error", "message": "unavailable"})
    with pytest.raises(RetryableError, match="refresh"):
        oauth_app().check_credentials()


@responses.activate
def test_a_message_echoing_a_secret_is_redacted() -> None:
    body = error_body(f"token {TOKEN} is not allowed here", "INVALID_AUTHENTICATION")
    responses.post(BATCH, status=401, json=body)
    with pytest.raises(FatalError) as raised:
        private_app().write_batch("contacts", FIELD, [Update("1", "x")])
    assert TOKEN not in str(raised.value) and "[redacted]" in str(raised.value)


@responses.activate
def test_the_session_ignores_requests_ca_bundle_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/env-ca.pem")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    config = HubSpotConfig(access_token=TOKEN, base_url=BASE, ca_bundle="/run/sandbox-ca.pem")
    responses.get(CONTACTS, json={"results": []})
    list(HubSpotConnector(config).read_records("contacts", FIELD))
    sent = responses.calls[0].request.req_kwargs  # type: ignore[attr-defined]
    assert sent["verify"] == "/run/sandbox-ca.pem"
    assert not sent["proxies"]


# ---- describing the field -----------------------------------------------------------------


def hubspot_property(**overrides: Any) -> dict[str, Any]:
    return {
        "name": FIELD,
        "label": "Segment names",
        "type": "string",
        "fieldType": "text",
        "groupName": "contactinformation",
        "options": [],
        "calculated": False,
        "hasUniqueValue": False,
        "hidden": False,
        "modificationMetadata": {
            "archivable": True,
            "readOnlyDefinition": False,
            "readOnlyValue": False,
        },
    } | overrides


@responses.activate
def test_describes_a_string_property_with_hubspots_text_limit() -> None:
    responses.get(f"{BASE}/crm/v3/properties/contacts/{FIELD}", json=hubspot_property())
    info = private_app().describe_field("contacts", FIELD)
    assert (info.type, info.max_length, info.writable) == ("string", STRING_MAX_LENGTH, True)
    assert info.label == "Segment names"
    assert STRING_MAX_LENGTH == TEXT_MAX_LENGTH == 65_536


@responses.activate
def test_a_read_only_or_enumeration_property_is_reported_as_such() -> None:
    metadata = {"archivable": False, "readOnlyDefinition": True, "readOnlyValue": True}
    responses.get(
        f"{BASE}/crm/v3/properties/contacts/{FIELD}",
        json=hubspot_property(type="enumeration", modificationMetadata=metadata),
    )
    info = private_app().describe_field("contacts", FIELD)
    assert (info.type, info.max_length, info.writable) == ("enumeration", None, False)


@responses.activate
def test_a_missing_property_is_named_in_the_error() -> None:
    body = error_body("Unable to find property nope", "OBJECT_NOT_FOUND")
    responses.get(f"{BASE}/crm/v3/properties/companies/nope", status=404, json=body)
    with pytest.raises(FatalError, match="field nope not found on companies"):
        private_app().describe_field("companies", "nope")


# ---- reading values back (a retried batch) -----------------------------------------------

READ = f"{CONTACTS}/batch/read"
NOT_FOUND = (
    "Could not get some CONTACT objects, they may be deleted or not exist. "
    "Check that ids are valid."
)


def read_answer(
    results: list[dict[str, Any]], errors: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": "2024-01-01T00:00:00.000Z",
        "completedAt": "2024-01-01T00:00:00.040Z",
    }
    if errors:
        body |= {"numErrors": len(errors), "errors": errors}
    return body


@responses.activate
def test_read_values_is_one_batch_read_of_the_field() -> None:
    responses.post(
        READ,
        json=read_answer(
            [
                contact("1", segment_names="A;B"),
                contact("2", segment_names=""),  # cleared
                contact("3", segment_names=None),  # never set
                contact("4"),  # the property left out of the answer
            ]
        ),
    )
    connector = private_app()

    values = connector.read_values("Contacts", FIELD, ["1", "2", "3", "4", "1"])

    assert values == {"1": "A;B", "2": None, "3": None, "4": None}
    assert sent_json(responses.calls[0]) == {
        "inputs": [{"id": "1"}, {"id": "2"}, {"id": "3"}, {"id": "4"}],
        "properties": [FIELD],
        "propertiesWithHistory": [],
    }
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert connector.api_calls == 1


@responses.activate
def test_read_values_leaves_out_what_a_207_could_not_find() -> None:
    missing = {
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "message": NOT_FOUND,
        "context": {"ids": ["2", "9"]},
    }
    # An answer for an id not asked for (a merged record's survivor) counts for nothing.
    results = [contact("1", segment_names="ICP"), contact("77", segment_names="X")]
    responses.post(READ, status=207, json=read_answer(results, [missing]))

    assert private_app().read_values("contacts", FIELD, ["1", "2", "9"]) == {"1": "ICP"}


@responses.activate
def test_read_values_other_record_errors_leave_the_value_unknown() -> None:
    refused = {"status": "error", "category": "VALIDATION_ERROR", "message": "bad id", "id": "x"}
    responses.post(READ, status=207, json=read_answer([contact("1")], [refused]))
    with pytest.raises(RetryableError, match="VALIDATION_ERROR") as raised:
        private_app().read_values("contacts", FIELD, ["1", "x"])
    assert raised.value.code == "VALIDATION_ERROR"


@responses.activate
def test_read_values_errors_are_classified_like_other_calls() -> None:
    responses.post(
        READ, status=429, json=rate_limited("TEN_SECONDLY_ROLLING", "You have reached your limit")
    )
    responses.post(READ, status=502, body="<html>bad gateway</html>")
    responses.post(READ, status=403, json=error_body("missing scopes", "MISSING_SCOPES"))
    connector = private_app()
    with pytest.raises(RetryableError, match="TEN_SECONDLY_ROLLING"):
        connector.read_values("contacts", FIELD, ["1"])
    with pytest.raises(RetryableError, match="502"):
        connector.read_values("contacts", FIELD, ["1"])
    with pytest.raises(FatalError, match="denied access"):
        connector.read_values("contacts", FIELD, ["1"])
    assert connector.api_calls == 3


def test_read_values_over_a_batch_or_of_nothing_costs_nothing() -> None:
    connector = private_app()
    with pytest.raises(ValueError, match="at most 100"):
        connector.read_values("contacts", FIELD, [str(n) for n in range(101)])
    with pytest.raises(FatalError, match="supported"):
        connector.read_values("deals", FIELD, ["1"])
    assert connector.read_values("contacts", FIELD, []) == {}
    assert connector.api_calls == 0


# ---- against the emulator over HTTPS ------------------------------------------------------


@pytest.fixture
def served(sandbox_certificates: SandboxCertificates) -> Iterator[Any]:
    """Start an emulator built with the given options; stops every one at the end."""
    servers: list[EmulatorServer] = []

    def start(**options: Any) -> HubSpotEmulator:
        emulator = HubSpotEmulator(**options)
        server = EmulatorServer(emulator, sandbox_certificates)
        server.start()
        servers.append(server)
        return emulator

    yield start
    for server in servers:
        server.stop()


def test_emulator_pages_every_contact_once_with_companies(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: HubSpotEmulator = served(records=250)
    connector = hubspot_connector(emulator, sandbox_certificates, auth="private_app")

    records = list(connector.read_records("contacts", FIELD))

    assert len(records) == len({r.id for r in records}) == 250
    assert connector.api_calls == 3
    linked = [r for r in records if r.linked_account_id]
    assert len(linked) == 84  # every third seeded contact is associated with its company
    sample = linked[1]
    assert sample.linked_account_id is not None
    company = emulator.record("companies", sample.linked_account_id)
    assert sample.email and sample.email.endswith("@" + company["properties"]["domain"])
    companies = list(connector.read_records("companies", FIELD))
    assert all(c.website and c.linked_account_id == c.id for c in companies)
    leads = list(connector.read_records("leads", FIELD))
    assert len(leads) == 63 and all(lead.linked_account_id for lead in leads)


def test_emulator_takes_exactly_one_full_batch_per_call(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: HubSpotEmulator = served()
    ids = emulator.add_records("companies", [{"domain": f"d{n}.example"} for n in range(100)])
    connector = hubspot_connector(emulator, sandbox_certificates)
    connector.check_credentials()
    before = connector.api_calls

    results = connector.write_batch("companies", FIELD, [Update(i, f"S{i}") for i in ids])

    assert connector.api_calls - before == 1 and all(r.ok for r in results)
    assert [w.record_id for w in emulator.writes] == ids
    assert len({w.call for w in emulator.writes}) == 1
    assert emulator.record("companies", ids[-1])["properties"][FIELD] == f"S{ids[-1]}"


def test_emulator_refusal_of_a_long_value_costs_only_that_record(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: HubSpotEmulator = served()
    ids = emulator.add_records("contacts", [{} for _ in range(10)])
    connector = hubspot_connector(emulator, sandbox_certificates, auth="private_app")
    updates = [Update(i, "x" * (TEXT_MAX_LENGTH + (i == ids[6]))) for i in ids]

    results = connector.write_batch("contacts", FIELD, updates)

    assert [r.ok for r in results] == [n != 6 for n in range(10)]
    assert results[6].code == "INVALID_STRING_LENGTH"
    assert sorted(w.record_id for w in emulator.writes) == sorted(ids[:6] + ids[7:])
    assert FIELD not in emulator.record("contacts", ids[6])["properties"]


@pytest.mark.parametrize("fault", [{"policy_name": False}, {}])
def test_a_secondly_429_waits_a_second_with_or_without_policyname(
    served: Any, sandbox_certificates: SandboxCertificates, fault: dict[str, Any]
) -> None:
    emulator: HubSpotEmulator = served(records=1)
    connector = hubspot_connector(emulator, sandbox_certificates, auth="private_app")
    [record] = connector.read_records("contacts", FIELD)
    emulator.faults.inject("rate_limit", policy="SECONDLY", **fault)

    with pytest.raises(RetryableError) as raised:
        connector.write_batch("contacts", FIELD, [Update(record.id, "x")])

    # Not the ten-second window the answers' Interval-Milliseconds header names.
    assert (raised.value.code, raised.value.retry_after) == ("SECONDLY", 1.0)
    assert connector.throttled == 1


def test_a_daily_429_without_policyname_is_still_the_daily_quota(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: HubSpotEmulator = served(records=1)
    connector = hubspot_connector(emulator, sandbox_certificates, auth="private_app")
    emulator.faults.inject("daily_limit", policy_name=False)
    with pytest.raises(DailyQuotaError, match="daily"):
        list(connector.read_records("contacts", FIELD))


def test_emulator_rate_limit_is_classified_and_waited_out(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: HubSpotEmulator = served(records=5, requests_per_ten_seconds=2, window_seconds=0.3)
    connector = hubspot_connector(emulator, sandbox_certificates, auth="private_app")
    [record, *_] = connector.read_records("contacts", FIELD)
    list(connector.read_records("contacts", FIELD))

    with pytest.raises(RetryableError) as raised:
        connector.write_batch("contacts", FIELD, [Update(record.id, "x")])

    assert raised.value.code == "TEN_SECONDLY_ROLLING"
    assert raised.value.retry_after == pytest.approx(0.3)
    # A read meeting the limit waits the time asked and reads that page again, in place.
    assert len(list(connector.read_records("contacts", FIELD))) == 5
    assert emulator.calls["GET /crm/v3/objects/contacts"] == 4  # 2 reads, refused, read again


def test_emulator_expiry_is_recovered_through_the_refresh_token(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: HubSpotEmulator = served(records=3)
    connector = hubspot_connector(emulator, sandbox_certificates)
    connector.check_credentials()
    emulator.expire_tokens()

    [record, *_] = connector.read_records("contacts", FIELD)
    [result] = connector.write_batch("contacts", FIELD, [Update(record.id, "fresh")])

    assert result.ok
    assert emulator.calls["POST /oauth/v1/token"] == 2
    assert emulator.calls["GET /crm/v3/objects/contacts"] == 2  # refused once, then served


def test_emulator_leads_depend_on_the_account(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: HubSpotEmulator = served(records=8, leads_enabled=False)
    connector = hubspot_connector(emulator, sandbox_certificates, auth="private_app")
    with pytest.raises(FatalError, match="no leads object"):
        connector.describe_field("leads", FIELD)
    with pytest.raises(FatalError, match="no leads object"):
        list(connector.read_records("leads", FIELD))
    assert connector.describe_field("contacts", FIELD).max_length == TEXT_MAX_LENGTH


def test_emulator_daily_usage_is_reported_as_the_quota(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: HubSpotEmulator = served(records=3, daily_limit=1000)
    connector = hubspot_connector(emulator, sandbox_certificates, auth="private_app")
    connector.check_credentials()
    list(connector.read_records("contacts", FIELD))
    assert connector.quota == QuotaUsage(used=2, limit=1000, period="daily")


def test_emulator_read_values_after_a_write_and_a_deletion(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: HubSpotEmulator = served()
    ids = emulator.add_records("companies", [{"domain": f"d{n}.example"} for n in range(100)])
    connector = hubspot_connector(emulator, sandbox_certificates)
    connector.write_batch("companies", FIELD, [Update(i, f"S{i}") for i in ids[:60]])
    emulator.delete_record("companies", ids[0])
    emulator.expire_tokens()
    emulator.reset()

    values = connector.read_values("companies", FIELD, ids)

    assert values == {i: (f"S{i}" if n < 60 else None) for n, i in enumerate(ids) if n > 0}
    assert emulator.calls["POST /crm/v3/objects/companies/batch/read"] == 2  # expired, then read
    assert emulator.calls["POST /oauth/v1/token"] == 1


@responses.activate
def test_a_get_answered_429_with_retry_after_is_classified_not_retried_by_urllib3(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connector = HubSpotConnector(HubSpotConfig(access_token="pat-test-token"))
    # The read asks the page again after each 7 s the answer names (connectors.base): noted,
    # not slept, so the test does not spend 21 s waiting.
    waits: list[float] = []
    monkeypatch.setattr("connectors.base.time.sleep", waits.append)
    responses.get(
        "https://api.hubapi.com/crm/v3/objects/contacts",
        status=429,
        headers={"Retry-After": "7"},
        json={
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "policyName": "TEN_SECONDLY_ROLLING",
        },
    )
    with pytest.raises(RetryableError) as caught:
        next(iter(connector.read_records("contacts", "segment_names")))
    assert caught.value.retry_after == 7
    # urllib3 never retried it: every 429 reached the connector, which waited as told.
    assert waits == [7.0, 7.0, 7.0] and len(responses.calls) == 4
