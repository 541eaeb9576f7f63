"""The pipeline's database guarantees: one active run, batches claimed once, counts closed once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from connectors.hubspot import HubSpotConfig, HubSpotConnector
from connectors.sandbox.cluster import Sandbox
from models.connections import ConnectionSpec, add_connection
from models.orchestrations import OrchestrationSpec, Scope, create_orchestration
from models.publishing import publish
from models.runs import SyncBatch, SyncRun
from models.segment_catalog import create_segment
from tests.factories import add_accounts
from worker.sync import plan_run, start_run, write_batch


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(["hubspot"]) as running:
        yield running


@pytest.fixture
def connector(sandbox: Sandbox) -> HubSpotConnector:
    described = sandbox.describe()
    return HubSpotConnector(
        HubSpotConfig(
            access_token=described["hubspot"]["access_token"],
            base_url=described["hubspot"]["base_url"],
            ca_bundle=described["ca_bundle"],
        )
    )


@pytest.fixture
def orchestration_id(session: Session, sandbox: Sandbox) -> int:
    add_accounts(session, [{"external_id": "A", "domain": "acme.com"}])
    create_segment(session, "Acme", filter_expression='domain = "acme.com"')
    publish(session, "Acme", ["enrichment"])
    connection = add_connection(
        session, ConnectionSpec("hs", "hubspot", {}, {}, {"access_token": "HS"}), None
    )
    orchestration = create_orchestration(
        session,
        OrchestrationSpec("Contacts", connection.id, "contacts", "segment_names", Scope("all")),
    )
    session.commit()
    sandbox.emulators["hubspot"].add_records(  # type: ignore[attr-defined]
        "contacts", [{"email": f"p{n}@acme.com"} for n in range(250)]
    )
    return orchestration.id


def test_a_second_trigger_is_recorded_as_skipped(session: Session, orchestration_id: int) -> None:
    from models.orchestrations import Orchestration

    orchestration = session.get_one(Orchestration, orchestration_id)
    first = start_run(session, orchestration, "schedule")
    second = start_run(session, orchestration, "manual")
    session.commit()
    assert first.status == "queued"
    assert second.status == "skipped"
    assert f"run {first.id} of this orchestration is still active" in (second.reason or "")


def test_batches_are_claimed_once_and_the_run_closes_once(
    session: Session,
    session_factory: sessionmaker[Session],
    orchestration_id: int,
    connector: HubSpotConnector,
    sandbox: Sandbox,
) -> None:
    from models.orchestrations import Orchestration

    run = start_run(session, session.get_one(Orchestration, orchestration_id), "manual")
    session.commit()
    batch_ids = plan_run(session_factory, run.id, connector)
    assert len(batch_ids) == 3  # 250 records at HubSpot's 100 per call
    assert plan_run(session_factory, run.id, connector) == []  # already planned
    for batch_id in batch_ids:
        assert write_batch(session_factory, batch_id, connector)
        # Delivered again (at-least-once): the batch is done, nothing is written twice.
        assert not write_batch(session_factory, batch_id, connector)
    writes = sandbox.emulators["hubspot"].writes
    assert len(writes) == 250 and len({w.record_id for w in writes}) == 250
    with session_factory() as check:
        finished = check.get_one(SyncRun, run.id)
        assert (finished.status, finished.enriched, finished.batches_done) == ("succeeded", 250, 3)


def test_an_expired_lease_lets_the_batch_be_taken_again(
    session: Session,
    session_factory: sessionmaker[Session],
    orchestration_id: int,
    connector: HubSpotConnector,
) -> None:
    from datetime import timedelta

    from models.base import utcnow

    run = SyncRun(orchestration_id=orchestration_id, status="running")
    session.add(run)
    session.flush()
    session.execute(
        insert(SyncBatch),
        [
            {
                "run_id": run.id,
                "number": 1,
                "status": "running",
                "attempts": 1,
                "lease_until": utcnow() - timedelta(seconds=1),
                "updates": [],
            }
        ],
    )
    run.batches_total = 1
    batch_id = session.scalar(select(SyncBatch.id).where(SyncBatch.run_id == run.id))
    assert batch_id is not None
    session.commit()
    assert write_batch(session_factory, batch_id, connector)
    with session_factory() as check:
        assert check.get_one(SyncBatch, batch_id).attempts == 2
        assert check.get_one(SyncRun, run.id).status == "succeeded"


def test_a_batch_retried_after_its_worker_died_writes_nothing_twice(
    session: Session,
    session_factory: sessionmaker[Session],
    orchestration_id: int,
    connector: HubSpotConnector,
    sandbox: Sandbox,
) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from models.base import utcnow
    from models.orchestrations import Orchestration

    run = start_run(session, session.get_one(Orchestration, orchestration_id), "manual")
    session.commit()
    first, *_rest = plan_run(session_factory, run.id, connector)
    assert write_batch(session_factory, first, connector)
    # As if the worker had been killed after the vendor applied the write but before the
    # database recorded it: the batch is still "running" under a lease that has passed.
    with session_factory.begin() as rewind:
        rewind.execute(
            update(SyncBatch)
            .where(SyncBatch.id == first)
            .values(status="running", lease_until=utcnow() - timedelta(seconds=1))
        )
        rewind.execute(
            update(SyncRun).where(SyncRun.id == run.id).values(batches_done=0, enriched=0)
        )
    writes_before = len(sandbox.emulators["hubspot"].writes)
    assert write_batch(session_factory, first, connector)
    assert len(sandbox.emulators["hubspot"].writes) == writes_before, "written twice"
    with session_factory() as check:
        batch = check.get_one(SyncBatch, first)
        assert (batch.status, batch.attempts, batch.written) == ("done", 2, 100)


def test_record_states_keep_the_last_value_written(
    session: Session,
    session_factory: sessionmaker[Session],
    orchestration_id: int,
    connector: HubSpotConnector,
    sandbox: Sandbox,
) -> None:
    from sqlalchemy import func, update

    from models.orchestrations import Orchestration
    from models.runs import RecordState

    for expected in ("Acme", "Acme; renamed"):
        session.execute(update(SyncRun).values(status="succeeded"))
        from models.segments import Segment

        session.execute(update(Segment).values(name=expected, name_key=expected.casefold()))
        run = start_run(session, session.get_one(Orchestration, orchestration_id), "manual")
        session.commit()
        for batch_id in plan_run(session_factory, run.id, connector):
            write_batch(session_factory, batch_id, connector)
        with session_factory() as check:
            states = check.execute(
                select(RecordState.value, func.count()).group_by(RecordState.value)
            ).all()
            assert states == [(expected.replace(";", "；"), 250)]
            assert check.get_one(SyncRun, run.id).api_calls >= 3


def test_a_run_whose_planner_died_is_planned_again_and_failed_after_three_attempts(
    session: Session, session_factory: sessionmaker[Session], orchestration_id: int
) -> None:
    from datetime import timedelta

    from models.base import utcnow
    from worker.scheduling import MAX_PLAN_ATTEMPTS, recover_stalled_plans

    lease = timedelta(minutes=52)
    began = utcnow() - timedelta(minutes=10)
    run = SyncRun(
        orchestration_id=orchestration_id, status="running", started_at=began, plan_attempts=1
    )
    session.add(run)
    session.commit()
    # Still within the lease: its planner may be working.
    assert recover_stalled_plans(session_factory, lease) == []
    later = began + lease + timedelta(seconds=1)

    assert recover_stalled_plans(session_factory, lease, later) == [run.id]

    session.refresh(run)
    assert (run.status, run.started_at, run.plan_attempts, run.plans_lost) == ("queued", None, 1, 1)
    # Claimed and lost once more: queued again.
    run.status, run.started_at, run.plan_attempts = "running", began, 2
    session.commit()
    assert recover_stalled_plans(session_factory, lease, later) == [run.id]
    session.refresh(run)
    assert (run.status, run.plans_lost) == ("queued", 2)
    # The third planner lost fails it, saying why.
    run.status, run.started_at, run.plan_attempts = "running", began, 3
    session.commit()
    assert recover_stalled_plans(session_factory, lease, later) == []
    session.refresh(run)
    assert run.plans_lost == MAX_PLAN_ATTEMPTS
    assert run.status == "failed" and "planning did not finish in 3 attempts" in (run.reason or "")


def test_planners_that_put_the_run_back_to_retry_do_not_count_as_lost(
    session: Session, session_factory: sessionmaker[Session], orchestration_id: int
) -> None:
    from datetime import timedelta

    from models.base import utcnow
    from worker.scheduling import MAX_PLAN_ATTEMPTS, recover_stalled_plans

    # Claimed five times: four planners met a vendor's refusal and put the run back themselves
    # (sync.plan_run), and the fifth died. One planner lost: planned again, not failed.
    lease = timedelta(minutes=52)
    began = utcnow() - lease - timedelta(minutes=1)
    run = SyncRun(
        orchestration_id=orchestration_id,
        status="running",
        started_at=began,
        plan_attempts=MAX_PLAN_ATTEMPTS + 2,
    )
    session.add(run)
    session.commit()
    assert recover_stalled_plans(session_factory, lease) == [run.id]
    session.refresh(run)
    assert (run.status, run.plans_lost, run.reason) == ("queued", 1, None)


def test_a_run_with_stored_batches_is_not_a_stalled_plan(
    session: Session, session_factory: sessionmaker[Session], orchestration_id: int
) -> None:
    from datetime import timedelta

    from models.base import utcnow
    from worker.scheduling import recover_stalled_plans

    began = utcnow() - timedelta(hours=5)
    run = SyncRun(
        orchestration_id=orchestration_id,
        status="running",
        started_at=began,
        plan_attempts=1,
        batches_total=2,
    )
    session.add(run)
    session.commit()
    assert recover_stalled_plans(session_factory, timedelta(minutes=52)) == []
    session.refresh(run)
    assert run.status == "running"


def test_a_planner_presumed_dead_stores_nothing_when_it_ends(
    session: Session,
    session_factory: sessionmaker[Session],
    orchestration_id: int,
    connector: HubSpotConnector,
    sandbox: Sandbox,
) -> None:
    from sqlalchemy import update

    from models.orchestrations import Orchestration

    run = start_run(session, session.get_one(Orchestration, orchestration_id), "manual")
    session.commit()
    reading = connector.read_records

    def read_while_superseded(object_type: str, field: str) -> Iterator[Any]:
        records = reading(object_type, field)
        yield next(records)
        # Meanwhile the sweeper presumed this planner dead and another worker took the run.
        with session_factory() as other, other.begin():
            other.execute(
                update(SyncRun)
                .where(SyncRun.id == run.id)
                .values(plan_attempts=SyncRun.plan_attempts + 1)
            )
        yield from records

    connector.read_records = read_while_superseded  # type: ignore[method-assign]

    assert plan_run(session_factory, run.id, connector) == []

    with session_factory() as check:
        assert check.scalars(select(SyncBatch).where(SyncBatch.run_id == run.id)).all() == []
        taken = check.get_one(SyncRun, run.id)
        assert (taken.status, taken.plan_attempts, taken.batches_total) == ("running", 2, 0)
    assert sandbox.emulators["hubspot"].writes == []


def test_a_run_resumed_on_a_new_day_counts_that_day_against_the_budget(
    session: Session,
    session_factory: sessionmaker[Session],
    orchestration_id: int,
    connector: HubSpotConnector,
) -> None:
    from datetime import timedelta

    from models.base import utcnow
    from models.orchestrations import Orchestration
    from models.runs import ApiUsage

    session.get_one(Orchestration, orchestration_id).daily_api_budget = 5
    today = utcnow().date()
    # Began yesterday, spent yesterday's budget there, resumed today with two batches to go.
    run = SyncRun(
        orchestration_id=orchestration_id,
        status="running",
        started_at=utcnow() - timedelta(days=1),
        api_calls=5,
        batches_total=2,
    )
    session.add(run)
    session.flush()
    contacts = connector.read_records("contacts", "segment_names")
    ids = [record.id for record, _ in zip(contacts, range(200), strict=False)]
    session.execute(
        insert(SyncBatch),
        [
            {"run_id": run.id, "number": n, "status": "pending", "attempts": 0,
             "updates": [[i, "Acme"] for i in ids[(n - 1) * 100 : n * 100]]}
            for n in (1, 2)
        ],
    )  # fmt: skip
    session.add(ApiUsage(orchestration_id=orchestration_id, day=today - timedelta(days=1), calls=5))
    first, second = session.scalars(
        select(SyncBatch.id).where(SyncBatch.run_id == run.id).order_by(SyncBatch.number)
    )
    session.commit()

    # Today's budget is untouched by yesterday's calls: the first batch is written...
    assert write_batch(session_factory, first, connector)
    with session_factory() as check:
        used = check.get_one(ApiUsage, (orchestration_id, today)).calls
        assert used >= 1
    # ...and once today's calls reach the budget, the run waits for tomorrow again.
    with session_factory() as topping, topping.begin():
        topping.get_one(ApiUsage, (orchestration_id, today)).calls = 5
    assert not write_batch(session_factory, second, connector)
    with session_factory() as check:
        waiting = check.get_one(SyncRun, run.id)
        assert waiting.status == "deferred"
        assert "daily API budget of 5 calls is spent" in (waiting.reason or "")
        assert check.get_one(SyncBatch, second).status == "pending"


def test_a_write_longer_than_its_lease_keeps_the_batch(
    session: Session,
    session_factory: sessionmaker[Session],
    orchestration_id: int,
    connector: HubSpotConnector,
) -> None:
    import threading
    import time
    from datetime import timedelta

    from models.base import utcnow
    from models.orchestrations import Orchestration

    run = start_run(session, session.get_one(Orchestration, orchestration_id), "manual")
    session.commit()
    [batch_id, *_] = plan_run(session_factory, run.id, connector)
    lease = timedelta(seconds=0.6)
    writing = connector.write_planned
    observed: list[Any] = []

    def slow_write(object_type: str, field: str, updates: Any) -> Any:
        time.sleep(1.5)  # two and a half leases
        return writing(object_type, field, updates)

    def watch() -> None:
        time.sleep(1.2)
        with session_factory() as look:
            observed.append(look.get_one(SyncBatch, batch_id).lease_until)

    connector.write_planned = slow_write  # type: ignore[method-assign]
    watcher = threading.Thread(target=watch)
    claimed_at = utcnow()
    watcher.start()
    assert write_batch(session_factory, batch_id, connector, lease)
    watcher.join()

    # 1.2 s into a write claimed with a 0.6 s lease, the lease still lay ahead: it was renewed,
    # so the sweeper would not have given the batch to another worker.
    [lease_until] = observed
    assert lease_until is not None
    if lease_until.tzinfo is None:  # SQLite keeps naive UTC
        lease_until = lease_until.replace(tzinfo=claimed_at.tzinfo)
    assert lease_until > claimed_at + timedelta(seconds=1.2)
    with session_factory() as check:
        done = check.get_one(SyncBatch, batch_id)
        assert (done.status, done.attempts, done.lease_until) == ("done", 1, None)


def test_a_run_in_which_records_failed_ends_partial_saying_where_they_are_listed(
    session: Session,
    session_factory: sessionmaker[Session],
    orchestration_id: int,
    connector: HubSpotConnector,
    sandbox: Sandbox,
) -> None:
    from models.orchestrations import Orchestration
    from models.runs import RecordFailure

    records = connector.read_records("contacts", "segment_names")
    first, second = next(records).id, next(records).id
    run = start_run(session, session.get_one(Orchestration, orchestration_id), "manual")
    session.commit()
    sandbox.emulators["hubspot"].faults.inject(
        "record_failure", record_ids=[first, second], code="INVALID_EMAIL"
    )
    for batch_id in plan_run(session_factory, run.id, connector):
        assert write_batch(session_factory, batch_id, connector)

    with session_factory() as check:
        ended = check.get_one(SyncRun, run.id)
        assert (ended.status, ended.enriched, ended.failed) == ("partial", 248, 2)
        assert ended.reason == f"2 records failed: see `segsync runs show {run.id}`"
        assert ended.finished_at is not None
        failures = check.scalars(select(RecordFailure).where(RecordFailure.run_id == run.id))
        assert {(f.record_id, f.code) for f in failures} == {
            (first, "INVALID_EMAIL"),
            (second, "INVALID_EMAIL"),
        }


def test_a_batch_given_up_makes_its_run_partial(
    session: Session,
    session_factory: sessionmaker[Session],
    orchestration_id: int,
    connector: HubSpotConnector,
) -> None:
    from models.orchestrations import Orchestration
    from worker.sync import give_up_batch

    run = start_run(session, session.get_one(Orchestration, orchestration_id), "manual")
    session.commit()
    first, *others = plan_run(session_factory, run.id, connector)
    give_up_batch(session_factory, first, "still failing after 8 attempts: 503")
    for batch_id in others:
        assert write_batch(session_factory, batch_id, connector)
    with session_factory() as check:
        ended = check.get_one(SyncRun, run.id)
        assert (ended.status, ended.failed, ended.enriched) == ("partial", 100, 150)
        assert ended.reason == f"100 records failed: see `segsync runs show {run.id}`"


def test_a_cancelled_run_writes_no_further_batch_and_keeps_the_one_in_flight(
    session: Session,
    session_factory: sessionmaker[Session],
    orchestration_id: int,
    connector: HubSpotConnector,
    sandbox: Sandbox,
) -> None:
    from models.orchestrations import Orchestration
    from worker.sync import cancel_run

    run = start_run(session, session.get_one(Orchestration, orchestration_id), "manual")
    session.commit()
    first, second, third = plan_run(session_factory, run.id, connector)
    writing = connector.write_planned

    def cancelled_while_writing(object_type: str, field: str, updates: Any) -> Any:
        # An operator cancels while this batch is on its way to the vendor.
        assert cancel_run(session_factory, run.id, "cancelled by `segsync runs cancel`")
        return writing(object_type, field, updates)

    connector.write_planned = cancelled_while_writing  # type: ignore[method-assign]
    assert write_batch(session_factory, first, connector)
    connector.write_planned = writing  # type: ignore[method-assign]
    # Delivered after the cancel (tasks already in the queue): nothing is written.
    assert not write_batch(session_factory, second, connector)
    assert not write_batch(session_factory, third, connector)

    with session_factory() as check:
        ended = check.get_one(SyncRun, run.id)
        assert (ended.status, ended.reason) == ("cancelled", "cancelled by `segsync runs cancel`")
        assert (ended.enriched, ended.batches_done, ended.batches_total) == (100, 1, 3)
        statuses = [check.get_one(SyncBatch, b).status for b in (first, second, third)]
        assert statuses == ["done", "cancelled", "cancelled"]
        in_flight = {record_id for record_id, _ in check.get_one(SyncBatch, first).updates}
    assert {w.record_id for w in sandbox.emulators["hubspot"].writes} == in_flight
    assert len(sandbox.emulators["hubspot"].writes) == 100
    # An ended run cannot be cancelled again.
    assert not cancel_run(session_factory, run.id, "again")


def test_a_cancelled_queued_run_is_never_planned(
    session: Session,
    session_factory: sessionmaker[Session],
    orchestration_id: int,
    connector: HubSpotConnector,
    sandbox: Sandbox,
) -> None:
    from models.orchestrations import Orchestration
    from worker.sync import cancel_run

    run = start_run(session, session.get_one(Orchestration, orchestration_id), "manual")
    session.commit()
    assert cancel_run(session_factory, run.id, "cancelled by `segsync runs cancel`")
    assert plan_run(session_factory, run.id, connector) == []
    with session_factory() as check:
        assert check.get_one(SyncRun, run.id).status == "cancelled"
    assert sandbox.emulators["hubspot"].calls == {}
    # The orchestration is free for its next run.
    again = start_run(session, session.get_one(Orchestration, orchestration_id), "manual")
    assert again.status == "queued"


def test_a_run_cancelled_while_planning_stops_reading_and_stores_nothing(
    session: Session,
    session_factory: sessionmaker[Session],
    orchestration_id: int,
    connector: HubSpotConnector,
    sandbox: Sandbox,
) -> None:
    from models.orchestrations import Orchestration
    from worker.sync import cancel_run

    run = start_run(session, session.get_one(Orchestration, orchestration_id), "manual")
    session.commit()
    reading = connector.read_records
    pages: list[int] = []

    def read_then_cancelled(object_type: str, field: str) -> Iterator[Any]:
        records = reading(object_type, field)
        yield next(records)
        assert cancel_run(session_factory, run.id, "cancelled by `segsync runs cancel`")
        yield from records

    connector.read_records = read_then_cancelled  # type: ignore[method-assign]
    emulator = sandbox.emulators["hubspot"]
    handle = emulator.handle

    def counting(request: Any, call: int) -> Any:
        if request.method == "GET" and request.path == "/crm/v3/objects/contacts":
            pages.append(call)
        return handle(request, call)

    emulator.handle = counting  # type: ignore[method-assign]

    assert plan_run(session_factory, run.id, connector) == []

    # 250 contacts are 3 pages of 100: the planner stopped at its first note (record 100),
    # before asking for the second page.
    assert len(pages) == 1
    with session_factory() as check:
        ended = check.get_one(SyncRun, run.id)
        assert (ended.status, ended.batches_total, ended.api_calls >= 2) == ("cancelled", 0, True)
        assert check.scalars(select(SyncBatch).where(SyncBatch.run_id == run.id)).all() == []
    assert emulator.writes == []


def test_the_planner_stores_how_many_records_it_has_read(
    session: Session,
    session_factory: sessionmaker[Session],
    orchestration_id: int,
    connector: HubSpotConnector,
) -> None:
    from models.orchestrations import Orchestration

    run = start_run(session, session.get_one(Orchestration, orchestration_id), "manual")
    session.commit()
    reading = connector.read_records
    seen_while_reading: list[int] = []

    def read_and_look(object_type: str, field: str) -> Iterator[Any]:
        for number, record in enumerate(reading(object_type, field), start=1):
            if number == 151:  # records 1-150 went through the planner
                with session_factory() as look:
                    seen_while_reading.append(look.get_one(SyncRun, run.id).records_read)
            yield record

    connector.read_records = read_and_look  # type: ignore[method-assign]
    told: list[tuple[str, int, int | None]] = []
    plan_run(session_factory, run.id, connector, lambda *args: told.append(args))

    assert seen_while_reading == [100]
    assert told == [("read", 100, None), ("read", 200, None), ("read", 250, None)]
    with session_factory() as check:
        assert check.get_one(SyncRun, run.id).records_read == 250


def test_a_batch_refused_after_its_run_was_cancelled_is_not_pending_again(
    session: Session,
    session_factory: sessionmaker[Session],
    orchestration_id: int,
    connector: HubSpotConnector,
) -> None:
    from connectors.errors import RetryableError
    from models.orchestrations import Orchestration
    from worker.sync import cancel_run

    run = start_run(session, session.get_one(Orchestration, orchestration_id), "manual")
    session.commit()
    first, *_ = plan_run(session_factory, run.id, connector)

    def cancelled_then_refused(object_type: str, field: str, updates: Any) -> Any:
        assert cancel_run(session_factory, run.id, "cancelled by `segsync runs cancel`")
        raise RetryableError("hubspot answered 503")

    connector.write_planned = cancelled_then_refused  # type: ignore[method-assign]
    with pytest.raises(RetryableError):
        write_batch(session_factory, first, connector)

    with session_factory() as check:
        batches = check.scalars(
            select(SyncBatch.status).where(SyncBatch.run_id == run.id).order_by(SyncBatch.number)
        ).all()
        assert batches == ["cancelled", "cancelled", "cancelled"]
        assert check.get_one(SyncRun, run.id).status == "cancelled"
