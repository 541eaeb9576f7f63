"""Real Celery programs for tests: `segsync worker` and `segsync beat` as child processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

from tests.services import stop_process_group

SEGSYNC = str(Path(sys.executable).parent / "segsync")


# What each program logs once it is ready.
WORKER_READY = "ready."
BEAT_STARTED = "beat: Starting"


class CeleryProcess:
    """One `segsync worker` or `segsync beat` in its own process group, logging to a file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._handle = log.open("wb")
        self.process = subprocess.Popen(
            [SEGSYNC, *args],
            env=env,
            stdout=self._handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        """What the process logged so far."""
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 60.0) -> None:
        """Block until `text` appears in the log (e.g. a worker's "ready.")."""
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.process.poll() is not None:
                raise AssertionError(f"process exited early:\n{self.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{text!r} not logged in {timeout} s:\n{self.output()[-3000:]}"
                )
            time.sleep(0.05)  # a program that is ready goes on at once

    def kill(self) -> None:
        """SIGKILL the whole process group: no cleanup, no acknowledgement, like a lost host.

        Harmless when the group is already gone (a test killed it before its cleanup does).
        """
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self._handle.close()

    def stop(self) -> None:
        """Stop gracefully (warm shutdown), killing it if that takes too long."""
        stop_process_group(self.process)
        self._handle.close()


def start_worker(
    env: dict[str, str], log: Path, name: str, concurrency: int = 2, *, wait: bool = True
) -> CeleryProcess:
    """A ready worker consuming segsync's queue (just started, with wait=False)."""
    worker = CeleryProcess(
        [
            "worker",
            f"--concurrency={concurrency}",
            "-n",
            f"{name}@%h",
            "--without-gossip",
            "--without-mingle",
        ],
        env,
        log,
    )
    if wait:
        worker.wait_for(WORKER_READY)
    return worker


def start_beat(
    env: dict[str, str], log: Path, schedule_file: Path, *, wait: bool = True
) -> CeleryProcess:
    """A running beat (its own schedule file, so two beats do not share one)."""
    beat = CeleryProcess(["beat", f"--schedule={schedule_file}"], env, log)
    if wait:
        beat.wait_for(BEAT_STARTED)
    return beat
