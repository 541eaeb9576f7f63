"""Marketo's incremental read: Get Lead Changes from a paging token, then the leads by id
(documented answers through responses, then the emulator over HTTPS)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest
import responses
from responses import matchers

from connectors.base import Update
from connectors.errors import DailyQuotaError, FatalError
from connectors.sandbox.marketo import SEGMENT_FIELD, MarketoEmulator
from connectors.sandbox.server import EmulatorServer
from connectors.sandbox.tls import SandboxCertificates
from tests.connectors.harness_marketo import marketo_connector
from tests.connectors.test_marketo import (
    BASE,
    LEADS,
    PAGING_TOKEN,
    connector,
    failed,
    identity,
    leads_by_id,
    ok,
    query_of,
    rest_calls,
)

__all__ = ["identity"]

CHANGES = f"{BASE}/rest/v1/activities/leadchanges.json"
FIELD = SEGMENT_FIELD
SINCE = dt.datetime(2024, 5, 1, 12, 0, 0, 700_000, tzinfo=dt.UTC)


def changes(*lead_ids: int, more: bool = False, following: str = "NEXT") -> dict[str, Any]:
    """A Get Lead Changes page: a Change Data Value activity for each lead."""
    result = [
        {
            "id": 5000 + n,
            "marketoGUID": str(5000 + n),
            "leadId": lead_id,
            "activityDate": "2024-05-01T12:00:01Z",
            "activityTypeId": 13,
            "fields": [{"id": 48, "name": "email", "newValue": "x@y.example", "oldValue": None}],
            "attributes": [{"name": "Source", "value": "Web service API"}],
        }
        for n, lead_id in enumerate(lead_ids)
    ]
    body = ok(nextPageToken=following, moreResult=more)
    return body | ({"result": result} if result else {})


def page_after(token: str, body: dict[str, Any]) -> None:
    """Answer Get Lead Changes from `token` with `body`."""
    responses.get(
        CHANGES,
        json=body,
        match=[matchers.query_param_matcher({"nextPageToken": token}, strict_match=False)],
    )


def test_changes_are_paged_while_more_result_and_their_leads_read_300_a_call(
    identity: None,
) -> None:
    existing = {n: {"email": f"p{n}@acme.example", FIELD: f"v{n}"} for n in range(1, 701)}
    responses.add_callback(responses.GET, LEADS, callback=leads_by_id(existing))
    responses.get(PAGING_TOKEN, json=ok(nextPageToken="T1"))
    # Fewer than 300 with moreResult true is not the end; lead 5 changed twice is read once.
    page_after("T1", changes(*range(1, 201), more=True, following="T2"))
    page_after("T2", changes(5, *range(201, 451), more=True, following="T3"))
    page_after("T3", changes(*range(451, 701), 5))
    reader = connector()

    records = list(reader.read_records("leads", FIELD, modified_since=SINCE))

    assert sorted(int(r.id) for r in records) == list(range(1, 701))
    assert len(records) == 700
    assert records[0].email == "p1@acme.example" and records[0].value == "v1"
    # Activities after 12:00:00 less a second: whole seconds, and the watermark's own second
    # (12:00:00.7) is kept whether Marketo takes "after" strictly or not.
    [token_call] = [c for c in rest_calls() if c.request.url.startswith(PAGING_TOKEN)]
    assert query_of(token_call)["sinceDatetime"] == ["2024-05-01T11:59:59Z"]
    pages = [query_of(c) for c in rest_calls() if c.request.url.startswith(CHANGES)]
    assert [p["nextPageToken"] for p in pages] == [["T1"], ["T2"], ["T3"]]
    assert all(p["fields"] == [f"email,website,{FIELD}"] for p in pages)
    reads = [query_of(c) for c in rest_calls() if c.request.url.startswith(LEADS)]
    assert [len(r["filterValues"][0].split(",")) for r in reads] == [300, 300, 100]
    assert reads[0]["fields"] == [f"id,email,website,{FIELD}"]
    # token, paging token, 3 pages of changes, 3 reads by id (no usage call)
    assert reader.api_calls == 8


def test_reading_changes_is_lazy(identity: None) -> None:
    responses.add_callback(
        responses.GET, LEADS, callback=leads_by_id({n: {} for n in range(1, 400)})
    )
    responses.get(PAGING_TOKEN, json=ok(nextPageToken="T1"))
    page_after("T1", changes(*range(1, 301), more=True, following="T2"))
    page_after("T2", changes(*range(301, 400)))
    reader = connector()

    records = reader.read_records("leads", FIELD, modified_since=SINCE)
    assert reader.api_calls == 0
    assert next(records).id == "1"
    # token, paging token, the first page of changes and its 300 leads
    assert reader.api_calls == 4


def test_nothing_changed_is_two_calls_after_the_token(identity: None) -> None:
    responses.get(PAGING_TOKEN, json=ok(nextPageToken="T1"))
    page_after("T1", changes())
    reader = connector()

    assert list(reader.read_records("leads", FIELD, modified_since=SINCE)) == []
    assert reader.api_calls == 3


@pytest.mark.parametrize(
    ("answer", "kind", "message"),
    [
        (failed("607", "Daily quota reached"), DailyQuotaError, "daily API quota"),
        (failed("1006", "Field 'segmentNames' not found"), FatalError, "not found on leads"),
        (failed("603", "Access denied"), FatalError, "check the API user's role"),
    ],
)
def test_lead_changes_errors_map_like_the_full_read(
    identity: None, answer: dict[str, Any], kind: type[Exception], message: str
) -> None:
    responses.get(PAGING_TOKEN, json=ok(nextPageToken="T1"))
    responses.get(CHANGES, json=answer)
    with pytest.raises(kind, match=message):
        list(connector().read_records("leads", FIELD, modified_since=SINCE))


def test_a_rate_limited_page_of_changes_is_asked_again_in_place(
    identity: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    monkeypatch.setattr("connectors.base.time.sleep", waits.append)
    responses.add_callback(responses.GET, LEADS, callback=leads_by_id({1: {}, 2: {}}))
    responses.get(PAGING_TOKEN, json=ok(nextPageToken="T1"))
    page_after("T1", changes(1, more=True, following="T2"))
    page_after("T2", failed("606", "Max rate limit '100' exceeded with in '20' secs"))
    page_after("T2", changes(2))

    read = connector().read_records("leads", FIELD, modified_since=SINCE)

    assert [r.id for r in read] == ["1", "2"]
    assert waits == [20.0]


def test_a_missing_paging_token_is_asked_again(
    identity: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("connectors.base.time.sleep", lambda _: None)
    responses.get(PAGING_TOKEN, json=ok())
    responses.get(PAGING_TOKEN, json=ok(nextPageToken="T1"))
    page_after("T1", changes())
    assert list(connector().read_records("leads", FIELD, modified_since=SINCE)) == []
    assert sum(c.request.url.startswith(PAGING_TOKEN) for c in rest_calls()) == 2


# ---- against the emulator over HTTPS ------------------------------------------------------


@pytest.fixture
def emulator(sandbox_certificates: SandboxCertificates) -> Iterator[MarketoEmulator]:
    """A Marketo emulator with 700 leads, served over HTTPS."""
    served = MarketoEmulator(records=700, calls_per_twenty_seconds=10_000)
    server = EmulatorServer(served, sandbox_certificates)
    server.start()
    yield served
    server.stop()


def moment() -> dt.datetime:
    """A moment strictly between the changes before this call and those after (whole seconds)."""
    time.sleep(1.1)
    now = dt.datetime.now(dt.UTC)
    time.sleep(1.1)
    return now


def changed_since(
    emulator: MarketoEmulator, certificates: SandboxCertificates, since: dt.datetime
) -> tuple[dict[str, tuple[str | None, str | None]], int]:
    """(email, value) of each lead read as changed since `since`, and the calls made."""
    reader = marketo_connector(emulator, certificates)
    records = list(reader.read_records("leads", FIELD, modified_since=since))
    ids = [r.id for r in records]
    assert len(ids) == len(set(ids)), "a lead was read twice"
    return {r.id: (r.email, r.value) for r in records}, reader.api_calls


def test_emulator_edits_of_other_fields_are_not_changes(
    emulator: MarketoEmulator, sandbox_certificates: SandboxCertificates
) -> None:
    since = moment()
    emulator.edit_lead("1", {"firstName": "Renamed", "lastName": "Else"})
    emulator.edit_lead("2", {"website": "https://moved.example"})
    emulator.edit_lead("3", {"email": "a@b.example"})
    emulator.edit_lead("3", {"email": "c@d.example"})
    # Writing a lead's value again is no change either.
    reader = marketo_connector(emulator, sandbox_certificates)
    assert reader.write_batch("leads", FIELD, [Update("4", "")])[0].ok

    read, calls = changed_since(emulator, sandbox_certificates, since)

    assert set(read) == {"2", "3"}
    assert read["3"] == ("c@d.example", None)
    # token, paging token, one page of changes, one read by id
    assert calls == 4


def test_emulator_changes_over_several_pages_are_read_each_once(
    emulator: MarketoEmulator, sandbox_certificates: SandboxCertificates
) -> None:
    since = moment()
    reader = marketo_connector(emulator, sandbox_certificates)
    writes = [Update(str(n), f"Tier {n}") for n in range(1, 301)]
    assert all(r.ok for r in reader.write_batch("leads", FIELD, writes))
    for n in range(250, 551):
        emulator.edit_lead(str(n), {"email": f"moved{n}@elsewhere.example"})
    added = emulator.add_records("leads", [{"email": f"new{n}@acme.example"} for n in range(40)])
    emulator.delete_record("leads", "7")

    read, calls = changed_since(emulator, sandbox_certificates, since)

    expected = {*map(str, range(1, 551)), *added} - {"7"}
    assert set(read) == expected
    assert read["1"][1] == "Tier 1" and read["260"] == ("moved260@elsewhere.example", "Tier 260")
    # 300 + 301 + 40 activities: 3 pages of changes; 589 leads: 2 reads by id.
    assert emulator.calls["GET /rest/v1/activities/leadchanges.json"] == 3
    assert emulator.calls["GET /rest/v1/leads.json"] == 2
    assert calls == 2 + 3 + 2


def test_emulator_changes_before_the_moment_are_not_read(
    emulator: MarketoEmulator, sandbox_certificates: SandboxCertificates
) -> None:
    emulator.edit_lead("10", {"email": "old@acme.example"})
    since = moment()
    assert changed_since(emulator, sandbox_certificates, since) == ({}, 3)
