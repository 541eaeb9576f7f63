"""`segsync segments ...`: create, list, show, refresh and schedule segments, and record what
references them. worker.cli.crm_segments and segment_show hold the parts about CRM segments.

The models (and SQLAlchemy) are imported inside each command, so that --help loads only click.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from models.vocabulary import REFERENCE_KINDS, SOURCES
from worker.cli.by_name import show_one
from worker.cli.crm_segments import (
    CrmOptions,
    create_crm_segment_here,
    crm_source_choice,
    print_refreshes,
    refresh_from_crm,
)
from worker.cli.database import Database
from worker.cli.output import echo_json, render_table


@click.group()
def segments() -> None:
    """Create, list, show, refresh and schedule segments."""


@segments.command("create")
@click.argument("name")
@click.option(
    "--list",
    "list_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="CSV of accounts (external_id, domain or website column).",
)
@click.option("--filter", "filter_expression", help="e.g. 'industry = \"Software\"'.")
@click.option(
    "--source",
    type=click.Choice(SOURCES),
    help="Where the accounts come from (default: uploaded_list with --list, else filter; "
    "with --connection, the CRM id option's source).",
)
@click.option("--folder", help="Folder to file the segment in.")
@click.option("--connection", "connection_name", help="Read the members from this CRM connection.")
@click.option("--report", "report_id", help="Salesforce report id (--source crm_report_sync).")
@click.option(
    "--column", help="The report's account id column (default ACCOUNT_ID); with --report only."
)
@click.option("--list-view", "list_view_id", help="Salesforce list view id (crm_list_sync).")
@click.option("--hubspot-list", "hubspot_list_id", help="HubSpot company list id (crm_list_sync).")
@click.option(
    "--schedule", help="Cron expression in UTC to refresh it from the CRM, e.g. '0 6 * * *'."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def create_command(
    database: Database,
    name: str,
    list_path: Path | None,
    filter_expression: str | None,
    source: str | None,
    folder: str | None,
    connection_name: str | None,
    report_id: str | None,
    column: str | None,
    list_view_id: str | None,
    hubspot_list_id: str | None,
    schedule: str | None,
    as_json: bool,
) -> None:
    """Create segment NAME from a list, a filter expression, or a list narrowed by a filter; or
    from a CRM report, list view or list (--connection), read at once and on demand."""
    crm = CrmOptions(
        connection=connection_name,
        report=report_id,
        column=column,
        list_view=list_view_id,
        hubspot_list=hubspot_list_id,
        schedule=schedule,
    )
    chosen = crm_source_choice(crm, source, list_path, filter_expression)
    if chosen is not None:
        create_crm_segment_here(database, name, crm, chosen, folder, as_json)
        return
    from models.segment_catalog import create_segment, unmatched_list_entries

    with database.transaction() as session:
        segment = create_segment(
            session,
            name,
            list_path=list_path,
            filter_expression=filter_expression,
            source=source,
            folder=folder,
        )
        unmatched = unmatched_list_entries(session, segment) if list_path else 0
    if as_json:
        echo_json(
            {
                "name": segment.name,
                "source": segment.source,
                "members": segment.member_count,
                "unmatched_list_entries": unmatched,
            }
        )
        return
    click.echo(
        f"created segment {segment.name!r} ({segment.source}, {segment.member_count} members)"
    )
    if unmatched:
        click.echo(
            f"{unmatched} list entries match no account yet; import them, then "
            f"`segsync segments refresh {segment.name!r}`"
        )


@segments.command("list")
@click.option("--search", help="Only segments whose name or folder contains this text.")
@click.option("--folder", help="Only segments in this folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@click.pass_obj
def list_command(database: Database, search: str | None, folder: str | None, as_json: bool) -> None:
    """List segments with their source, member count and published uses."""
    from models.segment_catalog import list_segments

    with database.transaction() as session:
        rows = list_segments(session, search=search, folder=folder)
    if as_json:
        echo_json([asdict(row) for row in rows])
        return
    click.echo(
        render_table(
            ["name", "folder", "source", "members", "published for"],
            [(r.name, r.folder, r.source, r.members, ", ".join(r.uses)) for r in rows],
        )
    )


@segments.command("refresh")
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the member counts as JSON.")
@click.pass_obj
def refresh_command(database: Database, names: tuple[str, ...], as_json: bool) -> None:
    """Recompute the members of the named segments (all segments when none are named, but those
    read from a CRM); a named CRM segment is read from its CRM again."""
    from models.crm_sources import crm_source
    from models.segment_catalog import find_segment, refresh_membership, refresh_segments

    if not names:
        with database.transaction() as session:
            every = [{"name": s.name, "members": s.member_count} for s in refresh_segments(session)]
        print_refreshes(every, [], as_json)
        return
    with database.transaction() as session:
        found = [find_segment(session, name) for name in names]
        from_crm = {s.name for s in found if crm_source(session, s) is not None}
        in_segsync = {
            s.name: refresh_membership(session, s) for s in found if s.name not in from_crm
        }
        order = [s.name for s in found]
    rows: list[dict[str, Any]] = []
    failures: list[str] = []
    for name in dict.fromkeys(order):
        if name not in from_crm:
            rows.append({"name": name, "members": in_segsync[name]})
            continue
        row, failure = refresh_from_crm(database, name)
        rows.append(row)
        if failure is not None:
            failures.append(failure)
    print_refreshes(rows, failures, as_json)


@show_one(segments, "name", "segment")
@click.option(
    "--refreshes",
    type=click.IntRange(min=1),
    help="How many of a CRM segment's last refreshes to show (default 10).",
)
def show_command(database: Database, name: str, as_json: bool, refreshes: int | None) -> None:
    """Show segment NAME: its definition and members; for a CRM segment, where it is read from,
    its schedule, its last refreshes (entered, exited, churn) and the rows matching no account."""
    from models.refresh_history import RECENT_REFRESHES
    from worker.cli.segment_show import print_segment, segment_details

    with database.transaction() as session:
        shown = segment_details(session, name, refreshes or RECENT_REFRESHES)
    if as_json:
        echo_json(shown)
    else:
        print_segment(shown)


@segments.command("schedule")
@click.argument("name")
@click.option("--cron", help="Cron expression in UTC, e.g. '0 6 * * *' (06:00 UTC daily).")
@click.option("--none", "on_demand", is_flag=True, help="Refresh it on demand only.")
@click.pass_obj
def schedule_command(database: Database, name: str, cron: str | None, on_demand: bool) -> None:
    """Refresh CRM segment NAME from its CRM on a cron schedule (UTC), or on demand only."""
    from models.crm_sources import set_crm_schedule
    from models.segment_catalog import find_segment

    if (cron is not None) == on_demand:
        raise click.UsageError(
            "--cron and --none cannot go together" if on_demand else "give --cron EXPR or --none"
        )
    with database.transaction() as session:
        source = set_crm_schedule(session, name, cron)
        shown = find_segment(session, name).name
        schedule, next_at = source.schedule, source.next_refresh_at
    if schedule is None or next_at is None:
        click.echo(f"segment {shown!r} is refreshed on demand only")
    else:
        click.echo(
            f"segment {shown!r} is refreshed on {schedule!r} (UTC); next at "
            f"{next_at.strftime('%Y-%m-%d %H:%M')} UTC"
        )


@segments.command("reference")
@click.argument("name")
@click.option(
    "--kind", required=True, type=click.Choice(list(REFERENCE_KINDS)), help="What uses the segment."
)
@click.option("--title", required=True, help="The report's or custom 6QA's title.")
@click.option("--remove", is_flag=True, help="Forget this reference instead of recording it.")
@click.pass_obj
def reference_command(database: Database, name: str, kind: str, title: str, remove: bool) -> None:
    """Record that a saved report or custom 6QA uses GTM segment NAME (which keeps it in gtm)."""
    from models.publishing import add_reference, remove_reference

    label = f"{REFERENCE_KINDS[kind]} {title.strip()!r}"
    with database.transaction() as session:
        if remove:
            done = remove_reference(session, name, kind, title)
        else:
            done = add_reference(session, name, kind, title)
    if remove:
        click.echo(
            f"{label} no longer uses {name!r}"
            if done
            else f"{label} was not recorded for {name!r}; nothing changed"
        )
    else:
        click.echo(
            f"{label} now uses {name!r}"
            if done
            else f"{label} already uses {name!r}; nothing changed"
        )
