"""The HubSpot emulator's Lists v3: list, memberships paging, manual changes and errors, over
real HTTPS (a bare client and the official one)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from hubspot import HubSpot  # type: ignore[import-untyped]

from connectors.sandbox.hubspot import HubSpotEmulator
from connectors.sandbox.hubspot_lists import MEMBERSHIPS_LIMIT_DEFAULT, MEMBERSHIPS_LIMIT_MAX
from connectors.sandbox.server import EmulatorServer
from connectors.sandbox.tls import SandboxCertificates


class Api:
    """A bare HTTPS client of one emulator, with its private-app token."""

    def __init__(self, emulator: HubSpotEmulator, ca_bundle: str) -> None:
        self.emulator = emulator
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = ca_bundle
        self.session.headers["Authorization"] = f"Bearer {emulator.private_app_token}"

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(self.emulator.base_url + path, params=params)

    def put(self, path: str, body: Any) -> requests.Response:
        return self.session.put(self.emulator.base_url + path, json=body)


@pytest.fixture
def start(sandbox_certificates: SandboxCertificates) -> Iterator[Callable[..., Api]]:
    """Serve an emulator built with the given options; a client of it."""
    servers: list[EmulatorServer] = []

    def make(**options: Any) -> Api:
        emulator = HubSpotEmulator(**options)
        server = EmulatorServer(emulator, sandbox_certificates)
        server.start()
        servers.append(server)
        return Api(emulator, str(sandbox_certificates.ca_bundle))

    yield make
    for server in servers:
        server.stop()


def test_the_seed_makes_a_company_list_and_a_contact_list(start: Callable[..., Api]) -> None:
    api = start(records=30)
    lists = api.emulator.describe()["lists"]
    companies = api.get(f"/crm/v3/lists/{lists['companies']}").json()["list"]
    contacts = api.get(f"/crm/v3/lists/{lists['contacts']}").json()["list"]

    assert (companies["objectTypeId"], companies["processingType"]) == ("0-2", "MANUAL")
    assert (contacts["objectTypeId"], contacts["processingType"]) == ("0-1", "DYNAMIC")
    # Every third seeded company: company n for n = 0, 3, ..., 27.
    expected = [api.emulator.seeded.links["hubspot"][n] for n in range(0, 30, 3)]
    assert api.emulator.list_members(lists["companies"]) == expected
    assert companies["size"] == 10 and companies["name"] == "Target accounts"
    for key in ("listId", "listVersion", "processingStatus", "createdAt", "updatedAt"):
        assert key in companies
    # Nothing seeded, no lists.
    assert HubSpotEmulator().describe()["lists"] == {}


def test_memberships_page_with_after_in_record_id_order(start: Callable[..., Api]) -> None:
    api = start()
    ids = api.emulator.add_records("companies", [{"domain": f"d{n}.example"} for n in range(7)])
    list_id = api.emulator.add_list("Seven", "companies", list(reversed(ids)))
    path = f"/crm/v3/lists/{list_id}/memberships"

    first = api.get(path, limit=3).json()
    second = api.get(path, limit=3, after=first["paging"]["next"]["after"]).json()
    last = api.get(path, limit=3, after=second["paging"]["next"]["after"]).json()

    assert [m["recordId"] for m in first["results"] + second["results"]] == ids[:6]
    assert [m["recordId"] for m in last["results"]] == ids[6:] and "paging" not in last
    assert first["total"] == 7
    assert all(m["membershipTimestamp"].endswith("Z") for m in first["results"])
    # The next link is the next page, as HubSpot's is.
    link = first["paging"]["next"]["link"]
    assert api.session.get(link).json()["results"] == second["results"]


def test_memberships_limit_defaults_to_100_and_is_at_most_250(start: Callable[..., Api]) -> None:
    api = start()
    ids = api.emulator.add_records("companies", [{} for _ in range(260)])
    list_id = api.emulator.add_list("Many", "companies", ids)
    path = f"/crm/v3/lists/{list_id}/memberships"

    assert len(api.get(path).json()["results"]) == MEMBERSHIPS_LIMIT_DEFAULT == 100
    assert len(api.get(path, limit=1000).json()["results"]) == MEMBERSHIPS_LIMIT_MAX == 250
    assert api.get(path, limit="many").status_code == 400
    refused = api.get(path, after="not-a-cursor")
    assert (refused.status_code, refused.json()["category"]) == (400, "VALIDATION_ERROR")


def test_an_unknown_list_is_hubspots_404(start: Callable[..., Api]) -> None:
    api = start()
    for path in ("/crm/v3/lists/404", "/crm/v3/lists/404/memberships"):
        answer = api.get(path)
        body = answer.json()
        assert answer.status_code == 404
        assert (body["status"], body["category"]) == ("error", "OBJECT_NOT_FOUND")
        assert "404" in body["message"] and body["correlationId"]


def test_members_change_through_the_api_and_the_test_helpers(start: Callable[..., Api]) -> None:
    api = start()
    ids = api.emulator.add_records("companies", [{} for _ in range(4)])
    list_id = api.emulator.add_list("Changing", "companies", ids[:2])
    version = api.get(f"/crm/v3/lists/{list_id}").json()["list"]["listVersion"]

    added = api.put(f"/crm/v3/lists/{list_id}/memberships/add", [ids[1], ids[2], "999999"])
    removed = api.put(f"/crm/v3/lists/{list_id}/memberships/remove", [ids[0]])

    assert added.json() == {"recordsIdsAdded": [ids[2]], "recordIdsMissing": ["999999"]}
    assert removed.json() == {"recordIdsRemoved": [ids[0]], "recordIdsMissing": []}
    assert api.emulator.list_members(list_id) == ids[1:3]
    api.emulator.add_list_members(list_id, [ids[3]])
    api.emulator.remove_list_members(list_id, [ids[1]])
    served = api.get(f"/crm/v3/lists/{list_id}/memberships").json()["results"]
    assert [m["recordId"] for m in served] == ids[2:]
    assert api.get(f"/crm/v3/lists/{list_id}").json()["list"]["listVersion"] > version
    # A deleted company leaves every list, as in HubSpot.
    api.emulator.delete_record("companies", ids[2])
    assert api.get(f"/crm/v3/lists/{list_id}").json()["list"]["size"] == 1
    with pytest.raises(KeyError, match="999999"):
        api.emulator.add_list_members(list_id, ["999999"])


def test_a_dynamic_list_takes_no_members_by_api(start: Callable[..., Api]) -> None:
    api = start()
    ids = api.emulator.add_records("contacts", [{} for _ in range(2)])
    list_id = api.emulator.add_list("Filtered", "contacts", ids[:1], processing_type="DYNAMIC")

    refused = api.put(f"/crm/v3/lists/{list_id}/memberships/add", [ids[1]])

    assert refused.status_code == 400 and "DYNAMIC" in refused.json()["message"]
    assert api.emulator.list_members(list_id) == ids[:1]
    assert api.put(f"/crm/v3/lists/{list_id}/memberships/add", {"ids": []}).status_code == 400


def test_lists_need_a_token_and_meet_the_limits_and_faults(start: Callable[..., Api]) -> None:
    api = start(records=3, requests_per_ten_seconds=2)
    path = f"/crm/v3/lists/{api.emulator.seeded_lists['companies']}/memberships"
    assert (
        api.session.get(api.emulator.base_url + path, headers={"Authorization": ""}).status_code
        == 401
    )
    # Two calls in the ten-second window pass; the third is HubSpot's 429.
    assert [api.get(path).status_code for _ in range(2)] == [200, 200]
    limited = api.get(path)
    assert limited.status_code == 429 and limited.json()["category"] == "RATE_LIMITS"
    api.emulator.reset()
    api.emulator.faults.inject("server_error", path="/memberships$")
    assert api.get(path).status_code == 503
    assert api.get(path).status_code == 200
    assert api.emulator.calls["GET /crm/v3/lists/{id}/memberships"] == 2


def test_the_official_client_reads_lists_unchanged(
    start: Callable[..., Api], sandbox_certificates: SandboxCertificates
) -> None:
    api = start()
    ids = api.emulator.add_records("companies", [{} for _ in range(5)])
    list_id = api.emulator.add_list("Five", "companies", ids)
    client = HubSpot(
        access_token=api.emulator.private_app_token,
        host=api.emulator.base_url,
        ssl_ca_cert=str(sandbox_certificates.ca_bundle),
    )

    found = client.crm.lists.lists_api.get_by_id(list_id).list
    page = client.crm.lists.memberships_api.get_page(list_id, limit=3)
    rest = client.crm.lists.memberships_api.get_page(list_id, after=page.paging.next.after)

    assert (found.list_id, found.object_type_id, found.size) == (list_id, "0-2", 5)
    assert [m.record_id for m in page.results + rest.results] == ids
    assert rest.paging is None and page.results[0].membership_timestamp.year >= 2024
