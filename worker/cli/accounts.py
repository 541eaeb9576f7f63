"""`segsync accounts ...`: import accounts from CSV and show one account.

The models (and SQLAlchemy) are imported inside each command, so that --help loads only click.
"""

from __future__ import annotations

from pathlib import Path

import click

from worker.cli.by_name import show_one
from worker.cli.database import Database
from worker.cli.output import echo_json, fail, render_table


@click.group()
def accounts() -> None:
    """Import and look up accounts."""


@accounts.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def import_command(database: Database, file: Path, as_json: bool) -> None:
    """Create or update accounts from a CSV file, matched on external_id.

    Rows with errors are reported with their line numbers and skipped; every other row is kept.
    """
    from models.account_import import import_accounts

    with database.transaction() as session:
        result = import_accounts(session, file)
    summary = {
        "created": result.created,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "refused": len(result.errors),
        "errors": [{"line": e.line, "message": e.message} for e in result.errors],
    }
    if as_json:
        echo_json(summary)
    else:
        for error in result.errors:
            click.echo(f"{file}:{error.line}: {error.message}", err=True)
        click.echo(
            f"{result.created} created, {result.updated} updated, {result.unchanged} unchanged, "
            f"{len(result.errors)} rows refused"
        )
    if result.errors:
        fail(f"{len(result.errors)} rows of {file} were refused; the other rows were imported")


@show_one(accounts, "key", "account")
def show_command(database: Database, key: str, as_json: bool) -> None:
    """Show one account (KEY: external id or domain) and the published segments it appears in."""
    from models.account_details import account_details

    with database.transaction() as session:
        details = account_details(session, key)
    fields = details.as_flat_dict()
    segment_names = details.segments
    if as_json:
        echo_json({**fields, "segments": segment_names})
        return
    click.echo(render_table(["field", "value"], fields.items()))
    click.echo()
    click.echo("Account appears in these segments:")
    for name in segment_names:
        click.echo(f"  {name}")
    if not segment_names:
        click.echo("  (none published for account details)")
