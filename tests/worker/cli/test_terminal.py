"""Confirmation at a real terminal: the installed `segsync` script run in a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import write_csv

SEGSYNC = shutil.which("segsync", path=str(Path(sys.executable).parent)) or "segsync"


def run_in_terminal(args: list[str], env: dict[str, str], answer: str) -> tuple[int, str]:
    """Run segsync with a pseudo-terminal as stdin/stdout, answer its prompt, return the screen."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [SEGSYNC, *args], stdin=terminal, stdout=terminal, stderr=terminal, env=env
    )
    os.close(terminal)
    screen = b""
    answered = False
    while True:
        ready, _, _ = select.select([controller], [], [], 30)
        if not ready:
            process.kill()
            raise AssertionError(f"segsync stopped answering; screen so far: {screen!r}")
        try:
            chunk = os.read(controller, 1024)
        except OSError:  # the terminal closes when segsync exits
            break
        if not chunk:
            break
        screen += chunk
        if not answered and b"[y/N]" in screen:
            os.write(controller, answer.encode() + b"\n")
            answered = True
    os.close(controller)
    return process.wait(timeout=30), screen.decode()


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    environment = {**os.environ, "SEGSYNC_DATABASE_URL": database_url}
    accounts = write_csv(tmp_path / "a.csv", ["external_id", "country"], [["A-1", "US"]])
    for args in (
        ["accounts", "import", str(accounts)],
        ["segments", "create", "US", "--filter", 'country = "US"'],
    ):
        subprocess.run([SEGSYNC, *args], env=environment, check=True, capture_output=True)
    return environment


def test_confirmed_at_the_terminal(env: dict[str, str]) -> None:
    status, screen = run_in_terminal(["publish", "US", "--use", "api"], env, "y")
    assert "Publish 'US' to api? [y/N]" in screen
    assert status == 0, screen
    assert "published 'US' to api" in screen


def test_declined_at_the_terminal_changes_nothing(env: dict[str, str]) -> None:
    status, screen = run_in_terminal(["publish", "US", "--use", "api"], env, "n")
    assert status == 1, screen
    assert "not confirmed; nothing was published" in screen
    listed = subprocess.run(
        [SEGSYNC, "published", "--json"], env=env, check=True, capture_output=True, text=True
    )
    assert listed.stdout.strip() == "[]"
