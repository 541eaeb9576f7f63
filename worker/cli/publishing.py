"""`segsync publish, unpublish, published, values`: the published-segments settings.

The models behind these commands (and SQLAlchemy with them) are imported inside each command, so
that their --help loads nothing but click.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from models.vocabulary import DEFAULT_DELIMITER, USES
from worker.cli.database import Database
from worker.cli.output import (
    confirm_or_refuse,
    echo_json,
    echo_json_stream,
    render_table,
    yes_option,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from models.publishing import PublicationChange

_use_option = click.option(
    "--use",
    "uses",
    multiple=True,
    required=True,
    type=click.Choice(USES),
    help="A use to publish for (repeat for several).",
)


def _segment_change_command(name: str) -> Callable[[Callable[..., None]], click.Command]:
    """Publish's and unpublish's decorators: command `name` taking NAME, --use and --yes."""

    def decorate(function: Callable[..., None]) -> click.Command:
        with_options = click.argument("name")(_use_option(yes_option(click.pass_obj(function))))
        return click.command(name)(with_options)

    return decorate


@_segment_change_command("publish")
def publish_command(database: Database, name: str, uses: tuple[str, ...], yes: bool) -> None:
    """Publish segment NAME for one or more uses (at most 200 segments are published at once)."""
    from models.publishing import plan_publish, publish

    publishing = _Change("publish", "to", "already published to", plan_publish, publish)
    _change(database, name, uses, yes, publishing)


@_segment_change_command("unpublish")
def unpublish_command(database: Database, name: str, uses: tuple[str, ...], yes: bool) -> None:
    """Unpublish segment NAME from one or more uses."""
    from models.publishing import plan_unpublish, unpublish

    unpublishing = _Change("unpublish", "from", "not published to", plan_unpublish, unpublish)
    _change(database, name, uses, yes, unpublishing)


@dataclass(frozen=True)
class _Change:
    """Publishing or unpublishing: its words and its planning and applying calls."""

    verb: str
    preposition: str
    # What a segment is for the uses that need no change.
    unchanged: str
    plan: Callable[[Session, str, Sequence[str]], PublicationChange]
    apply: Callable[[Session, str, Sequence[str]], PublicationChange]


def _change(
    database: Database, name: str, uses: tuple[str, ...], yes: bool, change: _Change
) -> None:
    """Plan the change, confirm it unless --yes, apply it and say what it did."""
    from models.publishing import MAX_PUBLISHED_SEGMENTS, published_segment_count

    with database.transaction() as session:
        planned = change.plan(session, name, uses)
    if not planned.changed:
        click.echo(_already(planned, change.unchanged))
        return
    question = f"{change.verb.capitalize()} {planned.segment.name!r} {change.preposition}"
    confirm_or_refuse(
        f"{question} {', '.join(planned.changed)}?",
        yes,
        f"nothing was {change.verb}ed",
        f"refusing to {change.verb} without confirmation: no terminal to ask on; pass --yes",
    )
    with database.transaction() as session:
        done = change.apply(session, name, uses)
        count = published_segment_count(session)
    click.echo(
        f"{change.verb}ed {done.segment.name!r} {change.preposition} {', '.join(done.changed)} "
        f"({count} of {MAX_PUBLISHED_SEGMENTS} segments published)"
    )


def _already(change: PublicationChange, state: str) -> str:
    return f"{change.segment.name!r} is {state} {', '.join(change.unchanged)}; nothing changed"


@click.command("published")
@click.option("--search", help="Only segments whose name or folder contains this text.")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
@click.pass_obj
def published_command(database: Database, search: str | None, as_json: bool) -> None:
    """The published-segments settings table: a row per published segment, a column per use."""
    from models.publishing import MAX_PUBLISHED_SEGMENTS, published_segment_count, published_table

    with database.transaction() as session:
        rows = published_table(session, search)
        count = published_segment_count(session)
    if as_json:
        echo_json(
            [
                {"name": r.name, "folder": r.folder, **{use: use in r.uses for use in USES}}
                for r in rows
            ]
        )
        return
    click.echo(
        render_table(
            ["segment", "folder", *USES],
            [(r.name, r.folder, *("x" if use in r.uses else "" for use in USES)) for r in rows],
        )
    )
    click.echo(f"{count} of {MAX_PUBLISHED_SEGMENTS} segments published")


@click.command("values")
@click.option("--account", "account_key", help="Only this account (external id or domain).")
@click.option(
    "--delimiter",
    default=DEFAULT_DELIMITER,
    show_default=True,
    help="What separates names in the value.",
)
@click.option("--max-length", type=int, help="The field's maximum length in characters.")
@click.option("--json", "as_json", is_flag=True, help="Print the values as a JSON array.")
@click.pass_obj
def values(
    database: Database,
    account_key: str | None,
    delimiter: str,
    max_length: int | None,
    as_json: bool,
) -> None:
    """Preview each account's enrichment value: its enrichment-published segment names."""
    from sqlalchemy import select

    from models.accounts import Account, find_account
    from models.enrichment import ValueFormat, enrichment_values

    fmt = ValueFormat(delimiter=delimiter, max_length=max_length)
    with database.transaction() as session:
        scope = None
        if account_key is not None:
            scope = select(Account.id).where(Account.id == find_account(session, account_key).id)
        accounts_query = select(Account.id, Account.external_id, Account.domain).order_by(
            Account.id
        )
        if scope is not None:
            accounts_query = accounts_query.where(Account.id.in_(scope.scalar_subquery()))
        connection = session.connection()
        keys = connection.execution_options(stream_results=True, yield_per=10_000).execute(
            accounts_query
        )
        rows = _value_rows(iter(keys), enrichment_values(connection, fmt, scope))
        if as_json:
            echo_json_stream(rows)
            return
        _print_values(rows)


def _value_rows(keys: Iterator[Any], computed: Iterator[Any]) -> Iterator[dict[str, Any]]:
    # Both streams run in account id order; keys may hold accounts created since the values began.
    for value in computed:
        account_id, external_id, domain = next(keys)
        while account_id != value.account_id:
            account_id, external_id, domain = next(keys)
        yield {
            "external_id": external_id,
            "domain": domain,
            "value": value.value,
            "names": value.names,
            "dropped": value.dropped,
        }


def _print_values(rows: Iterator[dict[str, Any]]) -> None:
    total = with_value = truncated = 0
    batch: list[tuple[object, ...]] = []
    headers = ["external_id", "domain", "value", "dropped"]
    for row in rows:
        total += 1
        with_value += bool(row["value"])
        truncated += bool(row["dropped"])
        batch.append((row["external_id"], row["domain"], row["value"], row["dropped"] or ""))
    # A table needs every width before its first line; previews of huge sets belong in --json.
    click.echo(render_table(headers, batch))
    click.echo(f"{total} accounts, {with_value} with a value, {truncated} truncated")
