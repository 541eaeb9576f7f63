"""Fixtures of the connector tests: one CA and certificate per test session."""

from __future__ import annotations

import pytest

from connectors.sandbox.tls import SandboxCertificates, make_certificates


@pytest.fixture(scope="session")
def sandbox_certificates(tmp_path_factory: pytest.TempPathFactory) -> SandboxCertificates:
    """The run's CA and emulator certificate (clients verify with `.ca_bundle`)."""
    return make_certificates(tmp_path_factory.mktemp("sandbox-tls"))


# Each vendor's harness fixture, for the contract suite (tests/connectors/test_contract.py).
from tests.connectors.harness_eloqua import eloqua_harness  # noqa: E402
from tests.connectors.harness_hubspot import hubspot_harness  # noqa: E402
from tests.connectors.harness_marketo import marketo_harness  # noqa: E402
from tests.connectors.harness_pardot import pardot_harness  # noqa: E402
from tests.connectors.harness_salesforce import salesforce_harness  # noqa: E402

__all__ = [
    "eloqua_harness",
    "hubspot_harness",
    "marketo_harness",
    "pardot_harness",
    "salesforce_harness",
    "sandbox_certificates",
]
