"""The connection settings and secrets for each sandbox emulator, as `segsync sandbox start`
describes them: one place for the demo, the benchmarks and the tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.systems import VENDORS


def sandbox_connection(
    system: str, described: Mapping[str, Any]
) -> tuple[dict[str, str], dict[str, str]]:
    """(settings, secrets) of a connection to `system`'s emulator.

    `described` is the sandbox's whole description (its first-line JSON): the system's entry and
    `ca_bundle`. How each system logs in is its registry entry's (connectors.systems).
    """
    vendor = VENDORS.get(system)
    if vendor is None:
        raise ValueError(f"the sandbox has no emulator of {system!r}")
    settings, secrets = vendor.sandbox.settings_and_secrets(described[system])
    return settings | {"ca_bundle": str(described["ca_bundle"])}, secrets
