"""The CRM side of `segsync segments`: which CRM source a create's options name, creating such a
segment with its first refresh, and refreshing it again from the CRM.

The models, connectors and worker.segment_refresh (with SQLAlchemy and the adapters behind them)
are imported inside the functions that use them, so that --help loads only click.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import click

from worker.cli.database import Database
from worker.cli.output import echo_json, fail, render_table

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from models.segments import Segment

# Each CRM id option: the CRM source kind it names (models.crm_sources.CRM_SOURCE_KINDS) and the
# segment source that kind is (models.vocabulary.SOURCES), as the reference names them.
_ID_OPTIONS = {
    "--report": ("salesforce_report", "crm_report_sync"),
    "--list-view": ("salesforce_list_view", "crm_list_sync"),
    "--hubspot-list": ("hubspot_list", "crm_list_sync"),
}


@dataclass(frozen=True)
class CrmOptions:
    """What `segments create` was given of a CRM source."""

    connection: str | None
    report: str | None
    column: str | None
    list_view: str | None
    hubspot_list: str | None
    schedule: str | None

    def ids(self) -> dict[str, str]:
        """The CRM id options given, by option name."""
        given = {
            "--report": self.report,
            "--list-view": self.list_view,
            "--hubspot-list": self.hubspot_list,
        }
        return {option: value for option, value in given.items() if value is not None}


@dataclass(frozen=True)
class CrmChoice:
    """The CRM source a create names: its kind and id, and the connection to read it through."""

    kind: str
    ref: str
    connection: str
    source: str


def crm_source_choice(
    crm: CrmOptions, source: str | None, list_path: Path | None, filter_expression: str | None
) -> CrmChoice | None:
    """The CRM source the options name, None when they name none (a list or filter segment);
    click.UsageError (exit 2), naming the options, when they do not go together."""
    ids = crm.ids()
    if crm.connection is None:
        orphans = [*ids, *(["--column"] if crm.column is not None else [])]
        orphans += ["--schedule"] if crm.schedule is not None else []
        if orphans:
            verb = "needs" if len(orphans) == 1 else "need"
            raise click.UsageError(
                f"{', '.join(orphans)} {verb} --connection: the CRM connection to read through"
            )
        return None
    for option, value in (("--list", list_path), ("--filter", filter_expression)):
        if value is not None:
            raise click.UsageError(
                f"{option} cannot go with --connection: a segment's members come from a list or "
                "filter, or from a CRM report or list"
            )
    if len(ids) != 1:
        given = f" (given: {', '.join(ids)})" if ids else ""
        raise click.UsageError(
            f"--connection needs one of --report ID, --list-view ID or --hubspot-list ID{given}"
        )
    option, ref = next(iter(ids.items()))
    kind, kind_source = _ID_OPTIONS[option]
    if source is not None and source != kind_source:
        raise click.UsageError(f"{option} goes with --source {kind_source}, not --source {source}")
    if crm.column is not None and option != "--report":
        raise click.UsageError(f"--column goes with --report only, not with {option}")
    return CrmChoice(kind, ref, crm.connection, kind_source)


def create_crm_segment_here(
    database: Database,
    name: str,
    crm: CrmOptions,
    chosen: CrmChoice,
    folder: str | None,
    as_json: bool,
) -> None:
    """Create segment NAME read from `chosen` and apply its first reading, in one transaction:
    a source the CRM refuses (a matrix report, a contact list...) leaves nothing created."""
    from connectors.errors import ConnectorError
    from models.crm_sources import create_crm_segment
    from models.segment_refreshes import apply_crm_members, claim_refresh, start_refresh
    from worker.connector_factory import connector_for
    from worker.segment_refresh import read_crm_members

    def create(session: Session) -> Segment:
        return create_crm_segment(
            session,
            name,
            connection=chosen.connection,
            kind=chosen.kind,
            ref=chosen.ref,
            column=crm.column,
            folder=folder,
            schedule=crm.schedule,
        )

    # Every check segsync can make (name, ids, column, schedule, connection and its system)
    # before the CRM is read; nothing of it is kept.
    with database.sessions()() as session:
        create(session)
        session.rollback()
    connector = connector_for(database, chosen.connection)
    try:
        members = read_crm_members(connector, chosen.kind, chosen.ref, crm.column)
    except ConnectorError as refusal:  # one line without secrets (connectors.errors)
        fail(f"{refusal}; segment {name.strip()!r} was not created")
    finally:
        connector.close()
    with database.transaction() as session:
        segment = create(session)
        refresh = claim_refresh(session, start_refresh(session, segment).id)
        if refresh is None:  # never: the refresh is ours until this transaction commits
            raise AssertionError("a refresh queued in this transaction was taken")
        apply_crm_members(session, refresh, members)
        shown = (segment.name, segment.source, segment.filters[0].description)
        done = refresh_as_dict(refresh.id, refresh)
    segment_name, source, description = shown
    if as_json:
        echo_json({"name": segment_name, "source": source, "reads": description, **done})
        return
    click.echo(f"created segment {segment_name!r} ({source}: {description})")
    click.echo(_counts_line(done))


class RefreshCounts(Protocol):
    """What a CRM refresh read and changed (a SegmentRefresh, a RefreshOutcome)."""

    @property
    def status(self) -> str: ...
    @property
    def members(self) -> int: ...
    @property
    def rows_read(self) -> int: ...
    @property
    def entered(self) -> int: ...
    @property
    def exited(self) -> int: ...
    @property
    def unmatched(self) -> int: ...


def refresh_as_dict(refresh_id: int, counts: RefreshCounts) -> dict[str, Any]:
    """A CRM refresh as `--json` prints it: what it read and changed."""
    return {
        "refresh": refresh_id,
        "status": counts.status,
        "members": counts.members,
        "rows_read": counts.rows_read,
        "entered": counts.entered,
        "exited": counts.exited,
        "unmatched": counts.unmatched,
    }


def _counts_line(done: dict[str, Any]) -> str:
    line = (
        f"refresh {done['refresh']}: {done['members']} members ({done['entered']} entered, "
        f"{done['exited']} exited), {done['rows_read']} rows read"
    )
    if done["unmatched"]:
        line += f", {done['unmatched']} matching no account (`segsync segments show` lists them)"
    return line


def refresh_from_crm(database: Database, name: str) -> tuple[dict[str, Any], str | None]:
    """Refresh CRM segment `name` in this process: (its row for `segments refresh`, why it
    failed or None). RefreshActiveError when another refresh of it is active."""
    from worker.segment_refresh import queue_refresh, run_refresh_here

    # The refusal line says why a refresh failed: the module's warning saying it too would be a
    # second line from Python's last-resort handler on a terminal. A JSON log (configured on the
    # root logger) still gets it.
    logging.getLogger("worker.segment_refresh").addHandler(logging.NullHandler())
    factory = database.sessions()
    # Queued, then run (worker.segment_refresh.refresh_now's two steps), to know its id if the
    # person interrupts it.
    refresh_id = queue_refresh(factory, name, "manual")
    try:
        outcome = run_refresh_here(factory, refresh_id, database.settings)
    except KeyboardInterrupt:
        fail(_end_interrupted(database, refresh_id, name))
        raise  # never: fail() exits
    row = {"name": outcome.segment or name, **refresh_as_dict(outcome.refresh_id, outcome)}
    if outcome.succeeded:
        return row, None
    row["reason"] = outcome.reason
    if outcome.status == "failed":
        return row, (
            f"refresh {outcome.refresh_id} of {row['name']!r} failed: "
            f"{(outcome.reason or '').rstrip('.')}; "
            "its members are kept as they were"
        )
    return row, outcome.reason or f"refresh {outcome.refresh_id} of {row['name']!r} did not run"


def _end_interrupted(database: Database, refresh_id: int, name: str) -> str:
    """Fail refresh `refresh_id`, interrupted by Ctrl-C (no worker runs a refresh of this
    process, and left running it would refuse every later refresh of the segment); what to say."""
    from models.db import transaction
    from models.segment_refreshes import SegmentRefresh, fail_refresh

    with transaction(database.sessions()) as session:
        refresh = session.get_one(SegmentRefresh, refresh_id)
        ended = fail_refresh(session, refresh, "interrupted (Ctrl-C) before it ended")
        status = refresh.status
    if ended:
        return f"refresh {refresh_id} of {name!r} interrupted; its members are kept as they were"
    return f"interrupted after refresh {refresh_id} of {name!r} ended ({status})"


def print_refreshes(rows: list[dict[str, Any]], failures: list[str], as_json: bool) -> None:
    """`segments refresh`'s output: member counts, and for CRM segments what their refresh
    read and changed; then the failures, in one refusal line."""
    if as_json:
        echo_json(rows)
    elif any("refresh" in row for row in rows):
        done = [row for row in rows if row.get("status", "succeeded") == "succeeded"]
        columns = ("entered", "exited", "unmatched", "rows_read")
        click.echo(
            render_table(
                ["segment", "members", "entered", "exited", "unmatched", "rows read"],
                [(row["name"], row["members"], *(row.get(c) for c in columns)) for row in done],
            )
        )
    else:
        click.echo(render_table(["segment", "members"], [(r["name"], r["members"]) for r in rows]))
    if len(failures) == 1:
        fail(failures[0])
    elif failures:
        fail(f"{len(failures)} refreshes failed: {' | '.join(failures)}")
