"""The Marketo adapter: documented answers parsed (responses), then the emulator over HTTPS."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from responses import matchers

from connectors.base import QuotaUsage, Update
from connectors.errors import DailyQuotaError, FatalError, RetryableError
from connectors.marketo import DEFAULT_DAILY_QUOTA, MarketoConfig, MarketoConnector
from connectors.sandbox.marketo import SEGMENT_FIELD, MarketoEmulator
from connectors.sandbox.server import EmulatorServer
from connectors.sandbox.tls import SandboxCertificates
from tests.connectors.harness_marketo import marketo_connector

# Lower case: requests normalises the host, and the assertions compare URLs.
BASE = "https://123-abc-456.mktorest.com"
IDENTITY = f"{BASE}/identity/oauth/token"
LEADS = f"{BASE}/rest/v1/leads.json"
DESCRIBE = f"{BASE}/rest/v1/leads/describe.json"
USAGE = f"{BASE}/rest/v1/stats/usage.json"
PAGING_TOKEN = f"{BASE}/rest/v1/activities/pagingtoken.json"
ACTIVITIES = f"{BASE}/rest/v1/activities.json"
SECRET = "s3cr3t-client-secret-value"
TOKEN = "cdf01657-110d-4155-99a7-f986b2ff13a0:int"
FIELD = SEGMENT_FIELD
CREATED = "2024-05-01T12:00:00Z"


def connector(**options: Any) -> MarketoConnector:
    config = {"client_id": "client-id", "client_secret": SECRET, "base_url": BASE} | options
    return MarketoConnector(MarketoConfig(**config))


def token_answer(token: str = TOKEN, expires_in: int = 3599) -> dict[str, Any]:
    return {
        "access_token": token,
        "token_type": "bearer",
        "expires_in": expires_in,
        "scope": "apis@acmeinc.com",
    }


def ok(**body: Any) -> dict[str, Any]:
    return {"requestId": "e42b#14272d07d78", "success": True} | body


def failed(code: str, message: str) -> dict[str, Any]:
    return {
        "requestId": "e42b#14272d07d78",
        "success": False,
        "errors": [{"code": code, "message": message}],
    }


def query_of(call: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url or "").query)


def rest_calls() -> list[Any]:
    return [c for c in responses.calls if "/rest/" in (c.request.url or "")]


@pytest.fixture
def identity() -> Iterator[None]:
    """responses active, with the identity endpoint handing out TOKEN."""
    responses.start()
    try:
        responses.post(IDENTITY, json=token_answer())
        yield
    finally:
        responses.stop()
        responses.reset()


def leads_by_id(existing: dict[int, dict[str, Any]]) -> Callable[..., Any]:
    """A Get Leads by Filter Type (filterType=id) answering from `existing`."""

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        query = parse_qs(urlsplit(request.url or "").query)
        assert query["filterType"] == ["id"]
        fields = query["fields"][0].split(",")
        wanted = [int(i) for i in query["filterValues"][0].split(",")]
        rows = [
            {name: existing[i].get(name) for name in fields} | {"id": i}
            for i in wanted
            if i in existing
        ]
        return 200, {}, json.dumps(ok(result=rows))

    return answer


def new_leads(*lead_ids: int, dates: list[str] | None = None) -> dict[str, Any]:
    """A page of New Lead activities of these leads (dated `dates`, or all alike)."""
    activities = [
        {
            "id": 1000 + n,
            "marketoGUID": str(1000 + n),
            "leadId": lead_id,
            "activityDate": dates[n] if dates else "2024-05-01T00:00:00Z",
            "activityTypeId": 12,
            "primaryAttributeValueId": lead_id,
            "attributes": [{"name": "Source Type", "value": "Web service API"}],
        }
        for n, lead_id in enumerate(lead_ids)
    ]
    body = ok(nextPageToken="WQV2VQVPPCKHC6AQ====", moreResult=False)
    return body | ({"result": activities} if activities else {})


def windows_read() -> list[str]:
    """The first id of each id window asked for, in order."""
    return [
        query_of(c)["filterValues"][0].split(",")[0]
        for c in rest_calls()
        if c.request.url.startswith(LEADS)
    ]


# ---- configuration ------------------------------------------------------------------------


def test_config_checks_and_the_rest_root() -> None:
    with pytest.raises(FatalError, match="client_id and client_secret"):
        MarketoConfig(client_id="", client_secret=SECRET, base_url=BASE)
    with pytest.raises(FatalError, match="https://"):
        MarketoConfig(client_id="c", client_secret=SECRET, base_url="123-ABC-456.mktorest.com")
    for given in (BASE, f"{BASE}/", f"{BASE}/rest", f"{BASE}/identity/"):
        assert MarketoConfig(client_id="c", client_secret=SECRET, base_url=given).root == BASE
    config = MarketoConfig(client_id="c", client_secret=SECRET, base_url=BASE)
    assert config.daily_quota == DEFAULT_DAILY_QUOTA == 50_000
    shown = repr(config) + repr(MarketoConnector(config))
    assert SECRET not in shown and BASE in shown


# ---- reading ------------------------------------------------------------------------------


def test_reads_id_windows_and_jumps_a_gap_to_the_next_lead(identity: None) -> None:
    existing: dict[int, dict[str, Any]] = {
        1: {"email": "ada@acme.example", "website": "acme.example", FIELD: "A;B"},
        2: {"email": "bo@beta.example", "website": None, FIELD: "", "createdAt": CREATED},
        # 301-1,500 were deleted: empty windows that are not the end.
        1501: {"email": None, FIELD: None, "createdAt": "2024-05-02T09:00:00Z"},
    }
    responses.add_callback(responses.GET, LEADS, callback=leads_by_id(existing))
    responses.get(PAGING_TOKEN, json=ok(nextPageToken="GIYDAOBNGEYS2MBWKQYDAORQ===="))
    responses.get(ACTIVITIES, json=new_leads(2, 1501))
    responses.get(USAGE, json=ok(result=[{"date": "2024-05-01", "total": 120, "users": []}]))
    # One lead a window is dense enough for an export: not what this test is about.
    reader = connector(export_threshold=0)

    records = list(reader.read_records("Leads", FIELD))

    assert [r.id for r in records] == ["1", "2", "1501"]
    assert (records[0].email, records[0].website, records[0].value) == (
        "ada@acme.example",
        "acme.example",
        "A;B",
    )
    assert records[1].value is None and records[1].website is None
    assert all(r.linked_account_id is None for r in records)
    # The gap of four windows is jumped: one empty window, then the next lead's own window.
    assert windows_read() == ["1", "301", "1501", "1801"]
    windows = [query_of(c) for c in rest_calls() if c.request.url.startswith(LEADS)]
    assert all(len(w["filterValues"][0].split(",")) == 300 for w in windows)
    # createdAt tells how densely leads were created (whether an export is worth it).
    assert windows[0]["fields"] == [f"id,email,website,{FIELD},createdAt"]
    assert windows[0]["batchSize"] == ["300"]
    activities = [query_of(c) for c in rest_calls() if c.request.url.startswith(ACTIVITIES)]
    assert [a["activityTypeIds"] for a in activities] == [["12"], ["12"]]
    # New Lead activities after the newest lead read (after its second: see the next test).
    since = [
        query_of(c)["sinceDatetime"][0] for c in rest_calls() if "pagingtoken" in c.request.url
    ]
    assert since == ["2024-05-01T12:00:00Z", "2024-05-02T09:00:00Z"]
    assert reader.quota == QuotaUsage(used=120, limit=50_000, period="daily")
    # token, 4 windows, 2 x (paging token, activities), usage
    assert reader.api_calls == 10
    assert all(c.request.headers["Authorization"] == f"Bearer {TOKEN}" for c in rest_calls())


def test_an_empty_instance_is_three_calls_and_a_look_from_before_any_lead(
    identity: None,
) -> None:
    responses.add_callback(responses.GET, LEADS, callback=leads_by_id({}))
    responses.get(PAGING_TOKEN, json=ok(nextPageToken="T1"))
    responses.get(ACTIVITIES, json=new_leads())
    responses.get(USAGE, json=ok(result=[]))
    reader = connector()

    assert list(reader.read_records("leads", FIELD)) == []

    since = [
        query_of(c)["sinceDatetime"][0] for c in rest_calls() if "pagingtoken" in c.request.url
    ]
    assert since == ["2006-01-01T00:00:00Z"]
    assert windows_read() == ["1"]
    # token, the window, paging token, activities, usage
    assert reader.api_calls == 5


def test_leads_all_deleted_at_the_start_are_found_from_the_oldest_activities(
    identity: None,
) -> None:
    responses.add_callback(responses.GET, LEADS, callback=leads_by_id({4000: {FIELD: "x"}}))
    responses.get(PAGING_TOKEN, json=ok(nextPageToken="T1"))
    responses.get(ACTIVITIES, json=new_leads(4000))
    responses.get(USAGE, json=ok(result=[]))

    assert [r.id for r in connector().read_records("leads", FIELD)] == ["4000"]
    assert windows_read() == ["1", "4000", "4300"]


def test_new_lead_activities_are_followed_while_more_result(identity: None) -> None:
    responses.add_callback(responses.GET, LEADS, callback=leads_by_id({3: {FIELD: "a"}}))
    responses.get(PAGING_TOKEN, json=ok(nextPageToken="T1"))
    # Fewer than 300 activities with moreResult true: there are more all the same.
    responses.get(
        ACTIVITIES,
        json=new_leads(3) | {"moreResult": True, "nextPageToken": "T2"},
        match=[matchers.query_param_matcher({"nextPageToken": "T1"}, strict_match=False)],
    )
    responses.get(
        ACTIVITIES,
        json=new_leads(900),
        match=[matchers.query_param_matcher({"nextPageToken": "T2"}, strict_match=False)],
    )
    responses.get(USAGE, json=ok(result=[]))

    assert [r.id for r in connector().read_records("leads", FIELD)] == ["3"]

    # The second page named lead 900 (gone by the time its window was read, which comes back
    # empty: a new look from there finds nothing more).
    assert windows_read() == ["1", "301", "900"]
    assert sum(c.request.url.startswith(ACTIVITIES) for c in rest_calls()) == 4


def test_a_lower_id_in_the_last_second_of_a_page_is_looked_for_on_the_next(
    identity: None,
) -> None:
    existing = {n: {FIELD: str(n)} for n in (1, 610, 650)}
    responses.add_callback(responses.GET, LEADS, callback=leads_by_id(existing))
    responses.get(PAGING_TOKEN, json=ok(nextPageToken="T1"))
    # 650 comes in the page's last second: 610, created that same second, is on the next page.
    first = new_leads(1, 650, dates=["2024-05-01T00:00:00Z", "2024-05-01T00:00:09Z"])
    responses.get(
        ACTIVITIES,
        json=first | {"moreResult": True, "nextPageToken": "T2"},
        match=[matchers.query_param_matcher({"nextPageToken": "T1"}, strict_match=False)],
    )
    responses.get(
        ACTIVITIES,
        json=new_leads(610, dates=["2024-05-01T00:00:09Z"]),
        match=[matchers.query_param_matcher({"nextPageToken": "T2"}, strict_match=False)],
    )
    responses.get(USAGE, json=ok(result=[]))

    assert [r.id for r in connector().read_records("leads", FIELD)] == ["1", "610", "650"]
    assert windows_read()[:3] == ["1", "301", "610"]


def test_activities_that_do_not_move_past_a_page_fail_the_read(identity: None) -> None:
    responses.add_callback(responses.GET, LEADS, callback=leads_by_id({}))
    responses.get(PAGING_TOKEN, json=ok(nextPageToken="T1"))
    responses.get(ACTIVITIES, json=new_leads() | {"moreResult": True, "nextPageToken": "T1"})

    with pytest.raises(RetryableError, match="did not move past a page"):
        list(connector().read_records("leads", FIELD))


def test_leads_pages_follow_next_page_token(identity: None) -> None:
    responses.get(
        LEADS,
        json=ok(result=[{"id": 1, FIELD: "a"}], moreResult=True, nextPageToken="P2"),
        match=[matchers.query_param_matcher({"filterValues": "1,2"}, strict_match=False)],
    )
    responses.get(LEADS, json=ok(result=[{"id": 2, FIELD: "b"}]))
    reader = connector()
    assert reader.read_values("leads", FIELD, ["1", "2"]) == {"1": "a", "2": "b"}
    assert query_of(rest_calls()[1])["nextPageToken"] == ["P2"]


def test_reading_is_lazy(identity: None) -> None:
    reader = connector()
    records = reader.read_records("leads", FIELD)
    assert reader.api_calls == 0
    responses.add_callback(responses.GET, LEADS, callback=leads_by_id({7: {FIELD: "x"}}))
    assert next(records).id == "7"
    assert reader.api_calls == 2  # the token and the first window


def test_read_values_is_one_call_and_leaves_out_what_marketo_lacks(identity: None) -> None:
    responses.get(
        LEADS,
        json=ok(result=[{"id": 1, FIELD: "A;B"}, {"id": 3, FIELD: None}, {"id": 9, FIELD: "Z"}]),
    )
    reader = connector()

    values = reader.read_values("leads", FIELD, ["1", "2", "3", "1", "x-1"])

    assert values == {"1": "A;B", "3": None}
    assert query_of(rest_calls()[0]) == {
        "filterType": ["id"],
        "filterValues": ["1,2,3"],
        "fields": [f"id,{FIELD}"],
        "batchSize": ["300"],
    }
    assert reader.api_calls == 2


def test_read_values_over_a_batch_or_of_nothing_costs_nothing() -> None:
    reader = connector()
    with pytest.raises(ValueError, match="at most 300"):
        reader.read_values("leads", FIELD, [str(n) for n in range(301)])
    with pytest.raises(FatalError, match="supported"):
        reader.read_values("contacts", FIELD, ["1"])
    assert reader.read_values("leads", FIELD, []) == {}
    assert reader.read_values("leads", FIELD, ["not-an-id"]) == {}
    assert reader.api_calls == 0


# ---- writing ------------------------------------------------------------------------------


def test_a_batch_is_one_sync_call_with_per_lead_outcomes(identity: None) -> None:
    responses.post(
        LEADS,
        json=ok(
            result=[
                {"id": 1, "status": "updated"},
                {"status": "skipped", "reasons": [{"code": "1004", "message": "Lead not found"}]},
                {
                    "id": 3,
                    "status": "skipped",
                    "reasons": [{"code": "1003", "message": "Invalid data"}],
                },
                {"id": 4, "status": "updated"},
            ]
        ),
    )
    writer = connector()
    updates = [
        Update("1", "A;B"),
        Update("2", "C"),
        Update("3", "D"),
        Update("4", ""),
        Update("x", "E"),
    ]

    results = writer.write_batch("leads", FIELD, updates)

    assert [(r.record_id, r.ok, r.code) for r in results] == [
        ("1", True, None),
        ("2", False, "1004"),
        ("3", False, "1003"),
        ("4", True, None),
        ("x", False, "1001"),
    ]
    assert results[1].message == "Lead not found"
    [sync] = rest_calls()
    assert json.loads(sync.request.body) == {
        "action": "updateOnly",
        "lookupField": "id",
        "input": [
            {"id": 1, FIELD: "A;B"},
            {"id": 2, FIELD: "C"},
            {"id": 3, FIELD: "D"},
            {"id": 4, FIELD: None},
        ],
    }
    assert writer.api_calls == 2


def test_results_that_do_not_line_up_are_matched_by_id(identity: None) -> None:
    responses.post(LEADS, json=ok(result=[{"id": 2, "status": "updated"}]))
    results = connector().write_batch("leads", FIELD, [Update("1", "a"), Update("2", "b")])
    assert [(r.ok, r.code) for r in results] == [(False, "NO_RESULT"), (True, None)]


def test_an_unknown_field_stops_the_run(identity: None) -> None:
    reason = {"code": "1006", "message": f"Field '{FIELD}' not found"}
    responses.post(LEADS, json=ok(result=[{"status": "skipped", "reasons": [reason]}]))
    with pytest.raises(FatalError, match=f"field {FIELD} not found on leads"):
        connector().write_batch("leads", FIELD, [Update("1", "a")])


def test_more_than_a_batch_or_a_repeated_lead_is_refused_before_any_call() -> None:
    writer = connector()
    with pytest.raises(ValueError, match="at most 300"):
        writer.write_batch("leads", FIELD, [Update(str(n), "x") for n in range(301)])
    with pytest.raises(ValueError, match="twice"):
        writer.write_batch("leads", FIELD, [Update("1", "x"), Update("1", "y")])
    assert writer.write_batch("leads", FIELD, []) == []
    assert writer.api_calls == 0


# ---- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind", "retry_after"),
    [
        (("606", "Max rate limit '100' exceeded with in '20' secs"), RetryableError, 20.0),
        (("615", "Concurrent access limit reached"), RetryableError, 1.0),
        (("604", "Request timed out"), RetryableError, None),
        (("611", "System error"), RetryableError, None),
        (("607", "Daily quota reached"), DailyQuotaError, None),
        (("603", "Access denied"), FatalError, None),
        (("1003", "Too many results match the filter"), FatalError, None),
    ],
)
def test_response_level_errors_are_classified(
    identity: None, error: tuple[str, str], kind: type[Exception], retry_after: float | None
) -> None:
    responses.post(LEADS, json=failed(*error))
    with pytest.raises(kind, match=error[0]) as raised:
        connector().write_batch("leads", FIELD, [Update("1", "x")])
    assert getattr(raised.value, "code", None) == error[0]
    assert getattr(raised.value, "retry_after", None) == retry_after


def test_an_unknown_field_on_read_is_fatal(identity: None) -> None:
    responses.get(LEADS, json=failed("1006", "Field 'nope' not found"))
    with pytest.raises(FatalError, match="field nope not found on leads"):
        connector().read_values("leads", "nope", ["1"])


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        ({"status": 503, "body": "Service Unavailable"}, RetryableError),
        ({"status": 414, "body": "Request-URI Too Long"}, FatalError),
        ({"status": 200, "body": "<html>maintenance</html>"}, RetryableError),
        ({"body": requests.ConnectionError("reset by peer")}, RetryableError),
    ],
)
def test_http_level_failures(identity: None, answer: dict[str, Any], kind: type[Exception]) -> None:
    responses.get(LEADS, **answer)
    with pytest.raises(kind) as raised:
        connector().read_values("leads", FIELD, ["1"])
    assert raised.value.__cause__ is None and raised.value.__context__ is None


# ---- tokens -------------------------------------------------------------------------------


@responses.activate
@pytest.mark.parametrize("code", ["601", "602"])
def test_a_refused_token_is_renewed_once_and_the_call_repeated(code: str) -> None:
    responses.post(IDENTITY, json=token_answer("first:int"))
    responses.post(IDENTITY, json=token_answer("second:int"))
    responses.post(
        LEADS,
        json=failed(code, "Access token expired"),
        match=[matchers.header_matcher({"Authorization": "Bearer first:int"})],
    )
    responses.post(
        LEADS,
        json=ok(result=[{"id": 1, "status": "updated"}]),
        match=[matchers.header_matcher({"Authorization": "Bearer second:int"})],
    )
    writer = connector()

    [result] = writer.write_batch("leads", FIELD, [Update("1", "x")])

    assert result.ok
    assert writer.api_calls == 4  # token, refused call, token, call
    form = parse_qs(str(responses.calls[0].request.body))
    assert form == {
        "grant_type": ["client_credentials"],
        "client_id": ["client-id"],
        "client_secret": [SECRET],
    }
    assert SECRET not in (responses.calls[0].request.url or "")


@responses.activate
def test_a_token_refused_after_renewal_is_fatal() -> None:
    responses.post(IDENTITY, json=token_answer())
    responses.post(LEADS, json=failed("601", "Access token invalid"))
    writer = connector()
    with pytest.raises(FatalError, match="601"):
        writer.write_batch("leads", FIELD, [Update("1", "x")])
    assert writer.api_calls == 4


@responses.activate
def test_a_token_near_its_expiry_is_renewed_before_use(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr("connectors.http.time.monotonic", lambda: clock[0])
    responses.post(IDENTITY, json=token_answer("short:int", expires_in=90))
    responses.post(IDENTITY, json=token_answer("long:int", expires_in=3599))
    responses.get(LEADS, json=ok(result=[]))
    reader = connector()
    reader.read_values("leads", FIELD, ["1"])
    clock[0] += 89  # a token this short is used until it expires, not a minute before
    reader.read_values("leads", FIELD, ["1"])
    clock[0] += 1.5
    reader.read_values("leads", FIELD, ["1"])
    clock[0] += 3599 - 59  # a long one is renewed a minute before it expires
    reader.read_values("leads", FIELD, ["1"])
    used = [c.request.headers.get("Authorization") for c in responses.calls]
    assert used == [
        None,
        "Bearer short:int",
        "Bearer short:int",
        None,
        "Bearer long:int",
        None,
        "Bearer long:int",
    ]


@responses.activate
def test_bad_client_credentials_are_fatal_and_never_shown() -> None:
    body = {"error": "invalid_client", "error_description": "Bad client credentials"}
    responses.post(IDENTITY, status=401, json=body)
    with pytest.raises(FatalError, match="Bad client credentials") as raised:
        connector().check_credentials()
    assert SECRET not in f"{raised.value!s} {raised.value!r}"


@responses.activate
def test_a_failing_identity_service_is_retryable() -> None:
    responses.post(IDENTITY, status=503, body="unavailable")
    with pytest.raises(RetryableError, match="identity"):
        connector().check_credentials()


def test_a_message_echoing_a_secret_is_redacted(identity: None) -> None:
    responses.post(LEADS, json=failed("609", f"Invalid JSON near {SECRET} and {TOKEN}"))
    with pytest.raises(FatalError) as raised:
        connector().write_batch("leads", FIELD, [Update("1", "x")])
    assert SECRET not in str(raised.value) and TOKEN not in str(raised.value)
    assert "[redacted]" in str(raised.value)


@responses.activate
def test_the_session_ignores_requests_ca_bundle_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/env-ca.pem")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    responses.post(IDENTITY, json=token_answer())
    responses.get(LEADS, json=ok(result=[]))
    connector(ca_bundle="/run/sandbox-ca.pem").read_values("leads", FIELD, ["1"])
    for call in responses.calls:
        sent = call.request.req_kwargs  # type: ignore[attr-defined]
        assert sent["verify"] == "/run/sandbox-ca.pem"
        assert not sent["proxies"]


# ---- describing the field and the quota ---------------------------------------------------


def described(**overrides: Any) -> dict[str, Any]:
    segment = {
        "id": 1001,
        "displayName": "Segment Names",
        "dataType": "string",
        "length": 255,
        "rest": {"name": FIELD, "readOnly": False},
        "soap": {"name": "SegmentNames", "readOnly": False},
    } | overrides
    soap_only = {"id": 7, "displayName": "Hidden", "dataType": "string", "soap": {"name": "Hidden"}}
    return ok(result=[segment, soap_only])


def test_describes_a_string_field_with_its_length(identity: None) -> None:
    responses.get(DESCRIBE, json=described())
    info = connector().describe_field("leads", "SEGMENTNAMES")
    assert (info.name, info.type, info.max_length, info.writable) == (FIELD, "string", 255, True)
    assert info.label == "Segment Names"


def test_a_read_only_field_and_a_missing_or_soap_only_one(identity: None) -> None:
    responses.get(
        DESCRIBE,
        json=described(dataType="text", length=None, rest={"name": FIELD, "readOnly": True}),
    )
    reader = connector()
    info = reader.describe_field("leads", FIELD)
    assert (info.type, info.max_length, info.writable) == ("text", None, False)
    for missing in ("nope", "Hidden"):
        with pytest.raises(FatalError, match=f"field {missing} not found on leads"):
            reader.describe_field("leads", missing)


def test_check_credentials_reports_todays_usage(identity: None) -> None:
    responses.get(USAGE, json=ok(result=[{"date": "2024-05-01", "total": 812, "users": []}]))
    checker = connector(daily_quota=10_000)
    checker.check_credentials()
    assert checker.quota == QuotaUsage(used=812, limit=10_000, period="daily")
    assert checker.api_calls == 2


def test_usage_the_api_user_may_not_read_is_no_credential_problem(identity: None) -> None:
    responses.get(USAGE, json=failed("603", "Access denied"))
    checker = connector()
    checker.check_credentials()
    assert checker.quota is None


def test_a_spent_quota_is_reported_full(identity: None) -> None:
    responses.get(USAGE, json=failed("607", "Daily quota reached"))
    checker = connector()
    with pytest.raises(DailyQuotaError):
        checker.check_credentials()
    assert checker.quota == QuotaUsage(used=50_000, limit=50_000, period="daily")


def test_usage_failing_after_a_read_does_not_fail_the_read(identity: None) -> None:
    responses.add_callback(responses.GET, LEADS, callback=leads_by_id({1: {FIELD: "a"}}))
    responses.get(PAGING_TOKEN, json=ok(nextPageToken="T"))
    responses.get(ACTIVITIES, json=new_leads(1))
    responses.get(USAGE, json=failed("606", "Max rate limit '100' exceeded with in '20' secs"))
    reader = connector()
    assert [r.id for r in reader.read_records("leads", FIELD)] == ["1"]
    assert reader.quota is None


# ---- against the emulator over HTTPS ------------------------------------------------------


@pytest.fixture
def served(sandbox_certificates: SandboxCertificates) -> Iterator[Callable[..., MarketoEmulator]]:
    """Start an emulator built with the given options; stops every one at the end."""
    servers: list[EmulatorServer] = []

    def start(**options: Any) -> MarketoEmulator:
        emulator = MarketoEmulator(**options)
        server = EmulatorServer(emulator, sandbox_certificates)
        server.start()
        servers.append(server)
        return emulator

    yield start
    for server in servers:
        server.stop()


def test_emulator_reads_every_seeded_lead_across_a_gap(
    served: Callable[..., MarketoEmulator], sandbox_certificates: SandboxCertificates
) -> None:
    emulator = served(records=1000)
    for lead_id in range(301, 700):
        emulator.delete_record("leads", str(lead_id))
    reader = marketo_connector(emulator, sandbox_certificates)

    records = list(reader.read_records("leads", FIELD))

    assert [int(r.id) for r in records] == [*range(1, 301), *range(700, 1001)]
    sample = records[1]
    assert (sample.email, sample.website) == (
        "brook.archer@company0.com",
        "https://www.company0.com",
    )
    # Windows 1, 301 (empty: a look finds lead 700), 700, 1000 and 1300 (empty: a look finds
    # nothing more).
    assert emulator.calls["GET /rest/v1/leads.json"] == 5
    assert emulator.calls["GET /rest/v1/activities/pagingtoken.json"] == 2
    assert emulator.calls["GET /rest/v1/activities.json"] == 2
    assert reader.quota is not None and reader.quota.used == sum(emulator.calls.values()) - 1


def read_counting(
    emulator: MarketoEmulator, sandbox_certificates: SandboxCertificates, **options: Any
) -> tuple[list[int], int]:
    """Every lead id a full read yields, and the calls it made."""
    reader = marketo_connector(emulator, sandbox_certificates, **options)
    ids = [int(record.id) for record in reader.read_records("leads", FIELD)]
    assert len(ids) == len(set(ids)), "a lead was read twice"
    return ids, reader.api_calls


# The calls a full read makes besides its id windows: the access token, the empty window past
# the last lead, the look at New Lead activities past it (paging token and one page), the usage.
READ_OVERHEAD = 5


def test_emulator_a_read_costs_its_windows_and_a_constant(
    served: Callable[..., MarketoEmulator], sandbox_certificates: SandboxCertificates
) -> None:
    # 3,000 leads created a minute apart up to midnight: the last day's 1,440 New Lead
    # activities are not paged through (five pages they were).
    emulator = served(records=3_000)

    ids, calls = read_counting(emulator, sandbox_certificates)

    assert ids == list(range(1, 3_001))
    assert calls == 3_000 // 300 + READ_OVERHEAD
    assert emulator.calls["GET /rest/v1/activities.json"] == 1


def test_emulator_leads_loaded_at_once_cost_no_more(
    served: Callable[..., MarketoEmulator], sandbox_certificates: SandboxCertificates
) -> None:
    # An instance loaded in one go (as the benchmark's): every New Lead activity shares a
    # second or two, and the look past the last lead starts after the newest one's.
    emulator = served()
    emulator.add_records("leads", [{"email": f"p{n}@acme.example"} for n in range(3_000)])

    ids, calls = read_counting(emulator, sandbox_certificates, export_threshold=0)

    assert ids == list(range(1, 3_001))
    assert calls == 3_000 // 300 + READ_OVERHEAD
    assert emulator.calls["GET /rest/v1/activities.json"] == 1


def test_emulator_the_last_lead_at_a_window_edge(
    served: Callable[..., MarketoEmulator], sandbox_certificates: SandboxCertificates
) -> None:
    emulator = served(records=600)

    ids, calls = read_counting(emulator, sandbox_certificates)

    assert ids == list(range(1, 601))
    assert calls == 2 + READ_OVERHEAD
    assert emulator.calls["GET /rest/v1/leads.json"] == 3


def test_emulator_gaps_larger_than_a_window_are_jumped(
    served: Callable[..., MarketoEmulator], sandbox_certificates: SandboxCertificates
) -> None:
    emulator = served(records=4_000)
    kept = {*range(1, 251), *range(1_400, 1_451), 2_100, *range(3_901, 4_001)}
    for lead_id in set(range(1, 4_001)) - kept:
        emulator.delete_record("leads", str(lead_id))

    ids, calls = read_counting(emulator, sandbox_certificates)

    assert ids == sorted(kept)
    # Windows 1, 301 (empty), 1400, 1700 (empty), 2100, 2400 (empty), 3901, 4201 (empty): each
    # empty window costs a look (two calls), the last finding nothing.
    assert emulator.calls["GET /rest/v1/leads.json"] == 8
    assert emulator.calls["GET /rest/v1/activities.json"] == 4
    assert calls == 4 + READ_OVERHEAD + 3 * 3


def test_emulator_an_empty_instance_and_one_emptied(
    served: Callable[..., MarketoEmulator], sandbox_certificates: SandboxCertificates
) -> None:
    empty = served()
    assert read_counting(empty, sandbox_certificates) == ([], READ_OVERHEAD)

    emptied = served(records=700)
    for lead_id in range(1, 701):
        emptied.delete_record("leads", str(lead_id))
    assert read_counting(emptied, sandbox_certificates) == ([], READ_OVERHEAD)


def test_emulator_a_lead_created_after_the_last_window_is_found(
    served: Callable[..., MarketoEmulator], sandbox_certificates: SandboxCertificates
) -> None:
    emulator = served(records=300)
    for lead_id in range(1, 301):
        emulator.delete_record("leads", str(lead_id))
    [added] = emulator.add_records("leads", [{"email": "late@acme.example"}])

    assert read_counting(emulator, sandbox_certificates)[0] == [int(added)]


def test_emulator_takes_a_full_batch_in_one_call_and_reads_it_back(
    served: Callable[..., MarketoEmulator], sandbox_certificates: SandboxCertificates
) -> None:
    emulator = served(records=300)
    client = marketo_connector(emulator, sandbox_certificates)
    ids = [str(n) for n in range(1, 301)]
    results = client.write_batch("leads", FIELD, [Update(i, f"Tier {i}") for i in ids])
    assert all(r.ok for r in results)
    assert emulator.calls["POST /rest/v1/leads.json"] == 1
    values = client.read_values("leads", FIELD, ids)
    assert values == {i: f"Tier {i}" for i in ids}
    assert emulator.calls["GET /rest/v1/leads.json"] == 1


def test_emulator_rate_limit_is_retryable_after_twenty_seconds(
    served: Callable[..., MarketoEmulator], sandbox_certificates: SandboxCertificates
) -> None:
    emulator = served(records=1, calls_per_twenty_seconds=2, window_seconds=0.3)
    client = marketo_connector(emulator, sandbox_certificates)
    client.read_values("leads", FIELD, ["1"])
    client.read_values("leads", FIELD, ["1"])
    with pytest.raises(RetryableError) as raised:
        client.read_values("leads", FIELD, ["1"])
    assert (raised.value.code, raised.value.retry_after) == ("606", 20.0)
    time.sleep(0.35)
    assert client.read_values("leads", FIELD, ["1"]) == {"1": None}


def test_emulator_concurrency_limit_is_retryable_soon(
    served: Callable[..., MarketoEmulator], sandbox_certificates: SandboxCertificates
) -> None:
    emulator = served(records=1, latency=0.3, max_concurrent=1)
    slow, other = (marketo_connector(emulator, sandbox_certificates) for _ in range(2))
    slow.check_credentials()
    other.check_credentials()
    errors: list[Exception] = []

    def read() -> None:
        try:
            slow.read_values("leads", FIELD, ["1"])
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    time.sleep(0.1)
    with pytest.raises(RetryableError) as raised:
        other.read_values("leads", FIELD, ["1"])
    thread.join()
    assert errors == []
    assert (raised.value.code, raised.value.retry_after) == ("615", 1.0)


def test_emulator_daily_quota_is_its_own_kind_and_reported(
    served: Callable[..., MarketoEmulator], sandbox_certificates: SandboxCertificates
) -> None:
    emulator = served(records=1, daily_quota=3)
    client = marketo_connector(emulator, sandbox_certificates, daily_quota=3)
    client.check_credentials()
    assert client.quota == QuotaUsage(used=1, limit=3, period="daily")
    client.read_values("leads", FIELD, ["1"])
    client.read_values("leads", FIELD, ["1"])
    with pytest.raises(DailyQuotaError, match="607"):
        client.read_values("leads", FIELD, ["1"])


def test_emulator_expired_token_is_renewed_and_a_live_one_reused(
    served: Callable[..., MarketoEmulator], sandbox_certificates: SandboxCertificates
) -> None:
    emulator = served(records=2)
    first, second = (marketo_connector(emulator, sandbox_certificates) for _ in range(2))
    first.check_credentials()
    second.check_credentials()
    emulator.faults.inject("expire_token")
    [result] = first.write_batch("leads", FIELD, [Update("2", "renewed")])
    assert result.ok and emulator.record("leads", "2")[FIELD] == "renewed"
    # The second connector's token expired too; renewing it hands out the first one's new token.
    assert second.read_values("leads", FIELD, ["2"]) == {"2": "renewed"}
    assert emulator.calls["POST /identity/oauth/token"] == 4
    assert first.api_calls == 5 and second.api_calls == 5
