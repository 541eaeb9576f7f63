"""A HubSpot company list's members through the adapter: the emulator over HTTPS (paging,
domains, refusals, limits), and documented answers the emulator does not make (responses)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import responses

from connectors.errors import DailyQuotaError, FatalError
from connectors.hubspot import HubSpotConfig, HubSpotConnector
from connectors.hubspot_members import company_list_members
from connectors.members import CrmMember
from connectors.sandbox.hubspot import HubSpotEmulator
from connectors.sandbox.server import EmulatorServer
from connectors.sandbox.tls import SandboxCertificates
from tests.connectors.harness_hubspot import hubspot_connector

BASE = "https://hubspot.test"
TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"


@pytest.fixture
def served(sandbox_certificates: SandboxCertificates) -> Iterator[Any]:
    """Start an emulator built with the given options; stops every one at the end."""
    servers: list[EmulatorServer] = []

    def start(**options: Any) -> HubSpotEmulator:
        options.setdefault("requests_per_ten_seconds", 10_000)
        emulator = HubSpotEmulator(**options)
        server = EmulatorServer(emulator, sandbox_certificates)
        server.start()
        servers.append(server)
        return emulator

    yield start
    for server in servers:
        server.stop()


def company_list(emulator: HubSpotEmulator, count: int) -> tuple[str, list[str]]:
    """A MANUAL list of `count` new companies (and ten that are not in it); its id, its members."""
    rows = [{"domain": f"c{n}.example", "name": f"Company {n}"} for n in range(count + 10)]
    ids = emulator.add_records("companies", rows)
    members = ids[5 : count + 5]
    return emulator.add_list("Targets", "companies", members), members


def test_every_page_is_read_with_each_companys_domain_and_name(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: HubSpotEmulator = served()
    list_id, ids = company_list(emulator, 520)
    connector = hubspot_connector(emulator, sandbox_certificates, auth="private_app")

    members = list(company_list_members(connector, list_id))

    assert [m.crm_id for m in members] == ids
    assert members[0] == CrmMember(ids[0], website="c5.example", name="Company 5")
    assert all(m.website == f"c{int(m.crm_id) - 1001}.example" for m in members)
    # The list, three pages of at most 250, and batch reads of at most 100 ids (3 + 3 + 1).
    assert emulator.calls["GET /crm/v3/lists/{id}"] == 1
    assert emulator.calls["GET /crm/v3/lists/{id}/memberships"] == 3
    assert emulator.calls["POST /crm/v3/objects/companies/batch/read"] == 7
    assert connector.api_calls == 11


def test_the_seeded_list_through_oauth_and_a_website_without_domain(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: HubSpotEmulator = served(records=12)
    connector = hubspot_connector(emulator, sandbox_certificates)
    [bare, website_only] = emulator.add_records(
        "companies", [{"name": "Bare"}, {"website": "https://www.only-site.example"}]
    )
    list_id = emulator.seeded_lists["companies"]
    emulator.add_list_members(list_id, [bare, website_only])

    members = {m.crm_id: m for m in company_list_members(connector, list_id)}

    seeded = emulator.seeded.links["hubspot"]
    assert set(members) == {seeded[n] for n in (0, 3, 6, 9)} | {bare, website_only}
    assert (
        members[seeded[3]].website
        == emulator.record("companies", seeded[3])["properties"]["domain"]
    )
    assert members[bare] == CrmMember(bare, website=None, name="Bare")
    assert members[website_only].website == "https://www.only-site.example"


def test_members_follow_the_lists_changes(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: HubSpotEmulator = served()
    list_id, ids = company_list(emulator, 5)
    connector = hubspot_connector(emulator, sandbox_certificates, auth="private_app")
    assert [m.crm_id for m in company_list_members(connector, list_id)] == ids

    emulator.remove_list_members(list_id, ids[:2])
    [outsider] = emulator.add_records("companies", [{"domain": "new.example"}])
    emulator.add_list_members(list_id, [outsider])

    assert [m.crm_id for m in company_list_members(connector, list_id)] == [*ids[2:], outsider]


def test_a_contact_list_is_refused_naming_the_list(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: HubSpotEmulator = served(records=6)
    connector = hubspot_connector(emulator, sandbox_certificates, auth="private_app")
    list_id = emulator.seeded_lists["contacts"]

    # Refused when asked, before any member is read.
    with pytest.raises(FatalError) as refused:
        company_list_members(connector, list_id)

    assert str(refused.value) == (
        f"hubspot list {list_id} ('Associated contacts') is a list of contacts "
        "(objectTypeId 0-1), not of companies: a segment reads a company list"
    )
    assert refused.value.code == "NOT_A_COMPANY_LIST"
    assert emulator.calls["GET /crm/v3/lists/{id}/memberships"] == 0


def test_an_unknown_or_malformed_list_id_is_refused(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: HubSpotEmulator = served()
    connector = hubspot_connector(emulator, sandbox_certificates, auth="private_app")

    with pytest.raises(FatalError, match=r"^hubspot list 4040 was not found") as missing:
        company_list_members(connector, "4040")
    with pytest.raises(FatalError, match=r"^a hubspot list id is a number, not '12/x'$"):
        company_list_members(connector, "12/x")

    assert missing.value.code == "OBJECT_NOT_FOUND"
    assert emulator.calls["GET /crm/v3/lists/{id}"] == 1  # the malformed id was never sent


def test_a_429_in_the_middle_is_waited_out_and_that_page_read_again(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: HubSpotEmulator = served(window_seconds=0.2)
    list_id, ids = company_list(emulator, 300)
    connector = hubspot_connector(emulator, sandbox_certificates, auth="private_app")
    # The second memberships page and the fourth batch read meet HubSpot's ten-second limit.
    emulator.faults.inject("rate_limit", after=1, path="/memberships$")
    emulator.faults.inject("rate_limit", after=3, path="/batch/read$")

    members = list(company_list_members(connector, list_id))

    assert [m.crm_id for m in members] == ids and all(m.website for m in members)
    assert connector.throttled == 2
    assert emulator.calls["GET /crm/v3/lists/{id}/memberships"] == 3  # 2 pages, 1 again
    assert emulator.calls["POST /crm/v3/objects/companies/batch/read"] == 5  # 4, 1 again
    assert emulator.faults.pending() == []


def test_the_daily_limit_ends_the_read(
    served: Any, sandbox_certificates: SandboxCertificates
) -> None:
    emulator: HubSpotEmulator = served()
    list_id, _ = company_list(emulator, 300)
    connector = hubspot_connector(emulator, sandbox_certificates, auth="private_app")
    emulator.faults.inject("daily_limit", after=1, path="/memberships$")

    read = company_list_members(connector, list_id)
    with pytest.raises(DailyQuotaError, match="daily"):
        list(read)


@responses.activate
def test_a_company_gone_before_its_batch_read_is_still_a_member_without_domain() -> None:
    connector = HubSpotConnector(HubSpotConfig(access_token=TOKEN, base_url=BASE))
    the_list = {
        "listId": "7",
        "listVersion": 3,
        "name": "Targets",
        "objectTypeId": "0-2",
        "processingStatus": "COMPLETE",
        "processingType": "DYNAMIC",
    }
    responses.get(f"{BASE}/crm/v3/lists/7", json={"list": the_list})
    stamp = "2024-05-01T10:00:00.000Z"
    responses.get(
        f"{BASE}/crm/v3/lists/7/memberships",
        json={
            "results": [
                {"recordId": "11", "membershipTimestamp": stamp},
                {"recordId": "12", "membershipTimestamp": stamp},
            ],
            "total": 2,
        },
    )
    missing = {"status": "error", "category": "OBJECT_NOT_FOUND", "context": {"ids": ["12"]}}
    responses.post(
        f"{BASE}/crm/v3/objects/companies/batch/read",
        status=207,
        json={
            "status": "COMPLETE",
            "results": [{"id": "11", "properties": {"domain": "eleven.example", "name": "XI"}}],
            "errors": [missing | {"message": "Could not get some COMPANY objects"}],
            "startedAt": stamp,
            "completedAt": stamp,
        },
    )

    members = list(company_list_members(connector, "7"))

    assert members == [CrmMember("11", "eleven.example", "XI"), CrmMember("12")]
    assert "limit=250" in (responses.calls[1].request.url or "")
