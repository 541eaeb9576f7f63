"""A dry run: plan an orchestration's run (read, match, compare) and write nothing.

A dry run is not a run: no run row, no batches, nothing written to the CRM, and it neither blocks
nor is blocked by an active run. Its API calls are real, so they count against the
orchestration's daily budget.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from connectors.base import Connector
from models.db import transaction
from models.orchestrations import Orchestration
from worker.planning import Plan, Progress, diff, value_format
from worker.sync import count_api_usage, metered

# How many of the changes a dry run shows, with each record's current and new value.
CHANGES_SHOWN = 20


@dataclass(frozen=True)
class DryRun:
    """What a run of the orchestration would do now."""

    plan: Plan
    batches: int
    api_calls: int


def dry_run(
    factory: sessionmaker[Session],
    orchestration_id: int,
    connector: Connector,
    progress: Progress | None = None,
    changes_shown: int = CHANGES_SHOWN,
) -> DryRun:
    """Read, match and compare as a run would; return the counts and the first changes."""
    with factory() as session:
        orchestration = session.get_one(Orchestration, orchestration_id)
    spent = metered(connector)
    try:
        fmt = value_format(orchestration, connector)
        plan = diff(
            factory, orchestration, connector, fmt, progress, lambda _read: True, changes_shown
        )
    finally:
        calls = spent().calls
        with transaction(factory) as session:
            count_api_usage(session, orchestration_id, calls)
    assert plan is not None  # only keep_reading stops a plan, and this one never does
    updates = len(plan.updates)
    batches = -(-updates // connector.planned_batch_size(updates))
    return DryRun(plan, batches, calls)
