"""A new vendor's demo records and orchestrations come from its emulator and registry entry alone.

A sixth vendor, Prospecta, is Pardot's emulator under another name, put into the registry as
worker.demo reads it: make_sample, seed_emulators and the demo's targets take it in with no
edit of worker/demo, its Salesforce links following its registry entry.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from types import MappingProxyType

import pytest

from connectors.sandbox.cluster import EMULATORS
from connectors.sandbox.pardot import SEGMENT_FIELD as PARDOT_FIELD
from connectors.sandbox.pardot import PardotEmulator
from connectors.sandbox.salesforce import SalesforceEmulator
from connectors.sandbox.server import Emulator
from connectors.systems import VENDORS, Vendor
from worker.demo import data, run
from worker.demo.data import DemoSample, make_sample, seed_emulators
from worker.demo.run import targets

ACCOUNTS = 300


class ProspectaEmulator(PardotEmulator):
    """Pardot's API and prospects under another vendor's name."""

    name = "prospecta"


class NoPeopleEmulator(SalesforceEmulator):
    """A CRM-like emulator the demo has no generator for and that names no sample people."""

    name = "nopeople"


PROSPECTA = replace(
    VENDORS["pardot"],
    name="prospecta",
    title="Prospecta",
    emulator=f"{__name__}:ProspectaEmulator",
)


def use_registry(monkeypatch: pytest.MonkeyPatch, *added: Vendor) -> None:
    """Make worker.demo read the registry with `added` after the five vendors."""
    vendors = MappingProxyType({**VENDORS, **{vendor.name: vendor for vendor in added}})
    for module in (data, run):
        monkeypatch.setattr(module, "VENDORS", vendors)
        monkeypatch.setattr(module, "SYSTEMS", tuple(vendors))


@pytest.fixture
def five() -> DemoSample:
    return make_sample(ACCOUNTS)


@pytest.fixture
def six(monkeypatch: pytest.MonkeyPatch) -> Iterator[DemoSample]:
    use_registry(monkeypatch, PROSPECTA)
    yield make_sample(ACCOUNTS)


def fresh_emulators() -> dict[str, Emulator]:
    """A fresh emulator of each of the five registry systems and of Prospecta."""
    emulators = {system: make(0, 0.0) for system, make in EMULATORS.items()}
    return emulators | {"prospecta": ProspectaEmulator()}


def test_the_sample_has_the_new_vendors_people_after_the_others_unchanged(
    five: DemoSample, six: DemoSample
) -> None:
    assert list(six.records) == [*five.records, "prospecta"]
    # Added last, the vendor changes nothing the seed gave the others.
    assert {system: six.records[system] for system in five.records} == five.records
    assert (six.accounts, six.segments) == (five.accounts, five.segments)
    assert list(six.records["prospecta"]) == ["prospects"]
    prospects = six.records["prospecta"]["prospects"]
    # Numbered as a fresh emulator numbers them, with the names its sample_people gives.
    assert [p["id"] for p in prospects] == [str(n) for n in range(1001, 1001 + len(prospects))]
    assert {"email", "firstName", "lastName", "company", "website"} <= {
        field for prospect in prospects for field in prospect
    }
    assert {p[PARDOT_FIELD] for p in prospects if PARDOT_FIELD in p} <= set(data.STALE_VALUES)
    # Its registry links are Salesforce ids: some people carry their company's Account.
    accounts = {record["Id"][:15]: record for record in six.records["salesforce"]["Account"]}
    links = [p["salesforceAccountId"] for p in prospects if "salesforceAccountId" in p]
    assert len(links) > 30 and Counter(len(link) for link in links).keys() == {15, 18}
    assert {accounts[link[:15]]["Name"] for link in links} > {"Unknown prospect"}


def test_a_new_vendor_without_salesforce_links_has_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_registry(monkeypatch, replace(PROSPECTA, links=None))

    prospects = make_sample(ACCOUNTS).records["prospecta"]["prospects"]

    assert len(prospects) > 100
    assert not any("salesforceAccountId" in prospect for prospect in prospects)


def test_seeding_fills_the_new_vendors_emulator(six: DemoSample) -> None:
    emulators = fresh_emulators()

    assert seed_emulators(six, emulators) == six
    prospecta = emulators["prospecta"]
    assert isinstance(prospecta, ProspectaEmulator)
    for row in six.records["prospecta"]["prospects"]:
        stored = prospecta.record("prospects", row["id"])
        assert {key: str(stored[key]) for key in row} == row


def test_seeding_renumbers_the_new_vendors_salesforce_links(six: DemoSample) -> None:
    emulators = fresh_emulators() | {
        "salesforce": SalesforceEmulator(records=4),
        "prospecta": ProspectaEmulator(records=3),
    }

    seeded = seed_emulators(six, emulators)
    prospecta = emulators["prospecta"]
    assert isinstance(prospecta, ProspectaEmulator)

    renumbered = {
        old["Id"][:15]: new["Id"][:15]
        for old, new in zip(
            six.records["salesforce"]["Account"],
            seeded.records["salesforce"]["Account"],
            strict=True,
        )
    }
    before, after = (s.records["prospecta"]["prospects"] for s in (six, seeded))
    assert sum("salesforceAccountId" in prospect for prospect in before) > 30
    for old, new in zip(before, after, strict=True):
        assert new["id"] != old["id"]
        if "salesforceAccountId" in old:
            link = old["salesforceAccountId"]
            assert new["salesforceAccountId"][:15] == renumbered[link[:15]]
            assert len(new["salesforceAccountId"]) == len(link)
            stored = prospecta.record("prospects", new["id"])["salesforceAccountId"]
            assert stored == new["salesforceAccountId"]


def test_the_demo_targets_the_new_vendors_described_objects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_registry(monkeypatch, PROSPECTA)
    described = {system: emulator.describe() for system, emulator in fresh_emulators().items()}

    found = targets(described)

    assert found[-1] == ("prospecta", "prospects", PARDOT_FIELD)
    assert [system for system, _object, _field in found].count("prospecta") == 1


def test_a_vendor_the_demo_cannot_make_records_for_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    vendor = replace(PROSPECTA, name="nopeople", emulator=f"{__name__}:NoPeopleEmulator")
    use_registry(monkeypatch, vendor)

    with pytest.raises(TypeError, match="^the demo has no records for nopeople: its emulator"):
        make_sample(20)
