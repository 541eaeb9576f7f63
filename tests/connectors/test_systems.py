"""connectors.systems: the light list of systems names real adapters, and every one is emulated."""

from __future__ import annotations

import dataclasses
import importlib
import subprocess
import sys

import pytest

from connectors.base import Connector
from connectors.sandbox.cluster import EMULATORS
from connectors.systems import ADAPTERS, SYSTEMS


@pytest.mark.parametrize("system", SYSTEMS)
def test_each_system_names_its_adapter_and_config(system: str) -> None:
    module_name, adapter_name, config_name = ADAPTERS[system]

    module = importlib.import_module(module_name)

    assert issubclass(getattr(module, adapter_name), Connector)
    assert dataclasses.is_dataclass(getattr(module, config_name))


def test_the_sandbox_emulates_every_system_in_the_same_order() -> None:
    # `segsync sandbox start --systems` defaults to SYSTEMS, checked against EMULATORS.
    assert tuple(EMULATORS) == SYSTEMS


def test_importing_the_list_loads_no_adapter() -> None:
    probe = (
        "import sys, connectors.systems; "
        "print(sorted(name for name in sys.modules if name.startswith('connectors')))"
    )

    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )

    assert done.stdout.strip() == "['connectors', 'connectors.systems']"
