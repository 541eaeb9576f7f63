"""The data of bench/sync.py: accounts and published segments in the database, records in the
emulators, and what each record's field must hold after a run.

Accounts and segments are the realistic sample `segsync demo` loads (worker.demo.data: names with
punctuation and non-ASCII letters, filter and list segments, some published for enrichment),
scaled to half as many accounts as records, loaded through the same functions the CLI calls.
The records are made here, one system at a time, so each system gets exactly N records:

- about 92% belong to an account with a non-empty value and start empty (or, 15% of them, with a
  stale value an earlier tool left): written;
- 3% already hold their account's value: unchanged;
- 3% belong to an account in no published segment: 60% of them hold a stale value, which the run
  clears (written), the others are empty (unchanged);
- 2% use a free-mail address: unmatched.

Salesforce Leads match by email domain (5% by website alone); HubSpot contacts match through an
associated company for part of the accounts (the account's hubspot_company_id), else by email.
Marketo leads and Pardot prospects match by email domain (5% by website alone, like the Leads);
Eloqua contacts by email address (their small text field holds 100 characters, so longer values
are truncated as the run truncates them).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import Engine, insert, select, text, update

from bench.sync_emulators import (
    BenchEloqua,
    BenchEmulator,
    BenchHubSpot,
    BenchMarketo,
    BenchPardot,
    BenchSalesforce,
)
from models.accounts import Account
from models.db import make_session_factory, transaction, upgrade
from models.enrichment import ValueFormat, enrichment_segment_names, enrichment_values
from models.segments import SegmentMembership
from worker.demo.data import FREE_MAIL_DOMAINS, STALE_VALUES, load_sample, make_sample

# Share of HubSpot accounts that get a company, and of their contacts associated with it.
_COMPANY_SHARE = 0.3
_ASSOCIATED_SHARE = 0.6
_FIRST = ("Ana", "Björn", "Chloé", "Dmitri", "Eun-ji", "François", "Grace", "Hiroshi", "Inès")
_LAST = ("Álvarez", "Brown", "Çelik", "Dubois", "Eriksson", "Fischer", "García", "Nowak", "Sato")


@dataclass(frozen=True)
class LoadedAccounts:
    """What the database holds: account id -> registrable domain, and segment counts."""

    domains: dict[int, str]
    segments: int
    enrichment_segments: int
    seconds: float


def load_accounts(engine: Engine, accounts: int, folder: Path, seed: int) -> LoadedAccounts:
    """Upgrade the schema and load the demo sample of `accounts` accounts, as the CLI would."""
    import time

    started = time.perf_counter()
    upgrade(engine)
    sample = make_sample(accounts, seed)
    # The sample's CRM ids point at records of its own; these emulators hold other records.
    rows = tuple(
        row | {"salesforce_account_id": "", "hubspot_company_id": ""} for row in sample.accounts
    )
    sample = replace(sample, accounts=rows)
    with transaction(make_session_factory(engine)) as session:
        load_sample(session, sample, folder)
    with engine.connect() as connection:
        domains = {
            int(account_id): str(domain)
            for account_id, domain in connection.execute(
                text("SELECT id, domain FROM accounts WHERE domain IS NOT NULL")
            )
        }
    return LoadedAccounts(
        domains=domains,
        segments=len(sample.segments),
        enrichment_segments=sum("enrichment" in s.uses for s in sample.segments),
        seconds=time.perf_counter() - started,
    )


def account_values(engine: Engine, max_length: int | None) -> dict[int, str]:
    """Every account's enrichment value with the default delimiter and this maximum length."""
    with engine.connect() as connection:
        return {
            v.account_id: v.value
            for v in enrichment_values(connection, ValueFormat(";", max_length))
        }


@dataclass
class Records:
    """One system's records: ids in the emulator's order, initial and expected field values."""

    system: str
    object_type: str
    field: str
    ids: list[str] = dataclasses.field(default_factory=list)
    initial: dict[str, str | None] = dataclasses.field(default_factory=dict)
    expected: dict[str, str | None] = dataclasses.field(default_factory=dict)
    kinds: dict[str, int] = dataclasses.field(default_factory=dict)  # kind -> count
    accounts: dict[str, int | None] = dataclasses.field(default_factory=dict)  # None: unmatched
    max_length: int | None = None  # the field's, which values are cut to

    @property
    def to_write(self) -> list[str]:
        """Ids whose field must change, in emulator order."""
        return [i for i in self.ids if (self.initial[i] or "") != (self.expected[i] or "")]


@dataclass(frozen=True)
class Seeding:
    """What a vendor's seeder is given: the records to make, of which object and field, and the
    accounts they match."""

    system: str
    object_type: str
    field: str
    max_length: int | None  # the field's, as the adapter describes it (None: no limit)
    engine: Engine
    count: int
    domains: dict[int, str]  # account id -> registrable domain
    values: dict[int, str]  # account id -> its enrichment value
    seed: int

    def specs(self, offset: int) -> tuple[random.Random, list[_Spec]]:
        """The random source of this vendor (the seed plus its own offset) and the records'
        kinds, accounts and values drawn from it."""
        rng = random.Random(self.seed + offset)
        return rng, _specs(rng, self.count, self.domains, self.values)

    def records(self, ids: Sequence[str], specs: Sequence[_Spec]) -> Records:
        """The seeded records: their ids in emulator order, initial and expected values."""
        records = _records(self.system, self.object_type, self.field, ids, specs)
        records.max_length = self.max_length
        return records


@dataclass(frozen=True)
class _Spec:
    kind: str
    account_id: int | None
    domain: str
    initial: str | None
    expected: str | None


def _specs(
    rng: random.Random, count: int, domains: dict[int, str], values: dict[int, str]
) -> list[_Spec]:
    valued = [a for a in sorted(domains) if values.get(a)]
    empty = [a for a in sorted(domains) if not values.get(a)]
    if not valued:
        raise SystemExit("no account has a published segment: the sample is too small")
    rng.shuffle(valued)
    rng.shuffle(empty)
    specs = []
    next_valued = next_empty = 0
    for _ in range(count):
        draw = rng.random()
        if draw < 0.02:
            domain = rng.choice(FREE_MAIL_DOMAINS)
            initial = rng.choice(STALE_VALUES) if rng.random() < 0.3 else None
            specs.append(_Spec("unmatched", None, domain, initial, initial))
            continue
        if draw < 0.05 or not empty or draw >= 0.08:
            account = valued[next_valued % len(valued)]
            next_valued += 1
            value = values[account]
            if draw < 0.05:
                specs.append(_Spec("unchanged", account, domains[account], value, value))
            else:
                initial = rng.choice(STALE_VALUES) if rng.random() < 0.15 else None
                specs.append(_Spec("write", account, domains[account], initial, value))
            continue
        account = empty[next_empty % len(empty)]
        next_empty += 1
        if rng.random() < 0.6:
            specs.append(_Spec("clear", account, domains[account], rng.choice(STALE_VALUES), None))
        else:
            specs.append(_Spec("unchanged", account, domains[account], None, None))
    return specs


def _person(rng: random.Random, number: int) -> tuple[str, str, str]:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    local = f"{first[0]}.{last}{number}".lower()
    local = local.encode("ascii", "ignore").decode() or f"p{number}"
    return first, last, local


def seed_salesforce(emulator: BenchSalesforce, seeding: Seeding) -> Records:
    """Leads in the emulator; returns their ids and field values before and after."""
    rng, specs = seeding.specs(0)
    rows = []
    for number, spec in enumerate(specs):
        first, last, local = _person(rng, number)
        row: dict[str, str | None] = {
            "FirstName": first,
            "LastName": last,
            "Company": spec.domain.split(".")[0].title(),
            seeding.field: spec.initial,
        }
        by_website = spec.kind != "unmatched" and rng.random() < 0.05
        if by_website:
            row["Website"] = f"https://www.{spec.domain}/"
        else:
            row["Email"] = f"{local}@{spec.domain}"
            if spec.kind != "unmatched" and rng.random() < 0.4:
                row["Website"] = f"www.{spec.domain}"
        rows.append(row)
    return seeding.records(emulator.add_records(seeding.object_type, rows), specs)


def seed_hubspot(emulator: BenchHubSpot, seeding: Seeding) -> Records:
    """Contacts (and companies for some accounts, stored as their hubspot_company_id)."""
    rng, specs = seeding.specs(1)
    domains = seeding.domains
    accounts = sorted({s.account_id for s in specs if s.account_id is not None})
    with_company = [a for a in accounts if rng.random() < _COMPANY_SHARE]
    company_ids = emulator.add_records(
        "companies",
        [{"name": domains[a].split(".")[0].title(), "domain": domains[a]} for a in with_company],
    )
    companies = dict(zip(with_company, company_ids, strict=True))
    with transaction(make_session_factory(seeding.engine)) as session:
        for account_id, company_id in companies.items():
            session.execute(
                update(Account)
                .where(Account.id == account_id)
                .values(hubspot_company_id=company_id)
            )
    rows = []
    for number, spec in enumerate(specs):
        first, last, local = _person(rng, number)
        rows.append(
            {
                "email": f"{local}@{spec.domain}",
                "firstname": first,
                "lastname": last,
                "company": spec.domain.split(".")[0].title(),
                seeding.field: spec.initial,
            }
        )
    ids = emulator.add_records(seeding.object_type, rows)
    for record_id, spec in zip(ids, specs, strict=True):
        company = companies.get(spec.account_id) if spec.account_id is not None else None
        if company is not None and rng.random() < _ASSOCIATED_SHARE:
            emulator.associate(record_id, company)
    return seeding.records(ids, specs)


def _email_or_website_rows(
    rng: random.Random, specs: list[_Spec], field: str
) -> list[dict[str, str | None]]:
    """People rows matched by email, or by website alone for 5% (Marketo, Pardot)."""
    rows = []
    for number, spec in enumerate(specs):
        first, last, local = _person(rng, number)
        row: dict[str, str | None] = {
            "firstName": first,
            "lastName": last,
            "company": spec.domain.split(".")[0].title(),
            field: spec.initial,
        }
        if spec.kind != "unmatched" and rng.random() < 0.05:
            row["website"] = f"https://www.{spec.domain}/"
        else:
            row["email"] = f"{local}@{spec.domain}"
        rows.append(row)
    return rows


def seed_marketo(emulator: BenchMarketo, seeding: Seeding) -> Records:
    """Marketo leads (email, or website alone for 5%)."""
    rng, specs = seeding.specs(2)
    rows = _email_or_website_rows(rng, specs, seeding.field)
    return seeding.records(emulator.add_records(seeding.object_type, rows), specs)


def seed_pardot(emulator: BenchPardot, seeding: Seeding) -> Records:
    """Pardot prospects (email, or website alone for 5%)."""
    rng, specs = seeding.specs(3)
    rows = _email_or_website_rows(rng, specs, seeding.field)
    return seeding.records(emulator.add_records(seeding.object_type, rows), specs)


def seed_eloqua(emulator: BenchEloqua, seeding: Seeding) -> Records:
    """Eloqua contacts, by email address (values cut to the field's length, as a run cuts
    them)."""
    rng, specs = seeding.specs(4)
    cut = seeding.max_length
    rows = []
    for number, spec in enumerate(specs):
        first, last, local = _person(rng, number)
        rows.append(
            {
                "emailAddress": f"{local}@{spec.domain}",
                "firstName": first,
                "lastName": last,
                "accountName": spec.domain.split(".")[0].title()[:cut],
                seeding.field: (spec.initial or "")[:cut] or None,
            }
        )
    return seeding.records(emulator.add_records(seeding.object_type, rows), specs)


def _records(
    system: str, object_type: str, field_name: str, ids: Sequence[str], specs: Sequence[_Spec]
) -> Records:
    records = Records(system, object_type, field_name)
    for record_id, spec in zip(ids, specs, strict=True):
        records.ids.append(record_id)
        records.initial[record_id] = spec.initial
        records.expected[record_id] = spec.expected
        records.accounts[record_id] = spec.account_id
        records.kinds[spec.kind] = records.kinds.get(spec.kind, 0) + 1
    return records


def restore(emulator: BenchEmulator, records: Records) -> None:
    """Put every record's initial value back, and forget the emulator's writes and counts."""
    for record_id, value in records.initial.items():
        emulator.set_value(records.object_type, record_id, records.field, value)
    emulator.reset()


def current_value(emulator: BenchEmulator, records: Records, record_id: str) -> str:
    """A record's field as the emulator holds it now ("" when empty)."""
    return emulator.value(records.object_type, record_id, records.field) or ""


def change_segments(engine: Engine, share: float, seed: int) -> list[int]:
    """Add `share` of the accounts (at least one) each to one more segment published for
    enrichment, straight into segment_memberships as a segment refresh would; their ids."""
    rng = random.Random(seed)
    with transaction(make_session_factory(engine)) as session:
        published = sorted(enrichment_segment_names(session.connection()))
        accounts = sorted(session.scalars(select(Account.id)))
        members: dict[int, set[int]] = {}
        for segment_id, account_id in session.execute(
            select(SegmentMembership.segment_id, SegmentMembership.account_id)
        ):
            members.setdefault(account_id, set()).add(segment_id)
        candidates = [a for a in accounts if set(published) - members.get(a, set())]
        chosen = sorted(rng.sample(candidates, max(1, round(len(accounts) * share))))
        rows = [
            {
                "account_id": a,
                "segment_id": rng.choice(sorted(set(published) - members.get(a, set()))),
            }
            for a in chosen
        ]
        session.execute(insert(SegmentMembership), rows)
    return chosen


def revalue(records: Records, values: dict[int, str]) -> set[str]:
    """Give every matched record its account's value from `values`; the ids whose value
    changed (the records a run must now write)."""
    changed = set()
    for record_id, account_id in records.accounts.items():
        if account_id is None:
            continue
        value = values.get(account_id) or None
        if (value or "") != (records.expected[record_id] or ""):
            records.expected[record_id] = value
            changed.add(record_id)
    return changed


def edit_records(
    emulator: BenchEmulator, records: Records, chosen: Sequence[str], value: str
) -> None:
    """Someone else sets the field of each chosen record to `value` in the CRM."""
    for record_id in chosen:
        emulator.edit(records.object_type, record_id, records.field, value)


def records_to_edit(records: Records, share: float, seed: int) -> list[str]:
    """`share` of the matched records (at least one), in emulator order."""
    matched = [i for i in records.ids if records.accounts[i] is not None]
    chosen = set(random.Random(seed).sample(matched, max(1, round(len(records.ids) * share))))
    return [i for i in records.ids if i in chosen]
