"""The Pardot adapter: documented answers parsed (responses), then the emulator over HTTPS."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

import connectors.pardot as pardot
from connectors.base import QuotaUsage, Update
from connectors.errors import DailyQuotaError, FatalError, RetryableError
from connectors.pardot import PardotConfig, PardotConnector
from connectors.sandbox.pardot import SEGMENT_FIELD, TEXT_MAX_LENGTH, PardotEmulator
from connectors.sandbox.server import EmulatorServer
from connectors.sandbox.tls import SandboxCertificates
from tests.connectors.harness_pardot import pardot_connector

BASE = "https://pi.pardot.test"
API = f"{BASE}/api/v5"
PROSPECTS = f"{API}/objects/prospects"
CUSTOM_FIELDS = f"{API}/objects/custom-fields"
IMPORTS = f"{API}/imports"
TOKEN_URL = "https://login.salesforce.test/services/oauth2/token"
UNIT = "0Uv5g000000ABCDEAA"
TOKEN = "00D5g000004ABCD!AQ0AQgivenoutright"
SECRET = "connected-app-secret-0123456789"
REFRESH = "5Aep861refresh-token-abcdef"
FIELD = "Segment_Names__c"


def given_token() -> PardotConnector:
    return PardotConnector(PardotConfig(business_unit_id=UNIT, access_token=TOKEN, base_url=BASE))


def oauth(**overrides: Any) -> PardotConnector:
    settings: dict[str, Any] = {
        "business_unit_id": UNIT,
        "client_id": "3MVG9client",
        "client_secret": SECRET,
        "refresh_token": REFRESH,
        "token_url": TOKEN_URL,
        "base_url": BASE,
        "import_poll_interval": 0.0,
    }
    return PardotConnector(PardotConfig(**(settings | overrides)))


def token_answer(token: str = "00D5g000004ABCD!fresh1") -> dict[str, Any]:
    return {
        "access_token": token,
        "signature": "sig",
        "scope": "refresh_token pardot_api",
        "instance_url": "https://example.my.salesforce.com",
        "id": "https://login.salesforce.com/id/00D/005",
        "token_type": "Bearer",
        "issued_at": "1700000000000",
    }


def error(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message}


def page(values: list[dict[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    token = parse_qs(urlsplit(next_url).query)["nextPageToken"][0] if next_url else None
    return {"nextPageToken": token, "nextPageUrl": next_url, "values": values}


def sent_json(call: Any) -> Any:
    body = call.request.body
    assert isinstance(body, (str, bytes))
    return json.loads(body)


def query_of(call: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url or "").query)


# ---- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"access_token": TOKEN, "client_id": "c", "client_secret": SECRET, "refresh_token": "r"},
        {"client_id": "c", "client_secret": SECRET},
    ],
)
def test_config_needs_exactly_one_way_to_authenticate(options: dict[str, Any]) -> None:
    with pytest.raises(FatalError, match="access_token or client_id"):
        PardotConfig(business_unit_id=UNIT, **options)


@pytest.mark.parametrize("unit", ["", "0Uv5g", "0Uv5g000000ABCD-AA"])
def test_config_needs_a_business_unit_id(unit: str) -> None:
    with pytest.raises(FatalError, match="business_unit_id"):
        PardotConfig(business_unit_id=unit, access_token=TOKEN)


def test_config_refuses_a_url_that_is_not_one() -> None:
    with pytest.raises(FatalError, match="base_url"):
        PardotConfig(business_unit_id=UNIT, access_token=TOKEN, base_url="pi.pardot.com")


def test_config_and_connector_reprs_hide_secrets() -> None:
    config = PardotConfig(
        business_unit_id=UNIT, client_id="c", client_secret=SECRET, refresh_token=REFRESH
    )
    shown = repr(config) + repr(PardotConnector(config)) + repr(given_token())
    assert SECRET not in shown and REFRESH not in shown and TOKEN not in shown
    assert "https://pi.pardot.com" in repr(config) and UNIT in repr(config)
    assert pardot.DEMO_URL == "https://pi.demo.pardot.com"


# ---- reading ------------------------------------------------------------------------------


@responses.activate
def test_reads_pages_by_next_page_url_and_maps_prospects() -> None:
    following = f"{PROSPECTS}?nextPageToken=t2"
    first = {
        "id": 11,
        "email": "ada@acme.example",
        "website": "https://acme.example",
        "salesforceAccountId": "0015g00000ACMEAAA",
        FIELD: "A;B",
    }
    blank = {"id": 12, "email": "bo@beta.example", "website": None, FIELD: ""}
    listed = {"id": 13, "email": None, "salesforceAccountId": "", FIELD: ["X", "Y"]}
    responses.get(
        PROSPECTS,
        json=page([first, blank], following),
        headers={"x-api-usage": "17/100000"},
        match=[responses.matchers.query_param_matcher({"limit": "1000"}, strict_match=False)],
    )
    responses.get(following, json=page([listed]), headers={"x-api-usage": "18/100000"})
    connector = given_token()

    records = list(connector.read_records("Prospects", FIELD))

    assert [(r.id, r.value, r.email) for r in records] == [
        ("11", "A;B", "ada@acme.example"),
        ("12", None, "bo@beta.example"),
        ("13", "X;Y", None),
    ]
    assert records[0].website == "https://acme.example"
    assert records[0].linked_account_id == "0015g00000ACMEAAA"
    assert records[2].linked_account_id is None
    query = query_of(responses.calls[0])
    assert query["fields"] == [f"id,email,website,salesforceAccountId,{FIELD}"]
    assert query["orderBy"] == ["id ASC"]
    assert set(query_of(responses.calls[1])) == {"nextPageToken"}
    sent = responses.calls[0].request.headers
    assert sent["Authorization"] == f"Bearer {TOKEN}"
    assert sent["Pardot-Business-Unit-Id"] == UNIT
    assert sent["X-Return-Api-Usage"] == "1"
    assert connector.api_calls == 2
    assert connector.quota == QuotaUsage(used=18, limit=100_000, period="daily")


@responses.activate
def test_reading_is_lazy() -> None:
    connector = given_token()
    records = connector.read_records("prospects", FIELD)
    assert connector.api_calls == 0
    responses.get(PROSPECTS, json=page([{"id": 1, FIELD: None}]))
    assert next(records).id == "1"
    assert connector.api_calls == 1


@responses.activate
def test_a_read_past_the_page_token_ceiling_goes_on_after_the_last_id() -> None:
    warning = "203;Record count for nextPageToken sequence has been exceeded. No page token."
    responses.get(PROSPECTS, json=page([{"id": 5}, {"id": 9}]), headers={"Pardot-Warning": warning})
    responses.get(PROSPECTS, json=page([{"id": 12}]))

    records = list(given_token().read_records("prospects", FIELD))

    assert [r.id for r in records] == ["5", "9", "12"]
    assert query_of(responses.calls[1])["idGreaterThan"] == ["9"]
    assert query_of(responses.calls[1])["orderBy"] == ["id ASC"]


@responses.activate
def test_a_next_page_url_on_another_host_is_not_followed() -> None:
    responses.get(PROSPECTS, json=page([{"id": 1}], "https://elsewhere.test/steal?nextPageToken=x"))
    with pytest.raises(FatalError, match="outside its API host"):
        list(given_token().read_records("prospects", FIELD))
    assert len(responses.calls) == 1


@responses.activate
def test_an_unknown_field_stops_the_read() -> None:
    message = f"One or more of the specified fields are invalid: {FIELD}"
    responses.get(PROSPECTS, status=400, json=error(180, message))
    with pytest.raises(FatalError, match=f"field {FIELD} not found on prospects") as raised:
        list(given_token().read_records("prospects", FIELD))
    assert raised.value.code == "180"


# ---- reading what changed -----------------------------------------------------------------

# 10:15:20.75 at UTC+2: the UTC second it falls in is 08:15:20.
SINCE = dt.datetime(2026, 3, 4, 10, 15, 20, 750_000, tzinfo=dt.timezone(dt.timedelta(hours=2)))


@responses.activate
def test_a_modified_read_asks_for_prospects_updated_from_the_utc_second_of_since() -> None:
    following = f"{PROSPECTS}?nextPageToken=t2"
    first = {"id": 3, "email": "ada@acme.example", "salesforceAccountId": "001A", FIELD: "A"}
    responses.get(PROSPECTS, json=page([first], following))
    responses.get(following, json=page([{"id": 8, "website": "https://b.example", FIELD: None}]))
    connector = given_token()

    records = list(connector.read_records("prospects", FIELD, modified_since=SINCE))

    assert [(r.id, r.value, r.email, r.website, r.linked_account_id) for r in records] == [
        ("3", "A", "ada@acme.example", None, "001A"),
        ("8", None, None, "https://b.example", None),
    ]
    # The offset's `+` and the colons go URL-encoded; a bare `+` would reach Pardot as a space.
    sent = responses.calls[0].request.url or ""
    assert "updatedAtAfterOrEqualTo=2026-03-04T08%3A15%3A20%2B00%3A00" in sent
    query = query_of(responses.calls[0])
    assert query["updatedAtAfterOrEqualTo"] == ["2026-03-04T08:15:20+00:00"]
    assert query["fields"] == [f"id,email,website,salesforceAccountId,{FIELD}"]
    assert (query["orderBy"], query["limit"]) == (["id ASC"], ["1000"])
    assert set(query_of(responses.calls[1])) == {"nextPageToken"}  # the token keeps the filter
    assert connector.api_calls == 2


@responses.activate
def test_a_modified_read_is_lazy_and_past_the_page_token_ceiling_keeps_its_filter() -> None:
    warning = "203;Record count for nextPageToken sequence has been exceeded. No page token."
    responses.get(PROSPECTS, json=page([{"id": 5}, {"id": 9}]), headers={"Pardot-Warning": warning})
    responses.get(PROSPECTS, json=page([{"id": 12}]))
    connector = given_token()
    records = connector.read_records("prospects", FIELD, modified_since=SINCE)
    assert connector.api_calls == 0

    assert [r.id for r in records] == ["5", "9", "12"]
    again = query_of(responses.calls[1])
    assert again["idGreaterThan"] == ["9"]
    assert again["updatedAtAfterOrEqualTo"] == ["2026-03-04T08:15:20+00:00"]


@responses.activate
def test_a_modified_read_maps_errors_as_the_full_read_does() -> None:
    message = f"One or more of the specified fields are invalid: {FIELD}"
    responses.get(PROSPECTS, status=400, json=error(180, message))
    responses.get(PROSPECTS, status=400, json=error(122, "Daily API rate limit met."))
    responses.get(PROSPECTS, status=400, json=error(7, "Invalid timestamp"))
    with pytest.raises(FatalError, match=f"field {FIELD} not found on prospects"):
        list(given_token().read_records("prospects", FIELD, modified_since=SINCE))
    with pytest.raises(DailyQuotaError):
        list(given_token().read_records("prospects", FIELD, modified_since=SINCE))
    with pytest.raises(FatalError, match="Invalid timestamp") as raised:
        list(given_token().read_records("prospects", FIELD, modified_since=SINCE))
    assert raised.value.code == "7"


# ---- describing the field -----------------------------------------------------------------


def custom_field(field_id: str, kind: str, multiple: bool = False) -> dict[str, Any]:
    return {
        "id": 7001,
        "name": field_id.replace("_", " "),
        "fieldId": field_id,
        "type": kind,
        "isRecordMultipleResponses": multiple,
    }


@responses.activate
def test_describe_finds_the_custom_field_by_its_field_id_across_pages() -> None:
    following = f"{CUSTOM_FIELDS}?nextPageToken=c2"
    first_page = responses.matchers.query_param_matcher({"limit": "1000"}, strict_match=False)
    responses.get(
        CUSTOM_FIELDS, json=page([custom_field("Other", "Number")], following), match=[first_page]
    )
    fields = [
        custom_field("Segment_Names", "Text"),
        custom_field("Notes", "Textarea"),
        custom_field("Tier", "Dropdown"),
        custom_field("Interests", "Text", multiple=True),
    ]
    responses.get(following, json=page(fields))
    connector = given_token()

    text = connector.describe_field("prospects", "segment_names__c")
    area = connector.describe_field("prospects", "Notes__c")
    dropdown = connector.describe_field("prospects", "Tier__c")
    multiple = connector.describe_field("prospects", "Interests__c")

    assert (text.name, text.type, text.max_length, text.writable) == (FIELD, "Text", 255, True)
    assert text.label == "Segment Names"
    assert (area.max_length, area.writable) == (65_535, True)
    assert (dropdown.max_length, dropdown.writable) == (None, False)
    assert multiple.writable is False  # a write would add a response, not replace the list
    assert "fieldId" in query_of(responses.calls[0])["fields"][0]


@responses.activate
def test_describe_refuses_a_missing_or_a_standard_field() -> None:
    responses.get(CUSTOM_FIELDS, json=page([custom_field("Segment_Names", "Text")]))
    connector = given_token()
    with pytest.raises(FatalError, match="field Nope__c not found on prospects"):
        connector.describe_field("prospects", "Nope__c")
    with pytest.raises(FatalError, match="standard Pardot field"):
        connector.describe_field("prospects", "company")
    with pytest.raises(FatalError, match="supported"):
        connector.describe_field("Lead", FIELD)
    assert connector.api_calls == 1


# ---- writing one prospect per call --------------------------------------------------------


@responses.activate
def test_a_batch_is_one_patch_per_prospect_each_with_its_own_result() -> None:
    responses.patch(f"{PROSPECTS}/1", json={"id": 1, FIELD: "A;B"})
    responses.patch(f"{PROSPECTS}/2", json={"id": 2, FIELD: None})
    deleted = "Deleted records can't be updated. Please undelete before updating."
    responses.patch(f"{PROSPECTS}/3", status=404, json=error(219, deleted))
    too_long = f"Invalid property in request: {FIELD} is 300 characters long"
    responses.patch(f"{PROSPECTS}/4", status=400, json=error(154, too_long))
    connector = given_token()
    updates = [Update("1", "A;B"), Update("2", ""), Update("3", "x"), Update("4", "y" * 300)]

    results = connector.write_batch("prospects", FIELD, updates)

    assert [r.ok for r in results] == [True, True, False, False]
    assert (results[2].code, results[2].message) == ("219", deleted)
    assert (results[3].code, results[3].message) == ("154", too_long)
    assert [sent_json(c) for c in responses.calls[:2]] == [
        {FIELD: "A;B"},
        {FIELD: None},  # "" clears the field
    ]
    assert query_of(responses.calls[0])["fields"] == [f"id,{FIELD}"]
    assert connector.api_calls == 4


@responses.activate
def test_a_404_without_a_pardot_code_is_a_wrong_url_not_a_missing_prospect() -> None:
    responses.patch(f"{PROSPECTS}/1", status=404, body="<html>Not Found</html>")
    with pytest.raises(FatalError, match="404"):
        given_token().write_batch("prospects", FIELD, [Update("1", "x")])


@responses.activate
def test_an_unknown_field_stops_the_batch_at_its_first_record() -> None:
    message = f"One or more of the specified fields are invalid: {FIELD}"
    responses.patch(f"{PROSPECTS}/1", status=400, json=error(180, message))
    with pytest.raises(FatalError, match=f"field {FIELD} not found on prospects"):
        given_token().write_batch("prospects", FIELD, [Update("1", "x"), Update("2", "y")])
    assert len(responses.calls) == 1


def test_what_no_call_can_write_is_refused_before_any_call() -> None:
    connector = given_token()
    with pytest.raises(ValueError, match="at most 50"):
        connector.write_batch("prospects", FIELD, [Update(str(n), "x") for n in range(1, 52)])
    with pytest.raises(ValueError, match="twice"):
        connector.write_batch("prospects", FIELD, [Update("1", "x"), Update("1", "y")])
    with pytest.raises(ValueError, match="not a pardot prospect id"):
        connector.write_batch("prospects", FIELD, [Update("003ABC", "x")])
    assert connector.write_batch("prospects", FIELD, []) == []
    assert connector.api_calls == 0


def test_a_field_name_that_is_not_one_is_refused_before_any_call() -> None:
    connector = given_token()
    bad = "Segment__c,email"
    with pytest.raises(FatalError, match="not a valid Pardot field name"):
        list(connector.read_records("prospects", bad))
    with pytest.raises(FatalError, match="not a valid Pardot field name"):
        connector.read_values("prospects", bad, ["1"])
    with pytest.raises(FatalError, match="not a valid Pardot field name"):
        connector.write_batch("prospects", bad, [Update("1", "x")])
    with pytest.raises(FatalError, match="not a valid Pardot field name"):
        connector.write_bulk("prospects", bad, [Update("1", "x")])
    with pytest.raises(FatalError, match="not a valid Pardot field name"):
        connector.describe_field("prospects", bad)
    assert connector.api_calls == 0


# ---- errors -------------------------------------------------------------------------------


@responses.activate
def test_limits_and_server_errors_are_classified_by_their_code() -> None:
    busy = "You have exceeded your concurrent request limit. Please wait, before trying again"
    responses.patch(f"{PROSPECTS}/1", status=429, json=error(66, busy))
    responses.patch(f"{PROSPECTS}/1", status=429, json=error(122, "Daily API rate limit met."))
    responses.patch(f"{PROSPECTS}/1", status=400, json=error(202, "Minute rate limit met"))
    responses.patch(f"{PROSPECTS}/1", status=502, body="<html>bad gateway</html>")
    responses.patch(f"{PROSPECTS}/1", status=400, json=error(183, "An internal error occurred"))
    connector = given_token()
    write = [Update("1", "x")]

    with pytest.raises(RetryableError) as concurrency:
        connector.write_batch("prospects", FIELD, write)
    with pytest.raises(DailyQuotaError, match="daily limit"):
        connector.write_batch("prospects", FIELD, write)
    with pytest.raises(RetryableError) as minute:
        connector.write_batch("prospects", FIELD, write)
    with pytest.raises(RetryableError, match="502"):
        connector.write_batch("prospects", FIELD, write)
    with pytest.raises(RetryableError, match="183"):
        connector.write_batch("prospects", FIELD, write)

    assert (concurrency.value.code, concurrency.value.retry_after) == ("66", 1.0)
    assert (minute.value.code, minute.value.retry_after) == ("202", 60.0)


@responses.activate
def test_a_dropped_connection_is_retryable_with_nothing_chained(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The page is asked again after 1, 2 and 4 s (connectors.base): noted, not slept.
    waits: list[float] = []
    monkeypatch.setattr("connectors.base.time.sleep", waits.append)
    responses.get(PROSPECTS, body=requests.ConnectionError("connection reset"))
    with pytest.raises(RetryableError, match="ConnectionError") as dropped:
        list(given_token().read_records("prospects", FIELD))
    assert dropped.value.__cause__ is None and dropped.value.__context__ is None
    assert waits == [1.0, 2.0, 4.0]


@responses.activate
def test_an_oauth_token_is_renewed_once_on_401_and_then_it_is_fatal() -> None:
    responses.post(TOKEN_URL, json=token_answer("00D!first"))
    responses.post(TOKEN_URL, json=token_answer("00D!second"))
    responses.post(TOKEN_URL, json=token_answer("00D!third"))
    invalid = error(184, "access_token is invalid, unknown, or malformed")
    responses.get(PROSPECTS, json=page([{"id": 1}]))
    responses.get(PROSPECTS, status=401, json=invalid)
    responses.get(PROSPECTS, json=page([{"id": 2}]))
    responses.get(PROSPECTS, status=401, json=invalid)
    responses.get(PROSPECTS, status=401, json=invalid)
    connector = oauth()

    assert [r.id for r in connector.read_records("prospects", FIELD)] == ["1"]
    assert [r.id for r in connector.read_records("prospects", FIELD)] == ["2"]
    with pytest.raises(FatalError, match="refused the access token \\(184\\)"):
        list(connector.read_records("prospects", FIELD))

    bearers = [c.request.headers.get("Authorization") for c in responses.calls]
    assert bearers == [
        None,
        "Bearer 00D!first",
        "Bearer 00D!first",
        None,
        "Bearer 00D!second",
        "Bearer 00D!second",
        None,
        "Bearer 00D!third",
    ]
    form = parse_qs(str(responses.calls[0].request.body))
    assert form["grant_type"] == ["refresh_token"] and form["refresh_token"] == [REFRESH]
    assert connector.api_calls == 8  # token requests count too


@responses.activate
def test_a_token_given_outright_is_not_renewed() -> None:
    responses.get(PROSPECTS, status=401, json=error(184, "access_token is invalid"))
    with pytest.raises(FatalError, match="cannot be renewed"):
        given_token().check_credentials()
    assert len(responses.calls) == 1


@responses.activate
def test_a_refused_refresh_or_business_unit_is_fatal_and_a_busy_login_retryable() -> None:
    description = f"expired access/refresh token {REFRESH}"
    responses.post(
        TOKEN_URL, status=400, json={"error": "invalid_grant", "error_description": description}
    )
    responses.post(TOKEN_URL, status=503, body="unavailable")
    responses.post(TOKEN_URL, json=token_answer())
    unit = "Business Unit specified in Pardot-Business-Unit-Id header not found or inactive."
    responses.get(PROSPECTS, status=401, json=error(201, unit))

    with pytest.raises(FatalError, match="invalid_grant") as refused:
        oauth().check_credentials()
    with pytest.raises(RetryableError, match="503"):
        oauth().check_credentials()
    with pytest.raises(FatalError, match="business unit \\(201\\)"):
        oauth().check_credentials()

    assert REFRESH not in str(refused.value) and "[redacted]" in str(refused.value)
    assert len(responses.calls) == 4  # no renewal for a business unit Pardot does not know


# ---- reading values back (a retried batch) -----------------------------------------------


@responses.activate
def test_read_values_is_one_id_range_query_per_run_of_neighbouring_ids() -> None:
    responses.get(
        PROSPECTS,
        json=page([{"id": 1001, FIELD: "A"}, {"id": 1002, FIELD: ""}, {"id": 1003, FIELD: "C"}]),
    )
    responses.get(PROSPECTS, json=page([{"id": 5000, FIELD: "E"}]))
    connector = given_token()

    values = connector.read_values("prospects", FIELD, ["1003", "1001", "5000", "1002", "1500"])

    assert values == {"1001": "A", "1002": None, "1003": "C", "5000": "E"}  # 1500 is gone
    first, second = query_of(responses.calls[0]), query_of(responses.calls[1])
    assert (first["idGreaterThan"], first["idLessThan"]) == (["1000"], ["1501"])
    assert (second["idGreaterThan"], second["idLessThan"]) == (["4999"], ["5001"])
    assert first["fields"] == [f"id,{FIELD}"] and first["limit"] == ["1000"]
    assert connector.api_calls == 2


def test_read_values_over_a_batch_or_of_nothing_costs_nothing() -> None:
    connector = given_token()
    with pytest.raises(ValueError, match="at most 50"):
        connector.read_values("prospects", FIELD, [str(n) for n in range(1, 52)])
    with pytest.raises(ValueError, match="not a pardot prospect id"):
        connector.read_values("prospects", FIELD, ["x1"])
    assert connector.read_values("prospects", FIELD, []) == {}
    assert connector.api_calls == 0


# ---- the Import API -----------------------------------------------------------------------


def multipart(request: Any) -> dict[str, bytes]:
    head = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request.body)
    parts = {}
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        parts[str(part.get_param("name", header="content-disposition"))] = payload
    return parts


def import_status(status: str, errors: int = 0) -> dict[str, Any]:
    return {
        "id": 7,
        "status": status,
        "isExpired": False,
        "createdCount": 0,
        "updatedCount": 3 - errors,
        "errorCount": errors,
        "errorsRef": f"{IMPORTS}/7/errors" if errors else None,
    }


@responses.activate
def test_write_bulk_creates_a_ready_import_polls_it_and_reads_its_errors() -> None:
    responses.post(IMPORTS, status=201, json={"id": 7, "status": "Waiting"})
    responses.get(f"{IMPORTS}/7", json=import_status("Waiting"))
    responses.get(f"{IMPORTS}/7", json=import_status("Processing"))
    responses.get(f"{IMPORTS}/7", json=import_status("Complete", errors=1))
    errors_csv = (
        f"matchId,{FIELD},Error\r\n2,B,The prospect matching matchId 2 is in the recycle bin\r\n"
    )
    responses.get(f"{IMPORTS}/7/errors", body=errors_csv, content_type="text/csv")
    connector = oauth(access_token=None)
    responses.post(TOKEN_URL, json=token_answer())
    updates = [Update("1", "A, with a comma"), Update("2", "B"), Update("3", "")]

    results = connector.write_bulk("prospects", FIELD, updates)

    assert [r.ok for r in results] == [True, False, True]
    assert results[1].code == "IMPORT_ERROR" and "recycle bin" in (results[1].message or "")
    parts = multipart(responses.calls[1].request)
    assert json.loads(parts["input"]) == {
        "operation": "Upsert",
        "object": "Prospect",
        "status": "Ready",
        "createOnNoMatch": False,
        "restoreDeleted": False,
        "fields": {FIELD: {"overwrite": True, "nullOverwrite": True}},
    }
    assert parts["file"].decode() == f'matchId,{FIELD}\r\n1,"A, with a comma"\r\n2,B\r\n3,\r\n'
    assert connector.api_calls == 1 + 1 + 3 + 1  # token, create, three polls, errors


@responses.activate
def test_write_bulk_sends_more_than_one_file_as_batches_then_submits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pardot, "_IMPORT_FILE_BYTES", 40)
    responses.post(IMPORTS, status=201, json={"id": 7, "status": "Open"})
    responses.post(f"{IMPORTS}/7/batches", status=201, json={"id": 7, "status": "Open"})
    responses.patch(f"{IMPORTS}/7", json={"id": 7, "status": "Waiting"})
    responses.get(f"{IMPORTS}/7", json=import_status("Complete"))
    updates = [Update(str(n), f"Segment {n}") for n in range(1, 5)]
    connector = given_token()

    results = connector.write_bulk("prospects", FIELD, updates)

    assert all(r.ok for r in results) and [r.record_id for r in results] == ["1", "2", "3", "4"]
    assert json.loads(multipart(responses.calls[0].request)["input"])["status"] == "Open"
    files = [multipart(c.request)["file"].decode() for c in responses.calls[:2]]
    assert all(f.startswith(f"matchId,{FIELD}\r\n") for f in files)
    assert sent_json(responses.calls[2]) == {"status": "Ready"}
    assert connector.api_calls == 4
    assert connector.prefers_bulk(501) and not connector.prefers_bulk(500)


@responses.activate
def test_an_import_still_running_after_the_timeout_is_retryable() -> None:
    responses.post(IMPORTS, status=201, json={"id": 7, "status": "Waiting"})
    responses.get(f"{IMPORTS}/7", json=import_status("Processing"))
    connector = PardotConnector(
        PardotConfig(business_unit_id=UNIT, access_token=TOKEN, base_url=BASE, import_timeout=0)
    )
    with pytest.raises(RetryableError, match="still Processing") as raised:
        connector.write_bulk("prospects", FIELD, [Update("1", "x")])
    assert raised.value.code == "IMPORT_RUNNING"


# ---- against the emulator over HTTPS ------------------------------------------------------


@pytest.fixture
def served(sandbox_certificates: SandboxCertificates) -> Iterator[Any]:
    """Start an emulator built with the given options; stops every one at the end."""
    servers: list[EmulatorServer] = []

    def start(**options: Any) -> PardotEmulator:
        emulator = PardotEmulator(**options)
        server = EmulatorServer(emulator, sandbox_certificates)
        server.start()
        servers.append(server)
        return emulator

    yield start
    for server in servers:
        server.stop()


def test_emulator_pages_every_prospect_once_with_its_match_keys(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: PardotEmulator = served(records=2100)
    connector = pardot_connector(emulator, sandbox_certificates, auth="access_token")

    records = list(connector.read_records("prospects", SEGMENT_FIELD))

    assert len(records) == len({r.id for r in records}) == 2100
    assert connector.api_calls == 3
    assert sum(1 for r in records if r.linked_account_id) == 700  # every third is synced
    assert all(r.email for r in records) and any(r.website for r in records)
    assert connector.quota == QuotaUsage(used=3, limit=100_000, period="daily")


def test_emulator_read_goes_past_the_page_token_ceiling(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: PardotEmulator = served(records=2500, page_token_record_limit=2000)
    connector = pardot_connector(emulator, sandbox_certificates, auth="access_token")
    records = list(connector.read_records("prospects", SEGMENT_FIELD))
    assert len({r.id for r in records}) == 2500
    assert connector.api_calls == 3


def test_emulator_full_batch_costs_one_call_per_prospect_each_written_once(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: PardotEmulator = served()
    ids = emulator.add_records("prospects", [{"email": f"p{n}@x.example"} for n in range(50)])
    connector = pardot_connector(emulator, sandbox_certificates)
    connector.check_credentials()
    before = connector.api_calls
    updates = [Update(i, f"Segment {n}; Tier {n % 3}") for n, i in enumerate(ids)]

    results = connector.write_batch("prospects", SEGMENT_FIELD, updates)

    assert connector.api_calls - before == 50 and all(r.ok for r in results)
    assert [w.record_id for w in emulator.writes] == ids
    assert len({w.call for w in emulator.writes}) == 50
    assert emulator.record("prospects", ids[-1])[SEGMENT_FIELD] == "Segment 49; Tier 1"


def test_emulator_long_value_and_deleted_prospect_fail_only_their_records(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: PardotEmulator = served(records=4)
    connector = pardot_connector(emulator, sandbox_certificates)
    emulator.delete_record("prospects", "1003")
    updates = [
        Update("1001", "x" * (TEXT_MAX_LENGTH + 1)),
        Update("1002", "fits"),
        Update("1003", "gone"),
        Update("1004", "x" * TEXT_MAX_LENGTH),
    ]

    results = connector.write_batch("prospects", SEGMENT_FIELD, updates)

    assert [(r.ok, r.code) for r in results] == [
        (False, "154"),
        (True, None),
        (False, "219"),
        (True, None),
    ]
    assert sorted(w.record_id for w in emulator.writes) == ["1002", "1004"]


def test_emulator_bulk_write_clears_blanks_and_leaves_every_other_field(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: PardotEmulator = served(records=6, import_polls=2)
    connector = pardot_connector(emulator, sandbox_certificates)
    connector.write_batch("prospects", SEGMENT_FIELD, [Update("1001", "Old")])
    emulator.delete_record("prospects", "1005")
    emulator.faults.inject("record_failure", record_ids=["1003"])
    emails = [emulator.record("prospects", i)["email"] for i in ("1001", "1002")]
    before = connector.api_calls
    updates = [Update(str(n), f"S{n}") for n in range(1002, 1007)] + [Update("1001", "")]

    results = connector.write_bulk("prospects", SEGMENT_FIELD, updates)

    assert [r.record_id for r in results if not r.ok] == ["1003", "1005"]
    assert emulator.record("prospects", "1001")[SEGMENT_FIELD] is None
    assert emulator.record("prospects", "1006")[SEGMENT_FIELD] == "S1006"
    assert [emulator.record("prospects", i)["email"] for i in ("1001", "1002")] == emails
    assert connector.api_calls - before == 1 + 3 + 1  # create, three polls, errors


def test_emulator_concurrency_limit_is_retryable(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: PardotEmulator = served(records=3, max_concurrent=2, latency=0.5)
    connectors = [
        pardot_connector(emulator, sandbox_certificates, auth="access_token") for _ in range(4)
    ]
    outcomes: list[str] = []
    together = threading.Barrier(len(connectors))

    def read(connector: pardot.PardotConnector) -> None:
        together.wait()
        try:
            connector.read_values("prospects", SEGMENT_FIELD, ["1001"])
            outcomes.append("ok")
        except RetryableError as exc:
            outcomes.append(str(exc.code))

    threads = [threading.Thread(target=read, args=(c,)) for c in connectors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["66", "66", "ok", "ok"]


def test_emulator_daily_limit_is_its_own_kind_and_reported(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: PardotEmulator = served(records=3, daily_limit=2)
    connector = pardot_connector(emulator, sandbox_certificates, auth="access_token")
    connector.check_credentials()
    connector.read_values("prospects", SEGMENT_FIELD, ["1001"])
    with pytest.raises(DailyQuotaError):
        connector.write_batch("prospects", SEGMENT_FIELD, [Update("1001", "x")])
    assert connector.quota == QuotaUsage(used=2, limit=2, period="daily")


def test_emulator_expiry_is_recovered_by_oauth_but_not_with_a_given_token(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: PardotEmulator = served(records=3)
    renewing = pardot_connector(emulator, sandbox_certificates)
    given = pardot_connector(emulator, sandbox_certificates, auth="access_token")
    renewing.check_credentials()
    given.check_credentials()
    emulator.expire_tokens()

    [result] = renewing.write_batch("prospects", SEGMENT_FIELD, [Update("1001", "fresh")])

    assert result.ok
    assert emulator.calls["POST /services/oauth2/token"] == 2
    with pytest.raises(FatalError, match="cannot be renewed"):
        given.check_credentials()
    emulator.reset()
    given.check_credentials()  # the sandbox issues its describe() token again


def test_emulator_read_values_after_a_write_and_a_deletion(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: PardotEmulator = served()
    ids = emulator.add_records("prospects", [{} for _ in range(50)])
    connector = pardot_connector(emulator, sandbox_certificates)
    connector.write_batch("prospects", SEGMENT_FIELD, [Update(i, f"S{i}") for i in ids[:30]])
    emulator.delete_record("prospects", ids[0])
    emulator.faults.inject("expire_token")
    emulator.reset()
    emulator.faults.inject("expire_token")

    values = connector.read_values("prospects", SEGMENT_FIELD, ids)

    assert values == {i: (f"S{i}" if n < 30 else None) for n, i in enumerate(ids) if n > 0}
    assert emulator.calls["GET /api/v5/objects/prospects"] == 2  # expired, then read
    assert emulator.calls["POST /services/oauth2/token"] == 1


def test_emulator_reads_back_what_an_import_or_a_patch_wrote_since_and_nothing_older(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: PardotEmulator = served(records=40, import_polls=0)  # seeded long before
    connector = pardot_connector(emulator, sandbox_certificates)
    since = dt.datetime.now(dt.UTC)
    bulk = [Update(str(n), f"S{n}") for n in (1003, 1017, 1031)]

    assert all(r.ok for r in connector.write_bulk("prospects", SEGMENT_FIELD, bulk))
    [patched] = connector.write_batch("prospects", SEGMENT_FIELD, [Update("1020", "P")])
    assert patched.ok and emulator.calls["POST /api/v5/imports"] == 1
    records = list(connector.read_records("prospects", SEGMENT_FIELD, modified_since=since))

    assert [(r.id, r.value) for r in records] == [
        ("1003", "S1003"),
        ("1017", "S1017"),
        ("1020", "P"),
        ("1031", "S1031"),
    ]
    written = emulator.record("prospects", "1017")["updatedAt"]
    assert dt.datetime.fromisoformat(written) >= since.replace(microsecond=0)
