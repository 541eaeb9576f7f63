"""The companies the emulators' own seeding (`records=N`) puts records at: one scheme for all.

Company n is "Company n" at `company{n}.com` in every emulator, so one accounts list describes
the seeded records of all of them (`segsync sandbox start --accounts-csv`). The domains sit under
a real public suffix: segsync refuses reserved names such as `.example` as account domains.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
