"""Fixtures of the connector tests: one CA and certificate per test session."""

from __future__ import annotations

from importlib import import_module

import pytest

from connectors.sandbox.tls import SandboxCertificates, make_certificates
from connectors.systems import SYSTEMS


@pytest.fixture(scope="session")
def sandbox_certificates(tmp_path_factory: pytest.TempPathFactory) -> SandboxCertificates:
    """The run's CA and emulator certificate (clients verify with `.ca_bundle`)."""
    return make_certificates(tmp_path_factory.mktemp("sandbox-tls"))


# Each registered vendor's harness fixture, `<system>_harness` in
# tests/connectors/harness_<system>.py, for the contract suite (tests/connectors/test_contract.py):
# a new vendor's harness is found by its name, with no line here.
for _system in SYSTEMS:
    _fixture = f"{_system}_harness"
    globals()[_fixture] = getattr(import_module(f"tests.connectors.harness_{_system}"), _fixture)
