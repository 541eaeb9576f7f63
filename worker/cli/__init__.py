"""The `segsync` command line: every operation a person does by hand.

Commands are loaded lazily: `segsync --help` lists them from the table below, and a command's
module (with Celery, SQLAlchemy, the sandbox... behind it) is imported only when that command runs,
so a shell loop of many short commands does not pay for all of them each time.
"""

from __future__ import annotations

import functools
import importlib
import sys
from dataclasses import dataclass
from typing import Any

import click

from connectors.errors import ConnectorError
from models.errors import SegsyncError
from worker.cli.database import Database
from worker.cli.output import fail


@dataclass(frozen=True)
class LazyCommand:
    """Where a command lives ("module:attribute") and the short help `segsync --help` shows."""

    target: str
    short_help: str


# Every top-level command. The short help must equal the command's own first sentence (a test
# checks each entry against the loaded command), since --help shows it without importing it.
COMMANDS: dict[str, LazyCommand] = {
    "accounts": LazyCommand("worker.cli.accounts:accounts", "Import and look up accounts."),
    "apikeys": LazyCommand(
        "worker.cli.apikeys:apikeys", "Make, list and revoke keys of the HTTP API (`segsync api`)."
    ),
    "beat": LazyCommand(
        "worker.cli.celery:beat_command",
        "Run Celery beat: it fires dispatch_due and sweep every minute "
        "(a second beat is harmless).",
    ),
    "connections": LazyCommand(
        "worker.cli.connections:connections",
        "Store, list and test connections to CRM/MAP systems.",
    ),
    "db": LazyCommand("worker.cli.db:db", "Create or migrate segsync's database schema."),
    "demo": LazyCommand(
        "worker.cli.demo:demo_command",
        "Enrich sample CRM/MAP records end to end, twice, on a database of the demo's own.",
    ),
    "flower": LazyCommand(
        "worker.cli.celery:flower_command",
        "Run Flower with basic authentication from SEGSYNC_FLOWER_BASIC_AUTH (user:password).",
    ),
    "health": LazyCommand(
        "worker.cli.health:health_command",
        "Check the database, broker, rate-limit Redis, workers, beat and runs; "
        "exit 1 if any fails.",
    ),
    "metrics": LazyCommand(
        "worker.cli.metrics:metrics_command",
        "Serve Prometheus metrics of segsync's runs, records and API use.",
    ),
    "orchestrations": LazyCommand(
        "worker.cli.orchestrations:orchestrations",
        "Define Segment Name orchestrations: which field of which records to keep enriched.",
    ),
    "publish": LazyCommand(
        "worker.cli.publishing:publish_command",
        "Publish segment NAME for one or more uses (at most 200 segments are published at once).",
    ),
    "published": LazyCommand(
        "worker.cli.publishing:published_command",
        "The published-segments settings table: a row per published segment, a column per use.",
    ),
    "runs": LazyCommand(
        "worker.cli.runs:runs",
        "Run history (of orchestration NAME), newest first; `runs show ID` shows one run and the "
        "records it could not write; `runs cancel ID` stops a queued or running run.",
    ),
    "sandbox": LazyCommand(
        "worker.cli.sandbox:sandbox",
        "Local emulators of the CRM/MAP APIs (HTTPS on 127.0.0.1).",
    ),
    "segments": LazyCommand(
        "worker.cli.segments:segments", "Create, list, show, refresh and schedule segments."
    ),
    "sync": LazyCommand(
        "worker.cli.runs:sync_command",
        "Run orchestration NAME now: in the foreground (no broker), or on the workers (--queue).",
    ),
    "unpublish": LazyCommand(
        "worker.cli.publishing:unpublish_command",
        "Unpublish segment NAME from one or more uses.",
    ),
    "users": LazyCommand(
        "worker.cli.users:users",
        "Add and manage the people who sign in to the web app (admin or viewer).",
    ),
    "values": LazyCommand(
        "worker.cli.publishing:values",
        "Preview each account's enrichment value: its enrichment-published segment names.",
    ),
    "worker": LazyCommand(
        "worker.cli.celery:worker_command",
        "Run a Celery worker (extra arguments go to `celery worker`).",
    ),
}


# Packages on top of worker (web: `segsync api`) add commands under this entry-point group, each
# entry naming a LazyCommand: worker never names them, and they load only when asked for.
PLUGIN_GROUP = "segsync.commands"


def plugin_commands() -> dict[str, LazyCommand]:
    """The commands installed packages register under PLUGIN_GROUP, by name."""
    from importlib.metadata import entry_points

    found: dict[str, LazyCommand] = {}
    for point in entry_points(group=PLUGIN_GROUP):
        try:
            entry = point.load()
        except ImportError:
            continue  # a package half installed: its command is simply not offered
        if isinstance(entry, LazyCommand) and point.name not in COMMANDS:
            found[point.name] = entry
    return found


class CommandUnavailable(SegsyncError):
    """A command in the table whose module cannot be loaded (not installed, or broken)."""


def load_command(name: str, entry: LazyCommand) -> click.Command:
    """Import the command `entry` points to; CommandUnavailable if it cannot be loaded."""
    module_name, _, attribute = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CommandUnavailable(f"command {name!r} is not available: {exc}") from exc
    command = getattr(module, attribute, None)
    if not isinstance(command, click.Command):
        raise CommandUnavailable(
            f"command {name!r} is not available: {entry.target} is not a click command"
        )
    return command


def _database_error_line(exc: BaseException) -> str | None:
    """The one line to print for a database error, or None if `exc` is not one."""
    # SQLAlchemy is imported only by commands that use the database: if it was never imported,
    # `exc` cannot be one of its errors, and checking must not import it.
    sqlalchemy_errors = sys.modules.get("sqlalchemy.exc")
    if sqlalchemy_errors is None or not isinstance(exc, sqlalchemy_errors.OperationalError):
        return None
    return f"database error: {str(exc.orig).strip().splitlines()[0]}"


class SegsyncGroup(click.Group):
    """The top-level group: commands loaded on use, and every refusal one line with exit 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command's name, without loading any."""
        return sorted({*COMMANDS, *self._plugins(), *self.commands})

    @functools.cached_property
    def _plugin_table(self) -> dict[str, LazyCommand]:
        # Read once, and only when a name is not in the table or every name is wanted.
        return plugin_commands()

    def _plugins(self) -> dict[str, LazyCommand]:
        return self._plugin_table

    def _entry(self, name: str) -> LazyCommand | None:
        return COMMANDS.get(name) or self._plugins().get(name)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command named `cmd_name`, importing its module on first use."""
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        entry = self._entry(cmd_name)
        if entry is None:
            return None
        command = load_command(cmd_name, entry)
        self.commands[cmd_name] = command
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """As click does, suggesting close names from the table (none is loaded yet)."""
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as exc:
            raise click.exceptions.NoSuchCommand(
                exc.command_name, possibilities=self.list_commands(ctx), ctx=ctx
            ) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The Commands section of --help, from the table: no command is imported for it."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            entry = self._entry(name)
            # click's own shortening, applied to the table's text instead of the loaded command's.
            listed = click.Command(name, help=entry.short_help) if entry else self.commands[name]
            rows.append((name, listed.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a refusal or database error becomes one line on stderr and exit 1."""
        try:
            return super().invoke(ctx)
        except (SegsyncError, ConnectorError) as exc:
            fail(str(exc))
        except Exception as exc:
            line = _database_error_line(exc)
            if line is None:
                raise
            fail(line)


@click.group(cls=SegsyncGroup)
@click.pass_context
def main(ctx: click.Context) -> None:
    """segsync: keep CRM/MAP records enriched with their accounts' published segment names."""
    # This runs before every subcommand, its --help included: whatever is set up here for all
    # commands must stay cheap, importing its modules here rather than at the top of this file.
    from worker.logs import configure_logging

    configure_logging("cli")  # SEGSYNC_LOG_FORMAT: text (as always) or one JSON object a line
    ctx.obj = Database()
