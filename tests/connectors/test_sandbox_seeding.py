"""How emulators take the demo's sample people (connectors.sandbox.seeding) and its records
(Emulator.add_sample_records)."""

from __future__ import annotations

import pytest

from connectors.sandbox.eloqua import EloquaEmulator
from connectors.sandbox.marketo import MarketoEmulator
from connectors.sandbox.pardot import PardotEmulator
from connectors.sandbox.seeding import SamplePeople, SamplePerson
from connectors.sandbox.server import Emulator, Request, Response

PERSON = SamplePerson("ana@acme.com", "Ana", "Ruiz", "Acme", None, "001000000000001AAA")


def test_a_record_has_the_fields_in_order_and_drops_what_has_no_value_or_no_field() -> None:
    people = SamplePeople(
        "contacts",
        "segments",
        {"last": "Last", "email": "Email", "website": "Site", "company": "Org"},
        first_id=1,
    )

    assert people.record(PERSON) == {"Last": "Ruiz", "Email": "ana@acme.com", "Org": "Acme"}


def test_fields_must_name_attributes_of_a_person() -> None:
    with pytest.raises(ValueError, match="^SamplePerson has no attribute phone$"):
        SamplePeople("contacts", "segments", {"phone": "Phone"}, first_id=1)


@pytest.mark.parametrize("emulator", [MarketoEmulator, PardotEmulator, EloquaEmulator])
def test_sample_people_are_numbered_as_a_fresh_emulator_numbers_them(
    emulator: type[Emulator],
) -> None:
    people = emulator.sample_people
    assert people is not None
    fresh = emulator()

    ids = fresh.add_sample_records(people.object_type, [people.record(PERSON)] * 2)

    assert ids == [str(people.first_id), str(people.first_id + 1)]


def test_an_emulator_without_records_says_so() -> None:
    class Echo(Emulator):
        def handle(self, request: Request, call: int) -> Response:
            return Response()

    with pytest.raises(NotImplementedError, match="Echo takes no records"):
        Echo().add_sample_records("things", [{}])
