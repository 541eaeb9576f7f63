"""`segsync users ...`: the people who sign in to the web app, and their roles.

The rules live in models.users. A password is asked twice without echo at a terminal, or read
from standard input with --password-stdin (for scripts); it is never an argument, so it stays out
of shell history and process lists.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from models.vocabulary import USER_ROLES
from worker.cli.by_name import CommandDecorator, add_list_command, delete_after_confirming
from worker.cli.database import Database
from worker.cli.output import fail, yes_option

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


_Option = Callable[[Callable[..., Any]], Callable[..., Any]]
_ROLE = click.option(
    "--role",
    type=click.Choice(USER_ROLES),
    required=True,
    help="admin: may publish, run and change things; viewer: sees everything, changes nothing.",
)
_PASSWORD_STDIN = click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input (its first line) instead of asking.",
)


def _password(from_stdin: bool) -> str:
    """The new password: standard input's first line, or asked twice at the terminal."""
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            fail("--password-stdin: standard input is empty")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        fail("no terminal to ask for the password on: use --password-stdin")
    password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@click.group()
def users() -> None:
    """Add and manage the people who sign in to the web app (admin or viewer)."""


@users.command("create")
@click.argument("name")
@_ROLE
@_PASSWORD_STDIN
@click.pass_obj
def create_command(database: Database, name: str, role: str, password_stdin: bool) -> None:
    """Add user NAME with a role; the password is asked (or read with --password-stdin)."""
    from models.users import check_password, create_user

    # Checked before the database is touched, so a bad password asks for nothing else.
    password = check_password(_password(password_stdin))
    with database.transaction() as session:
        user = create_user(session, name, role, password)
        click.echo(f"created user {user.name!r} ({user.role})")


def _user_rows(session: Session) -> list[dict[str, Any]]:
    from models.users import list_users

    return [
        {"name": u.name, "role": u.role, "created_at": u.created_at.isoformat(timespec="seconds")}
        for u in list_users(session)
    ]


add_list_command(
    users,
    "Every user: name, role and when added.",
    _user_rows,
    dict,
    ("NAME", "ROLE", "CREATED"),
    lambda row: list(row.values()),
)


def _on_user(command: str, option: _Option) -> CommandDecorator:
    """`users COMMAND NAME` with `option`, the database passed first."""

    def decorate(function: Callable[..., None]) -> click.Command:
        return users.command(command)(click.argument("name")(option(click.pass_obj(function))))

    return decorate


@_on_user("password", _PASSWORD_STDIN)
def password_command(database: Database, name: str, password_stdin: bool) -> None:
    """Give user NAME a new password."""
    from models.users import check_password, set_password

    password = check_password(_password(password_stdin))
    with database.transaction() as session:
        set_password(session, name, password)
    click.echo(f"new password set for {name!r}")


@_on_user("role", _ROLE)
def role_command(database: Database, name: str, role: str) -> None:
    """Make user NAME an admin or a viewer (the last admin stays an admin)."""
    from models.users import set_role

    with database.transaction() as session:
        set_role(session, name, role)
    click.echo(f"{name!r} is now {role}")


@users.command("delete")
@click.argument("name")
@yes_option
@click.pass_obj
def delete_command(database: Database, name: str, yes: bool) -> None:
    """Remove user NAME (never the last admin)."""
    from models.users import delete_user, find_user

    delete_after_confirming(
        database, "user", name, yes, find_user, delete_user, "their access to the web app"
    )
