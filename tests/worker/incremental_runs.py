"""Runs for the incremental-run tests (test_incremental_sync.py, test_incremental_vendors.py):
one run planned and written here as a worker would, and what a full read would still write."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from connectors.base import Connector
from models.orchestrations import Orchestration
from models.runs import SyncRun
from worker.planning import diff, value_format
from worker.sync import plan_run, start_run, write_batch


def run_here(
    factory: sessionmaker[Session], orchestration_id: int, connector: Connector, full: bool = False
) -> SyncRun:
    """One run planned and written here, with no read overlap (the emulators stamp and commit at
    once, on this machine's clock), begun in a new second: vendors stamp changes to the whole
    second and compare whole seconds, so changes of the second a read begins in are read again."""
    time.sleep(1.01 - time.time() % 1)
    with factory() as session:
        orchestration = session.get_one(Orchestration, orchestration_id)
        run_id = start_run(session, orchestration, "manual", full_read=full).id
        session.commit()
    for batch_id in plan_run(factory, run_id, connector, read_overlap=timedelta(0)):
        assert write_batch(factory, batch_id, connector)
    with factory() as session:
        run = session.get_one(SyncRun, run_id)
        session.expunge(run)
    assert run.status == "succeeded", run.reason
    return run


def left_to_write(
    factory: sessionmaker[Session], orchestration_id: int, connector: Connector
) -> list[tuple[str, str]]:
    """What a full dry read would write now: nothing when the incremental runs missed nothing."""
    with factory() as session:
        orchestration = session.get_one(Orchestration, orchestration_id)
        session.expunge(orchestration)
    fmt = value_format(orchestration, connector)
    plan = diff(factory, orchestration, connector, fmt, None, lambda n: True)
    assert plan is not None
    return plan.updates
