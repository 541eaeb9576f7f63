"""The demo sample: deterministic, varied, valid for the real import/segment/publish code paths,
and loadable into real emulator objects."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.sandbox.eloqua import SEGMENT_FIELD as ELOQUA_FIELD
from connectors.sandbox.eloqua import SMALL_TEXT_MAX, EloquaEmulator
from connectors.sandbox.hubspot import SEGMENT_PROPERTY, HubSpotEmulator
from connectors.sandbox.marketo import SEGMENT_FIELD as MARKETO_FIELD
from connectors.sandbox.marketo import MarketoEmulator
from connectors.sandbox.pardot import SEGMENT_FIELD as PARDOT_FIELD
from connectors.sandbox.pardot import PardotEmulator
from connectors.sandbox.salesforce import SalesforceEmulator
from connectors.sandbox.salesforce_store import with_checksum
from connectors.sandbox.server import Emulator
from models.accounts import Account
from models.domains import registrable_domain
from models.enrichment import ENRICHMENT_USE, ValueFormat, enrichment_values
from models.filters import parse_filter
from models.publishing import GTM_FILTER_KINDS, GTM_SOURCES, published_table
from models.segment_catalog import find_segment, read_account_list, unmatched_list_entries
from models.segments import LIST_FILTER_KIND
from worker.demo.data import (
    ACCOUNT_COLUMNS,
    FREE_MAIL_DOMAINS,
    SALESFORCE_FIELD,
    STALE_VALUES,
    DemoSample,
    load_sample,
    make_sample,
    seed_emulators,
    write_list_csv,
)

# Each system's segment field, as the sample's records name it.
FIELDS = {
    "salesforce": SALESFORCE_FIELD,
    "hubspot": SEGMENT_PROPERTY,
    "marketo": MARKETO_FIELD,
    "pardot": PARDOT_FIELD,
    "eloqua": ELOQUA_FIELD,
}


@pytest.fixture(scope="module")
def sample() -> DemoSample:
    return make_sample()


def domain_of(row: dict[str, str]) -> str:
    """The account's domain as the accounts import computes it."""
    return registrable_domain(row["domain"] or row["website"])


def email_kinds(sample: DemoSample, emails: list[str]) -> Counter[str]:
    """How many addresses are at an account's domain, at free mail, or at neither."""
    domains = {domain_of(row) for row in sample.accounts}

    def kind(email: str) -> str:
        domain = registrable_domain(email.rsplit("@", 1)[1])
        return "free" if domain in FREE_MAIL_DOMAINS else "account" if domain in domains else "none"

    return Counter(kind(email) for email in emails)


def all_emulators(**records: int) -> dict[str, Emulator]:
    """One emulator of each system, some already holding `records[system]` records."""
    return {
        "salesforce": SalesforceEmulator(records=records.get("salesforce", 0)),
        "hubspot": HubSpotEmulator(records=records.get("hubspot", 0)),
        "marketo": MarketoEmulator(records=records.get("marketo", 0)),
        "pardot": PardotEmulator(records=records.get("pardot", 0)),
        "eloqua": EloquaEmulator(records=records.get("eloqua", 0)),
    }


def test_same_seed_gives_the_same_sample(sample: DemoSample) -> None:
    assert make_sample() == sample
    assert make_sample(accounts=200, seed=3) == make_sample(accounts=200, seed=3)
    assert make_sample(accounts=200, seed=3).accounts != make_sample(accounts=200, seed=4).accounts


def test_sizes_at_the_default(sample: DemoSample) -> None:
    assert len(sample.accounts) == 3000
    assert len(sample.segments) == 41
    assert {system: set(tables) for system, tables in sample.records.items()} == {
        "salesforce": {"Account", "Contact", "Lead"},
        "hubspot": {"companies", "contacts", "leads"},
        "marketo": {"leads"},
        "pardot": {"prospects"},
        "eloqua": {"contacts"},
    }
    sizes = [len(rows) for tables in sample.records.values() for rows in tables.values()]
    assert all(100 <= size <= 4000 for size in sizes), sizes


def test_accounts_are_varied_and_unique(sample: DemoSample) -> None:
    names = [row["name"] for row in sample.accounts]
    assert sum(not name.isascii() for name in names) > 300
    for mark in ("&", ",", "'", '"', "ü", "é", "ō", "ł", "ø", "İ", "Ş"):
        assert any(mark in name for name in names), mark
    domains = [domain_of(row) for row in sample.accounts]
    assert len(set(domains)) == len(domains)
    suffixes = {domain.split(".", 1)[1] for domain in domains}
    assert {"com", "co.uk", "de", "com.au", "co.jp", "fr", "com.br"} <= suffixes
    assert all(list(row) == list(ACCOUNT_COLUMNS) for row in sample.accounts)
    assert len({row["country"] for row in sample.accounts}) > 20
    assert {row["profile_fit"] for row in sample.accounts} == {"A", "B", "C", "D", ""}


def test_segments_cover_names_sources_and_uses(sample: DemoSample) -> None:
    names = [segment.name for segment in sample.segments]
    assert len({name.casefold() for name in names}) == len(names)
    for mark in (";", "&", "/", '"', "—", "é", "Ō"):
        assert any(mark in name for name in names), mark
    sources = Counter(segment.source for segment in sample.segments)
    assert set(sources) == {"filter", "uploaded_list", "crm_report_sync", "crm_list_sync"}
    uses = Counter(use for segment in sample.segments for use in segment.uses)
    assert uses[ENRICHMENT_USE] == 15
    assert uses["account_details"] > 5 and uses["api"] > 3 and uses["gtm"] > 3


def test_every_filter_parses_and_gtm_goes_to_eligible_segments_only(sample: DemoSample) -> None:
    for segment in sample.segments:
        kinds = [] if segment.source == "filter" else [LIST_FILTER_KIND[segment.source]]
        if segment.filter_expression is not None:
            parsed = parse_filter(segment.filter_expression)
            kinds += [comparison.kind for comparison in parsed.comparisons]
        eligible = segment.source in GTM_SOURCES and set(kinds) <= set(GTM_FILTER_KINDS)
        assert "gtm" not in segment.uses or eligible, segment.name
        assert (
            (segment.list_file is None) == (segment.source == "filter") == (not segment.list_rows)
        )


def test_list_files_read_back(sample: DemoSample, tmp_path: Path) -> None:
    for segment in sample.segments:
        if segment.list_file:
            path = write_list_csv(segment.list_rows, tmp_path / segment.list_file)
            assert len(read_account_list(path)) == len(segment.list_rows)


def test_salesforce_records_match_the_accounts(sample: DemoSample) -> None:
    tables = sample.records["salesforce"]
    account_ids = {record["Id"] for record in tables["Account"]}
    for object_type, prefix in (("Account", "001"), ("Contact", "003"), ("Lead", "00Q")):
        for record in tables[object_type]:
            assert (
                record["Id"].startswith(prefix) and with_checksum(record["Id"][:15]) == record["Id"]
            )
    linked = [
        row["salesforce_account_id"] for row in sample.accounts if row["salesforce_account_id"]
    ]
    assert len(linked) > 2000 and set(linked) <= account_ids
    domains = {domain_of(row) for row in sample.accounts}
    contacts = tables["Contact"]
    assert {c["AccountId"] for c in contacts if "AccountId" in c} <= account_ids
    assert sum("AccountId" in c for c in contacts) > len(contacts) * 0.6
    assert sum(registrable_domain(c["Email"]) in domains for c in contacts) > len(contacts) * 0.9

    def kind(email: str) -> str:
        domain = registrable_domain(email)
        return "free" if domain in FREE_MAIL_DOMAINS else "account" if domain in domains else "none"

    kinds = Counter(kind(lead["Email"]) for lead in tables["Lead"] if "Email" in lead)
    assert kinds["account"] > 1000 and kinds["free"] > 100 and kinds["none"] > 50
    assert not set(FREE_MAIL_DOMAINS) & domains
    assert sum("Email" not in lead for lead in tables["Lead"]) > 100


def test_hubspot_records_match_the_accounts(sample: DemoSample) -> None:
    tables = sample.records["hubspot"]
    company_ids = {record["id"] for record in tables["companies"]}
    linked = {row["hubspot_company_id"] for row in sample.accounts if row["hubspot_company_id"]}
    assert len(linked) > 1000 and linked <= company_ids
    associated = [
        c["associatedcompanyid"] for c in tables["contacts"] if "associatedcompanyid" in c
    ]
    assert len(associated) > 500 and set(associated) <= company_ids
    assert all(lead["associatedcompanyid"] in company_ids for lead in tables["leads"])
    ids = [record["id"] for rows in tables.values() for record in rows]
    assert ids == [str(number) for number in range(1001, 1001 + len(ids))]


def test_marketo_leads_match_by_email_or_website(sample: DemoSample) -> None:
    leads = sample.records["marketo"]["leads"]
    assert [lead["id"] for lead in leads] == [str(n) for n in range(1, len(leads) + 1)]
    kinds = email_kinds(sample, [lead["email"] for lead in leads])
    assert kinds["account"] > 1000 and kinds["free"] > 100 and kinds["none"] > 50
    # Free-mail leads that gave their company's website in a form match by the website.
    domains = {domain_of(row) for row in sample.accounts}
    free_with_website = [
        lead
        for lead in leads
        if registrable_domain(lead["email"]) in FREE_MAIL_DOMAINS
        and "website" in lead
        and registrable_domain(lead["website"]) in domains
    ]
    assert len(free_with_website) > 50
    # A lead at a company gives its name: the account whose domain the address is at.
    names = {domain_of(row): row["name"] for row in sample.accounts}
    for lead in leads:
        domain = registrable_domain(lead["email"].rsplit("@", 1)[1])
        assert lead["company"] == names.get(domain, lead["company"]), lead


def test_pardot_prospects_link_to_their_salesforce_accounts(sample: DemoSample) -> None:
    prospects = sample.records["pardot"]["prospects"]
    assert [p["id"] for p in prospects] == [str(n) for n in range(1001, 1001 + len(prospects))]
    accounts = {record["Id"]: record for record in sample.records["salesforce"]["Account"]}
    by_short_id = {record_id[:15]: record for record_id, record in accounts.items()}
    links = [p["salesforceAccountId"] for p in prospects if "salesforceAccountId" in p]
    assert len(links) > 700
    # Both forms of a Salesforce id occur, and each names an Account of the sample.
    lengths = Counter(len(link) for link in links)
    assert set(lengths) == {15, 18} and lengths[15] > 100
    assert all(link in accounts or link in by_short_id for link in links)
    linked_in_segsync = {
        row["salesforce_account_id"][:15] for row in sample.accounts if row["salesforce_account_id"]
    }
    assert sum(link[:15] in linked_in_segsync for link in links) > len(links) * 0.8
    for prospect in prospects:
        if "salesforceAccountId" not in prospect:
            continue
        account = by_short_id[prospect["salesforceAccountId"][:15]]
        if account["Name"] == "Unknown prospect":
            # Synced to a CRM account segsync does not know: its address is at that account's.
            email_domain = registrable_domain(prospect["email"].rsplit("@", 1)[1])
            assert email_domain == registrable_domain(account["Website"])
        else:
            # The link names the Account of the company the prospect works for.
            assert account["Name"] == prospect["company"], prospect
    # Some linked prospects use free mail: only the link matches them to their account.
    kinds = email_kinds(sample, [p["email"] for p in prospects if "salesforceAccountId" in p])
    assert kinds["free"] > 50
    kinds = email_kinds(sample, [p["email"] for p in prospects])
    assert kinds["account"] > 1000 and kinds["free"] > 100 and kinds["none"] > 50


def test_eloqua_contacts_match_by_email_only(sample: DemoSample) -> None:
    contacts = sample.records["eloqua"]["contacts"]
    assert [c["id"] for c in contacts] == [str(n) for n in range(1001, 1001 + len(contacts))]
    emails = [contact["C_EmailAddress"] for contact in contacts]
    assert len({email.lower() for email in emails}) == len(emails)  # one contact per address
    kinds = email_kinds(sample, emails)
    assert kinds["account"] > 1000 and kinds["free"] > 100 and kinds["none"] > 50
    assert all("website" not in contact for contact in contacts)


def test_some_records_hold_a_stale_segment_value(sample: DemoSample) -> None:
    for system, field in FIELDS.items():
        for object_type, rows in sample.records[system].items():
            stale = [row[field] for row in rows if field in row]
            assert stale and set(stale) <= set(STALE_VALUES), (system, object_type)


def test_the_sample_loads_through_import_segments_and_publishing(
    sample: DemoSample, session: Session, tmp_path: Path
) -> None:
    result = load_sample(session, sample, tmp_path / "demo")
    session.commit()
    assert result.errors == []
    assert (result.created, result.updated) == (3000, 0)
    stored = set(session.scalars(select(Account.domain)))
    assert stored == {domain_of(row) for row in sample.accounts}
    first = session.scalars(select(Account).order_by(Account.external_id)).first()
    assert first is not None and {"owner", "territory"} <= set(first.crm_attributes)
    for spec in sample.segments:
        segment = find_segment(session, spec.name)
        assert segment.name == spec.name and segment.folder == spec.folder
        assert segment.member_count > 0, spec.name
        if spec.list_file:
            assert unmatched_list_entries(session, segment) >= 1
    published = {row.name: set(row.uses) for row in published_table(session)}
    assert published == {spec.name: set(spec.uses) for spec in sample.segments if spec.uses}
    # The values show every case of the rule: empty (stale ones get cleared), and truncated.
    values = list(enrichment_values(session.connection(), ValueFormat(max_length=255)))
    assert sum(not value.value for value in values) > 500
    assert sum(value.names >= 3 for value in values) > 100
    assert sum(value.dropped > 0 for value in values) > 20
    # Eloqua's small text field holds 100 characters: whole names go for many more accounts.
    short = list(enrichment_values(session.connection(), ValueFormat(max_length=SMALL_TEXT_MAX)))
    assert all(len(value.value) <= SMALL_TEXT_MAX for value in short)
    assert sum(value.dropped > 0 for value in short) > 2 * sum(v.dropped > 0 for v in values)


def test_seed_fresh_emulators_keeps_the_sample_ids() -> None:
    sample = make_sample(accounts=300)
    emulators = all_emulators()
    salesforce, hubspot = emulators["salesforce"], emulators["hubspot"]
    marketo, pardot, eloqua = emulators["marketo"], emulators["pardot"], emulators["eloqua"]
    assert isinstance(salesforce, SalesforceEmulator) and isinstance(hubspot, HubSpotEmulator)
    assert isinstance(marketo, MarketoEmulator) and isinstance(pardot, PardotEmulator)
    assert isinstance(eloqua, EloquaEmulator)
    assert seed_emulators(sample, emulators) == sample
    for object_type, rows in sample.records["salesforce"].items():
        assert len(salesforce.store.records[object_type]) == len(rows)
        for row in rows:
            stored = salesforce.record(object_type, row["Id"])
            assert {key: stored[key] for key in row} == row
    for object_type, rows in sample.records["hubspot"].items():
        for row in rows:
            stored = hubspot.record(object_type, row["id"])
            links = stored.get("associations", {}).get("companies", {}).get("results", [])
            assert {link["id"] for link in links} == {row.get("associatedcompanyid")} - {None}
            assert stored["properties"].get("segment_names") == row.get("segment_names")
    for row in sample.records["marketo"]["leads"]:
        stored = marketo.record("leads", row["id"])
        assert {key: str(stored[key]) for key in row} == row
    for row in sample.records["pardot"]["prospects"]:
        stored = pardot.record("prospects", row["id"])
        assert {key: str(stored[key]) for key in row} == row
    for row in sample.records["eloqua"]["contacts"]:
        stored = eloqua.record("contacts", row["id"])
        assert {"id": stored["id"]} | {k: v for k, v in stored["fields"].items() if v} == row


def test_seeded_marketo_leads_were_created_over_time() -> None:
    # The newest lead is recent and the rest older, as in a live instance: the adapter finds
    # where lead ids end from the last day's New Lead activities.
    sample = make_sample(accounts=300)
    marketo = MarketoEmulator()
    seed_emulators(sample, {"marketo": marketo})
    ids = [row["id"] for row in sample.records["marketo"]["leads"]]
    created = [
        dt.datetime.fromisoformat(marketo.record("leads", lead_id)["createdAt"]) for lead_id in ids
    ]
    now = dt.datetime.now(dt.UTC)
    assert created == sorted(created)
    assert now - created[-1] < dt.timedelta(minutes=5)
    assert now - created[0] > dt.timedelta(days=3)
    assert sum(now - moment < dt.timedelta(days=1) for moment in created) < 100


def test_seed_renumbers_when_emulators_already_hold_records() -> None:
    sample = make_sample(accounts=100, seed=11)
    emulators = all_emulators(salesforce=5, hubspot=3, marketo=4, pardot=6, eloqua=2)
    salesforce, hubspot = emulators["salesforce"], emulators["hubspot"]
    marketo, pardot, eloqua = emulators["marketo"], emulators["pardot"], emulators["eloqua"]
    assert isinstance(salesforce, SalesforceEmulator) and isinstance(hubspot, HubSpotEmulator)
    assert isinstance(marketo, MarketoEmulator) and isinstance(pardot, PardotEmulator)
    assert isinstance(eloqua, EloquaEmulator)
    seeded = seed_emulators(sample, emulators)
    assert seeded.accounts != sample.accounts
    for row in seeded.accounts:
        if row["salesforce_account_id"]:
            assert salesforce.record("Account", row["salesforce_account_id"])["Name"] == row["name"]
        if row["hubspot_company_id"]:
            company = hubspot.record("companies", row["hubspot_company_id"])
            assert company["properties"]["name"] == row["name"]
    # A link follows its parent: each contact still belongs to the same company by name.
    account_names = {r["Id"]: r["Name"] for r in sample.records["salesforce"]["Account"]}
    before, after = (s.records["salesforce"]["Contact"] for s in (sample, seeded))
    for old, new in zip(before, after, strict=True):
        stored = salesforce.record("Contact", new["Id"])
        assert stored["Email"] == old["Email"]
        linked = stored["AccountId"] and salesforce.record("Account", stored["AccountId"])["Name"]
        assert linked == account_names.get(old.get("AccountId", ""))
    company_names = {r["id"]: r["name"] for r in sample.records["hubspot"]["companies"]}
    before, after = (s.records["hubspot"]["contacts"] for s in (sample, seeded))
    for old, new in zip(before, after, strict=True):
        stored = hubspot.record("contacts", new["id"])
        assert stored["properties"]["email"] == old["email"]
        links = stored.get("associations", {}).get("companies", {}).get("results", [])
        linked = {hubspot.record("companies", link["id"])["properties"]["name"] for link in links}
        company_id = old.get("associatedcompanyid")
        assert linked == ({company_names[company_id]} if company_id else set())
    # A Pardot prospect's link follows its Salesforce Account, in the form (18 or 15 characters)
    # the sample gave it.
    renumbered = {
        old["Id"]: new["Id"]
        for old, new in zip(
            sample.records["salesforce"]["Account"],
            seeded.records["salesforce"]["Account"],
            strict=True,
        )
    }
    before, after = (s.records["pardot"]["prospects"] for s in (sample, seeded))
    lengths = Counter(len(p["salesforceAccountId"]) for p in before if "salesforceAccountId" in p)
    assert set(lengths) == {15, 18}
    for old, new in zip(before, after, strict=True):
        stored = pardot.record("prospects", new["id"])
        assert new["id"] != old["id"] and stored["email"] == old["email"]
        link = old.get("salesforceAccountId")
        if link is None:
            assert stored["salesforceAccountId"] is None
            continue
        old_id = next(account_id for account_id in renumbered if account_id.startswith(link))
        new_link = renumbered[old_id][: len(link)]
        assert new_link != link
        assert stored["salesforceAccountId"] == new["salesforceAccountId"] == new_link
        assert salesforce.record("Account", renumbered[old_id])["Name"] == account_names[old_id]
    for system, object_type, email in (
        ("marketo", "leads", "email"),
        ("eloqua", "contacts", "C_EmailAddress"),
    ):
        before, after = (s.records[system][object_type] for s in (sample, seeded))
        for old, new in zip(before, after, strict=True):
            assert new["id"] != old["id"] and new[email] == old[email]
    for row in seeded.records["marketo"]["leads"]:
        assert marketo.record("leads", row["id"])["email"] == row["email"]
    for row in seeded.records["eloqua"]["contacts"]:
        assert (
            eloqua.record("contacts", row["id"])["fields"]["C_EmailAddress"]
            == row["C_EmailAddress"]
        )


def test_seed_only_the_systems_given() -> None:
    sample = make_sample(accounts=50)
    hubspot = HubSpotEmulator()
    assert seed_emulators(sample, {"hubspot": hubspot}) == sample
    last_lead = sample.records["hubspot"]["leads"][-1]
    assert hubspot.record("leads", last_lead["id"])["properties"]["hs_lead_name"]
    # Pardot without Salesforce: the links keep the sample's Salesforce ids.
    pardot = PardotEmulator(records=2)
    seeded = seed_emulators(sample, {"pardot": pardot})
    assert seeded.records["salesforce"] == sample.records["salesforce"]
    before, after = (s.records["pardot"]["prospects"] for s in (sample, seeded))
    for old, new in zip(before, after, strict=True):
        stored = pardot.record("prospects", new["id"])
        assert stored["salesforceAccountId"] == old.get("salesforceAccountId")


def test_a_sample_needs_an_account() -> None:
    with pytest.raises(ValueError, match="at least one account"):
        make_sample(accounts=0)
    assert len(make_sample(accounts=1).accounts) == 1
