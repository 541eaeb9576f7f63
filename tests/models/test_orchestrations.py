"""Orchestrations: one per field of an object on a connection, changed only consistently."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from models.base import as_utc, utcnow
from models.connections import ConnectionSpec, add_connection, delete_connection
from models.errors import InputError, NotFoundError, RuleError
from models.orchestration_status import orchestration_statuses
from models.orchestrations import (
    Orchestration,
    OrchestrationChanges,
    OrchestrationSpec,
    Scope,
    create_orchestration,
    delete_orchestration,
    find_orchestration,
    same_target,
    set_orchestration_enabled,
    update_orchestration,
)
from models.publishing import publish
from models.runs import RecordState, SyncRun
from tests.factories import add_bare_segments


def connection_id(session: Session, name: str, system: str = "salesforce") -> int:
    spec = ConnectionSpec(name, system, {}, {}, {"access_token": "TOKEN"})
    return add_connection(session, spec, None).id


def spec(
    name: str,
    connection: int,
    field: str = "Segment_Names__c",
    object_type: str = "Lead",
    **options: Any,
) -> OrchestrationSpec:
    return OrchestrationSpec(name, connection, object_type, field, Scope("all"), **options)


@pytest.fixture
def sf(session: Session) -> int:
    return connection_id(session, "sf")


def count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Orchestration)) or 0


def test_same_target_ignores_case_as_the_vendors_do() -> None:
    assert same_target("Lead", "Segment_Names__c", "lead", "segment_names__C")
    assert not same_target("Lead", "Segment_Names__c", "Contact", "Segment_Names__c")
    assert not same_target("Lead", "Segment_Names__c", "Lead", "Segment_Names_Long__c")


def test_a_second_orchestration_on_one_field_is_refused_naming_the_first(
    session: Session, sf: int
) -> None:
    create_orchestration(session, spec("Leads", sf))
    session.commit()
    with pytest.raises(RuleError) as refused:
        create_orchestration(session, spec("Other", sf, "segment_names__c", object_type="lead"))
    assert str(refused.value) == (
        "orchestration 'Leads' already writes Lead.Segment_Names__c on connection 'sf': two "
        "orchestrations on one field would overwrite each other"
    )
    session.rollback()
    assert count(session) == 1
    # Another field, another object, or the same field through another connection are fine.
    create_orchestration(session, spec("Long", sf, "Segment_Names_Long__c"))
    create_orchestration(session, spec("Contacts", sf, object_type="Contact"))
    create_orchestration(session, spec("Sandbox org", connection_id(session, "sf-sandbox")))
    session.commit()
    assert count(session) == 4


def test_a_disabled_orchestration_still_holds_its_field(session: Session, sf: int) -> None:
    create_orchestration(session, spec("Leads", sf))
    set_orchestration_enabled(session, "Leads", False)
    with pytest.raises(RuleError, match=r"'Leads' \(disabled\) already writes"):
        create_orchestration(session, spec("Other", sf))


def test_an_update_onto_a_taken_field_is_refused_and_changes_nothing(
    session: Session, sf: int
) -> None:
    other = connection_id(session, "sf-other")
    create_orchestration(session, spec("Leads", sf))
    create_orchestration(session, spec("Long", sf, "Segment_Names_Long__c", schedule="0 2 * * *"))
    create_orchestration(session, spec("Elsewhere", other))
    session.commit()
    with pytest.raises(RuleError, match="'Leads' already writes Lead.Segment_Names__c"):
        update_orchestration(
            session,
            "Long",
            OrchestrationChanges(name="Renamed", field="SEGMENT_NAMES__C", schedule=None),
        )
    session.rollback()
    long = find_orchestration(session, "Long")
    assert (long.field, long.schedule) == ("Segment_Names_Long__c", "0 2 * * *")
    with pytest.raises(RuleError, match="'Leads' already writes"):
        update_orchestration(session, "Elsewhere", OrchestrationChanges(connection_id=sf))
    session.rollback()
    with pytest.raises(RuleError, match="'Leads' already writes"):
        update_orchestration(
            session, "Long", OrchestrationChanges(object_type="LEAD", field="segment_names__c")
        )
    session.rollback()
    # Its own field, spelled the vendor's way, is no conflict.
    done = update_orchestration(session, "Leads", OrchestrationChanges(field="Segment_Names__c"))
    assert done.changed == ()


def test_an_update_keeps_what_is_not_given_and_reschedules(session: Session, sf: int) -> None:
    create_orchestration(session, spec("Leads", sf, delimiter="|", daily_api_budget=500))
    session.commit()
    before = utcnow()
    done = update_orchestration(
        session, "Leads", OrchestrationChanges(schedule="0  3 * * *", max_length=100)
    )
    session.commit()
    assert done.changed == ("max_length", "schedule")
    found = find_orchestration(session, "Leads")
    assert (found.schedule, found.max_length, found.delimiter, found.daily_api_budget) == (
        "0 3 * * *",
        100,
        "|",
        500,
    )
    assert found.next_run_at is not None
    next_run = as_utc(found.next_run_at)
    assert before < next_run <= before + timedelta(days=1)
    assert (next_run.hour, next_run.minute) == (3, 0)
    # Changing something else leaves the next run where it was.
    update_orchestration(session, "Leads", OrchestrationChanges(daily_api_budget=None))
    session.commit()
    assert as_utc(find_orchestration(session, "Leads").next_run_at or before) == next_run
    done = update_orchestration(
        session, "Leads", OrchestrationChanges(schedule=None, max_length=None, name="All leads")
    )
    session.commit()
    assert done.changed == ("name", "max_length", "schedule")
    found = find_orchestration(session, "All leads")
    assert (found.schedule, found.next_run_at, found.max_length) == (None, None, None)
    with pytest.raises(NotFoundError):
        find_orchestration(session, "Leads")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (OrchestrationChanges(name="bad/name"), "orchestration name 'bad/name' must be"),
        (OrchestrationChanges(name="Taken"), "an orchestration named 'Taken' already exists"),
        (OrchestrationChanges(delimiter=" "), "visible ASCII"),
        (OrchestrationChanges(max_length=0), "at least 1"),
        (OrchestrationChanges(daily_api_budget=0), "daily API budget 0 must be at least 1"),
        (OrchestrationChanges(schedule="every day"), "must have five fields"),
        (OrchestrationChanges(scope=Scope("segment", segment_name="Hot")), "not published to gtm"),
        (OrchestrationChanges(scope=Scope("segment", segment_name="Nope")), "no segment named"),
        (OrchestrationChanges(connection_id=999), "no connection with id 999"),
    ],
)
def test_an_update_is_checked_like_create(
    session: Session, sf: int, changes: OrchestrationChanges, reason: str
) -> None:
    add_bare_segments(session, ["Hot"])
    create_orchestration(session, spec("Leads", sf))
    create_orchestration(session, spec("Taken", sf, "Segment_Names_Long__c"))
    session.commit()
    with pytest.raises((InputError, RuleError, NotFoundError), match=reason):
        update_orchestration(session, "Leads", changes)
    session.rollback()
    found = find_orchestration(session, "Leads")
    assert (found.delimiter, found.max_length, found.scope_kind, found.connection_id) == (
        ";",
        None,
        "all",
        sf,
    )


def test_a_gtm_segment_scope(session: Session, sf: int) -> None:
    add_bare_segments(session, ["Named accounts"], source="uploaded_list")
    publish(session, "Named accounts", ["gtm"])
    create_orchestration(session, spec("Leads", sf))
    done = update_orchestration(
        session,
        "Leads",
        OrchestrationChanges(scope=Scope("segment", segment_name="named accounts")),
    )
    assert done.changed == ("scope",)
    assert orchestration_statuses(session)[0].scope == "segment:Named accounts"


@pytest.mark.parametrize("status", ["queued", "running", "deferred"])
def test_what_a_run_writes_does_not_change_while_it_is_active(
    session: Session, sf: int, status: str
) -> None:
    orchestration = create_orchestration(session, spec("Leads", sf))
    run = SyncRun(orchestration_id=orchestration.id, status=status, trigger="manual")
    session.add_all(
        [run, RecordState(orchestration_id=orchestration.id, record_id="00Q1", value="A")]
    )
    session.commit()
    for changes in (
        OrchestrationChanges(field="Segment_Names_Long__c"),
        OrchestrationChanges(connection_id=connection_id(session, "sf2")),
        OrchestrationChanges(delimiter="|"),
        OrchestrationChanges(scope=Scope("recent", days=7)),
        OrchestrationChanges(keep_when_empty=True),
        OrchestrationChanges(max_length=80),
    ):
        session.commit()
        with pytest.raises(RuleError) as refused:
            update_orchestration(session, "Leads", changes)
        assert f"has run {run.id} active ({status})" in str(refused.value)
        assert f"`segsync runs cancel {run.id}`" in str(refused.value)
        session.rollback()
    # What does not change the run's writes may change meanwhile.
    done = update_orchestration(
        session,
        "Leads",
        OrchestrationChanges(name="Leads 2", schedule="0 1 * * *", daily_api_budget=100),
    )
    assert done.changed == ("name", "daily_api_budget", "schedule")
    session.commit()
    session.execute(text("UPDATE sync_runs SET status = 'succeeded'"))
    session.commit()
    update_orchestration(session, "Leads 2", OrchestrationChanges(field="Segment_Names_Long__c"))
    session.commit()
    # The values it last confirmed were another field's: they are forgotten.
    assert session.scalar(select(func.count()).select_from(RecordState)) == 0


def test_delete_is_refused_while_a_run_is_active(session: Session, sf: int) -> None:
    orchestration = create_orchestration(session, spec("Leads", sf))
    run = SyncRun(orchestration_id=orchestration.id, status="running", trigger="manual")
    session.add(run)
    session.commit()
    with pytest.raises(RuleError, match=f"has run {run.id} active"):
        delete_orchestration(session, "Leads")
    session.rollback()
    run.status = "failed"
    session.commit()
    delete_orchestration(session, "Leads")
    session.commit()
    assert count(session) == 0


def test_enabling_resumes_the_schedule_from_now(session: Session, sf: int) -> None:
    create_orchestration(session, spec("Leads", sf, schedule="*/5 * * * *"))
    assert set_orchestration_enabled(session, "Leads", False)
    assert not set_orchestration_enabled(session, "Leads", False)
    found = find_orchestration(session, "Leads")
    found.next_run_at = utcnow() - timedelta(days=3)
    session.commit()
    assert orchestration_statuses(session)[0].next_run_at is None  # disabled: it will not run
    assert set_orchestration_enabled(session, "Leads", True)
    session.commit()
    next_run = orchestration_statuses(session)[0].next_run_at
    assert next_run is not None and utcnow() < next_run <= utcnow() + timedelta(minutes=5)


def test_status_shows_the_last_run_that_was_not_skipped(session: Session, sf: int) -> None:
    orchestration = create_orchestration(session, spec("Leads", sf))
    create_orchestration(session, spec("Never run", sf, "Segment_Names_Long__c"))
    finished = utcnow()
    session.add_all(
        [
            SyncRun(orchestration_id=orchestration.id, status="succeeded", trigger="schedule"),
            SyncRun(
                orchestration_id=orchestration.id,
                status="partial",
                trigger="manual",
                reason="2 records failed",
                started_at=finished - timedelta(minutes=1),
                finished_at=finished,
            ),
            SyncRun(orchestration_id=orchestration.id, status="skipped", trigger="schedule"),
        ]
    )
    session.commit()
    leads, never = orchestration_statuses(session)
    assert leads.last_run is not None
    assert (leads.last_run.status, leads.last_run.reason) == ("partial", "2 records failed")
    assert leads.last_run.finished_at == finished
    assert never.last_run is None and never.name == "Never run"


def test_a_connection_in_use_is_not_deleted(session: Session, sf: int) -> None:
    create_orchestration(session, spec("Leads", sf))
    create_orchestration(session, spec("Contacts", sf, object_type="Contact"))
    session.commit()
    with pytest.raises(RuleError) as refused:
        delete_connection(session, "sf")
    assert str(refused.value) == (
        "connection 'sf' is used by orchestrations 'Contacts', 'Leads': delete them or move "
        "them to another connection first"
    )


def test_concurrent_creates_of_one_field_store_one(
    session_factory: sessionmaker[Session], engine: Engine
) -> None:
    with session_factory() as session:
        sf = connection_id(session, "sf")
        session.commit()
    first = session_factory()
    create_orchestration(first, spec("First", sf))  # holds its locks until it commits
    outcome: list[BaseException | None] = []

    def second() -> None:
        with session_factory() as other:
            try:
                create_orchestration(other, spec("Second", sf, "SEGMENT_NAMES__C"))
                other.commit()
                outcome.append(None)
            except BaseException as exc:  # handed to the test's thread
                outcome.append(exc)

    thread = threading.Thread(target=second)
    thread.start()
    if engine.dialect.name == "postgresql":
        # Wait until the second transaction queues behind the first's lock on the connection:
        # without that lock it would not see the first's orchestration and store its own.
        _wait_for_a_lock_wait(engine)
    first.commit()
    first.close()
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert isinstance(outcome[0], RuleError), outcome
    assert "'First' already writes" in str(outcome[0])


def _wait_for_a_lock_wait(engine: Engine) -> None:
    deadline = time.monotonic() + 60
    with engine.connect() as connection:
        while time.monotonic() < deadline:
            waiting = connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar()
            connection.rollback()
            if waiting:
                return
            time.sleep(0.05)
    raise AssertionError("the second create never waited on the first's lock")
