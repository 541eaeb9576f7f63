"""Pardot's side of the contract suite: the emulator over HTTPS and an OAuth connector."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.pardot import PAGE_SIZE, PardotConfig, PardotConnector
from connectors.sandbox.pardot import SEGMENT_FIELD, TEXT_MAX_LENGTH, PardotEmulator
from connectors.sandbox.server import EmulatorServer
from connectors.sandbox.tls import SandboxCertificates
from tests.connectors.harness import Harness


def pardot_connector(
    emulator: PardotEmulator,
    certificates: SandboxCertificates,
    *,
    valid: bool = True,
    auth: str = "oauth",
    **overrides: Any,
) -> PardotConnector:
    """A connector to `emulator`: Salesforce OAuth refresh (the default) or its access token."""
    described = emulator.describe()
    settings: dict[str, Any] = {
        "business_unit_id": described["business_unit_id"],
        "base_url": described["base_url"],
        "ca_bundle": str(certificates.ca_bundle),
        "timeout": 10.0,
        "import_poll_interval": 0.01,
        "import_timeout": 10.0,
    }
    if auth == "access_token":
        token = described["access_token"] if valid else "00D5g000004SANDBOX!refused"
        settings["access_token"] = token
    else:
        oauth = described["oauth"]
        settings |= {
            "client_id": oauth["client_id"],
            "client_secret": oauth["client_secret"],
            "refresh_token": oauth["refresh_token"] if valid else "5Aep861refused",
            "token_url": oauth["token_url"],
        }
    return PardotConnector(PardotConfig(**(settings | overrides)))


@pytest.fixture
def pardot_harness(sandbox_certificates: SandboxCertificates) -> Iterator[Harness]:
    """A Pardot emulator serving HTTPS on 127.0.0.1, and connectors to it."""
    emulator = PardotEmulator()
    server = EmulatorServer(emulator, sandbox_certificates)
    server.start()
    numbers = itertools.count(1)
    connectors: list[PardotConnector] = []

    def make_connector(valid: bool = True, auth: str = "oauth") -> PardotConnector:
        connector = pardot_connector(emulator, sandbox_certificates, valid=valid, auth=auth)
        connectors.append(connector)
        return connector

    def add_records(count: int) -> list[str]:
        rows = []
        for _ in range(count):
            n = next(numbers)
            rows.append({"email": f"person{n}@company{n % 7}.example", "firstName": f"P{n}"})
        return emulator.add_records("prospects", rows)

    def stored_value(record_id: str) -> str | None:
        value: str | None = emulator.record("prospects", record_id)[SEGMENT_FIELD]
        return value

    def edit_records(record_ids: list[str]) -> None:
        for record_id in record_ids:
            n = next(numbers)
            emulator.edit_prospect(record_id, {"email": f"moved{n}@elsewhere{n}.example"})

    described = emulator.describe()
    try:
        yield Harness(
            system="pardot",
            emulator=emulator,
            object_type="prospects",
            field=SEGMENT_FIELD,
            field_max_length=TEXT_MAX_LENGTH,
            page_size=PAGE_SIZE,
            make_connector=make_connector,
            add_records=add_records,
            stored_value=stored_value,
            edit_records=edit_records,
            secrets=[
                described["access_token"],
                described["oauth"]["client_secret"],
                described["oauth"]["refresh_token"],
            ],
            # Pardot v5 has no batch update: one PATCH per prospect (imports are for large sets).
            calls_per_full_batch=PardotConnector.batch_size,
        )
    finally:
        for connector in connectors:
            connector.close()
        server.stop()
