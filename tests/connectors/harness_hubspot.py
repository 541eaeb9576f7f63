"""HubSpot's side of the contract suite: the emulator over HTTPS and an OAuth connector."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.hubspot import HubSpotConfig, HubSpotConnector
from connectors.sandbox.hubspot import SEGMENT_PROPERTY, TEXT_MAX_LENGTH, HubSpotEmulator
from connectors.sandbox.server import EmulatorServer
from connectors.sandbox.tls import SandboxCertificates
from tests.connectors.harness import Harness


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
    # The suite's own calls must not run into the real ten-second limit: rate limiting is
    # exercised through the rate_limit fault here and enforced in tests/connectors/test_hubspot*.
    emulator = HubSpotEmulator(requests_per_ten_seconds=10_000)
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
            page_size=100,
            make_connector=make_connector,
            add_records=add_records,
            stored_value=stored_value,
            secrets=[
                oauth["client_secret"],
                oauth["refresh_token"],
                emulator.private_app_token,
            ],
        )
    finally:
        server.stop()
