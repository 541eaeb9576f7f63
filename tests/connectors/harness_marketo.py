"""Marketo's side of the contract suite: the emulator over HTTPS and a connector to it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.marketo import (
    BATCH_SIZE,
    DEFAULT_DAILY_QUOTA,
    MarketoConfig,
    MarketoConnector,
)
from connectors.sandbox.marketo import SEGMENT_FIELD, STRING_MAX_LENGTH, MarketoEmulator
from connectors.sandbox.server import EmulatorServer
from connectors.sandbox.tls import SandboxCertificates
from tests.connectors.harness import Harness


def marketo_connector(
    emulator: MarketoEmulator,
    certificates: SandboxCertificates,
    *,
    valid: bool = True,
    daily_quota: int = DEFAULT_DAILY_QUOTA,
    **options: Any,
) -> MarketoConnector:
    """A connector to `emulator` with its custom service's credentials (or refused ones)."""
    described = emulator.describe()
    config = MarketoConfig(
        client_id=described["client_id"],
        client_secret=described["client_secret"] if valid else "refused-client-secret",
        base_url=described["base_url"],
        ca_bundle=str(certificates.ca_bundle),
        daily_quota=daily_quota,
        **options,
    )
    return MarketoConnector(config)


@pytest.fixture
def marketo_harness(sandbox_certificates: SandboxCertificates) -> Iterator[Harness]:
    """A Marketo emulator serving HTTPS on 127.0.0.1, and connectors to it."""
    # The suite's own calls must not run into the real 20-second limit: rate limiting is
    # exercised through the rate_limit fault here and enforced in tests/connectors/test_marketo*.
    emulator = MarketoEmulator(calls_per_twenty_seconds=10_000)
    server = EmulatorServer(emulator, sandbox_certificates)
    server.start()

    def make_connector(valid: bool = True) -> MarketoConnector:
        return marketo_connector(emulator, sandbox_certificates, valid=valid)

    def add_records(count: int) -> list[str]:
        rows = [
            {"email": f"person{n}@company{n % 7}.example", "firstName": f"Person {n}"}
            for n in range(count)
        ]
        return emulator.add_records("leads", rows)

    def stored_value(record_id: str) -> str | None:
        value: str | None = emulator.record("leads", record_id)[SEGMENT_FIELD]
        return value

    def edit_records(ids: list[str]) -> None:
        for n, lead_id in enumerate(ids):
            emulator.edit_lead(lead_id, {"email": f"moved{n}@elsewhere{n}.example"})

    try:
        yield Harness(
            system="marketo",
            emulator=emulator,
            object_type="leads",
            field=SEGMENT_FIELD,
            field_max_length=STRING_MAX_LENGTH,
            page_size=BATCH_SIZE,
            make_connector=make_connector,
            add_records=add_records,
            stored_value=stored_value,
            edit_records=edit_records,
            secrets=[emulator.client_secret],
        )
    finally:
        server.stop()
