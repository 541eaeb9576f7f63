"""Commands on stored things a person names (an account, a connection...): list, show, delete."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import click

from worker.cli.database import Database
from worker.cli.output import confirm_or_refuse, echo_json, render_table, yes_option

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

CommandDecorator = Callable[[Callable[..., None]], click.Command]
_Item = TypeVar("_Item")


class _Named(Protocol):
    """A stored thing a person names: a connection, an orchestration."""

    @property
    def name(self) -> str: ...


def add_list_command(
    group: click.Group,
    summary: str,
    load: Callable[[Session], Sequence[_Item]],
    as_dict: Callable[[_Item], dict[str, Any]],
    headers: Sequence[str],
    as_cells: Callable[[_Item], Sequence[object]],
) -> None:
    """`group list [--json]`: what `load` finds, a table row (`as_cells`) or JSON object
    (`as_dict`) each, made while its session is open."""

    @group.command("list", help=summary)
    @click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
    @click.pass_obj
    def listed(database: Database, as_json: bool) -> None:
        with database.transaction() as session:
            items = load(session)
            if as_json:
                objects = [as_dict(item) for item in items]
            else:
                cells = [as_cells(item) for item in items]
        if as_json:
            echo_json(objects)
        else:
            click.echo(render_table(headers, cells))


def show_one(group: click.Group, argument: str, what: str) -> CommandDecorator:
    """`group show ARGUMENT [--json]`, the database passed first: shows one `what`."""

    def decorate(function: Callable[..., None]) -> click.Command:
        as_json = click.option("--json", "as_json", is_flag=True, help=f"Print the {what} as JSON.")
        return group.command("show")(click.argument(argument)(as_json(click.pass_obj(function))))

    return decorate


def delete_one(group: click.Group) -> CommandDecorator:
    """`group delete NAME [--yes]`, the database passed first: deletes NAME once confirmed."""

    def decorate(function: Callable[..., None]) -> click.Command:
        return group.command("delete")(click.argument("name")(yes_option(click.pass_obj(function))))

    return decorate


def delete_after_confirming(
    database: Database,
    what: str,
    name: str,
    yes: bool,
    find: Callable[[Session, str], _Named],
    delete: Callable[[Session, str], None],
    along: str,
) -> None:
    """Delete `what` NAME and `along` with it once confirmed; an unknown NAME is refused first."""
    with database.transaction() as session:
        name = find(session, name).name
    confirm_or_refuse(f"Delete {what} {name!r} and {along}?", yes, "nothing was deleted")
    with database.transaction() as session:
        delete(session, name)
    click.echo(f"deleted {what} {name!r}")
