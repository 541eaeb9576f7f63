"""The Salesforce side of the connector contract suite: an emulator over HTTPS and connectors."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from connectors.salesforce import SalesforceConfig, SalesforceConnector
from connectors.sandbox.salesforce import SalesforceEmulator
from connectors.sandbox.server import EmulatorServer
from connectors.sandbox.tls import SandboxCertificates
from tests.connectors.harness import Harness


def connector_config(
    emulator: SalesforceEmulator,
    certificates: SandboxCertificates,
    valid: bool = True,
    **overrides: Any,
) -> SalesforceConfig:
    """A password (SOAP) login to `emulator`, verified with the run's CA; fast bulk polling."""
    info = emulator.describe()
    settings: dict[str, Any] = {
        "auth": "password",
        "username": info["username"],
        "password": info["password"] if valid else f"{info['password']}-wrong",
        "security_token": info["security_token"],
        "login_url": info["login_url"],
        "api_version": info["api_version"],
        "ca_bundle": str(certificates.ca_bundle),
        "bulk_poll_interval": 0.01,
        "bulk_timeout": 10.0,
        "timeout": 10.0,
    }
    settings.update(overrides)
    return SalesforceConfig(**settings)


@contextmanager
def running(emulator: SalesforceEmulator, certificates: SandboxCertificates) -> Iterator[str]:
    """Serve `emulator` over HTTPS while the block runs; yields its base URL."""
    server = EmulatorServer(emulator, certificates)
    server.start()
    try:
        yield emulator.base_url
    finally:
        server.stop()


@pytest.fixture
def salesforce_harness(sandbox_certificates: SandboxCertificates) -> Iterator[Harness]:
    """A Salesforce emulator serving HTTPS on 127.0.0.1, and connectors that log in to it."""
    emulator = SalesforceEmulator()
    connectors: list[SalesforceConnector] = []
    numbers = itertools.count(1)

    def make_connector(valid: bool = True, **overrides: Any) -> SalesforceConnector:
        config = connector_config(emulator, sandbox_certificates, valid, **overrides)
        connector = SalesforceConnector(config)
        connectors.append(connector)
        return connector

    def add_records(count: int) -> list[str]:
        rows = []
        for _ in range(count):
            n = next(numbers)
            rows.append(
                {
                    "FirstName": "Harness",
                    "LastName": f"Lead {n}",
                    "Email": f"lead{n}@harness{n}.example",
                    "Company": f"Harness {n}",
                    "Website": f"https://harness{n}.example",
                }
            )
        return emulator.add_records("Lead", rows)

    def stored_value(record_id: str) -> str | None:
        value: str | None = emulator.record("Lead", record_id)["Segment_Names__c"]
        return value

    with running(emulator, sandbox_certificates):
        info = emulator.describe()
        try:
            yield Harness(
                system="salesforce",
                emulator=emulator,
                object_type="Lead",
                field="Segment_Names__c",
                field_max_length=255,
                page_size=2000,
                make_connector=make_connector,
                add_records=add_records,
                stored_value=stored_value,
                secrets=[
                    info["password"],
                    info["security_token"],
                    info["client_secret"],
                    info["access_token"],
                ],
            )
        finally:
            for connector in connectors:
                connector.close()
