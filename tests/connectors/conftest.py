"""Fixtures of the connector tests: one CA and certificate per test session."""

from __future__ import annotations

import pytest

from connectors.sandbox.tls import SandboxCertificates, make_certificates


@pytest.fixture(scope="session")
def sandbox_certificates(tmp_path_factory: pytest.TempPathFactory) -> SandboxCertificates:
    """The run's CA and emulator certificate (clients verify with `.ca_bundle`)."""
    return make_certificates(tmp_path_factory.mktemp("sandbox-tls"))
