"""How the CLI prints: human tables by default, JSON for scripts, one-line errors on stderr."""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import click


def display_width(text: str) -> int:
    """Columns `text` takes in a terminal (wide East Asian and full-width characters take two)."""
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))


def render_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain-text table with a header line; None prints as an empty cell."""
    cells = [[("" if value is None else str(value)) for value in row] for row in rows]
    widths = [display_width(h) for h in headers]
    for row in cells:
        widths = [max(w, display_width(c)) for w, c in zip(widths, row, strict=True)]
    lines = [
        "  ".join(_pad(h, w) for h, w in zip(headers, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    lines.extend(
        "  ".join(_pad(c, w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )
    return "\n".join(lines)


def echo_json(value: Any) -> None:
    """Print `value` as one JSON document (non-ASCII kept readable)."""
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def echo_json_stream(items: Iterator[dict[str, Any]]) -> None:
    """Print a JSON array item by item, so a million rows never sit in memory."""
    click.echo("[", nl=False)
    for index, item in enumerate(items):
        click.echo(("," if index else "") + "\n  " + json.dumps(item, ensure_ascii=False), nl=False)
    click.echo("\n]")


def fail(message: str) -> None:
    """Refuse: print `message` on one line on stderr and exit 1."""
    click.echo(f"segsync: {message}", err=True)
    raise SystemExit(1)


# The --yes of every command that asks before it changes something (see confirm_or_refuse).
yes_option = click.option("--yes", is_flag=True, help="Do not ask to confirm.")


def confirm_or_refuse(
    question: str, yes: bool, refused: str, no_terminal: str | None = None
) -> None:
    """Go on when `yes` or the person answers yes; refuse (exit 1) without a terminal to ask on.

    `refused`: what did not happen, e.g. "nothing was deleted"; `no_terminal`: the refusal when
    there is no terminal to ask on, if not the usual one.
    """
    if yes:
        return
    if not sys.stdin.isatty():
        fail(no_terminal or f"no terminal to ask on: pass --yes to confirm; {refused}")
    if not click.confirm(question, default=False):
        fail(f"not confirmed; {refused}")
