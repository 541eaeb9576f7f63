"""The Eloqua adapter: documented answers parsed (responses), then the emulator over HTTPS."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from connectors import eloqua_bulk
from connectors.base import Update
from connectors.eloqua import EloquaConfig, EloquaConnector
from connectors.errors import DailyQuotaError, FatalError, RetryableError
from connectors.sandbox.eloqua import (
    LARGE_TEXT_MAX,
    SEGMENT_FIELD,
    SEGMENT_FIELD_LONG,
    SMALL_TEXT_MAX,
    EloquaEmulator,
)
from connectors.sandbox.server import EmulatorServer
from connectors.sandbox.tls import SandboxCertificates
from tests.connectors.harness_eloqua import eloqua_config

LOGIN = "https://login.eloqua.test"
BASE = "https://secure.p03.eloqua.test"
MOVED = "https://secure.p06.eloqua.test"
PASSWORD = "Pa55-word-9f8e7d"
TOKEN = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo-oauth"
CONTACTS = f"{BASE}/api/REST/1.0/data/contacts"
FIELDS = f"{BASE}/api/REST/1.0/assets/contact/fields"
IMPORTS = f"{BASE}/api/bulk/2.0/contacts/imports"
DATA = f"{IMPORTS}/1182/data"
SYNC = f"{BASE}/api/bulk/2.0/syncs/1197"
FIELD = SEGMENT_FIELD


def basic(**overrides: Any) -> EloquaConnector:
    settings: dict[str, Any] = {
        "site": "Acme",
        "username": "api.user",
        "password": PASSWORD,
        "login_url": LOGIN,
        "poll_interval": 0.001,
        "sync_timeout": 5.0,
    }
    return EloquaConnector(EloquaConfig(**(settings | overrides)))


def oauth() -> EloquaConnector:
    return EloquaConnector(EloquaConfig(access_token=TOKEN, login_url=LOGIN, poll_interval=0.001))


def identity(base: str = BASE) -> dict[str, Any]:
    return {
        "site": {"id": 42, "name": "Acme"},
        "user": {"id": 314, "username": "api.user", "displayName": "API User"},
        "urls": {
            "base": base,
            "apis": {
                "rest": {
                    "standard": f"{base}/API/REST/{{version}}/",
                    "bulk": f"{base}/API/Bulk/{{version}}/",
                }
            },
        },
    }


def discovered(base: str = BASE) -> None:
    responses.get(f"{LOGIN}/id", json=identity(base))


def field_element(
    field_id: str, internal: str, data_type: str = "text", read_only: str = "false"
) -> dict[str, Any]:
    return {
        "type": "ContactField",
        "id": field_id,
        "depth": "complete",
        "name": internal.replace("_", " "),
        "internalName": internal,
        "dataType": data_type,
        "isReadOnly": read_only,
    }


def fields_page(*elements: dict[str, Any]) -> dict[str, Any]:
    chosen = list(elements) or [
        field_element("100001", "C_EmailAddress"),
        field_element("100200", FIELD),
        field_element("100201", SEGMENT_FIELD_LONG, "largeText"),
        field_element("100005", "C_DateCreated", "date", "true"),
    ]
    return {"elements": chosen, "page": 1, "pageSize": 1000, "total": len(chosen)}


def contact(record_id: str, value: str | None = None, **extra: Any) -> dict[str, Any]:
    values: list[dict[str, Any]] = [{"type": "FieldValue", "id": "100201"}]
    item: dict[str, Any] = {"type": "FieldValue", "id": "100200"}
    if value is not None:
        item["value"] = value
    values.append(item)
    return {"type": "Contact", "id": record_id, "depth": "complete", "fieldValues": values} | extra


def contacts_page(elements: list[dict[str, Any]], page: int, total: int) -> dict[str, Any]:
    return {"elements": elements, "page": page, "pageSize": 1000, "total": total}


def query(call: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url or "").query)


def sent(call: Any) -> Any:
    return json.loads(call.request.body)


def definition(uri: str = "/contacts/imports/1182") -> dict[str, Any]:
    return {
        "name": "segsync",
        "fields": {"ContactId": "{{Contact.Id}}", "Value": f"{{{{Contact.Field({FIELD})}}}}"},
        "identifierFieldName": "ContactId",
        "isSyncTriggeredOnImport": True,
        "uri": uri,
    }


def sync(status: str, uri: str = "/syncs/1197") -> dict[str, Any]:
    return {"syncedInstanceUri": "/contacts/imports/1182", "status": status, "uri": uri}


def rejects_page(items: list[dict[str, Any]], offset: int, more: bool) -> dict[str, Any]:
    return {
        "totalResults": offset + len(items) + (1 if more else 0),
        "limit": 1000,
        "offset": offset,
        "count": len(items),
        "hasMore": more,
        "items": items,
    }


def reject(record_id: str, code: str, message: str) -> dict[str, Any]:
    return {
        "fieldValues": {"ContactId": record_id, "Value": "x"},
        "invalidFields": ["Value"],
        "message": message,
        "recordIndex": 1,
        "statusCode": code,
    }


# ---- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"site": "Acme", "username": "u"},
        {"site": "Acme", "username": "u", "password": "p", "access_token": "t"},
    ],
)
def test_config_needs_exactly_one_way_to_authenticate(options: dict[str, Any]) -> None:
    with pytest.raises(FatalError, match="site, username and password .* or access_token"):
        EloquaConfig(**options)


def test_config_refuses_bad_urls_and_waits() -> None:
    with pytest.raises(FatalError, match="login_url"):
        EloquaConfig(access_token=TOKEN, login_url="login.eloqua.com")
    with pytest.raises(FatalError, match="poll_interval must be positive"):
        EloquaConfig(access_token=TOKEN, poll_interval=0)


def test_reprs_hide_secrets() -> None:
    config = EloquaConfig(site="Acme", username="api.user", password=PASSWORD)
    shown = repr(config) + repr(EloquaConnector(config)) + repr(oauth())
    assert PASSWORD not in shown and TOKEN not in shown
    assert "https://login.eloqua.com" in repr(config)


# ---- discovery and authentication ---------------------------------------------------------


@responses.activate
def test_discovers_the_base_url_once_with_basic_site_user_credentials() -> None:
    discovered()
    responses.get(FIELDS, json=fields_page())
    responses.get(CONTACTS, json=contacts_page([contact("1")], 1, 1))
    connector = basic()

    connector.check_credentials()
    list(connector.read_records("contacts", FIELD))
    list(connector.read_records("Contacts", FIELD))

    assert [call.request.url for call in responses.calls].count(f"{LOGIN}/id") == 1
    expected = base64.b64encode(f"Acme\\api.user:{PASSWORD}".encode()).decode()
    assert all(c.request.headers["Authorization"] == f"Basic {expected}" for c in responses.calls)
    assert connector.api_calls == 4  # /id, fields, two pages (the field list is cached)


@responses.activate
def test_oauth_tokens_go_as_bearer() -> None:
    discovered()
    oauth().check_credentials()
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize("status", [200, 401])
@responses.activate
def test_not_authenticated_is_fatal_and_names_no_secret(status: int) -> None:
    # Oracle documents the body "Not authenticated."; older pods answered it with a 200.
    responses.get(f"{LOGIN}/id", status=status, json="Not authenticated.")
    with pytest.raises(FatalError, match="refused the credentials for site Acme") as raised:
        basic().check_credentials()
    assert PASSWORD not in f"{raised.value!s} {raised.value!r}"


@responses.activate
def test_a_401_rediscovers_the_base_url_and_repeats_the_call_once() -> None:
    # The instance moved pods: /id now names another base URL, where the call succeeds.
    responses.get(f"{LOGIN}/id", json=identity())
    responses.get(FIELDS, status=401, body="")
    responses.get(f"{LOGIN}/id", json=identity(MOVED))
    responses.get(f"{MOVED}/api/REST/1.0/assets/contact/fields", json=fields_page())
    connector = basic()

    described = connector.describe_field("contacts", FIELD)

    assert described.max_length == SMALL_TEXT_MAX
    assert [c.request.url.split("?")[0] for c in responses.calls] == [  # type: ignore[union-attr]
        f"{LOGIN}/id",
        FIELDS,
        f"{LOGIN}/id",
        f"{MOVED}/api/REST/1.0/assets/contact/fields",
    ]


@responses.activate
def test_a_second_401_is_fatal() -> None:
    discovered()
    responses.get(FIELDS, status=401, body="")
    with pytest.raises(FatalError, match="401 twice"):
        basic().describe_field("contacts", FIELD)
    assert len(responses.calls) == 4


# ---- fields -------------------------------------------------------------------------------


@responses.activate
def test_describes_small_and_large_text_fields_by_internal_name() -> None:
    discovered()
    responses.get(FIELDS, json=fields_page())
    connector = basic()

    small = connector.describe_field("contacts", FIELD.lower())
    large = connector.describe_field("contacts", SEGMENT_FIELD_LONG)
    date = connector.describe_field("contacts", "C_DateCreated")

    assert (small.name, small.type, small.max_length, small.writable) == (
        FIELD,
        "text",
        SMALL_TEXT_MAX,
        True,
    )
    assert (large.type, large.max_length) == ("largeText", LARGE_TEXT_MAX)
    assert (date.max_length, date.writable) == (None, False)
    assert query(responses.calls[1]) == {"depth": ["complete"], "count": ["1000"], "page": ["1"]}


@responses.activate
def test_a_missing_field_is_named_and_an_unknown_object_refused() -> None:
    discovered()
    responses.get(FIELDS, json=fields_page())
    connector = basic()
    with pytest.raises(FatalError, match="field No_Such_Field__c not found on contacts"):
        connector.describe_field("contacts", "No_Such_Field__c")
    with pytest.raises(FatalError, match="supported: contacts"):
        connector.describe_field("leads", FIELD)


# ---- reading ------------------------------------------------------------------------------


@responses.activate
def test_reads_pages_of_contacts_with_the_field_email_and_account() -> None:
    discovered()
    responses.get(FIELDS, json=fields_page())
    first = [
        contact("7", "A;B", emailAddress="ada@acme.example", accountId="5001"),
        contact("8", "", emailAddress="bo@gmail.com"),
    ]
    responses.get(CONTACTS, json=contacts_page(first, 1, 1001))
    responses.get(CONTACTS, json=contacts_page([contact("9"), contact("7", "A;B")], 2, 1001))
    connector = basic()

    records = list(connector.read_records("contacts", FIELD))

    assert [(r.id, r.value, r.email, r.linked_account_id) for r in records] == [
        ("7", "A;B", "ada@acme.example", "5001"),
        ("8", None, "bo@gmail.com", None),
        ("9", None, None, None),
    ]
    assert query(responses.calls[2]) == {"depth": ["complete"], "count": ["1000"], "page": ["1"]}
    assert query(responses.calls[3])["page"] == ["2"]
    assert connector.api_calls == 4


@responses.activate
def test_reading_is_lazy() -> None:
    connector = basic()
    records = connector.read_records("contacts", FIELD)
    assert connector.api_calls == 0
    discovered()
    responses.get(FIELDS, json=fields_page())
    responses.get(CONTACTS, json=contacts_page([contact("1")], 1, 5000))
    assert next(records).id == "1"
    assert connector.api_calls == 3


@responses.activate
def test_a_modified_read_searches_c_datemodified_from_the_second_in_utc() -> None:
    discovered()
    responses.get(FIELDS, json=fields_page())
    first = [contact("7", "A", emailAddress="ada@acme.example", accountId="5001"), contact("8")]
    responses.get(CONTACTS, json=contacts_page(first, 1, 1001))
    responses.get(CONTACTS, json=contacts_page([contact("9"), contact("8")], 2, 1001))
    connector = basic()
    # 12:34:56.789 at UTC+02:00: from its whole second, in Eloqua's server time (EST on 1 March).
    since = dt.datetime(2026, 3, 1, 12, 34, 56, 789_000, tzinfo=dt.timezone(dt.timedelta(hours=2)))

    records = list(connector.read_records("contacts", FIELD, modified_since=since))

    assert [(r.id, r.value, r.email, r.linked_account_id) for r in records] == [
        ("7", "A", "ada@acme.example", "5001"),
        ("8", None, None, None),
        ("9", None, None, None),
    ]
    assert query(responses.calls[2]) == {
        "depth": ["complete"],
        "count": ["1000"],
        "page": ["1"],
        "search": ["C_DateModified>='2026-03-01 05:34:56'"],
    }
    assert query(responses.calls[3])["page"] == ["2"]
    assert query(responses.calls[3])["search"] == query(responses.calls[2])["search"]
    assert connector.api_calls == 4


@responses.activate
def test_a_modified_read_that_eloqua_answers_204_reads_nothing() -> None:
    # "204: No matching contacts were found in the search" (the list's reference page).
    discovered()
    responses.get(FIELDS, json=fields_page())
    responses.get(CONTACTS, status=204, body="")
    connector = basic()
    since = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)

    assert list(connector.read_records("contacts", FIELD, modified_since=since)) == []
    assert connector.api_calls == 3


@responses.activate
def test_a_refused_modified_search_is_fatal_and_named() -> None:
    discovered()
    responses.get(FIELDS, json=fields_page())
    refusal = [{"parameter": "search", "requirement": {"type": "DateRequirement"}, "value": "x"}]
    responses.get(CONTACTS, status=400, json=refusal)
    since = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)

    with pytest.raises(FatalError, match="search: DateRequirement"):
        list(basic().read_records("contacts", FIELD, modified_since=since))


@responses.activate
def test_a_standard_field_is_read_from_its_contact_property() -> None:
    discovered()
    responses.get(FIELDS, json=fields_page(field_element("100004", "C_Company")))
    responses.get(CONTACTS, json=contacts_page([contact("1", accountName="Acme")], 1, 1))
    [record] = basic().read_records("contacts", "C_Company")
    assert record.value == "Acme"


@responses.activate
def test_read_values_lists_from_the_lowest_id_until_every_id_was_seen() -> None:
    discovered()
    responses.get(FIELDS, json=fields_page())
    responses.get(CONTACTS, json=contacts_page([contact("12", "ICP"), contact("15")], 1, 3000))
    connector = basic()

    values = connector.read_values("contacts", FIELD, ["15", "12", "not-an-id"])

    assert values == {"12": "ICP", "15": None}
    assert query(responses.calls[2])["search"] == ["id>='12'"]
    assert connector.api_calls == 3  # the second page was never needed


@responses.activate
def test_read_values_leaves_out_ids_no_page_holds() -> None:
    discovered()
    responses.get(FIELDS, json=fields_page())
    responses.get(CONTACTS, json=contacts_page([contact("12", "ICP")], 1, 1))
    assert basic().read_values("contacts", FIELD, ["12", "13"]) == {"12": "ICP"}


def test_read_values_over_a_batch_or_of_nothing_costs_nothing() -> None:
    connector = basic()
    with pytest.raises(ValueError, match="at most 5000"):
        connector.read_values("contacts", FIELD, [str(n) for n in range(5001)])
    assert connector.read_values("contacts", FIELD, []) == {}
    assert connector.read_values("contacts", FIELD, ["x"]) == {}
    assert connector.api_calls == 0


# ---- writing ------------------------------------------------------------------------------


def import_flow(*statuses: str) -> None:
    """Definition 1182, an upload that starts sync 1197, then these poll answers."""
    discovered()
    responses.post(IMPORTS, status=201, json=definition())
    responses.post(DATA, status=201, json=sync("pending"))
    for status in statuses:
        responses.get(SYNC, json=sync(status))


@responses.activate
def test_a_batch_is_one_import_sync_and_the_definition_is_reused() -> None:
    import_flow("pending", "active", "success")
    connector = basic()

    results = connector.write_batch("contacts", FIELD, [Update("1", "A;B"), Update("2", "")])
    responses.get(SYNC, json=sync("success"))
    connector.write_batch("contacts", FIELD, [Update("3", "C")])

    assert [(r.record_id, r.ok) for r in results] == [("1", True), ("2", True)]
    created = sent(responses.calls[1])
    assert created["fields"] == {
        "ContactId": "{{Contact.Id}}",
        "Value": "{{Contact.Field(C_Segment_Names1)}}",
    }
    assert created["identifierFieldName"] == "ContactId"
    assert created["isSyncTriggeredOnImport"] is True
    assert created["updateRule"] == "always"  # so "" clears the field
    assert sent(responses.calls[2]) == [
        {"ContactId": "1", "Value": "A;B"},
        {"ContactId": "2", "Value": ""},
    ]
    urls = [c.request.url for c in responses.calls]
    assert urls.count(IMPORTS) == 1
    assert urls.count(DATA) == 2
    # /id, definition, upload, three polls; then upload and one poll.
    assert connector.api_calls == 6 + 2


@responses.activate
def test_a_warning_sync_fails_the_rejected_rows_only() -> None:
    import_flow("warning")
    rejects = f"{SYNC}/rejects"
    first = [reject("2", "ELQ-00144", "Value for field C_Segment_Names1 is 101 characters long")]
    responses.get(rejects, json=rejects_page(first, 0, True))
    responses.get(
        rejects, json=rejects_page([reject("4", "ELQ-00085", "Contact does not exist.")], 1, False)
    )
    updates = [Update(str(n), "v") for n in range(1, 5)]

    results = basic().write_batch("contacts", FIELD, updates)

    assert [r.ok for r in results] == [True, False, True, False]
    assert results[1].code == "ELQ-00144" and "101 characters" in (results[1].message or "")
    assert (results[3].code, results[3].message) == ("ELQ-00085", "Contact does not exist.")
    assert query(responses.calls[-1]) == {"limit": ["1000"], "offset": ["1"]}


@responses.activate
def test_an_upload_that_does_not_start_the_sync_is_followed_by_one() -> None:
    discovered()
    responses.post(IMPORTS, status=201, json=definition())
    responses.post(DATA, status=204)
    responses.post(f"{BASE}/api/bulk/2.0/syncs", status=201, json=sync("pending"))
    responses.get(SYNC, json=sync("success"))

    [result] = basic().write_batch("contacts", FIELD, [Update("1", "A")])

    assert result.ok
    assert sent(responses.calls[3]) == {"syncedInstanceUri": "/contacts/imports/1182"}


@pytest.mark.parametrize(
    ("code", "kind"), [("ELQ-00146", RetryableError), ("ELQ-00122", FatalError)]
)
@responses.activate
def test_a_failed_sync_is_explained_from_its_logs_and_its_definition_dropped(
    code: str, kind: type[Exception]
) -> None:
    import_flow("error")
    logs = {
        "items": [
            {"severity": "information", "statusCode": "ELQ-00001", "message": "Total", "count": 1},
            {"severity": "error", "statusCode": code, "message": "It failed.", "count": 0},
        ],
        "hasMore": False,
    }
    responses.get(f"{SYNC}/logs", json=logs)
    connector = basic()

    with pytest.raises(kind, match=f"failed \\({code}\\): It failed.") as raised:
        connector.write_batch("contacts", FIELD, [Update("1", "A")])
    assert getattr(raised.value, "code", None) == code

    responses.post(IMPORTS, status=201, json=definition("/contacts/imports/1183"))
    responses.post(f"{IMPORTS}/1183/data", status=201, json=sync("pending", "/syncs/1198"))
    responses.get(f"{BASE}/api/bulk/2.0/syncs/1198", json=sync("success", "/syncs/1198"))
    [result] = connector.write_batch("contacts", FIELD, [Update("1", "A")])
    assert result.ok
    assert [c.request.url for c in responses.calls].count(IMPORTS) == 2


@responses.activate
def test_a_sync_that_does_not_end_in_time_is_retryable() -> None:
    discovered()
    responses.post(IMPORTS, status=201, json=definition())
    responses.post(DATA, status=201, json=sync("pending"))
    responses.get(SYNC, json=sync("active"))
    with pytest.raises(RetryableError, match="still active after 0.05 s") as raised:
        basic(sync_timeout=0.05, poll_interval=0.01).write_batch(
            "contacts", FIELD, [Update("1", "A")]
        )
    assert raised.value.code == "SYNC_TIMEOUT"


@responses.activate
def test_an_upload_over_the_size_limit_is_split_into_syncs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(eloqua_bulk, "UPLOAD_LIMIT_BYTES", 120)
    discovered()
    responses.post(IMPORTS, status=201, json=definition())
    for number in (1197, 1198, 1199):
        responses.post(DATA, status=201, json=sync("pending", f"/syncs/{number}"))
        responses.get(f"{BASE}/api/bulk/2.0/syncs/{number}", json=sync("success"))
    updates = [Update(str(n), "é" * 10) for n in range(5)]

    results = basic().write_batch("contacts", FIELD, updates)

    uploads = [sent(c) for c in responses.calls if c.request.url == DATA]
    assert [len(rows) for rows in uploads] == [2, 2, 1]
    assert [row["ContactId"] for rows in uploads for row in rows] == ["0", "1", "2", "3", "4"]
    bodies = [c.request.body for c in responses.calls if c.request.url == DATA]
    assert all(isinstance(body, bytes) and len(body) <= 120 for body in bodies)
    assert all(r.ok for r in results)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            {
                "failures": [
                    {
                        "field": "fields",
                        "constraint": "Must be valid.",
                        "value": "{{Contact.Field(C_Segment_Names1)}}",
                    }
                ]
            },
            "field C_Segment_Names1 not found on contacts",
        ),
        (
            {
                "failures": [
                    {
                        "field": "fields",
                        "constraint": "The field is read-only.",
                        "value": "{{Contact.Field(C_Segment_Names1)}}",
                    }
                ]
            },
            "field C_Segment_Names1 is read-only on contacts",
        ),
        (
            {"failures": [{"field": "name", "constraint": "Must be unique."}]},
            "refused the import definition for C_Segment_Names1: name: Must be unique.",
        ),
    ],
)
@responses.activate
def test_a_refused_definition_stops_the_run(answer: dict[str, Any], message: str) -> None:
    discovered()
    responses.post(IMPORTS, status=400, json=answer)
    with pytest.raises(FatalError, match=message):
        basic().write_batch("contacts", FIELD, [Update("1", "A")])


def test_bad_batches_are_refused_before_any_call() -> None:
    connector = basic()
    with pytest.raises(ValueError, match="at most 5000"):
        connector.write_batch("contacts", FIELD, [Update(str(n), "x") for n in range(5001)])
    with pytest.raises(ValueError, match="twice"):
        connector.write_batch("contacts", FIELD, [Update("1", "x"), Update("1", "y")])
    with pytest.raises(FatalError, match="not found on contacts"):
        connector.write_batch("contacts", "C_X)}}{{Contact.Id", [Update("1", "x")])
    assert connector.write_batch("contacts", FIELD, []) == []
    assert connector.api_calls == 0


# ---- errors -------------------------------------------------------------------------------


@responses.activate
def test_throttling_server_errors_and_dropped_connections_are_retryable() -> None:
    discovered()
    responses.get(FIELDS, status=429, body="Too Many Requests", headers={"Retry-After": "7"})
    responses.get(FIELDS, status=429, body="Too Many Requests")
    responses.get(FIELDS, status=503, body="<html>Service Unavailable</html>")
    responses.get(FIELDS, body=requests.ConnectionError(f"https://x?password={PASSWORD}"))
    connector = basic()

    failures = []
    for _ in range(4):
        with pytest.raises(RetryableError) as raised:
            connector.describe_field("contacts", FIELD)
        failures.append(raised.value)

    assert [(f.code, f.retry_after) for f in failures] == [
        ("TOO_MANY_REQUESTS", 7.0),
        ("TOO_MANY_REQUESTS", None),
        ("503", None),
        ("CONNECTION", None),
    ]
    assert all(PASSWORD not in f"{f!s} {f!r} {f.__cause__!r} {f.__context__!r}" for f in failures)


@responses.activate
def test_a_429_that_says_daily_is_the_daily_quota() -> None:
    discovered()
    responses.post(
        IMPORTS, status=429, body="Too Many Requests: the daily API call limit is spent."
    )
    with pytest.raises(DailyQuotaError, match="daily"):
        basic().write_batch("contacts", FIELD, [Update("1", "A")])


@responses.activate
def test_forbidden_is_fatal_and_secrets_in_a_body_are_redacted() -> None:
    discovered()
    responses.get(FIELDS, status=403, body=f"denied for Acme\\api.user:{PASSWORD}")
    with pytest.raises(FatalError, match="denied access") as raised:
        basic().describe_field("contacts", FIELD)
    assert PASSWORD not in str(raised.value) and "[redacted]" in str(raised.value)


# ---- against the emulator over HTTPS ------------------------------------------------------


@pytest.fixture
def served(sandbox_certificates: SandboxCertificates) -> Iterator[Any]:
    """Start an emulator built with the given options; stops every one at the end."""
    servers: list[EmulatorServer] = []

    def start(**options: Any) -> EloquaEmulator:
        emulator = EloquaEmulator(**options)
        server = EmulatorServer(emulator, sandbox_certificates)
        server.start()
        servers.append(server)
        return emulator

    yield start
    for server in servers:
        server.stop()


def connect(
    emulator: EloquaEmulator, certificates: SandboxCertificates, **options: Any
) -> EloquaConnector:
    return EloquaConnector(eloqua_config(emulator, certificates, **options))


def test_emulator_pages_every_contact_once_discovering_the_base_url_once(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: EloquaEmulator = served(records=2500)
    connector = connect(emulator, sandbox_certificates)

    records = list(connector.read_records("contacts", FIELD))
    again = list(connector.read_records("contacts", FIELD))

    assert len(records) == len({r.id for r in records}) == 2500 == len(again)
    assert emulator.calls["GET /id"] == 1
    assert emulator.calls["GET /api/rest/1.0/assets/contact/fields"] == 1
    assert emulator.calls["GET /api/rest/1.0/data/contacts"] == 6
    assert sum(1 for r in records if r.linked_account_id) == 834  # every third contact
    assert sum(1 for r in records if r.email and r.email.endswith("@gmail.com")) == 250
    assert all(r.value is None and r.website is None for r in records)


def test_emulator_modified_read_finds_imported_edited_and_new_contacts_only(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: EloquaEmulator = served(records=30)
    connector = connect(emulator, sandbox_certificates)
    ids = [r.id for r in connector.read_records("contacts", FIELD)]
    time.sleep(1.1)  # Eloqua stamps to the second: `since` falls after every seeded stamp
    since = dt.datetime.now(dt.UTC)
    time.sleep(1.1)
    [written] = connector.write_batch("contacts", FIELD, [Update(ids[3], "ICP")])
    emulator.edit_contact(ids[7], {"emailAddress": "moved@elsewhere.example"})
    [created] = emulator.add_records("contacts", [{"emailAddress": "new@acme.example"}])

    records = {r.id: r for r in connector.read_records("contacts", FIELD, modified_since=since)}

    assert written.ok and set(records) == {ids[3], ids[7], created}
    assert records[ids[3]].value == "ICP"
    assert records[ids[7]].email == "moved@elsewhere.example"
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    assert list(connector.read_records("contacts", FIELD, modified_since=later)) == []


def test_emulator_imports_a_full_batch_in_one_sync(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: EloquaEmulator = served(records=5000)
    connector = connect(emulator, sandbox_certificates)
    ids = [r.id for r in connector.read_records("contacts", FIELD)]
    before = connector.api_calls

    results = connector.write_batch("contacts", FIELD, [Update(i, f"S{i}") for i in ids])
    connector.write_batch("contacts", FIELD, [Update(ids[0], "")])

    assert all(r.ok for r in results) and len(results) == 5000
    assert connector.api_calls - before == 3 + 2  # definition, upload, poll; upload, poll
    assert emulator.calls["POST /api/bulk/2.0/contacts/imports"] == 1
    assert [w.record_id for w in emulator.writes[:5000]] == ids
    assert len({w.call for w in emulator.writes[:5000]}) == 1
    assert emulator.record("contacts", ids[0])["fields"][FIELD] is None
    assert emulator.record("contacts", ids[-1])["fields"][FIELD] == f"S{ids[-1]}"
    values = connector.read_values("contacts", FIELD, ids)
    assert values == {i: (None if n == 0 else f"S{i}") for n, i in enumerate(ids)}


def test_emulator_rejects_too_long_values_and_deleted_contacts(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: EloquaEmulator = served(records=6)
    ids = [r.id for r in connect(emulator, sandbox_certificates).read_records("contacts", FIELD)]
    emulator.delete_record("contacts", ids[4])
    connector = connect(emulator, sandbox_certificates)
    updates = [Update(i, "x" * (SMALL_TEXT_MAX + (n == 2))) for n, i in enumerate(ids)]

    results = connector.write_batch("contacts", FIELD, updates)

    assert [r.ok for r in results] == [True, True, False, True, False, True]
    assert results[2].code == "ELQ-00144" and "101 characters" in (results[2].message or "")
    assert (results[4].code, results[4].message) == ("ELQ-00085", "Contact does not exist.")
    assert sorted(w.record_id for w in emulator.writes) == sorted([*ids[:2], ids[3], ids[5]])
    assert emulator.calls["GET /api/bulk/2.0/syncs/{id}/rejects"] == 1


def test_emulator_warning_sync_with_no_rejected_row_writes_every_record(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: EloquaEmulator = served(records=3)
    connector = connect(emulator, sandbox_certificates)
    ids = [r.id for r in connector.read_records("contacts", FIELD)]
    emulator.faults.inject("sync_warning")

    results = connector.write_batch("contacts", FIELD, [Update(i, "w") for i in ids])

    assert [(r.ok, r.code) for r in results] == [(True, None)] * 3
    assert sorted(w.record_id for w in emulator.writes) == sorted(ids)
    # The sync did end `warning`: its rejects were read, and there were none.
    assert emulator.calls["GET /api/bulk/2.0/syncs/{id}/rejects"] == 1
    # A warning with rejects still fails those records only.
    emulator.faults.inject("sync_warning")
    emulator.faults.inject("record_failure", record_ids=[ids[1]], code="ELQ-00032")
    mixed = connector.write_batch("contacts", FIELD, [Update(i, "z") for i in ids])
    assert [(r.ok, r.code) for r in mixed] == [(True, None), (False, "ELQ-00032"), (True, None)]


def test_emulator_large_text_takes_32000_characters(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: EloquaEmulator = served(records=2)
    connector = connect(emulator, sandbox_certificates)
    a, b = (r.id for r in connector.read_records("contacts", SEGMENT_FIELD_LONG))

    results = connector.write_batch(
        "contacts", SEGMENT_FIELD_LONG, [Update(a, "y" * LARGE_TEXT_MAX), Update(b, "y" * 32_001)]
    )

    assert [r.ok for r in results] == [True, False]
    assert connector.describe_field("contacts", SEGMENT_FIELD_LONG).max_length == LARGE_TEXT_MAX


def test_emulator_throttling_is_retryable_with_its_retry_after(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: EloquaEmulator = served(records=1)
    connector = connect(emulator, sandbox_certificates)
    [record] = connector.read_records("contacts", FIELD)
    emulator.faults.inject("rate_limit", retry_after=3)

    with pytest.raises(RetryableError) as raised:
        connector.write_batch("contacts", FIELD, [Update(record.id, "v")])

    assert (raised.value.code, raised.value.retry_after) == ("TOO_MANY_REQUESTS", 3.0)
    [result] = connector.write_batch("contacts", FIELD, [Update(record.id, "v")])
    assert result.ok


def test_emulator_expired_session_is_recovered_through_id(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: EloquaEmulator = served(records=3)
    connector = connect(emulator, sandbox_certificates)
    [record, *_] = connector.read_records("contacts", FIELD)
    emulator.expire_tokens()

    [result] = connector.write_batch("contacts", FIELD, [Update(record.id, "fresh")])

    assert result.ok
    assert emulator.calls["GET /id"] == 2
    assert emulator.calls["POST /api/bulk/2.0/contacts/imports"] == 2  # refused once, then made


def test_emulator_polls_a_slow_sync_and_survives_a_failed_one(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: EloquaEmulator = served(records=2, sync_seconds=0.05)
    connector = connect(emulator, sandbox_certificates)
    ids = [r.id for r in connector.read_records("contacts", FIELD)]
    emulator.faults.inject("sync_error")

    with pytest.raises(RetryableError, match="ELQ-00146"):
        connector.write_batch("contacts", FIELD, [Update(i, "A") for i in ids])
    results = connector.write_batch("contacts", FIELD, [Update(i, "A") for i in ids])

    assert all(r.ok for r in results)
    assert emulator.calls["GET /api/bulk/2.0/syncs/{id}"] > 2  # active, then done
    assert emulator.calls["POST /api/bulk/2.0/contacts/imports"] == 2  # the failed one dropped
    assert [w.value for w in emulator.writes] == ["A", "A"]


def test_emulator_oauth_token_and_refused_credentials(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: EloquaEmulator = served(records=3)
    assert (
        len(
            list(
                connect(emulator, sandbox_certificates, auth="oauth").read_records(
                    "contacts", FIELD
                )
            )
        )
        == 3
    )
    for auth in ("oauth", "basic"):
        with pytest.raises(FatalError, match="Not authenticated"):
            connect(emulator, sandbox_certificates, auth=auth, valid=False).check_credentials()


def test_emulator_unknown_field_is_fatal_on_read_and_write(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: EloquaEmulator = served(records=1)
    connector = connect(emulator, sandbox_certificates)
    with pytest.raises(FatalError, match="field C_Nope1 not found on contacts"):
        list(connector.read_records("contacts", "C_Nope1"))
    with pytest.raises(FatalError, match="field C_Nope1 not found on contacts"):
        connector.write_batch("contacts", "C_Nope1", [Update("1001", "A")])
    with pytest.raises(FatalError, match="C_DateCreated is read-only"):
        connector.write_batch("contacts", "C_DateCreated", [Update("1001", "A")])
