"""connectors.systems: the light registry names real adapters and emulators, and holds the limits
the rate limiter applies."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import subprocess
import sys

import pytest

from connectors.base import Connector
from connectors.ratelimit import VENDOR_LIMITS, RateLimit, VendorLimits, vendor_limits
from connectors.sandbox import cluster
from connectors.sandbox.cluster import EMULATORS
from connectors.sandbox.server import Emulator
from connectors.systems import (
    ADAPTERS,
    SYSTEMS,
    VENDORS,
    AccountLinks,
    SandboxConnection,
    Vendor,
)


@pytest.mark.parametrize("system", SYSTEMS)
def test_each_system_names_its_adapter_and_config(system: str) -> None:
    module_name, adapter_name, config_name = ADAPTERS[system]

    module = importlib.import_module(module_name)

    assert issubclass(getattr(module, adapter_name), Connector)
    assert dataclasses.is_dataclass(getattr(module, config_name))


def test_a_vendor_by_title_finds_its_parts_by_its_lower_case_name() -> None:
    vendor = Vendor.by_title(
        "HubSpot",
        VendorLimits(None, None),
        SandboxConnection(settings=("base_url",), secrets=()),
        AccountLinks("hubspot_company_id"),
    )

    assert (vendor.name, vendor.module, vendor.adapter, vendor.config, vendor.emulator) == (
        "hubspot",
        "connectors.hubspot",
        "HubSpotConnector",
        "HubSpotConfig",
        "connectors.sandbox.hubspot:HubSpotEmulator",
    )
    assert (vendor.link_column, vendor.links_are_salesforce_ids) == ("hubspot_company_id", False)


def test_links_are_salesforce_ids_only_where_an_entry_says_so() -> None:
    linked = {system: VENDORS[system].link_column for system in SYSTEMS}
    salesforce_ids = [system for system in SYSTEMS if VENDORS[system].links_are_salesforce_ids]

    assert linked == {
        "salesforce": "salesforce_account_id",
        "hubspot": "hubspot_company_id",
        "marketo": None,
        "pardot": "salesforce_account_id",
        "eloqua": None,
    }
    assert salesforce_ids == ["salesforce", "pardot"]


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


@pytest.mark.parametrize("system", SYSTEMS)
def test_each_system_names_its_emulator_which_is_loaded_on_first_use(system: str) -> None:
    module_name, _, class_name = VENDORS[system].emulator.partition(":")

    made = EMULATORS[system](3, 0.0)

    assert type(made) is getattr(importlib.import_module(module_name), class_name)
    assert isinstance(made, Emulator)


def test_an_emulator_path_naming_no_emulator_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        cluster.EMULATORS, "salesforce", cluster.emulator_factory("connectors.systems:Vendor")
    )

    with pytest.raises(TypeError, match=r"connectors\.systems:Vendor is not an emulator"):
        cluster.Sandbox(["salesforce"])


def test_the_rate_limiter_holds_each_system_to_its_entrys_limits() -> None:
    assert dict(VENDOR_LIMITS) == {system: VENDORS[system].limits for system in SYSTEMS}
    assert vendor_limits("marketo") == VendorLimits(RateLimit(100, 20.0), 10)


def test_importing_the_registry_loads_no_redis_sdk_or_database_layer() -> None:
    probe = (
        "import sys, connectors.systems; "
        "print(sorted(name.partition('.')[0] for name in sys.modules))"
    )

    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )

    loaded = set(ast.literal_eval(done.stdout.strip()))
    assert not loaded & {"redis", "requests", "simple_salesforce", "sqlalchemy", "models"}
