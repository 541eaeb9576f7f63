"""An orchestration's recent runs: newest first, its own only, with counts and UTC times."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from models.errors import NotFoundError
from models.orchestrations import create_orchestration
from models.run_history import recent_runs
from models.runs import RUN_COUNTS, SyncRun
from tests.models.test_orchestrations import connection_id, spec


def _runs(session: Session) -> tuple[int, int]:
    sf = connection_id(session, "sf")
    leads = create_orchestration(session, spec("Leads EMEA", sf)).id
    contacts = create_orchestration(session, spec("Contacts", sf, object_type="Contact")).id
    return leads, contacts


def test_recent_runs_are_the_orchestrations_own_newest_first_with_counts(
    session: Session,
) -> None:
    leads, contacts = _runs(session)
    began = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    done = SyncRun(
        orchestration_id=leads,
        status="partial",
        trigger="schedule",
        reason="2 records failed",
        started_at=began,
        finished_at=began.replace(minute=31),
        **{key: n + 1 for n, key in enumerate(RUN_COUNTS)},
    )
    session.add(done)
    session.flush()
    other = SyncRun(orchestration_id=contacts, status="succeeded")
    session.add(other)
    session.flush()
    queued = SyncRun(orchestration_id=leads, status="queued", trigger="manual")
    session.add(queued)
    session.commit()

    found = recent_runs(session, "  Leads EMEA ")

    assert [run.id for run in found] == [queued.id, done.id]
    newest, oldest = found
    assert (newest.status, newest.active, newest.started_at, newest.finished_at) == (
        "queued",
        True,
        None,
        None,
    )
    assert newest.counts == dict.fromkeys(RUN_COUNTS, 0)
    assert newest.created_at.tzinfo is not None
    assert (oldest.status, oldest.trigger, oldest.reason, oldest.active) == (
        "partial",
        "schedule",
        "2 records failed",
        False,
    )
    # Aware UTC times on SQLite too (it hands stored times back naive).
    assert (oldest.started_at, oldest.finished_at) == (began, began.replace(minute=31))
    assert oldest.counts == {
        "eligible": 1,
        "enriched": 2,
        "unchanged": 3,
        "unmatched": 4,
        "truncated": 5,
        "failed": 6,
        "api_calls": 7,
    }
    assert [run.id for run in recent_runs(session, "Leads EMEA", limit=1)] == [queued.id]
    assert recent_runs(session, "Contacts")[0].id == other.id


def test_an_orchestration_without_runs_has_an_empty_history_and_an_unknown_one_is_refused(
    session: Session,
) -> None:
    _runs(session)
    session.commit()

    assert recent_runs(session, "Contacts") == []
    with pytest.raises(NotFoundError, match=r"^no orchestration named 'Nothing'$"):
        recent_runs(session, "Nothing")
    with pytest.raises(ValueError, match="limit must be at least 1"):
        recent_runs(session, "Contacts", limit=0)
