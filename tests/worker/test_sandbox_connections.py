"""worker.sandbox_connections: each registry entry's sandbox connection logs in to its emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.sandbox.cluster import Sandbox
from connectors.systems import SANDBOX_POLL_SECONDS, SYSTEMS
from worker.connector_factory import build_connector, check_keys
from worker.sandbox_connections import sandbox_connection


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(list(SYSTEMS), records=2) as running:
        yield running


@pytest.mark.parametrize("system", SYSTEMS)
def test_each_systems_sandbox_connection_logs_in_over_https(sandbox: Sandbox, system: str) -> None:
    described = sandbox.describe()

    settings, secrets = sandbox_connection(system, described)

    check_keys(system, settings, secrets)
    assert settings["ca_bundle"] == described["ca_bundle"]
    assert not set(settings) & set(secrets)
    connector = build_connector(system, settings, secrets)
    connector.check_credentials()
    object_type, field = next(iter(described[system]["fields"].items()))
    assert connector.describe_field(connector.check_object(object_type), field).writable


def test_emulators_that_poll_are_polled_at_the_sandbox_pace(sandbox: Sandbox) -> None:
    described = sandbox.describe()

    polls = {
        system: value
        for system in SYSTEMS
        for key, value in sandbox_connection(system, described)[0].items()
        if key.endswith("poll_interval")
    }

    assert polls == dict.fromkeys(("marketo", "pardot", "eloqua"), SANDBOX_POLL_SECONDS)


def test_a_system_the_sandbox_does_not_run_is_refused() -> None:
    with pytest.raises(ValueError, match="the sandbox has no emulator of 'zoho'"):
        sandbox_connection("zoho", {"zoho": {}, "ca_bundle": "/ca.pem"})
