"""HubSpot's incremental read (connectors/hubspot_search.py): the search and associations calls it
sends and parses (responses), then windows, ties, edits and the search rate limit against the
emulator over HTTPS."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import responses

from connectors.base import Record
from connectors.errors import FatalError
from connectors.hubspot import HubSpotConnector
from connectors.sandbox.hubspot import HubSpotEmulator
from connectors.sandbox.server import EmulatorServer
from connectors.sandbox.tls import SandboxCertificates
from tests.connectors.harness_hubspot import hubspot_connector
from tests.connectors.test_hubspot import BASE, FIELD, contact, error_body, private_app, sent_json

SEARCH = f"{BASE}/crm/v3/objects/contacts/search"
ASSOCIATIONS = f"{BASE}/crm/v4/associations/contacts/companies/batch/read"
SINCE = dt.datetime(2026, 3, 1, 12, 0, 0, 123_456, tzinfo=dt.UTC)
PRIMARY = {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": "Primary"}
UNLABELED = {"category": "HUBSPOT_DEFINED", "typeId": 279, "label": None}


def epoch_ms(moment: dt.datetime) -> int:
    return (moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)


def no_companies(*ids: str) -> dict[str, Any]:
    """A v4 batch associations answer (207) for records without a company."""
    errors = [
        {
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
            "context": {"fromObjectId": [record_id]},
            "message": f"No company is associated with contact {record_id}.",
        }
        for record_id in ids
    ]
    return {"status": "COMPLETE", "results": [], "numErrors": len(errors), "errors": errors}


def modified(connector: HubSpotConnector, object_type: str = "contacts") -> list[Record]:
    return list(connector.read_records(object_type, FIELD, modified_since=SINCE))


# ---- what is sent and how the answers are read ----------------------------------------------


@responses.activate
def test_searches_by_modification_time_then_reads_each_pages_companies() -> None:
    first = contact("1", email="ada@acme.example", website="acme.example", segment_names="A")
    first["properties"]["lastmodifieddate"] = "2026-03-01T12:00:00.500Z"
    second = contact("2", email="bo@beta.example", segment_names="")
    second["properties"]["lastmodifieddate"] = "2026-03-01T12:00:01.000Z"
    third = contact("3", email="cy@gamma.example")
    third["properties"]["lastmodifieddate"] = "2026-03-01T12:00:01.000Z"
    responses.post(
        SEARCH, json={"total": 3, "results": [first, second], "paging": {"next": {"after": "2"}}}
    )
    linked = [
        {"toObjectId": 88, "associationTypes": [UNLABELED]},
        {"toObjectId": 77, "associationTypes": [PRIMARY, UNLABELED]},
    ]
    answer = no_companies("2") | {"results": [{"from": {"id": "1"}, "to": linked}]}
    responses.post(ASSOCIATIONS, status=207, json=answer)
    responses.post(SEARCH, json={"total": 2, "results": [second, third]})
    responses.post(ASSOCIATIONS, status=207, json=no_companies("2", "3"))
    connector = private_app()

    records = modified(connector)

    assert [r.id for r in records] == ["1", "2", "3"]  # the second page's "2" is not read twice
    assert records[0] == Record("1", "A", "ada@acme.example", "acme.example", "77")
    assert records[1] == Record("2", None, "bo@beta.example", None, None)
    assert sent_json(responses.calls[0]) == {
        "filterGroups": [
            {
                "filters": [
                    # since's own millisecond is read whole: HubSpot keeps no finer time
                    {
                        "propertyName": "lastmodifieddate",
                        "operator": "GTE",
                        "value": "1772366400123",
                    }
                ]
            }
        ],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["email", "lastmodifieddate", FIELD, "website"],
        "limit": 200,
    }
    assert sent_json(responses.calls[1]) == {"inputs": [{"id": "1"}, {"id": "2"}]}
    # The next query starts at the last moment read, past the one record read at it.
    follow = sent_json(responses.calls[2])
    assert follow["filterGroups"][0]["filters"][0] == {
        "propertyName": "lastmodifieddate",
        "operator": "GTE",
        "value": str(epoch_ms(dt.datetime(2026, 3, 1, 12, 0, 1, tzinfo=dt.UTC))),
    }
    assert (follow["after"], follow["limit"]) == ("1", 200)
    assert connector.api_calls == 4


@responses.activate
def test_companies_are_searched_by_hs_lastmodifieddate_without_an_associations_read() -> None:
    company = contact("9", domain="acme.example", website="www.acme.example")
    company["properties"]["hs_lastmodifieddate"] = "1772366401000"  # epoch ms is read too
    responses.post(f"{BASE}/crm/v3/objects/companies/search", json={"results": [company]})
    connector = private_app()

    [record] = modified(connector, "companies")

    assert record == Record("9", None, None, "acme.example", "9")
    body = sent_json(responses.calls[0])
    assert body["properties"] == ["domain", "hs_lastmodifieddate", FIELD, "website"]
    assert body["sorts"] == [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}]
    assert connector.api_calls == 1


@responses.activate
def test_nothing_modified_is_one_search_call() -> None:
    responses.post(SEARCH, json={"total": 0, "results": []})
    connector = private_app()
    assert modified(connector) == []
    assert connector.api_calls == 1


@responses.activate
def test_the_search_limits_429_is_waited_out_as_retry_after_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[float] = []
    monkeypatch.setattr("connectors.base.time.sleep", waits.append)
    refusal = error_body("You have reached your secondly limit.", "RATE_LIMITS")
    responses.post(SEARCH, status=429, json=refusal, headers={"Retry-After": "3"})
    found = contact("1", email="ada@acme.example")
    found["properties"]["lastmodifieddate"] = "2026-03-01T12:00:02.000Z"
    responses.post(SEARCH, json={"results": [found]})
    responses.post(ASSOCIATIONS, status=207, json=no_companies("1"))
    connector = private_app()

    assert [r.id for r in modified(connector)] == ["1"]
    assert waits == [3.0]
    assert connector.throttled == 1


@responses.activate
def test_an_associations_error_other_than_none_found_reads_the_page_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[float] = []
    monkeypatch.setattr("connectors.base.time.sleep", waits.append)
    found = contact("1")
    found["properties"]["lastmodifieddate"] = "2026-03-01T12:00:02.000Z"
    responses.post(SEARCH, json={"results": [found]})
    failing = no_companies("1")
    failing["errors"][0] |= {"category": "INTERNAL_ERROR", "message": "try later"}
    responses.post(ASSOCIATIONS, status=207, json=failing)
    linked = [{"toObjectId": 5, "associationTypes": [PRIMARY]}]
    responses.post(ASSOCIATIONS, json={"results": [{"from": {"id": "1"}, "to": linked}]})

    [record] = modified(private_app())

    assert record.linked_account_id == "5"
    assert waits == [1.0]
    assert [call.request.url for call in responses.calls] == [SEARCH, ASSOCIATIONS] * 2


@responses.activate
def test_a_result_without_its_modification_time_is_fatal() -> None:
    responses.post(SEARCH, json={"results": [contact("1")]})
    with pytest.raises(FatalError, match="searching contacts: the answer could not be read"):
        modified(private_app())


@responses.activate
def test_more_records_at_one_moment_than_a_query_pages_through_is_fatal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("connectors.hubspot_search.SEARCH_RESULT_CAP", 3)
    tied = [contact(str(n)) for n in range(1, 4)]
    for record in tied:
        record["properties"]["lastmodifieddate"] = "2026-03-01T12:00:02.000Z"
    responses.post(SEARCH, json={"results": tied, "paging": {"next": {"after": "3"}}})
    responses.post(ASSOCIATIONS, status=207, json=no_companies("1", "2", "3"))
    records = private_app().read_records("contacts", FIELD, modified_since=SINCE)

    assert [next(records).id for _ in range(3)] == ["1", "2", "3"]
    with pytest.raises(FatalError, match=r"3 or more contacts modified at the same moment \(20"):
        next(records)
    assert sent_json(responses.calls[0])["limit"] == 3


# ---- against the emulator over HTTPS ----------------------------------------------------------


@pytest.fixture
def served(sandbox_certificates: SandboxCertificates) -> Iterator[Callable[..., Any]]:
    """Start an emulator with the given settings and a private-app connector to it."""
    servers: list[EmulatorServer] = []

    def start(**options: Any) -> tuple[HubSpotEmulator, HubSpotConnector]:
        emulator = HubSpotEmulator(**options)
        server = EmulatorServer(emulator, sandbox_certificates)
        server.start()
        servers.append(server)
        return emulator, hubspot_connector(emulator, sandbox_certificates, auth="private_app")

    yield start
    for server in servers:
        server.stop()


def contacts_at(emulator: HubSpotEmulator, count: int, moment: dt.datetime) -> list[str]:
    rows = [{"email": f"person{n}@example.com"} for n in range(count)]
    return emulator.add_records("contacts", rows, created_at=moment)


def test_reads_the_same_records_as_the_full_read_for_every_object(served: Any) -> None:
    _, connector = served(records=250)  # seeded in 2024, with companies and leads
    since = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)

    for object_type in ("contacts", "companies", "leads"):
        everything = sorted(connector.read_records(object_type, FIELD), key=lambda r: r.id)
        changed = connector.read_records(object_type, FIELD, modified_since=since)
        assert sorted(changed, key=lambda r: r.id) == everything, object_type
    assert any(r.linked_account_id for r in everything)  # leads, each with its company


def test_windows_past_the_result_cap_read_every_record_once(
    served: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("connectors.hubspot_search.SEARCH_RESULT_CAP", 300)
    emulator, connector = served(search_result_cap=300, search_requests_per_second=1_000)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ids = [
        record_id
        for n in range(700)
        for record_id in contacts_at(emulator, 1, start + dt.timedelta(milliseconds=n))
    ]
    before = connector.api_calls

    seen = [r.id for r in connector.read_records("contacts", FIELD, modified_since=start)]

    assert len(seen) == len(set(seen)) and set(seen) == set(ids)
    assert seen == ids  # oldest modification first
    # Four searches of 200 (a query never pages past the cap) and each page's companies.
    assert connector.api_calls - before == 8
    assert emulator.calls["POST /crm/v3/objects/contacts/search"] == 4


def test_records_sharing_a_moment_across_pages_are_neither_lost_nor_repeated(
    served: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("connectors.hubspot_search.SEARCH_RESULT_CAP", 300)
    emulator, connector = served(search_result_cap=300, search_requests_per_second=1_000)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    # 290 at one moment: the first query pages 200 of them, the next passes over those 200
    # and may take only 100 (the cap), the next passes over 90 at the following moment...
    moments = [start + dt.timedelta(milliseconds=n) for n in (1, 2, 3)]
    ids = [
        i
        for count, at in zip((290, 250, 40), moments, strict=True)
        for i in contacts_at(emulator, count, at)
    ]

    seen = [r.id for r in connector.read_records("contacts", FIELD, modified_since=start)]

    assert len(seen) == len(set(seen)) == len(ids) == 580
    assert set(seen) == set(ids)


def test_more_records_at_one_moment_than_the_cap_stop_the_read_saying_so(
    served: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("connectors.hubspot_search.SEARCH_RESULT_CAP", 300)
    emulator, connector = served(search_result_cap=300, search_requests_per_second=1_000)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    contacts_at(emulator, 301, start + dt.timedelta(seconds=1))
    read: list[str] = []

    with pytest.raises(FatalError, match="300 or more contacts modified at the same moment"):
        read.extend(r.id for r in connector.read_records("contacts", FIELD, modified_since=start))
    assert len(read) == 300 == len(set(read))


def test_a_record_edited_during_the_read_pushes_no_other_out_of_it(served: Any) -> None:
    emulator, connector = served(search_requests_per_second=1_000)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ids = [
        record_id
        for n in range(450)
        for record_id in contacts_at(emulator, 1, start + dt.timedelta(milliseconds=n))
    ]
    records = connector.read_records("contacts", FIELD, modified_since=start)
    seen = [next(records).id]  # the first page is read

    # Someone edits a record already read and one not read yet: with offsets into one query,
    # every later record would move up one place, and the one at the page's edge be skipped.
    emulator.edit_record("contacts", ids[3], {"email": "early@moved.example"})
    emulator.edit_record("contacts", ids[300], {"email": "late@moved.example"})
    rest = list(records)
    seen += [r.id for r in rest]

    assert len(seen) == len(set(seen)) and set(seen) == set(ids)
    assert {r.id: r.email for r in rest}[ids[300]] == "late@moved.example"


def test_the_search_rate_limit_is_waited_out(served: Any) -> None:
    emulator, connector = served(search_requests_per_second=1)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    ids = [
        record_id
        for n in range(450)
        for record_id in contacts_at(emulator, 1, start + dt.timedelta(milliseconds=n))
    ]

    seen = [r.id for r in connector.read_records("contacts", FIELD, modified_since=start)]

    assert seen == ids
    # Three searches in quick succession: at least one met the one-a-second limit, waited the
    # second HubSpot's secondly 429 means and was asked again.
    assert connector.throttled >= 1
    assert emulator.calls["POST /crm/v3/objects/contacts/search"] == 3 + connector.throttled


def test_an_account_without_leads_is_fatal_as_in_the_full_read(served: Any) -> None:
    _, connector = served(leads_enabled=False)
    with pytest.raises(FatalError, match="no leads object"):
        list(connector.read_records("leads", FIELD, modified_since=SINCE))
