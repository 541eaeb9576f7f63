"""`segsync demo`: the whole job on sample data, with no services and no configuration.

worker.demo.run (the sandbox, the models, SQLAlchemy) is imported when the command runs, so that
--help loads only click.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from worker.cli.output import echo_json, render_table
from worker.demo.defaults import DATABASE_FILE, DEFAULT_ACCOUNTS


@click.command("demo")
@click.option(
    "--accounts",
    type=click.IntRange(min=1),
    default=DEFAULT_ACCOUNTS,
    show_default=True,
    help="Accounts in the sample (CRM/MAP records are made to match them).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print both rounds' counts as one JSON object."
)
@click.option(
    "--folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the demo's database and sample files here (default: a temporary folder, removed).",
)
def demo_command(accounts: int, as_json: bool, folder: Path | None) -> None:
    """Enrich sample CRM/MAP records end to end, twice, on a database of the demo's own."""
    from worker.demo.run import run_demo

    result = run_demo(accounts, folder, say=lambda message: click.echo(message, err=True))
    if as_json:
        echo_json({"first": result.first, "second": result.second})
    else:
        _table("First run", result.first)
        click.echo()
        _table("Second run (nothing changed since the first)", result.second)
    if result.kept_folder is not None:
        url = f"sqlite:///{result.kept_folder.resolve() / DATABASE_FILE}"
        click.echo(f"kept {result.kept_folder}: explore it with", err=True)
        click.echo(f"  SEGSYNC_DATABASE_URL={url} segsync runs", err=True)


def _table(title: str, rows: list[dict[str, Any]]) -> None:
    from models.runs import RUN_COUNTS

    written = sum(row["enriched"] for row in rows)
    calls = sum(row["api_calls"] for row in rows)
    click.echo(f"{title}: {written} records written, {calls} API calls")
    headers = ["system", "object", *RUN_COUNTS]
    click.echo(render_table(headers, [[row[key] for key in headers] for row in rows]))
