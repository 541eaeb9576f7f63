"""`segsync segments ...`: create, list, refresh segments and record what references them.

The models (and SQLAlchemy) are imported inside each command, so that --help loads only click.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from models.vocabulary import REFERENCE_KINDS, SOURCES
from worker.cli.database import Database
from worker.cli.output import echo_json, render_table


@click.group()
def segments() -> None:
    """Create, list and refresh segments."""


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
    help="Where the accounts come from (default: uploaded_list with --list, else filter).",
)
@click.option("--folder", help="Folder to file the segment in.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def create_command(
    database: Database,
    name: str,
    list_path: Path | None,
    filter_expression: str | None,
    source: str | None,
    folder: str | None,
    as_json: bool,
) -> None:
    """Create segment NAME from a list, a filter expression, or a list narrowed by a filter."""
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
    """Recompute the members of the named segments (all segments when none are named)."""
    from models.segment_catalog import refresh_segments

    with database.transaction() as session:
        refreshed = [(s.name, s.member_count) for s in refresh_segments(session, list(names))]
    if as_json:
        echo_json([{"name": name, "members": members} for name, members in refreshed])
        return
    click.echo(render_table(["segment", "members"], refreshed))


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
