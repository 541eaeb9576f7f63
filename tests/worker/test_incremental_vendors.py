"""Incremental runs never miss a change a full read would have caught, on every system: seeded
rounds of random changes in the CRM (records created, moved, overwritten, deleted, merged) and on
the account side (segments, domains, new accounts), each followed by an incremental run; then a
full read finds nothing left to write. Against each emulator over real HTTPS."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import Connector
from connectors.sandbox.cluster import Sandbox
from connectors.systems import SYSTEMS
from models.accounts import Account
from models.connections import ConnectionSpec, add_connection
from models.enrichment import enrichment_values
from models.matching import build_account_index, match_keys, record_keys
from models.orchestrations import (
    Orchestration,
    OrchestrationSpec,
    Scope,
    create_orchestration,
)
from models.publishing import publish
from models.runs import SyncBatch, SyncRun
from models.segment_catalog import create_segment
from models.segments import Segment, SegmentMembership
from tests.factories import add_accounts
from tests.worker.incremental_crms import CrmRecords, crm_records
from tests.worker.incremental_runs import left_to_write, run_here
from worker.connector_factory import build_connector
from worker.planning import value_format
from worker.sandbox_connections import sandbox_connection

SEGMENTS = ["Alpha", "Beta", "Gamma"]
ACCOUNTS = 6
# The emulators' short-window rate limits (Marketo's, HubSpot's).
LIMITS = ("calls_per_twenty_seconds", "requests_per_ten_seconds", "search_requests_per_second")
# Domains some records have and no account has (yet), and a free-mail one no account can have.
SPARE_DOMAINS = [f"spare{n}.com" for n in range(5)]
FREE_MAIL = "gmail.com"
CRM_CHANGES = ["create", "move", "overwrite", "delete", "merge"]
ACCOUNT_CHANGES = ["segment", "segment", "domain", "new_account"]
# Every kind of change comes at least once: round n begins with the nth.
EVERY_CHANGE = [*CRM_CHANGES, *dict.fromkeys(ACCOUNT_CHANGES)]


@pytest.fixture(params=SYSTEMS)
def system(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def sandbox(system: str) -> Iterator[Sandbox]:
    with Sandbox([system]) as running:
        # The rounds' own calls (a run and a full read each) must not run into the vendors'
        # short-window limits, which only a shared limiter (worker.connector_factory) keeps:
        # as in the contract suite, rate limiting is tested elsewhere.
        emulator: Any = running.emulators[system]
        for limit in LIMITS:
            if hasattr(emulator, limit):
                setattr(emulator, limit, 10_000)
        yield running


@pytest.fixture
def crm(system: str, sandbox: Sandbox) -> CrmRecords:
    return crm_records(system, sandbox.emulators[system])


@pytest.fixture
def connector(system: str, sandbox: Sandbox) -> Iterator[Connector]:
    settings, secrets = sandbox_connection(system, sandbox.describe())
    built = build_connector(system, settings, secrets)
    yield built
    built.close()


@pytest.fixture
def orchestration_id(session: Session, system: str, crm: CrmRecords) -> int:
    """Six accounts (company0..5.com), three segments published for enrichment and set per
    account; an orchestration over every account."""
    add_accounts(
        session,
        [{"external_id": f"A{n}", "domain": f"company{n}.com"} for n in range(ACCOUNTS)],
    )
    for name in SEGMENTS:
        create_segment(session, name, filter_expression='domain = "none.com"')
        publish(session, name, ["enrichment"])
    connection = add_connection(session, ConnectionSpec("crm", system, {}, {}, {}), None)
    orchestration = create_orchestration(
        session,
        OrchestrationSpec("People", connection.id, crm.object_type, crm.target_field, Scope("all")),
    )
    session.commit()
    for n in range(ACCOUNTS):
        set_member(session, SEGMENTS[n % 3], f"A{n}", add=True)
    return orchestration.id


def set_member(session: Session, segment: str, external_id: str, *, add: bool) -> None:
    """Put the account in (or out of) `segment`, as a segment refresh would."""
    segment_id = session.scalar(select(Segment.id).where(Segment.name == segment))
    account_id = session.scalar(select(Account.id).where(Account.external_id == external_id))
    member = (SegmentMembership.segment_id == segment_id) & (
        SegmentMembership.account_id == account_id
    )
    present = session.scalar(select(func.count()).select_from(SegmentMembership).where(member))
    if add and not present:
        session.execute(
            insert(SegmentMembership), [{"segment_id": segment_id, "account_id": account_id}]
        )
    elif not add:
        session.execute(delete(SegmentMembership).where(member))
    session.commit()


def account_domains(session: Session) -> dict[str, str | None]:
    """Every account's domain by external id (the transaction ends: SQLite's lock is let go)."""
    domains = {row.external_id: row.domain for row in session.execute(select(Account)).scalars()}
    session.commit()
    return domains


def change_accounts(session: Session, pick: random.Random, change: str) -> None:
    """One random change on the account side: a membership, an account's domain, or a new
    account at a domain only unmatched records have."""
    domains = account_domains(session)
    if change == "segment":
        set_member(
            session, pick.choice(SEGMENTS), pick.choice(list(domains)), add=pick.random() < 0.5
        )
        return
    taken = set(domains.values())
    free = [d for d in SPARE_DOMAINS if d not in taken]
    if not free:
        return
    if change == "domain":
        session.execute(
            update(Account)
            .where(Account.external_id == pick.choice(list(domains)))
            .values(domain=pick.choice(free))
        )
        session.commit()
        return
    external_id = f"A{len(domains)}"
    add_accounts(session, [{"external_id": external_id, "domain": pick.choice(free)}])
    session.commit()
    set_member(session, pick.choice(SEGMENTS), external_id, add=True)


def change_crm(pick: random.Random, change: str, crm: CrmRecords, domains: list[str]) -> None:
    """One random change someone makes in the CRM."""
    if change == "create" or len(crm.live) < 3:
        crm.create([pick.choice(domains + SPARE_DOMAINS)])
    elif change == "move":
        crm.move(pick.choice(crm.live), pick.choice(domains + SPARE_DOMAINS + [FREE_MAIL]))
    elif change == "overwrite":
        crm.overwrite(pick.choice(crm.live), pick.choice(["Overwritten", None, SEGMENTS[1]]))
    elif change == "delete":
        crm.delete(pick.choice(crm.live))
    else:
        loser, winner = pick.sample(crm.live, 2)
        crm.merge(loser, winner)


def sync(factory: sessionmaker[Session], orchestration_id: int, connector: Connector) -> SyncRun:
    """One incremental-or-full run as the orchestration chooses (incremental_runs.run_here)."""
    return run_here(factory, orchestration_id, connector)


def wrong_values(
    factory: sessionmaker[Session], orchestration_id: int, connector: Connector, crm: CrmRecords
) -> dict[str, tuple[str | None, str]]:
    """Live records whose stored value is not their account's, from the emulator's own store
    (not through the connector): record id -> (stored, desired)."""
    with factory() as session:
        orchestration = session.get_one(Orchestration, orchestration_id)
        fmt = value_format(orchestration, connector)
        connection = session.connection()
        desired = {v.account_id: v.value for v in enrichment_values(connection, fmt)}
        index = build_account_index(connection, connector.system)
    wrong = {}
    for record_id in crm.live:
        email, stored = crm.email_and_value(record_id)
        keys = record_keys(linked_account_id=None, email=email, website=None)
        account_id = match_keys(index, keys)
        if account_id is None or account_id not in desired:
            continue  # unmatched: segsync leaves its value alone
        if (stored or "") != desired[account_id]:
            wrong[record_id] = (stored, desired[account_id])
    return wrong


def test_randomised_changes_are_never_missed(
    system: str,
    session: Session,
    session_factory: sessionmaker[Session],
    orchestration_id: int,
    crm: CrmRecords,
    connector: Connector,
) -> None:
    """Rounds of random changes on both sides, an incremental run after each: a full read
    finds nothing left to write and every matched record holds its account's value."""
    # Each database backend draws its own sequence: two seeds per system in all.
    seed = session.get_bind().dialect.name
    pick = random.Random(f"{system}-{seed}")
    domains = [f"company{n}.com" for n in range(ACCOUNTS)]
    crm.create([pick.choice(domains + SPARE_DOMAINS) for _ in range(30)])
    assert sync(session_factory, orchestration_id, connector).read_mode == "full"
    for round_number, first in enumerate(EVERY_CHANGE):
        changes = [first] + [
            pick.choice(CRM_CHANGES if pick.random() < 0.7 else ACCOUNT_CHANGES)
            for _ in range(pick.randint(0, 4))
        ]
        for change in changes:
            if change in CRM_CHANGES:
                domains = [d for d in account_domains(session).values() if d]
                change_crm(pick, change, crm, domains)
            else:
                change_accounts(session, pick, change)
        run = sync(session_factory, orchestration_id, connector)
        where = f"{system} seed {seed} round {round_number}"
        assert run.read_mode == "incremental", where
        assert left_to_write(session_factory, orchestration_id, connector) == [], where
        assert wrong_values(session_factory, orchestration_id, connector, crm) == {}, where
    assert not session.scalar(
        select(func.count()).select_from(SyncBatch).where(SyncBatch.status != "done")
    )
