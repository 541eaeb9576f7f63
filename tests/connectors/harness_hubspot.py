"""HubSpot's side of the contract suite: the emulator over HTTPS and an OAuth connector."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest

from connectors.base import Connector
from connectors.hubspot import HubSpotConfig, HubSpotConnector
from connectors.hubspot_members import MEMBERSHIPS_PAGE_SIZE, company_list_members
from connectors.hubspot_search import SEARCH_PAGE_SIZE
from connectors.members import CrmMember
from connectors.sandbox.hubspot import SEGMENT_PROPERTY, TEXT_MAX_LENGTH, HubSpotEmulator
from connectors.sandbox.server import EmulatorServer
from connectors.sandbox.tls import SandboxCertificates
from tests.connectors.harness import Harness, MemberSource


def hubspot_connector(
    emulator: HubSpotEmulator,
    certificates: SandboxCertificates,
    *,
    valid: bool = True,
    auth: str = "oauth",
) -> HubSpotConnector:
    """A connector to `emulator`: OAuth refresh flow (the default) or its private-app token."""
    described = emulator.describe()
    where = {"base_url": described["base_url"], "ca_bundle": str(certificates.ca_bundle)}
    if auth == "private_app":
        token = described["access_token"] if valid else "pat-na1-refused"
        return HubSpotConnector(HubSpotConfig(access_token=token, **where))
    oauth = described["oauth"]
    config = HubSpotConfig(
        client_id=oauth["client_id"],
        client_secret=oauth["client_secret"],
        refresh_token=oauth["refresh_token"] if valid else "na1-refused-refresh-token",
        **where,
    )
    return HubSpotConnector(config)


@pytest.fixture
def hubspot_harness(sandbox_certificates: SandboxCertificates) -> Iterator[Harness]:
    """A HubSpot emulator serving HTTPS on 127.0.0.1, and connectors to it."""
    # The suite's own calls must not run into the real ten-second or search limits: rate limiting
    # is exercised through the rate_limit fault here and enforced in tests/connectors/test_hubspot*.
    emulator = HubSpotEmulator(requests_per_ten_seconds=10_000, search_requests_per_second=10_000)
    server = EmulatorServer(emulator, sandbox_certificates)
    server.start()
    oauth = emulator.describe()["oauth"]

    def make_connector(valid: bool = True, auth: str = "oauth") -> HubSpotConnector:
        return hubspot_connector(emulator, sandbox_certificates, valid=valid, auth=auth)

    def add_records(count: int) -> list[str]:
        rows = [
            {"email": f"person{n}@company{n % 7}.example", "firstname": f"Person {n}"}
            for n in range(count)
        ]
        return emulator.add_records("contacts", rows)

    def edit_records(ids: list[str]) -> None:
        for n, record_id in enumerate(ids):
            emulator.edit_record("contacts", record_id, {"email": f"moved{n}@elsewhere{n}.example"})

    def stored_value(record_id: str) -> str | None:
        value: str | None = emulator.record("contacts", record_id)["properties"].get(
            SEGMENT_PROPERTY
        )
        return value

    try:
        yield Harness(
            system="hubspot",
            emulator=emulator,
            object_type="contacts",
            field=SEGMENT_PROPERTY,
            field_max_length=TEXT_MAX_LENGTH,
            # The search's pages (incremental reads) are the larger: what the suites seed is then
            # several pages of the full read's 100 too.
            page_size=SEARCH_PAGE_SIZE,
            make_connector=make_connector,
            add_records=add_records,
            stored_value=stored_value,
            edit_records=edit_records,
            secrets=[
                oauth["client_secret"],
                oauth["refresh_token"],
                emulator.private_app_token,
            ],
        )
    finally:
        server.stop()


# -- member sources: company lists ---------------------------------------------------------------

_company_numbers = itertools.count(1)


def company_list_source(harness: Harness) -> MemberSource:
    """MANUAL company lists of new companies, each with a domain and a name."""
    emulator = harness.emulator
    assert isinstance(emulator, HubSpotEmulator)

    def companies(count: int) -> list[CrmMember]:
        numbers = [next(_company_numbers) for _ in range(count)]
        rows = [{"domain": f"listed{n}.example", "name": f"Listed {n}"} for n in numbers]
        ids = emulator.add_records("companies", rows)
        return [
            CrmMember(company_id, row["domain"], row["name"])
            for company_id, row in zip(ids, rows, strict=True)
        ]

    def make(count: int) -> tuple[str, list[CrmMember]]:
        members = companies(count)
        return emulator.add_list("Harness", "companies", [m.crm_id for m in members]), members

    def add(list_id: str, count: int) -> list[CrmMember]:
        members = companies(count)
        emulator.add_list_members(list_id, [m.crm_id for m in members])
        return members

    def read(connector: Connector, list_id: str) -> Iterator[CrmMember]:
        assert isinstance(connector, HubSpotConnector)
        return company_list_members(connector, list_id)

    return MemberSource(
        harness=harness,
        kind="company_list",
        make=make,
        add=add,
        remove=emulator.remove_list_members,
        read=read,
        missing_id="4040",
        page_size=MEMBERSHIPS_PAGE_SIZE,
        page_path=r"/memberships$",
    )


# For the member contract (tests/connectors/test_member_contract.py).
MEMBER_SOURCES: dict[str, Callable[[Harness], MemberSource]] = {
    "company_list": company_list_source,
}
