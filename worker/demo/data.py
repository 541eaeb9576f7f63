"""The realistic sample `segsync demo` loads: accounts, segments to publish, CRM/MAP records.

One seeded `random.Random` drives everything, so a seed always gives the same sample. Record ids
are those fresh emulators assign; `seed_emulators` renumbers when an emulator assigns others.
Every system of the registry (connectors.systems) gets records that match the accounts by
explicit link, email domain or website, and some that match none: the CRMs Salesforce (Lead,
Contact, Account) and HubSpot (contacts, companies, leads) from generators of their own, every
other system the same sample people, as its emulator's `sample_people` says it holds them.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy.orm import Session

from connectors.sandbox.cluster import emulator_class
from connectors.sandbox.hubspot import SEGMENT_PROPERTY
from connectors.sandbox.salesforce_store import KEY_PREFIXES, make_id
from connectors.sandbox.seeding import SamplePeople, SamplePerson
from connectors.sandbox.server import Emulator
from connectors.systems import SYSTEMS, VENDORS
from models.account_import import ImportResult, import_accounts
from models.domains import registrable_domain
from models.errors import InputError
from models.publishing import publish
from models.segment_catalog import create_segment
from worker.demo import names as demo
from worker.demo.names import Country, SegmentSpec, ascii_words

Row = dict[str, str]
ACCOUNT_COLUMNS = (
    *("external_id", "name", "website", "domain", "industry", "employee_count"),
    *("annual_revenue", "country", "region", "profile_fit", "buying_stage", "intent_score"),
    *("salesforce_account_id", "hubspot_company_id", "crm.tier", "crm.owner", "crm.arr"),
    "crm.territory",
)
FREE_MAIL_DOMAINS = ("gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com", "gmx.de")
SALESFORCE_FIELD = "Segment_Names__c"
# Values an earlier tool left in the target field: the first run must replace or clear them.
STALE_VALUES = ("Legacy ICP 2023", "Webinar — März 2023", "EMEA; Tier 1", "Churned (do not call)")
_STALE_SHARE = 0.08
_HUBSPOT_FIRST_ID = 1001  # HubSpotEmulator numbers the records of every object from 1001 on
_LEAD_KINDS = ("email_website", "email", "free_mail", "website", "unknown")
# How a MAP person's email and website relate to their company: a work address; a free-mail
# address with the company's website from a form (matches by website); a free-mail address
# alone (matches nothing); a company segsync does not know.
_PERSON_KINDS = ("email", "free_mail_website", "free_mail", "unknown")
# How many sample people a system holds per company: weights of 0, 1 and 2. Optional: a system
# not listed gets the default.
_PEOPLE_PER_COMPANY = {"marketo": (42, 42, 16), "pardot": (48, 40, 12), "eloqua": (45, 40, 15)}
_DEFAULT_PEOPLE_PER_COMPANY = (45, 40, 15)
# Fields that link to a record of another object, and the system whose ids they hold: what
# `seed_emulators` renumbers besides a record's own "Id"/"id" (the CRM records' links and the
# accounts' columns). A system's sample people add the field of their Salesforce link.
_LINK_FIELDS = {
    "AccountId": "salesforce",
    "salesforce_account_id": "salesforce",
    "associatedcompanyid": "hubspot",
    "hubspot_company_id": "hubspot",
}
_OWN_ID_FIELDS = ("Id", "id")
# Salesforce ids are 18 characters; the 15-character form (the first 15) names the same record.
_SALESFORCE_SHORT_ID = 15


@dataclass(frozen=True)
class DemoSegment:
    """A segment to create as `segsync segments create` does, and the uses to publish it for."""

    name: str
    folder: str
    source: str  # one of models.segments.SOURCES
    filter_expression: str | None
    list_file: str | None  # the list's file name, which the segment's definition shows
    list_rows: tuple[Row, ...]  # the list file's lines as {column: value}
    uses: tuple[str, ...]


@dataclass(frozen=True)
class DemoSample:
    """Accounts (accounts CSV rows), segments, and CRM/MAP records by system and object."""

    seed: int
    accounts: tuple[Row, ...]
    segments: tuple[DemoSegment, ...]
    # system -> object -> records, parents first. "Id"/"id" is the record's emulator id; Contact
    # "AccountId" and HubSpot "associatedcompanyid" hold the id of the Account/company they link to;
    # a Pardot prospect's "salesforceAccountId" holds a Salesforce Account id, in its 18- or
    # 15-character form. Fields have the names the emulators' add_records take (Eloqua's are
    # internal names, C_...).
    records: dict[str, dict[str, tuple[Row, ...]]]


@dataclass
class _Company:
    row: Row
    domain: str
    country: Country
    salesforce_id: str = ""  # its Salesforce Account, linked in segsync or not ("" if none)


def make_sample(accounts: int = 3000, seed: int = 7) -> DemoSample:
    """A deterministic sample of `accounts` accounts with segments and matching CRM/MAP records."""
    if accounts < 1:
        raise ValueError("a demo sample needs at least one account")
    rng = random.Random(seed)
    taken: set[str] = set()
    companies = [_company(rng, number, taken) for number in range(1, accounts + 1)]
    records: dict[str, dict[str, tuple[Row, ...]]] = {}
    for system in SYSTEMS:
        if system in _CRM_RECORDS:
            records[system] = _CRM_RECORDS[system](rng, companies, taken)
    segments = tuple(_segment(rng, spec, companies, taken) for spec in demo.SEGMENTS)
    # After the segments, and one system after another in the registry's order, so the CRM
    # records, the segments and every system's people stay what the seed gave them before the
    # systems after it were added.
    for system in SYSTEMS:
        if system not in _CRM_RECORDS:
            records[system] = _people(rng, companies, taken, system, records)
    records = {system: records[system] for system in SYSTEMS}
    return DemoSample(seed, tuple(company.row for company in companies), segments, records)


def _company(rng: random.Random, number: int, taken: set[str]) -> _Company:
    country = rng.choices(demo.COUNTRIES, [c.weight for c in demo.COUNTRIES])[0]
    industry = rng.choices(list(demo.INDUSTRIES), [w for w, _ in demo.INDUSTRIES.values()])[0]
    name, domain = _name_and_domain(rng, country, demo.INDUSTRIES[industry][1], taken)
    # Log-normal around 300 people: mostly small companies, a few giants.
    employees = None
    if rng.random() > 0.04:
        employees = min(int(math.exp(rng.gauss(5.7, 1.8))) + 2, 300_000)
    revenue = None
    if employees is not None and rng.random() > 0.08:
        revenue = round(employees * rng.uniform(6e4, 4e5), -4)
    icp = industry in demo.ICP_INDUSTRIES and 200 <= (employees or 0) <= 20_000
    fit = rng.choices(("A", "B", "C", "D", ""), (35, 35, 20, 8, 2) if icp else (8, 25, 40, 23, 4))
    intent = None if rng.random() < 0.12 else min(int(rng.betavariate(1.6, 3.2) * 101), 100)
    size = employees or rng.choice((50, 500, 5000))
    tier = next(tier for tier, floor in demo.TIERS if size >= floor) if rng.random() > 0.05 else ""
    arr = rng.choices((f"{rng.lognormvariate(math.log(6e4), 1.1):.0f}", "n/a", ""), (35, 3, 62))
    website, domain_cell = _website(rng, domain), ""
    if rng.random() < 0.25:  # some rows give the domain (it wins over the website), some both
        domain_cell = rng.choice((domain, f"www.{domain}", domain.upper()))
        website = website if rng.random() < 0.4 else ""
    stage = rng.choices(list(demo.STAGES), list(demo.STAGES.values()))[0]
    row = {
        "external_id": f"ACC-{number:05d}", "name": name, "website": website,
        "domain": domain_cell, "industry": industry, "employee_count": _text(employees),
        "annual_revenue": _text(revenue), "country": country.name, "region": country.region,
        "profile_fit": fit[0], "buying_stage": stage, "intent_score": _text(intent),
        "salesforce_account_id": "", "hubspot_company_id": "", "crm.tier": tier,
        "crm.owner": rng.choice(demo.OWNERS[country.region]), "crm.arr": arr[0],
        "crm.territory": country.territory,
    }  # fmt: skip
    return _Company(row, domain, country)


def _name_and_domain(
    rng: random.Random, country: Country, words: tuple[str, ...], taken: set[str]
) -> tuple[str, str]:
    """A company name and a registrable domain no other demo company has."""
    attempt = 0
    while True:
        attempt += 1
        stem, word = rng.choice(country.stems), rng.choice(words)
        form, shape = rng.choice(country.legal_forms), rng.random()
        if shape < 0.2:
            name, labels = f"{stem} {form}", ascii_words(stem)
        else:
            name, labels = f"{stem} {word}", ascii_words(stem) + ascii_words(word)
            name += f" {form}" if shape < 0.6 else ""
        if attempt > 30:  # the country's names are running out: a number keeps domains unique
            labels.append(str(attempt))
        label = rng.choice(("", "-")).join(labels)[:40].strip("-")
        domain = f"{label}.{rng.choice(country.suffixes)}"
        if domain not in taken and _registrable(domain):
            taken.add(domain)
            return name, domain


def _registrable(domain: str) -> bool:
    # Some names are public suffixes themselves (yokohama.jp): never a company's domain.
    try:
        return registrable_domain(f"www.{domain}") == domain
    except InputError:
        return False


def _text(value: float | None) -> str:
    return "" if value is None else str(int(value))


def _website(rng: random.Random, domain: str) -> str:
    return rng.choice(demo.WEBSITES).format(domain)


def _unknown_domain(rng: random.Random, taken: set[str]) -> str:
    """A domain no account has: records at it match nothing."""
    while True:
        first, second = rng.choice(demo.UNKNOWN_WORDS), rng.choice(demo.UNKNOWN_WORDS)
        domain = f"{first}{second}{rng.randint(1, 99)}.{rng.choice(('com', 'io', 'net'))}"
        if domain not in taken:
            return domain


def _person(rng: random.Random, company: _Company | None, domain: str) -> tuple[str, str, str]:
    """First name, last name and an email at `domain` (or a subdomain of the company's)."""
    firsts, lasts = demo.PEOPLE[company.country.language if company else "en"]
    first, last = rng.choice(firsts), rng.choice(lasts)
    given, family = "".join(ascii_words(first)), "".join(ascii_words(last))
    local = rng.choice((f"{given}.{family}", f"{given[0]}{family}", given))[:30]
    if company and domain == company.domain:
        domain = rng.choices((domain, f"mail.{domain}", f"eu.{domain}"), (88, 6, 6))[0]
    email = f"{local}@{domain}"
    return first, last, email.upper() if rng.random() < 0.03 else email


def _stale(rng: random.Random, record: Row, field: str) -> Row:
    if rng.random() < _STALE_SHARE:
        record[field] = rng.choice(STALE_VALUES)
    return record


def _salesforce(
    rng: random.Random, companies: list[_Company], taken: set[str]
) -> dict[str, tuple[Row, ...]]:
    tables: dict[str, list[Row]] = {"Account": [], "Contact": [], "Lead": []}

    def add(object_type: str, record: Row) -> str:
        rows = tables[object_type]
        record_id = make_id(KEY_PREFIXES[object_type], len(rows) + 1)
        rows.append(_stale(rng, {"Id": record_id, **record}, SALESFORCE_FIELD))
        return record_id

    def person(company: _Company, at: str, **fields: str) -> Row:
        first, last, email = _person(rng, company, at)
        return {"FirstName": first, "LastName": last, "Email": email, **fields}

    for company in companies:
        name, domain = company.row["name"], company.domain
        if rng.random() < 0.85:
            website = {"Website": _website(rng, domain)} if rng.random() < 0.9 else {}
            account_id = add("Account", {"Name": name, **website})
            company.salesforce_id = account_id
            # A few CRM accounts are not linked in segsync: they match by website instead.
            if rng.random() < 0.94:
                company.row["salesforce_account_id"] = account_id
            for _ in range(rng.choice((0, 1, 1, 2))):
                link = {"AccountId": account_id} if rng.random() < 0.85 else {}
                add("Contact", person(company, domain, **link))
        elif rng.random() < 0.3:
            add("Contact", person(company, domain))
        if rng.random() < 0.03:
            add("Contact", person(company, rng.choice(FREE_MAIL_DOMAINS)))
        for _ in range(rng.choices((0, 1, 2), (40, 45, 15))[0]):
            kind = rng.choices(_LEAD_KINDS, (36, 36, 12, 10, 6))[0]
            at, employer = domain, name
            # A free-mail address must never match; an unknown domain matches no account.
            if kind == "free_mail":
                at = rng.choice(FREE_MAIL_DOMAINS)
            elif kind == "unknown":
                at = _unknown_domain(rng, taken)
                employer = at.split(".")[0].title()
            lead = person(company, at, Company=employer)
            if kind in ("email_website", "website", "unknown"):
                lead["Website"] = _website(rng, at)
            if kind == "website":
                del lead["Email"]
            add("Lead", lead)
    for _ in range(len(companies) // 60 + 1):  # CRM accounts segsync does not know
        add("Account", {"Name": "Unknown prospect", "Website": _unknown_domain(rng, taken)})
    return {object_type: tuple(rows) for object_type, rows in tables.items()}


def _hubspot(
    rng: random.Random, companies: list[_Company], taken: set[str]
) -> dict[str, tuple[Row, ...]]:
    tables: dict[str, list[Row]] = {"companies": [], "contacts": [], "leads": []}
    for company in companies:
        row, domain = company.row, company.domain
        link: Row = {}
        if rng.random() < 0.6:
            company_id = str(_HUBSPOT_FIRST_ID + len(tables["companies"]))
            record = {"id": company_id, "name": row["name"], "domain": domain}
            if rng.random() < 0.5:
                record["website"] = _website(rng, domain)
            tables["companies"].append(record)
            link = {"associatedcompanyid": company_id}
            # A few companies are not linked in segsync: they match by domain instead.
            if rng.random() < 0.9:
                row["hubspot_company_id"] = company_id
        people = [domain] * rng.choices((0, 1, 2), (35, 45, 20))[0]
        if rng.random() < 0.04:
            people.append(rng.choice(FREE_MAIL_DOMAINS))
        for at in people:
            first, last, email = _person(rng, company, at)
            linked = link if at == domain and rng.random() < 0.6 else {}
            contact = {"email": email, "firstname": first, "lastname": last}
            tables["contacts"].append(contact | {"company": row["name"]} | linked)
        if link and rng.random() < 0.15:
            first, last, _ = _person(rng, company, domain)
            tables["leads"].append({"hs_lead_name": f"{first} {last} — {row['name']}"} | link)
    for _ in range(len(companies) // 50 + 1):
        first, last, email = _person(rng, None, _unknown_domain(rng, taken))
        tables["contacts"].append({"email": email, "firstname": first, "lastname": last})
    # HubSpot numbers records with one counter: companies (numbered above), contacts, then leads.
    next_id = _HUBSPOT_FIRST_ID + len(tables["companies"])
    for object_type in ("contacts", "leads"):
        rows = tables[object_type]
        tables[object_type] = [{"id": str(next_id + n), **r} for n, r in enumerate(rows)]
        next_id += len(rows)
    for rows in tables.values():
        for record in rows:
            _stale(rng, record, SEGMENT_PROPERTY)
    return {object_type: tuple(rows) for object_type, rows in tables.items()}


# The CRMs, whose records (accounts, their contacts, leads) come from generators of their own;
# every other system gets the sample people (_people).
_CRM_RECORDS: dict[
    str, Callable[[random.Random, list[_Company], set[str]], dict[str, tuple[Row, ...]]]
] = {"salesforce": _salesforce, "hubspot": _hubspot}


def _map_person(
    rng: random.Random, company: _Company, taken: set[str]
) -> tuple[SamplePerson, bool]:
    """A person a marketing automation system knows, made for `company` (see _PERSON_KINDS), and
    whether they work there.

    Every unknown company's person gives its website, as do some free-mail and work addresses.
    """
    kind = rng.choices(_PERSON_KINDS, (74, 8, 11, 7))[0]
    at, employer = company.domain, company.row["name"]
    if kind in ("free_mail", "free_mail_website"):
        at = rng.choice(FREE_MAIL_DOMAINS)
    elif kind == "unknown":
        at = _unknown_domain(rng, taken)
        employer = at.split(".")[0].title()
    first, last, email = _person(rng, company, at)
    website = None
    if kind == "free_mail_website":
        website = _website(rng, company.domain)
    elif kind == "unknown" or (kind == "email" and rng.random() < 0.25):
        website = _website(rng, at)
    return SamplePerson(email, first, last, employer, website), kind != "unknown"


def sample_people(system: str) -> SamplePeople:
    """How `system`'s emulator (by the registry) holds the sample people; TypeError if it
    holds none."""
    people = emulator_class(VENDORS[system].emulator).sample_people
    if people is None:
        raise TypeError(
            f"the demo has no records for {system}: its emulator names no sample_people"
        )
    return people


def _people(
    rng: random.Random,
    companies: list[_Company],
    taken: set[str],
    system: str,
    records: Mapping[str, Mapping[str, Sequence[Row]]],
) -> dict[str, tuple[Row, ...]]:
    """`system`'s records of the sample people: some at each company, as its emulator names them.

    A system whose registry links are Salesforce ids (Pardot) is synced with Salesforce: some
    people carry their company's Salesforce Account, and some are at CRM accounts segsync does
    not know (`records`' Salesforce Accounts named "Unknown prospect").
    """
    people = sample_people(system)
    synced_with_salesforce = VENDORS[system].links_are_salesforce_ids
    rows: list[Row] = []
    used: set[str] = set()  # email addresses, lower-cased, when the system keeps one per address

    def add(person: SamplePerson) -> None:
        if people.unique_emails:
            person = replace(person, email=_unused(person.email, used))
        record_id = str(people.first_id + len(rows))
        rows.append(_stale(rng, {"id": record_id, **people.record(person)}, people.segment_field))

    def synced(account_id: str) -> str:
        # The id comes in the 15-character form from some integrations, which matching must
        # treat as the same account.
        short = rng.random() < 0.3
        return account_id[:_SALESFORCE_SHORT_ID] if short else account_id

    weights = _PEOPLE_PER_COMPANY.get(system, _DEFAULT_PEOPLE_PER_COMPANY)
    for company in companies:
        for _ in range(rng.choices((0, 1, 2), weights)[0]):
            person, at_company = _map_person(rng, company, taken)
            # Someone at an unknown company was never synced to this company's account.
            linkable = synced_with_salesforce and company.salesforce_id and at_company
            if linkable and rng.random() < 0.55:
                account_id = synced(company.salesforce_id)
                person = replace(person, salesforce_account_id=account_id)
            add(person)
    if not synced_with_salesforce:
        return {people.object_type: tuple(rows)}
    # People synced to CRM accounts segsync does not know: the link matches nothing, nor does
    # the email domain.
    for account in records.get("salesforce", {}).get("Account", ()):
        if account["Name"] == "Unknown prospect" and rng.random() < 0.5:
            domain = registrable_domain(account["Website"])
            first, last, email = _person(rng, None, domain)
            company_name = domain.split(".")[0].title()
            add(SamplePerson(email, first, last, company_name, None, synced(account["Id"])))
    return {people.object_type: tuple(rows)}


def _unused(email: str, used: set[str]) -> str:
    """`email`, or with a number after its local part, so no address in `used` is the same
    (case-insensitively); notes it in `used`."""
    local, at = email.rsplit("@", 1)
    number = 1
    while email.lower() in used:
        number += 1
        email = f"{local}{number}@{at}"
    used.add(email.lower())
    return email


def _segment(
    rng: random.Random, spec: SegmentSpec, companies: list[_Company], taken: set[str]
) -> DemoSegment:
    rows: list[Row] = []
    if spec.list_file:
        pool = [c for c in companies if demo.POOLS[spec.pool](c.row)]
        chosen = sorted(rng.sample(range(len(pool)), round(spec.share * len(pool))))
        # A few lines name accounts segsync does not have: they are counted, not refused.
        for company in [pool[i] for i in chosen] + [None] * rng.randint(1, 3):
            domain = company.domain if company else _unknown_domain(rng, taken)
            external_id = company.row["external_id"] if company else f"SF-{rng.randint(1, 10**6)}"
            values = {
                "external_id": external_id,
                "domain": rng.choice((domain, f"www.{domain}", domain.upper())),
                "website": _website(rng, domain),
            }
            rows.append({column: values[column] for column in spec.columns.split()})
    uses = tuple(demo.USES[letter] for letter in spec.uses)
    return DemoSegment(
        spec.name, spec.folder, spec.source, spec.filter, spec.list_file, tuple(rows), uses
    )


def write_accounts_csv(sample: DemoSample, path: Path) -> Path:
    """Write the sample's accounts as the accounts CSV `segsync accounts import` reads."""
    return _write_csv(sample.accounts, ACCOUNT_COLUMNS, path)


def write_list_csv(entries: Sequence[Mapping[str, str]], path: Path) -> Path:
    """Write a segment's list entries as the account list CSV `segments create --list` reads."""
    return _write_csv(entries, list(dict.fromkeys(c for entry in entries for c in entry)), path)


def _write_csv(rows: Sequence[Mapping[str, str]], columns: Sequence[str], path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def load_sample(session: Session, sample: DemoSample, folder: Path) -> ImportResult:
    """Import the accounts, create and publish the segments as a user would; the caller commits."""
    folder.mkdir(parents=True, exist_ok=True)
    result = import_accounts(session, write_accounts_csv(sample, folder / "accounts.csv"))
    for segment in sample.segments:
        listed = None
        if segment.list_file:
            listed = write_list_csv(segment.list_rows, folder / segment.list_file)
        create_segment(
            session, segment.name, list_path=listed, filter_expression=segment.filter_expression,
            source=segment.source, folder=segment.folder,
        )  # fmt: skip
        if segment.uses:
            publish(session, segment.name, segment.uses)
    return result


def seed_emulators(sample: DemoSample, emulators: Mapping[str, Emulator]) -> DemoSample:
    """Add the sample's records to the emulators given; returns the sample with the ids assigned."""
    assigned: dict[str, dict[str, str]] = {}  # system -> sample id -> emulator id
    links = _link_fields(sample.records)
    for system, objects in sample.records.items():
        emulator = emulators.get(system)
        if emulator is None:
            continue
        ids_of = assigned.setdefault(system, {})
        for object_type, rows in objects.items():
            # Links point at ids assigned already (parents and Salesforce come first); a record's
            # own id is new.
            payload = [
                {
                    k: v
                    for k, v in _renumbered(row, system, assigned, links).items()
                    if k not in _OWN_ID_FIELDS
                }
                for row in rows
            ]
            ids = emulator.add_sample_records(object_type, payload)
            old_ids = [row.get("Id") or row["id"] for row in rows]
            ids_of.update(zip(old_ids, ids, strict=True))
            if system == "salesforce":
                ids_of.update(
                    (old[:_SALESFORCE_SHORT_ID], new[:_SALESFORCE_SHORT_ID])
                    for old, new in zip(old_ids, ids, strict=True)
                )
    records = {
        system: {
            name: tuple(_renumbered(r, system, assigned, links) for r in rows)
            for name, rows in tables.items()
        }
        for system, tables in sample.records.items()
    }
    accounts = tuple(_renumbered(row, None, assigned, links) for row in sample.accounts)
    return replace(sample, accounts=accounts, records=records)


def _link_fields(systems: Iterable[str]) -> dict[str, str]:
    """Link field -> the system whose ids it holds, in the records of `systems`."""
    links = dict(_LINK_FIELDS)
    for system in systems:
        if system not in _CRM_RECORDS:
            field = sample_people(system).fields.get("salesforce_account_id")
            if field:
                links[field] = "salesforce"
    return links


def _renumbered(
    row: Row,
    system: str | None,
    assigned: Mapping[str, Mapping[str, str]],
    links: Mapping[str, str],
) -> Row:
    """`row` with the ids it holds (its own, in `system`, and its `links`) as the emulators
    gave."""
    renumbered = {}
    for key, value in row.items():
        of = system if key in _OWN_ID_FIELDS else links.get(key)
        renumbered[key] = assigned.get(of or "", {}).get(value, value)
    return renumbered
