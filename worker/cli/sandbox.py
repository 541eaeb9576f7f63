"""`segsync sandbox start`: the vendor API emulators in the foreground, for trying segsync.

The emulators are imported when the command runs, so that --help loads only click.
"""

from __future__ import annotations

import csv
import json
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

import click

from connectors.systems import SYSTEMS
from models.errors import InputError
from models.vocabulary import LINK_COLUMNS

if TYPE_CHECKING:
    from connectors.sandbox.seeding import SeededCompanies

# What a click option decorates: a command's function.
_FC = TypeVar("_FC", bound=Callable[..., Any])

# The accounts CSV's columns: what `segsync accounts import` matches the seeded records by.
SEEDED_ACCOUNT_COLUMNS = ("external_id", "name", "domain", *dict.fromkeys(LINK_COLUMNS.values()))


def _count_option(flag: str, default: int, help_text: str) -> Callable[[_FC], _FC]:
    """An option taking a whole number, 0 or more, with its default shown in --help."""
    return click.option(
        flag, default=default, show_default=True, type=click.IntRange(min=0), help=help_text
    )


@click.group()
def sandbox() -> None:
    """Local emulators of the CRM/MAP APIs (HTTPS on 127.0.0.1)."""


@sandbox.command("start")
@click.option(
    "--systems",
    default=",".join(SYSTEMS),  # every system has an emulator (a test keeps them in step)
    show_default=True,
    help="Comma-separated systems to emulate.",
)
@_count_option("--records", 100, "Records to seed per object.")
@_count_option("--latency-ms", 0, "Delay added to every API call.")
@click.option(
    "--accounts-csv",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the accounts the seeded records belong to, for `segsync accounts import`.",
)
def start_command(systems: str, records: int, latency_ms: int, accounts_csv: Path | None) -> None:
    """Run the emulators until interrupted; the first line printed is their JSON description."""
    from connectors.sandbox.cluster import Sandbox, parse_systems

    try:
        chosen = parse_systems(systems)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    stop = threading.Event()

    def _stop(_signal: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with Sandbox(chosen, records=records, latency=latency_ms / 1000) as running:
        # Written before the description is printed: whoever waits for that line finds the file.
        if accounts_csv is not None:
            count = write_seeded_accounts(running.seeded, accounts_csv)
            click.echo(f"wrote {count} accounts to {accounts_csv}", err=True)
        click.echo(json.dumps(running.describe()))
        click.echo("sandbox running on 127.0.0.1; press Ctrl-C to stop", err=True)
        stop.wait()
    click.echo("sandbox stopped", err=True)


def write_seeded_accounts(seeded: SeededCompanies, path: Path) -> int:
    """Write an accounts CSV of the seeded companies with their CRM link ids; how many."""
    from connectors.sandbox.seeding import company_domain, company_name

    rows = [
        {
            "external_id": f"SANDBOX-{number:05d}",
            "name": company_name(number),
            "domain": company_domain(number),
            **{
                LINK_COLUMNS[system]: ids[number]
                for system, ids in seeded.links.items()
                if number in ids
            },
        }
        for number in sorted(seeded.numbers)
    ]
    try:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, SEEDED_ACCOUNT_COLUMNS, restval="")
            writer.writeheader()
            writer.writerows(rows)
    except OSError as exc:
        raise InputError(f"cannot write --accounts-csv {path}: {exc.strerror}") from None
    return len(rows)
