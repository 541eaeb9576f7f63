"""The companies the emulators' own seeding (`records=N`) puts records at: one scheme for all.

Company n is "Company n" at `company{n}.com` in every emulator, so one accounts list describes
the seeded records of all of them (`segsync sandbox start --accounts-csv`). The domains sit under
a real public suffix: segsync refuses reserved names such as `.example` as account domains.

Also how a marketing automation emulator takes the people of `segsync demo`'s sample: a neutral
`SamplePerson`, and the emulator's `SamplePeople` naming the object and fields they become.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType

SEED_DOMAIN_SUFFIX = "com"


def company_name(number: int) -> str:
    """The name of seeded company `number`."""
    return f"Company {number}"


def company_domain(number: int) -> str:
    """The registrable domain of seeded company `number`: its people's email addresses end in it."""
    return f"company{number}.{SEED_DOMAIN_SUFFIX}"


def company_website(number: int) -> str:
    """The website of seeded company `number`."""
    return f"https://www.{company_domain(number)}"


@dataclass
class SeededCompanies:
    """The companies an emulator's seed put records at, and the ids its records link them by."""

    numbers: set[int] = field(default_factory=set)
    # system whose ids they are -> company number -> the id of the company's record there (a
    # Salesforce Account, a HubSpot company) that seeded records point at or are.
    links: dict[str, dict[int, str]] = field(default_factory=dict)

    def add(self, number: int, linked: dict[str, str] | None = None) -> None:
        """Note company `number`, with the ids ({system: id}) that link records to it."""
        self.numbers.add(number)
        for system, record_id in (linked or {}).items():
            self.links.setdefault(system, {})[number] = record_id

    def merge(self, other: SeededCompanies) -> None:
        """Add another emulator's companies; the same company's link ids must agree."""
        self.numbers |= other.numbers
        for system, ids in other.links.items():
            known = self.links.setdefault(system, {})
            for number, record_id in ids.items():
                if known.setdefault(number, record_id) != record_id:
                    raise ValueError(
                        f"seeded company {number} has two {system} ids: "
                        f"{known[number]} and {record_id}"
                    )


@dataclass(frozen=True)
class SamplePerson:
    """A person of the demo's sample as any marketing automation system knows them."""

    email: str
    first: str
    last: str
    company: str
    website: str | None = None
    # The Salesforce Account a system synced with Salesforce links the person to (18- or
    # 15-character id), None when not synced.
    salesforce_account_id: str | None = None


# SamplePerson attribute -> field, as Marketo leads and Pardot prospects both name them.
CAMEL_CASE_FIELDS: Mapping[str, str] = MappingProxyType(
    {
        "email": "email",
        "first": "firstName",
        "last": "lastName",
        "company": "company",
        "website": "website",
    }
)


@dataclass(frozen=True)
class SamplePeople:
    """How an emulator holds the demo's sample people: as records of one object it numbers."""

    object_type: str
    # The object's field segsync writes segment names into.
    segment_field: str
    # SamplePerson attribute -> the object's field for it, in the order records list fields. An
    # attribute left out is one the object has no field for (it is dropped). A system whose
    # registry links are Salesforce ids must name `salesforce_account_id`.
    fields: Mapping[str, str]
    # The id a fresh emulator gives its first record of the object; later ones count up by one.
    first_id: int
    # Whether the system keeps one person per email address (compared case-insensitively).
    unique_emails: bool = False

    def __post_init__(self) -> None:
        unknown = set(self.fields) - {spec.name for spec in fields(SamplePerson)}
        if unknown:
            raise ValueError(f"SamplePerson has no attribute {', '.join(sorted(unknown))}")

    def record(self, person: SamplePerson) -> dict[str, str]:
        """The person's record: the object's fields that have a value, in `fields` order."""
        values = {name: getattr(person, name) for name in self.fields}
        return {self.fields[name]: value for name, value in values.items() if value is not None}
