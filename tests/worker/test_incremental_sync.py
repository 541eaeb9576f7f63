"""Incremental runs (DESIGN.md §3 step 3): a run reads only what the vendor changed since the
watermark, compares every other record from its state, and never misses a change a full read
would have caught. Against the Salesforce emulator over real HTTPS."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import Connector
from connectors.sandbox.cluster import Sandbox
from connectors.sandbox.salesforce import SalesforceEmulator
from models.base import utcnow
from models.connections import ConnectionSpec, add_connection
from models.orchestrations import (
    Orchestration,
    OrchestrationChanges,
    OrchestrationSpec,
    Scope,
    create_orchestration,
    update_orchestration,
)
from models.publishing import publish
from models.runs import ReadWatermark, RecordState, SyncBatch, SyncRun
from models.segment_catalog import create_segment
from models.segments import Segment, SegmentMembership
from tests.factories import add_accounts
from tests.worker.incremental_runs import left_to_write, run_here
from worker.connector_factory import build_connector
from worker.sandbox_connections import sandbox_connection
from worker.sync import plan_run, start_run

FIELD = "Segment_Names__c"
DOMAINS = [f"company{n}.com" for n in range(8)]
SEGMENTS = ["Alpha", "Beta", "Gamma"]


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(["salesforce"]) as running:
        yield running


@pytest.fixture
def org(sandbox: Sandbox) -> SalesforceEmulator:
    emulator = sandbox.emulators["salesforce"]
    assert isinstance(emulator, SalesforceEmulator)
    return emulator


@pytest.fixture
def connector(sandbox: Sandbox) -> Iterator[Connector]:
    settings, secrets = sandbox_connection("salesforce", sandbox.describe())
    built = build_connector("salesforce", settings, secrets)
    yield built
    built.close()


@pytest.fixture
def orchestration_id(session: Session) -> int:
    """Leads of eight companies; three segments published for enrichment, members set below."""
    add_accounts(
        session, [{"external_id": f"A{n}", "domain": domain} for n, domain in enumerate(DOMAINS)]
    )
    for name in SEGMENTS:
        create_segment(session, name, filter_expression='domain = "none.com"')
        publish(session, name, ["enrichment"])
    connection = add_connection(
        session, ConnectionSpec("sf", "salesforce", {}, {}, {"access_token": "SF"}), None
    )
    orchestration = create_orchestration(
        session, OrchestrationSpec("Leads", connection.id, "Lead", FIELD, Scope("all"))
    )
    session.commit()
    for n, domain in enumerate(DOMAINS):
        set_members(session, SEGMENTS[n % 3], [domain], add=True)
    return orchestration.id


def set_members(session: Session, segment: str, domains: list[str], *, add: bool) -> None:
    """Put the accounts of `domains` in (or out of) `segment`, as a refresh would."""
    from models.accounts import Account

    segment_id = session.scalar(select(Segment.id).where(Segment.name == segment))
    account_ids = list(session.scalars(select(Account.id).where(Account.domain.in_(domains))))
    if add:
        present = set(
            session.scalars(
                select(SegmentMembership.account_id).where(
                    SegmentMembership.segment_id == segment_id
                )
            )
        )
        new = [a for a in account_ids if a not in present]
        if new:
            session.execute(
                insert(SegmentMembership),
                [{"segment_id": segment_id, "account_id": a} for a in new],
            )
    else:
        session.execute(
            delete(SegmentMembership).where(
                SegmentMembership.segment_id == segment_id,
                SegmentMembership.account_id.in_(account_ids),
            )
        )
    session.commit()


def add_leads(org: SalesforceEmulator, domains: list[str]) -> list[str]:
    rows = [
        {"LastName": f"Lead {n}", "Email": f"lead{n}@{domain}", "Company": domain}
        for n, domain in enumerate(domains)
    ]
    return org.add_records("Lead", rows)


@dataclass(frozen=True)
class Ran:
    """A finished run's row and the calls it made."""

    run: SyncRun
    calls: int


def sync(
    factory: sessionmaker[Session], orchestration_id: int, connector: Connector, full: bool = False
) -> Ran:
    """One run (tests.worker.incremental_runs.run_here) and the calls it made."""
    before = connector.api_calls
    run = run_here(factory, orchestration_id, connector, full)
    return Ran(run, connector.api_calls - before)


def values(org: SalesforceEmulator) -> dict[str, str | None]:
    return {record_id: record[FIELD] for record_id, record in org.store.records["Lead"].items()}


def test_the_first_run_reads_everything_and_a_later_one_only_what_changed(
    session_factory: sessionmaker[Session],
    orchestration_id: int,
    org: SalesforceEmulator,
    connector: Connector,
) -> None:
    leads = add_leads(org, DOMAINS * 30)

    first = sync(session_factory, orchestration_id, connector)
    # Its own writes come back once, as unchanged: nothing is written again.
    second = sync(session_factory, orchestration_id, connector)
    third = sync(session_factory, orchestration_id, connector)

    assert (
        first.run.read_mode,
        first.run.records_read,
        first.run.eligible,
        first.run.unmatched,
        first.run.enriched,
    ) == ("full", 240, 240, 0, 240)
    assert (second.run.read_mode, second.run.enriched, second.run.unchanged) == (
        "incremental",
        0,
        240,
    )
    assert second.run.records_read == 240
    assert (third.run.read_mode, third.run.records_read, third.run.enriched) == (
        "incremental",
        0,
        0,
    )
    assert third.run.eligible == 240 and third.run.unchanged == 240
    # An unchanged CRM costs one query: the field was described by the full read.
    assert third.calls == 1
    assert org.calls["GET /services/data/v62.0/sobjects/Lead/describe"] == 1
    assert all(values(org)[lead] for lead in leads)


def test_a_change_of_segments_writes_exactly_the_records_affected_without_reading(
    session: Session,
    session_factory: sessionmaker[Session],
    orchestration_id: int,
    org: SalesforceEmulator,
    connector: Connector,
) -> None:
    add_leads(org, DOMAINS * 10)
    for _ in range(2):
        sync(session_factory, orchestration_id, connector)
    set_members(session, "Beta", [DOMAINS[0]], add=True)  # company0: Alpha -> Alpha;Beta
    before = len(org.writes)

    ran = sync(session_factory, orchestration_id, connector)

    assert (ran.run.records_read, ran.run.enriched) == (0, 10)
    written = org.writes[before:]
    assert {w.value for w in written} == {"Alpha;Beta"} and len(written) == 10
    assert left_to_write(session_factory, orchestration_id, connector) == []


def test_changes_in_the_crm_are_read_and_followed(
    session: Session,
    session_factory: sessionmaker[Session],
    orchestration_id: int,
    org: SalesforceEmulator,
    connector: Connector,
) -> None:
    leads = add_leads(org, DOMAINS * 5)
    for _ in range(2):
        sync(session_factory, orchestration_id, connector)
    org.edit_record("Lead", leads[0], {"Email": "moved@company1.com"})  # now Beta's
    org.edit_record("Lead", leads[1], {FIELD: "Overwritten"})  # someone else's value
    [new] = add_leads(org, [DOMAINS[2]])

    ran = sync(session_factory, orchestration_id, connector)

    assert ran.run.records_read == 3 and ran.run.enriched == 3
    now = values(org)
    assert (now[leads[0]], now[leads[1]], now[new]) == ("Beta", "Beta", "Gamma")
    assert left_to_write(session_factory, orchestration_id, connector) == []


def test_a_full_run_reads_everything_and_forgets_deleted_records(
    session: Session,
    session_factory: sessionmaker[Session],
    orchestration_id: int,
    org: SalesforceEmulator,
    connector: Connector,
) -> None:
    leads = add_leads(org, DOMAINS * 3)
    sync(session_factory, orchestration_id, connector)
    org.delete_record("Lead", leads[0])

    ran = sync(session_factory, orchestration_id, connector, full=True)

    assert (ran.run.read_mode, ran.run.records_read) == ("full", 23)
    known = set(
        session.scalars(
            select(RecordState.record_id).where(RecordState.orchestration_id == orchestration_id)
        )
    )
    assert leads[0] not in known and len(known) == 23


def test_the_reconcile_comes_on_its_cadence(
    session: Session,
    session_factory: sessionmaker[Session],
    orchestration_id: int,
    org: SalesforceEmulator,
    connector: Connector,
) -> None:
    add_leads(org, DOMAINS)
    sync(session_factory, orchestration_id, connector)
    assert sync(session_factory, orchestration_id, connector).run.read_mode == "incremental"
    # The last full read was eight days ago: a weekly reconcile is due.
    session.execute(
        update(ReadWatermark)
        .where(ReadWatermark.orchestration_id == orchestration_id)
        .values(full_read_at=utcnow() - timedelta(days=8))
    )
    session.commit()
    assert sync(session_factory, orchestration_id, connector).run.read_mode == "full"
    assert sync(session_factory, orchestration_id, connector).run.read_mode == "incremental"
    update_orchestration(session, "Leads", OrchestrationChanges(reconcile_days=0))
    session.commit()
    assert sync(session_factory, orchestration_id, connector).run.read_mode == "full"


def test_a_failed_read_leaves_the_watermark_where_it_was(
    session: Session,
    session_factory: sessionmaker[Session],
    orchestration_id: int,
    org: SalesforceEmulator,
    connector: Connector,
) -> None:
    add_leads(org, DOMAINS)
    sync(session_factory, orchestration_id, connector)
    since = session.get_one(ReadWatermark, orchestration_id).modified_since
    session.commit()  # SQLite: a reader's transaction holds the write lock
    with session_factory() as other:
        run_id = start_run(other, other.get_one(Orchestration, orchestration_id), "manual").id
        other.commit()
    org.faults.inject("server_error", count=10)

    from worker.failure_policy import Refused

    with pytest.raises(Refused):
        plan_run(session_factory, run_id, connector, read_overlap=timedelta(0))

    assert session.get_one(ReadWatermark, orchestration_id).modified_since == since


def test_a_new_target_field_forgets_what_was_known_and_reads_everything(
    session: Session,
    session_factory: sessionmaker[Session],
    orchestration_id: int,
    org: SalesforceEmulator,
    connector: Connector,
) -> None:
    add_leads(org, DOMAINS)
    sync(session_factory, orchestration_id, connector)
    update_orchestration(session, "Leads", OrchestrationChanges(field="Segment_Names_Long__c"))
    session.commit()
    assert session.get(ReadWatermark, orchestration_id) is None
    count = select(func.count()).select_from(RecordState)
    assert session.scalar(count.where(RecordState.orchestration_id == orchestration_id)) == 0
    session.commit()

    ran = sync(session_factory, orchestration_id, connector)

    assert (ran.run.read_mode, ran.run.enriched) == ("full", 8)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_randomised_changes_are_never_missed(
    seed: int,
    session: Session,
    session_factory: sessionmaker[Session],
    orchestration_id: int,
    org: SalesforceEmulator,
    connector: Connector,
) -> None:
    """Rounds of random changes on both sides, an incremental run after each: a full read finds
    nothing left to write, every time."""
    pick = random.Random(seed)
    leads = add_leads(org, [pick.choice(DOMAINS) for _ in range(60)])
    sync(session_factory, orchestration_id, connector)
    numbers = iter(range(10_000))
    for _ in range(6):
        for _ in range(pick.randint(1, 6)):
            change = pick.choice(["move", "overwrite", "create", "delete", "merge", "segment"])
            alive = [lead for lead in leads if lead in org.store.records["Lead"]]
            if change == "move":
                org.edit_record(
                    "Lead",
                    pick.choice(alive),
                    {"Email": f"m{next(numbers)}@{pick.choice(DOMAINS)}"},
                )
            elif change == "overwrite":
                org.edit_record(
                    "Lead", pick.choice(alive), {FIELD: pick.choice(["x", None, "Beta"])}
                )
            elif change == "create":
                leads += add_leads(org, [pick.choice(DOMAINS)])
            elif change == "delete":
                org.delete_record("Lead", pick.choice(alive))
            elif change == "merge":
                # The loser is deleted; the winner takes its email (Salesforce's merge).
                loser, winner = pick.sample(alive, 2)
                email = org.store.records["Lead"][loser]["Email"]
                org.delete_record("Lead", loser)
                org.edit_record("Lead", winner, {"Email": email})
            else:
                set_members(
                    session, pick.choice(SEGMENTS), [pick.choice(DOMAINS)], add=pick.random() < 0.5
                )
        ran = sync(session_factory, orchestration_id, connector)
        assert ran.run.read_mode == "incremental"
        assert left_to_write(session_factory, orchestration_id, connector) == [], f"seed {seed}"
    assert not session.scalar(
        select(func.count()).select_from(SyncBatch).where(SyncBatch.status != "done")
    )


def test_a_known_record_deleted_in_the_crm_is_forgotten_not_failed(
    session: Session,
    session_factory: sessionmaker[Session],
    orchestration_id: int,
    org: SalesforceEmulator,
    connector: Connector,
) -> None:
    leads = add_leads(org, [DOMAINS[0]] * 3)
    sync(session_factory, orchestration_id, connector)
    org.delete_record("Lead", leads[0])
    set_members(session, "Beta", [DOMAINS[0]], add=True)  # every lead of company0 changes

    ran = sync(session_factory, orchestration_id, connector)

    assert (ran.run.status, ran.run.enriched, ran.run.failed, ran.run.eligible) == (
        "succeeded",
        2,
        0,
        2,
    )
    assert session.get(RecordState, (orchestration_id, leads[0])) is None


def test_a_changed_connection_makes_the_next_run_read_everything(
    session: Session,
    session_factory: sessionmaker[Session],
    orchestration_id: int,
    org: SalesforceEmulator,
    connector: Connector,
) -> None:
    from models.connections import ConnectionChanges, update_connection

    add_leads(org, DOMAINS)
    sync(session_factory, orchestration_id, connector)
    assert sync(session_factory, orchestration_id, connector).run.read_mode == "incremental"
    # Another org, or the same org by another address: they cannot be told apart.
    moved = ConnectionChanges(settings={"instance_url": "https://other.my.salesforce.com"})
    update_connection(session, "sf", moved, None, lambda *a: None)
    session.commit()

    assert session.get(ReadWatermark, orchestration_id) is None
    session.commit()
    assert sync(session_factory, orchestration_id, connector).run.read_mode == "full"
