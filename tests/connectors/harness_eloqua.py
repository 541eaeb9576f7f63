"""Eloqua's side of the contract suite: the emulator over HTTPS and Basic-auth connectors."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.eloqua import EloquaConfig, EloquaConnector
from connectors.sandbox.eloqua import SEGMENT_FIELD, SMALL_TEXT_MAX, EloquaEmulator
from connectors.sandbox.server import EmulatorServer
from connectors.sandbox.tls import SandboxCertificates
from tests.connectors.harness import Harness


def eloqua_config(
    emulator: EloquaEmulator,
    certificates: SandboxCertificates,
    *,
    valid: bool = True,
    auth: str = "basic",
    **overrides: Any,
) -> EloquaConfig:
    """Basic credentials (the default) or the OAuth token of `emulator`; fast sync polling."""
    described = emulator.describe()
    settings: dict[str, Any] = {
        "login_url": described["login_url"],
        "ca_bundle": str(certificates.ca_bundle),
        "poll_interval": 0.005,
        "sync_timeout": 10.0,
        "timeout": 10.0,
    }
    if auth == "oauth":
        settings["access_token"] = described["access_token"] if valid else "refused-token"
    else:
        settings |= {
            "site": described["site"],
            "username": described["username"],
            "password": described["password"] if valid else f"{described['password']}-wrong",
        }
    return EloquaConfig(**(settings | overrides))


@pytest.fixture
def eloqua_harness(sandbox_certificates: SandboxCertificates) -> Iterator[Harness]:
    """An Eloqua emulator serving HTTPS on 127.0.0.1 (also as login.eloqua.com), and connectors."""
    emulator = EloquaEmulator()
    server = EmulatorServer(emulator, sandbox_certificates)
    server.start()
    connectors: list[EloquaConnector] = []
    numbers = itertools.count(1)

    def make_connector(valid: bool = True, **options: Any) -> EloquaConnector:
        connector = EloquaConnector(
            eloqua_config(emulator, sandbox_certificates, valid=valid, **options)
        )
        connectors.append(connector)
        return connector

    def add_records(count: int) -> list[str]:
        rows = []
        for _ in range(count):
            n = next(numbers)
            rows.append(
                {
                    "emailAddress": f"person{n}@harness{n % 7}.example",
                    "firstName": f"Person {n}",
                    "accountName": f"Harness {n % 7}",
                }
            )
        return emulator.add_records("contacts", rows)

    def stored_value(record_id: str) -> str | None:
        value: str | None = emulator.record("contacts", record_id)["fields"][SEGMENT_FIELD]
        return value

    def edit_records(record_ids: list[str]) -> None:
        for record_id in record_ids:
            n = next(numbers)
            emulator.edit_contact(record_id, {"emailAddress": f"moved{n}@elsewhere{n}.example"})

    described = emulator.describe()
    try:
        yield Harness(
            system="eloqua",
            emulator=emulator,
            object_type="contacts",
            field=SEGMENT_FIELD,
            field_max_length=SMALL_TEXT_MAX,
            page_size=1000,
            make_connector=make_connector,
            add_records=add_records,
            stored_value=stored_value,
            edit_records=edit_records,
            secrets=[described["password"], described["access_token"]],
            # Bulk import: definition, upload, sync status (the definition is reused afterwards).
            calls_per_full_batch=3,
            # No read-by-ids: the contact field list, then five pages of a 1,000-record search.
            calls_per_full_read=6,
            reports_quota=False,
        )
    finally:
        for connector in connectors:
            connector.close()
        server.stop()
