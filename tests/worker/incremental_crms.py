"""Small adapters over each system's emulator for the randomised incremental-run tests
(tests/worker/test_incremental_vendors.py): create, move, overwrite, delete and merge records as
someone else would in the CRM, and read every live record's email and stored value."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from connectors.sandbox.eloqua import EloquaEmulator
from connectors.sandbox.eloqua_model import SEGMENT_FIELD as ELOQUA_FIELD
from connectors.sandbox.hubspot import HubSpotEmulator
from connectors.sandbox.hubspot_objects import SEGMENT_PROPERTY
from connectors.sandbox.marketo import MarketoEmulator
from connectors.sandbox.marketo_leads import SEGMENT_FIELD as MARKETO_FIELD
from connectors.sandbox.pardot import SEGMENT_FIELD as PARDOT_FIELD
from connectors.sandbox.pardot import PardotEmulator
from connectors.sandbox.salesforce import SEGMENT_FIELD as SALESFORCE_FIELD
from connectors.sandbox.salesforce import SalesforceEmulator
from connectors.sandbox.server import Emulator


class PeopleStore(Protocol):
    """What the adapter uses of an emulator: create, read and delete records."""

    def add_records(self, object_type: str, rows: list[dict[str, Any]]) -> list[str]: ...

    def record(self, object_type: str, record_id: str) -> dict[str, Any]: ...

    def delete_record(self, object_type: str, record_id: str) -> None: ...


@dataclass
class CrmRecords:
    """One system's target records in its emulator, changed as its users would change them."""

    object_type: str
    target_field: str
    # The email field's name in add/edit calls, and how to read (email, value) of a stored record.
    email_field: str
    # Fields every new record needs besides its email.
    required: Callable[[int], dict[str, Any]]
    stored: Callable[[dict[str, Any]], tuple[str | None, str | None]]
    emulator: PeopleStore
    edit: Callable[[str, dict[str, Any]], None]
    live: list[str] = field(default_factory=list)
    numbers: itertools.count[int] = field(default_factory=itertools.count)

    def create(self, domains: list[str]) -> list[str]:
        """New records, one per domain, each with an email at that domain."""
        rows = []
        for domain in domains:
            n = next(self.numbers)
            rows.append({self.email_field: f"person{n}@{domain}", **self.required(n)})
        ids = self.emulator.add_records(self.object_type, rows)
        self.live += ids
        return ids

    def move(self, record_id: str, domain: str) -> None:
        """The record's email changes to one at `domain`."""
        self.edit(record_id, {self.email_field: f"moved{next(self.numbers)}@{domain}"})

    def overwrite(self, record_id: str, value: str | None) -> None:
        """Someone else writes the target field."""
        self.edit(record_id, {self.target_field: value})

    def delete(self, record_id: str) -> None:
        """The record is deleted in the CRM."""
        self.emulator.delete_record(self.object_type, record_id)
        self.live.remove(record_id)

    def merge(self, loser: str, winner: str) -> None:
        """A merge: the loser is deleted and the winner takes its email."""
        email = self.email_and_value(loser)[0]
        self.delete(loser)
        self.edit(winner, {self.email_field: email})

    def email_and_value(self, record_id: str) -> tuple[str | None, str | None]:
        """The record's email and the target field's stored value."""
        return self.stored(self.emulator.record(self.object_type, record_id))


def crm_records(system: str, emulator: Emulator) -> CrmRecords:
    """The adapter over `system`'s emulator (its object of people and the segment field)."""
    if isinstance(emulator, SalesforceEmulator):
        return CrmRecords(
            "Lead",
            SALESFORCE_FIELD,
            "Email",
            lambda n: {"LastName": f"Lead {n}", "Company": f"Company {n}"},
            lambda r: (r["Email"], r[SALESFORCE_FIELD]),
            emulator,
            lambda record_id, values: emulator.edit_record("Lead", record_id, values),
        )
    if isinstance(emulator, HubSpotEmulator):
        return CrmRecords(
            "contacts",
            SEGMENT_PROPERTY,
            "email",
            lambda n: {"firstname": f"Person {n}"},
            lambda r: (r["properties"].get("email"), r["properties"].get(SEGMENT_PROPERTY)),
            emulator,
            lambda record_id, values: emulator.edit_record("contacts", record_id, values),
        )
    if isinstance(emulator, MarketoEmulator):
        return CrmRecords(
            "leads",
            MARKETO_FIELD,
            "email",
            lambda n: {"firstName": f"Person {n}"},
            lambda r: (r["email"], r[MARKETO_FIELD]),
            emulator,
            emulator.edit_lead,
        )
    if isinstance(emulator, PardotEmulator):
        return CrmRecords(
            "prospects",
            PARDOT_FIELD,
            "email",
            lambda n: {"firstName": f"P{n}"},
            lambda r: (r["email"], r[PARDOT_FIELD]),
            emulator,
            emulator.edit_prospect,
        )
    if isinstance(emulator, EloquaEmulator):
        return CrmRecords(
            "contacts",
            ELOQUA_FIELD,
            "emailAddress",
            lambda n: {"firstName": f"Person {n}"},
            lambda r: (r["fields"]["C_EmailAddress"], r["fields"][ELOQUA_FIELD]),
            emulator,
            emulator.edit_contact,
        )
    raise ValueError(f"no adapter for {system}")
