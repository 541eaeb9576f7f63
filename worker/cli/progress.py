"""Progress of a run on stderr: one line redrawn in place at a terminal; without one (a file, a
pipe, a CI log) plain lines, one at each new stage and otherwise at most one every few seconds."""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

import click

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from models.runs import SyncRun

# Without a terminal: a line at each new stage, otherwise at most one this often (seconds).
PLAIN_LINE_INTERVAL = 10.0
# How often `--wait` reads the run's row.
WAIT_POLL_SECONDS = 0.5


class ProgressLine:
    """The progress line of one command."""

    def __init__(
        self,
        stream: TextIO | None = None,
        interval: float = PLAIN_LINE_INTERVAL,
        *,
        quiet: bool = False,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        # quiet: --json output, whose scripts read stderr for the one-line reason only.
        self.quiet = quiet
        self.interval = interval
        self.terminal = self.stream.isatty()
        from worker.logs import log_format

        # SEGSYNC_LOG_FORMAT=json without a terminal: stderr is read by a log collector, so the
        # plain lines are log lines too (JSON, with the run's ids).
        self.logged = not self.terminal and log_format() == "json"
        self._stage: str | None = None
        self._text = ""
        self._printed = ""
        self._printed_at = -math.inf
        self._width = 0

    def show(self, stage: str, text: str) -> None:
        """Show `text`, the progress of `stage`; a new stage is shown at once."""
        if self.quiet:
            return
        self._text = text
        if self.terminal:
            # Spaces wipe what a longer previous text left on the line.
            padding = " " * max(0, self._width - len(text))
            click.echo(f"\r{text}{padding}", file=self.stream, nl=False)
            self._width = len(text)
        elif stage != self._stage or (
            text != self._printed and time.monotonic() - self._printed_at >= self.interval
        ):
            self._print(text)
        self._stage = stage

    def close(self) -> None:
        """End the line (at a terminal), or print the last progress if it was not printed."""
        if self.terminal:
            if self._width:
                click.echo("", file=self.stream)
        elif self._text and self._text != self._printed:
            self._print(self._text)

    def _print(self, text: str) -> None:
        if self.logged:
            logging.getLogger(__name__).info("%s", text)
        else:
            click.echo(text, file=self.stream)
        self._printed, self._printed_at = text, time.monotonic()


def read_progress(run_id: int, records: int) -> tuple[str, str]:
    """The stage and text of a run being read and compared."""
    return "reading", f"run {run_id} reading: {records:,} records"


def write_progress(run_id: int, done: int, total: int) -> tuple[str, str]:
    """The stage and text of a run being written."""
    return "writing", f"run {run_id} writing: {done}/{total} batches"


def foreground_progress(
    line: ProgressLine, run_id: int | None
) -> Callable[[str, int, int | None], None]:
    """What a run made in this process reports its progress to (run_id None: a dry run)."""

    def progress(_stage: str, done: int, total: int | None) -> None:
        if run_id is None:
            line.show("reading", f"dry run reading: {done:,} records")
        elif total is None:
            line.show(*read_progress(run_id, done))
        else:
            line.show(*write_progress(run_id, done, total))

    return progress


def run_progress(run: SyncRun) -> tuple[str, str]:
    """The stage and text of an active run, from its row."""
    if run.status == "queued":
        return "queued", f"run {run.id} queued: waiting for a worker"
    if run.batches_total == 0:
        return read_progress(run.id, run.records_read)
    return write_progress(run.id, run.batches_done, run.batches_total)


def wait_for_run(
    factory: sessionmaker[Session], run_id: int, timeout: float | None, line: ProgressLine
) -> SyncRun | None:
    """Follow the run's row until it is no longer queued or running, or `timeout` seconds
    have passed (the run is then returned as it stands); None if the run was deleted."""
    from models.runs import SyncRun

    deadline = math.inf if timeout is None else time.monotonic() + timeout
    while True:
        with factory() as session:
            run = session.get(SyncRun, run_id)
        if run is None or run.status not in ("queued", "running"):
            return run
        line.show(*run_progress(run))
        if time.monotonic() >= deadline:
            return run
        time.sleep(min(WAIT_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
