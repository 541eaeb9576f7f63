"""`segsync sandbox start`: the vendor API emulators in the foreground, for trying segsync."""

from __future__ import annotations

import json
import signal
import threading
from types import FrameType

import click

from connectors.sandbox.cluster import EMULATORS, Sandbox, parse_systems
from models.errors import InputError


@click.group()
def sandbox() -> None:
    """Local emulators of the CRM/MAP APIs (HTTPS on 127.0.0.1)."""


@sandbox.command("start")
@click.option(
    "--systems",
    default=",".join(EMULATORS),
    show_default=True,
    help="Comma-separated systems to emulate.",
)
@click.option(
    "--records",
    default=100,
    show_default=True,
    type=click.IntRange(min=0),
    help="Records to seed per object.",
)
@click.option(
    "--latency-ms",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Delay added to every API call.",
)
def start_command(systems: str, records: int, latency_ms: int) -> None:
    """Run the emulators until interrupted; the first line printed is their JSON description."""
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
        click.echo(json.dumps(running.describe()))
        click.echo("sandbox running on 127.0.0.1; press Ctrl-C to stop", err=True)
        stop.wait()
    click.echo("sandbox stopped", err=True)
