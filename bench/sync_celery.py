"""Real `segsync worker` processes and `segsync sync --queue --wait` for bench/sync.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SEGSYNC = str(Path(sys.executable).parent / "segsync")


class WorkerProcess:
    """One `segsync worker` in a process group of its own (its pool children included)."""

    def __init__(self, name: str, concurrency: int, env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self._handle = log.open("wb")
        self.process = subprocess.Popen(
            [
                SEGSYNC,
                "worker",
                f"--concurrency={concurrency}",
                "-n",
                f"{name}@%h",
                "--without-gossip",
                "--without-mingle",
            ],
            env=env,
            stdout=self._handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        """What the worker logged so far."""
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until the worker logs "ready."."""
        deadline = time.monotonic() + timeout
        while "ready." not in self.output():
            if self.process.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited:\n{self.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker {self.name} not ready in {timeout:g} s")
            time.sleep(0.1)

    def stop(self) -> None:
        """Warm shutdown (SIGTERM to its group), then SIGKILL if it takes over 30 s."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
            except ProcessLookupError:
                pass
        self._handle.close()


def start_workers(
    count: int, concurrency: int, env: dict[str, str], folder: Path, label: str
) -> list[WorkerProcess]:
    """`count` ready workers; on failure the ones started are stopped."""
    workers: list[WorkerProcess] = []
    try:
        for number in range(1, count + 1):
            name = f"{label}-{number}"
            workers.append(WorkerProcess(name, concurrency, env, folder / f"{name}.log"))
        for worker in workers:
            worker.wait_ready()
    except BaseException:
        stop_workers(workers)
        raise
    return workers


def stop_workers(workers: list[WorkerProcess]) -> None:
    """Stop every worker given (each its own process group)."""
    for worker in workers:
        worker.stop()


# What Celery logs when a task ends with an exception it did not expect: the run will not move.
_GAVE_UP = "raised unexpected"


def sync_queued(
    name: str,
    env: dict[str, str],
    timeout: float,
    workers: list[WorkerProcess],
    *,
    full: bool = False,
) -> tuple[dict[str, Any] | None, float, str | None]:
    """`segsync sync NAME --queue --wait --json` (with `--full` when `full`), timed: (its JSON,
    seconds, None).

    Gives up early, with (None, seconds, reason), when a worker logs that a task raised an
    unexpected error (the run would then stay queued and `--wait` never return) or when the run
    takes over `timeout` seconds.
    """
    offsets = [len(worker.output()) for worker in workers]
    started = time.perf_counter()
    process = subprocess.Popen(
        [SEGSYNC, "sync", name, "--queue", "--wait", "--json", *(["--full"] if full else [])],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    reason = None
    try:
        while True:
            try:
                out, err = process.communicate(timeout=2)
                break
            except subprocess.TimeoutExpired:
                pass
            for worker, offset in zip(workers, offsets, strict=True):
                lines = worker.output()[offset:].splitlines()
                failed = next((line for line in lines if _GAVE_UP in line), None)
                if failed is not None:
                    reason = f"worker {worker.name}: {failed.split('] ', 1)[-1][:300]}"
            if reason is None and time.perf_counter() - started > timeout:
                reason = f"still waiting after {timeout:g} s"
            if reason is not None:
                return None, time.perf_counter() - started, reason
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    seconds = time.perf_counter() - started
    try:
        result: dict[str, Any] = json.loads(out)
    except ValueError:
        raise RuntimeError(
            f"`segsync sync {name!r}` exited {process.returncode}: {err.strip()[-2000:]}"
        ) from None
    return result, seconds, None
