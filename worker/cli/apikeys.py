"""`segsync apikeys ...`: make, list and revoke the keys of segsync's HTTP API.

The rules live in models.api_keys; a key is printed once, by `create`, and never stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from models.vocabulary import API_KEY_SCOPES
from worker.cli.by_name import add_list_command
from worker.cli.database import Database
from worker.cli.output import echo_json

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@click.group()
def apikeys() -> None:
    """Make, list and revoke keys of the HTTP API (`segsync api`)."""


@apikeys.command("create")
@click.argument("name")
@click.option(
    "--scope",
    type=click.Choice(API_KEY_SCOPES),
    required=True,
    help="read: read only; publish: also publish and unpublish; trigger: also queue runs.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the key and its name as JSON.")
@click.pass_obj
def create_command(database: Database, name: str, scope: str, as_json: bool) -> None:
    """Make key NAME and print it once: only its digest is kept, so store it now."""
    from models.api_keys import create_api_key

    with database.transaction() as session:
        row, key = create_api_key(session, name, scope)
        shown = {"name": row.name, "scope": row.scope, "key": key}
    if as_json:
        echo_json(shown)
        return
    click.echo(key)
    click.echo(
        f"API key {shown['name']!r} ({scope}): shown this once; send it as "
        "`Authorization: Bearer KEY`",
        err=True,
    )


def _key_rows(session: Session) -> list[dict[str, Any]]:
    from models.api_keys import list_api_keys

    return [
        {
            "name": key.name,
            "scope": key.scope,
            "starts": key.shown,
            "created_at": key.created_at.isoformat(timespec="seconds"),
            "revoked_at": key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else None,
        }
        for key in list_api_keys(session)
    ]


add_list_command(
    apikeys,
    "Every key: name, scope, its first characters, when made and when revoked.",
    _key_rows,
    dict,
    ("NAME", "SCOPE", "STARTS", "CREATED", "REVOKED"),
    lambda row: list(row.values()),
)


@apikeys.command("revoke")
@click.argument("name")
@click.pass_obj
def revoke_command(database: Database, name: str) -> None:
    """Revoke key NAME: the API refuses it from its next request on."""
    from models.api_keys import revoke_api_key

    with database.transaction() as session:
        revoke_api_key(session, name)
    click.echo(f"API key {name!r} revoked")
