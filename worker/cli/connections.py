"""`segsync connections ...`: store, change, test and delete CRM/MAP connections.

The rules live in models.connections; which keys a system takes comes from the connectors
(worker.connector_factory), handed to models as the check they run before storing anything.
Those modules (SQLAlchemy, the adapters) are imported inside each command, so that --help loads
only click; the systems offered come from connectors.systems, a list of names.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from connectors.errors import ConnectorError
from connectors.systems import SYSTEMS
from models.errors import InputError
from worker.cli.by_name import delete_after_confirming, delete_one
from worker.cli.database import Database
from worker.cli.output import echo_json, fail, render_table

if TYPE_CHECKING:
    from models.connections import Connection

# Stands in for a secret not at hand (read from the environment when used, or kept encrypted)
# when a connection is checked for completeness.
_NOT_AT_HAND = "not-at-hand"


def check_connection(
    system: str, settings: Mapping[str, str], secrets: Mapping[str, str | None]
) -> None:
    """Refuse unknown keys, secrets given as settings, and a connection incomplete for its auth
    mode (models.connections.ConnectionCheck)."""
    from worker.connector_factory import build_config, check_keys

    check_keys(system, settings, {key: value or "" for key, value in secrets.items()})
    build_config(system, {**settings, **{k: v or _NOT_AT_HAND for k, v in secrets.items()}})


def _pairs(option: str, values: tuple[str, ...]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in values:
        key, separator, value = item.partition("=")
        if not separator or not key.strip():
            raise InputError(f"{option} {item.split('=')[0]!r}: expected KEY=VALUE")
        pairs[key.strip()] = value
    return pairs


def _secrets(values: tuple[str, ...]) -> dict[str, str]:
    secrets: dict[str, str] = {}
    for item in values:
        key, separator, value = item.partition("=")
        if not separator:
            # `--secret password` asks for the value, so it stays out of shell history.
            if not sys.stdin.isatty():
                raise InputError(f"--secret {key}: no terminal to ask on; give {key}=VALUE")
            value = click.prompt(key, hide_input=True)
        if not key.strip():
            raise InputError("--secret needs a KEY")
        secrets[key.strip()] = value
    return secrets


def _read_secret_files(paths: dict[str, str]) -> dict[str, str]:
    secrets: dict[str, str] = {}
    for key, path in paths.items():
        try:
            secrets[key] = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise InputError(f"--secret-file {key}: cannot read {path}: {reason}") from None
        except UnicodeDecodeError:
            raise InputError(f"--secret-file {key}: {path} is not UTF-8 text") from None
    return secrets


@click.group()
def connections() -> None:
    """Store, list and test connections to CRM/MAP systems."""


# What `add` and `update` take alike: plain settings and the three ways to give a secret.
_VALUE_OPTIONS = (
    click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="A plain setting."),
    click.option(
        "--secret",
        "secrets",
        multiple=True,
        metavar="KEY[=VALUE]",
        help="A secret, stored encrypted (asked for when no VALUE is given).",
    ),
    click.option(
        "--secret-file",
        "secret_files",
        multiple=True,
        metavar="KEY=PATH",
        help="A secret read from a file now (e.g. a JWT private key), stored encrypted.",
    ),
    click.option(
        "--secret-env",
        "secret_env",
        multiple=True,
        metavar="KEY=VARIABLE",
        help="A secret read from environment variable VARIABLE when used.",
    ),
)


@dataclass(frozen=True)
class _Values:
    """What --set, --secret, --secret-file and --secret-env gave, as typed."""

    settings: tuple[str, ...]
    secrets: tuple[str, ...]
    secret_files: tuple[str, ...]
    secret_env: tuple[str, ...]

    def any_given(self) -> bool:
        """Whether any of the four options was given."""
        return bool(self.settings or self.secrets or self.secret_files or self.secret_env)

    def plain(self) -> dict[str, str]:
        """The plain settings, KEY=VALUE of --set."""
        return _pairs("--set", self.settings)

    def given_secrets(self) -> dict[str, str]:
        """The secrets given now: --secret (asked for when without VALUE), then --secret-file."""
        return {
            **_secrets(self.secrets),
            **_read_secret_files(_pairs("--secret-file", self.secret_files)),
        }

    def from_environment(self) -> dict[str, str]:
        """Secret key -> the environment variable it is read from when used (--secret-env)."""
        return _pairs("--secret-env", self.secret_env)


def _value_options(command: Callable[..., None]) -> Callable[..., None]:
    """Add the four value options to `command`, which takes what they gave as `values`."""

    @functools.wraps(command)
    def with_values(
        *args: Any,
        settings: tuple[str, ...],
        secrets: tuple[str, ...],
        secret_files: tuple[str, ...],
        secret_env: tuple[str, ...],
        **kwargs: Any,
    ) -> None:
        command(*args, values=_Values(settings, secrets, secret_files, secret_env), **kwargs)

    decorated: Callable[..., None] = with_values
    for option in reversed(_VALUE_OPTIONS):
        decorated = option(decorated)
    return decorated


@connections.command("add")
@click.argument("name")
@click.option("--system", required=True, type=click.Choice(list(SYSTEMS)))
@_value_options
@click.pass_obj
def add_command(database: Database, name: str, system: str, values: _Values) -> None:
    """Store connection NAME to a SYSTEM account."""
    from models.connections import ConnectionSpec, add_connection

    plain = values.plain()
    from_environment = values.from_environment()
    given = values.given_secrets()
    check_connection(system, plain, {**given, **dict.fromkeys(from_environment)})
    spec = ConnectionSpec(name, system, plain, given, from_environment)
    with database.transaction() as session:
        add_connection(session, spec, database.settings.secret_key_text())
    click.echo(f"added connection {name!r} ({system})")


@connections.command("update")
@click.argument("name")
@_value_options
@click.option("--unset", multiple=True, metavar="KEY", help="Remove a setting or secret.")
@click.pass_obj
def update_command(database: Database, name: str, values: _Values, unset: tuple[str, ...]) -> None:
    """Change connection NAME's settings and secrets; those not named stay as they are."""
    from models.connections import ConnectionChanges, find_connection, update_connection

    if not (values.any_given() or unset):
        raise click.UsageError(
            "nothing to change: give --set, --secret, --secret-file, --secret-env or --unset"
        )
    with database.transaction() as session:
        find_connection(session, name)  # an unknown name is refused before asking for a secret
    changes = ConnectionChanges(
        settings=values.plain(),
        secrets=values.given_secrets(),
        secret_environment=values.from_environment(),
        unset=tuple(key.strip() for key in unset),
    )
    with database.transaction() as session:
        changed = update_connection(
            session, name, changes, database.settings.secret_key_text(), check_connection
        )
    if changed:
        click.echo(f"updated connection {name!r}: {', '.join(changed)}")
    else:
        click.echo(f"connection {name!r} already had those settings; nothing changed")


@delete_one(connections)
def delete_command(database: Database, name: str, yes: bool) -> None:
    """Delete connection NAME and its stored secrets (refused while an orchestration uses it)."""
    from models.connections import delete_connection, find_connection

    delete_after_confirming(
        database, "connection", name, yes, find_connection, delete_connection, "its stored secrets"
    )


@connections.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@click.pass_obj
def list_command(database: Database, as_json: bool) -> None:
    """List connections with their settings and the names (never values) of their secrets."""
    from sqlalchemy import select

    from models.connections import Connection

    with database.transaction() as session:
        stored = list(session.scalars(select(Connection).order_by(Connection.name)))
    if as_json:
        echo_json(
            [
                {
                    "name": c.name,
                    "system": c.system,
                    "settings": dict(c.settings),
                    "secrets": c.secret_keys(),
                    "secrets_from_environment": dict(c.secret_environment),
                }
                for c in stored
            ]
        )
        return
    click.echo(
        render_table(
            ["name", "system", "settings", "secrets"],
            [
                (
                    c.name,
                    c.system,
                    " ".join(f"{k}={v}" for k, v in c.settings.items()),
                    ", ".join(_secret_label(c, key) for key in c.secret_keys()),
                )
                for c in stored
            ],
        )
    )


def _secret_label(connection: Connection, key: str) -> str:
    variable = connection.secret_environment.get(key)
    return f"{key} (${variable})" if variable else key


@connections.command("test")
@click.argument("name")
@click.option("--object", "object_type", required=True, help="e.g. Lead, Contact, contacts.")
@click.option("--field", required=True, help="The field segment names are written to.")
@click.pass_obj
def test_command(database: Database, name: str, object_type: str, field: str) -> None:
    """Check connection NAME's credentials and that OBJECT has FIELD."""
    from models.connections import find_connection, resolve_secrets
    from worker.connector_factory import build_connector

    with database.transaction() as session:
        connection = find_connection(session, name)
        system, settings = connection.system, dict(connection.settings)
        secrets = resolve_secrets(connection, database.settings.secret_key_text())
    connector = build_connector(system, settings, secrets)
    try:
        connector.check_credentials()
        described = connector.describe_field(object_type, field)
    except ConnectorError as exc:
        fail(f"connection {name!r}: {exc}")
    length = f"{described.max_length} characters" if described.max_length else "no length limit"
    writable = "writable" if described.writable else "NOT writable"
    click.echo(
        f"ok: {described.object_type}.{described.name} is {described.type}, "
        f"{length}, {writable} ({connector.api_calls} API calls)"
    )
    if not described.writable:
        fail(f"field {described.name} on {described.object_type} is not writable")


@connections.command("keygen")
def keygen_command() -> None:
    """Print a new key for SEGSYNC_SECRET_KEY."""
    from models.connections import new_secret_key

    click.echo(new_secret_key())
