"""The HubSpot emulator's search, v4 batch associations and modification times, over real HTTPS
with a bare client."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from connectors.sandbox.hubspot import HubSpotEmulator
from connectors.sandbox.hubspot_search import epoch_ms
from connectors.sandbox.server import EmulatorServer
from connectors.sandbox.tls import SandboxCertificates

FIELD = "segment_names"
T0 = dt.datetime(2026, 2, 1, 9, 30, tzinfo=dt.UTC)


class Api:
    """A bare HTTPS client of one emulator, with its private-app token."""

    def __init__(self, emulator: HubSpotEmulator, ca_bundle: str) -> None:
        self.emulator = emulator
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = ca_bundle
        self.session.headers["Authorization"] = f"Bearer {emulator.private_app_token}"

    def search(self, object_type: str, **body: Any) -> requests.Response:
        url = f"{self.emulator.base_url}/crm/v3/objects/{object_type}/search"
        return self.session.post(url, json=body)

    def found(self, object_type: str, **body: Any) -> list[str]:
        answer = self.search(object_type, **body)
        assert answer.status_code == 200, answer.text
        return [item["id"] for item in answer.json()["results"]]

    def post(self, path: str, body: Any) -> requests.Response:
        return self.session.post(self.emulator.base_url + path, json=body)


@pytest.fixture
def start(sandbox_certificates: SandboxCertificates) -> Iterator[Callable[..., Api]]:
    """Serve an emulator built with the given options; a client of it."""
    servers: list[EmulatorServer] = []

    def make(**options: Any) -> Api:
        # Only the test of the search limit meets it: the others search many times a second.
        emulator = HubSpotEmulator(**{"search_requests_per_second": 1_000} | options)
        server = EmulatorServer(emulator, sandbox_certificates)
        server.start()
        servers.append(server)
        return Api(emulator, str(sandbox_certificates.ca_bundle))

    yield make
    for server in servers:
        server.stop()


def at(ms: int) -> dt.datetime:
    return T0 + dt.timedelta(milliseconds=ms)


def modified(operator: str, moment: dt.datetime | str, name: str = "lastmodifieddate") -> Any:
    value = moment if isinstance(moment, str) else str(epoch_ms(moment.isoformat()))
    return [{"filters": [{"propertyName": name, "operator": operator, "value": value}]}]


def test_filters_by_the_modification_time_with_each_operator(start: Callable[..., Api]) -> None:
    api = start()
    one, two, three = (
        api.emulator.add_records("contacts", [{}], created_at=at(n))[0] for n in (0, 1, 2)
    )

    def search(operator: str, moment: dt.datetime | str) -> list[str]:
        return api.found("contacts", filterGroups=modified(operator, moment))

    assert search("GT", at(0)) == [two, three]
    assert search("GTE", at(1)) == [two, three]
    assert search("LT", at(1)) == [one]
    assert search("LTE", at(1)) == [one, two]
    assert search("EQ", at(1)) == [two]
    assert search("NEQ", at(1)) == [one, three]
    assert search("GT", "2026-02-01T09:30:00.001Z") == [three]  # ISO 8601 as well as epoch ms
    # Groups are ORed, the filters of a group ANDed.
    groups = modified("EQ", at(0)) + modified("EQ", at(2))
    assert api.found("contacts", filterGroups=groups) == [one, three]
    both = [{"filters": modified("GT", at(0))[0]["filters"] + modified("LT", at(2))[0]["filters"]}]
    assert api.found("contacts", filterGroups=both) == [two]


def test_sorts_and_pages_by_offset_with_the_total(start: Callable[..., Api]) -> None:
    api = start()
    ids = [api.emulator.add_records("contacts", [{}], created_at=at(n))[0] for n in (3, 1, 2, 0, 4)]
    newest_first = [{"propertyName": "lastmodifieddate", "direction": "DESCENDING"}]

    first = api.search("contacts", sorts=newest_first, limit=2).json()
    rest = api.search("contacts", sorts=newest_first, limit=2, after="4").json()

    assert [r["id"] for r in first["results"]] == [ids[4], ids[0]]
    assert (first["total"], first["paging"]) == (5, {"next": {"after": "2"}})
    assert [r["id"] for r in rest["results"]] == [ids[3]] and "paging" not in rest
    oldest_first = [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]
    assert api.found("contacts", sorts=oldest_first) == [ids[3], ids[1], ids[2], ids[0], ids[4]]


def test_answers_the_default_or_asked_properties_and_each_objects_modification_time(
    start: Callable[..., Api],
) -> None:
    api = start()
    api.emulator.add_records("contacts", [{"email": "a@b.example", "company": "B"}])
    api.emulator.add_records("companies", [{"name": "B", "domain": "b.example"}])

    [person] = api.search("contacts").json()["results"]
    [company] = api.search("companies", properties=["domain", FIELD]).json()["results"]

    assert set(person["properties"]) == {
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    }
    assert set(company["properties"]) == {
        "createdate",
        "domain",
        FIELD,
        "hs_lastmodifieddate",
        "hs_object_id",
    }
    assert company["properties"]["hs_lastmodifieddate"] == company["updatedAt"]
    companies = api.found("companies", filterGroups=modified("GT", at(0), "hs_lastmodifieddate"))
    assert companies == [company["id"]]


def test_paging_past_the_result_cap_is_hubspots_400(start: Callable[..., Api]) -> None:
    api = start(search_result_cap=5)
    api.emulator.add_records("contacts", [{} for _ in range(8)])

    last = api.search("contacts", limit=2, after="4").json()
    refused = api.search("contacts", limit=2, after=last["paging"]["next"]["after"])
    too_many = api.search("contacts", limit=201)

    for answer in (refused, too_many):
        assert answer.status_code == 400
        body = answer.json()
        assert set(body) == {"status", "message", "correlationId", "category"}
        assert (body["status"], body["category"]) == ("error", "VALIDATION_ERROR")
    # Result 4 is the last one answered; the next page is named (8 match) and refused.
    assert (len(last["results"]), last["total"]) == (1, 8)
    assert "at most 5 results" in refused.json()["message"]
    assert len(api.found("contacts", limit=200)) == 5


@pytest.mark.parametrize(
    "body",
    [
        {"filterGroups": modified("GT", at(0), "no_such_property")},
        {"filterGroups": modified("SOMETIMES", at(0))},
        {"filterGroups": modified("GT", "yesterday")},
        {"filterGroups": modified("GT", at(0)) * 6},
        {"sorts": [{"propertyName": "no_such_property"}]},
        {"after": "first"},
    ],
)
def test_a_search_hubspot_would_refuse_is_a_400(
    start: Callable[..., Api], body: dict[str, Any]
) -> None:
    answer = start().search("contacts", **body)
    assert answer.status_code == 400 and answer.json()["category"] == "VALIDATION_ERROR"


class Clock:
    """A monotonic clock that moves only when told (the emulator's limits read it)."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_search_has_a_per_second_limit_of_its_own(
    start: Callable[..., Api], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    monkeypatch.setattr("connectors.sandbox.hubspot.time.monotonic", clock)
    api = start(search_requests_per_second=2)
    listing = f"{api.emulator.base_url}/crm/v3/objects/contacts"

    first = [api.search("contacts") for _ in range(3)]
    other = api.session.get(listing)
    clock.now += 1.0
    second = [api.search("contacts") for _ in range(3)]

    assert [a.status_code for a in first + second] == [200, 200, 429] * 2
    assert other.status_code == 200  # only the search endpoints are limited so
    body = second[-1].json()
    assert body["category"] == "RATE_LIMITS" and "policyName" not in body
    assert body["message"] == "You have reached your secondly limit."


def test_every_change_moves_the_modification_time(start: Callable[..., Api]) -> None:
    api = start(records=3)
    seeded = api.emulator.record("contacts", "1004")
    assert seeded["updatedAt"].startswith("2024-01-01")  # seeded records were made long ago
    before = dt.datetime.now(dt.UTC)
    [made] = api.emulator.add_records("contacts", [{"email": "new@example.com"}])
    created = epoch_ms(api.emulator.record("contacts", made)["updatedAt"])
    assert epoch_ms(before.isoformat()) <= created

    update = {"inputs": [{"id": "1004", "properties": {FIELD: "A"}}]}
    assert api.post("/crm/v3/objects/contacts/batch/update", update).status_code == 200
    written = api.emulator.record("contacts", "1004")
    api.emulator.edit_record("contacts", "1005", {"email": "moved@elsewhere.example"})
    edited = api.emulator.record("contacts", "1005")

    assert epoch_ms(written["properties"]["lastmodifieddate"]) >= created
    assert edited["properties"]["email"] == "moved@elsewhere.example"
    assert epoch_ms(edited["updatedAt"]) >= epoch_ms(written["updatedAt"])
    changed = api.found("contacts", filterGroups=modified("GTE", before))
    assert sorted(changed) == sorted([made, "1004", "1005"])  # not 1006, untouched since 2024


def test_batch_associations_name_the_primary_company_and_207_those_without(
    start: Callable[..., Api],
) -> None:
    api = start(records=6)  # contact 1007 (n=0) is associated with company 1001
    path = "/crm/v4/associations/contacts/companies/batch/read"

    answer = api.post(path, {"inputs": [{"id": "1007"}, {"id": "1008"}]})

    assert answer.status_code == 207
    body = answer.json()
    assert body["results"] == [
        {
            "from": {"id": "1007"},
            "to": [
                {
                    "toObjectId": 1001,
                    "associationTypes": [
                        {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": "Primary"},
                        {"category": "HUBSPOT_DEFINED", "typeId": 279, "label": None},
                    ],
                }
            ],
        }
    ]
    [missing] = body["errors"]
    assert missing["category"] == "OBJECT_NOT_FOUND"
    assert missing["subCategory"] == "crm.associations.NO_ASSOCIATIONS_FOUND"
    assert missing["context"] == {"fromObjectId": ["1008"]}
    assert api.post(path, {"inputs": [{"id": "1007"}]}).status_code == 200
    too_many = api.post(path, {"inputs": [{"id": str(n)} for n in range(1_001)]})
    assert too_many.status_code == 400
    unknown = api.post("/crm/v4/associations/contacts/widgets/batch/read", {"inputs": []})
    assert unknown.status_code == 400


def test_a_change_reaches_search_only_once_indexed(start: Callable[..., Api]) -> None:
    api = start(search_index_seconds=3_600)
    [old] = api.emulator.add_records(
        "contacts", [{}], created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    )
    [new] = api.emulator.add_records("contacts", [{}])

    assert api.found("contacts") == [old]
    api.emulator.edit_record("contacts", old, {"email": "moved@elsewhere.example"})
    assert api.found("contacts") == []
    assert {
        r["id"]
        for r in api.session.get(f"{api.emulator.base_url}/crm/v3/objects/contacts").json()[
            "results"
        ]
    } == {old, new}  # the objects API has them at once
