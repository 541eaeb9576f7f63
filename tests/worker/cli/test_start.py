"""Start-up of the command line: --help loads no heavy module; the lazy table matches commands."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from worker import cli
from worker.cli import COMMANDS, LazyCommand, load_command, main, plugin_commands

ROOT = Path(__file__).resolve().parents[3]

# What a --help has no use for; each costs a tenth of a second or more to import.
HEAVY_MODULES = (
    "celery",
    "sqlalchemy",
    "alembic",
    "pydantic_settings",
    "connectors.sandbox",
    "worker.demo.run",
    "worker.connector_factory",  # the rate limiter (redis) and key handling behind the adapters
    "prometheus_client",
)

# Runs segsync's main in a fresh interpreter, then reports which heavy modules it had imported.
PROBE = """
import json, sys
from worker.cli import main
try:
    main(sys.argv[2:], prog_name="segsync")
except SystemExit as end:
    code = end.code
heavy = json.loads(sys.argv[1])
print(json.dumps({"exit": code, "loaded": [name for name in heavy if name in sys.modules]}))
"""


def fresh_environment() -> dict[str, str]:
    """The environment of a new interpreter that imports this checkout's code."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }


def start(args: list[str], cwd: Path) -> tuple[str, dict[str, object]]:
    """segsync ARGS in a new process: its output and the probe's report."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(HEAVY_MODULES), *args],
        cwd=cwd,
        env=fresh_environment(),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    output, _, report = done.stdout.rstrip("\n").rpartition("\n")
    return output, json.loads(report)


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["values", "--help"],
        ["publish", "--help"],
        ["accounts", "import", "--help"],
        ["segments", "create", "--help"],
        ["db", "upgrade", "--help"],
        ["worker", "--help"],
        ["beat", "--help"],
        ["flower", "--help"],
        ["connections", "--help"],
        ["connections", "add", "--help"],
        ["connections", "update", "--help"],
        ["connections", "test", "--help"],
        ["connections", "keygen", "--help"],
        ["orchestrations", "--help"],
        ["orchestrations", "create", "--help"],
        ["orchestrations", "update", "--help"],
        ["orchestrations", "list", "--help"],
        ["orchestrations", "show", "--help"],
        ["runs", "--help"],
        ["runs", "show", "--help"],
        ["runs", "cancel", "--help"],
        ["sync", "--help"],
        ["sandbox", "--help"],
        ["sandbox", "start", "--help"],
        ["demo", "--help"],
        ["health", "--help"],
        ["metrics", "--help"],
    ],
    ids=" ".join,
)
def test_help_imports_no_database_celery_sandbox_or_demo(args: list[str], tmp_path: Path) -> None:
    output, report = start(args, tmp_path)

    assert report == {"exit": 0, "loaded": []}
    assert output.startswith("Usage: segsync ")
    assert not (tmp_path / "segsync.db").exists()  # --help opened no database either


def help_pages() -> list[list[str]]:
    """The arguments of every --help page: each command's, and each subcommand's of a group."""
    pages: list[list[str]] = []
    for name, entry in sorted(COMMANDS.items()):
        command = load_command(name, entry)
        pages.append([name, "--help"])
        if isinstance(command, click.Group):
            pages.extend([name, sub, "--help"] for sub in sorted(command.commands))
    return pages


# Runs every page given in one fresh interpreter: what all of them load together.
PROBE_PAGES = """
import json, sys
from worker.cli import main
exits = []
for args in json.loads(sys.argv[2]):
    try:
        main(args, prog_name="segsync")
    except SystemExit as end:
        exits.append(end.code)
heavy = json.loads(sys.argv[1])
print(json.dumps({"exits": exits, "loaded": [name for name in heavy if name in sys.modules]}))
"""


def test_no_help_page_of_any_command_imports_a_heavy_module(tmp_path: Path) -> None:
    pages = help_pages()

    done = subprocess.run(
        [sys.executable, "-c", PROBE_PAGES, json.dumps(HEAVY_MODULES), json.dumps(pages)],
        cwd=tmp_path,
        env=fresh_environment(),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.rstrip("\n").rpartition("\n")[2])
    assert len(pages) > len(COMMANDS)  # the groups' subcommands are there too
    assert report == {"exits": [0] * len(pages), "loaded": []}
    assert not (tmp_path / "segsync.db").exists()


def test_main_help_lists_every_command_with_its_short_help(tmp_path: Path) -> None:
    output, _ = start(["--help"], tmp_path)

    commands = output.split("Commands:\n", 1)[1].splitlines()
    listed = {line.split()[0]: line.split(None, 1)[1] for line in commands if line.strip()}
    every = {**COMMANDS, **plugin_commands()}
    assert sorted(listed) == sorted(every)
    for name, short_help in listed.items():
        shown = short_help.removesuffix("...")
        assert every[name].short_help.startswith(shown), (name, short_help)


def test_web_adds_segsync_api_through_the_entry_point_group() -> None:
    plugins = plugin_commands()

    assert sorted(plugins) == ["api"]
    assert plugins["api"].target == "web.cli:api_command"
    assert "api" not in COMMANDS  # worker names no web module


@pytest.mark.parametrize("name", sorted({**COMMANDS, **plugin_commands()}))
def test_each_table_entry_is_the_command_it_names_with_the_same_short_help(name: str) -> None:
    entry = {**COMMANDS, **plugin_commands()}[name]

    command = load_command(name, entry)

    assert isinstance(command, click.Command)
    assert command.name == name
    assert command.get_short_help_str(limit=sys.maxsize) == entry.short_help


def test_a_command_whose_module_is_missing_is_a_one_line_refusal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ghost = LazyCommand("worker.cli.ghost:ghost_command", "Haunt the command line.")
    monkeypatch.setitem(cli.COMMANDS, "ghost", ghost)
    runner = CliRunner()

    listed = runner.invoke(main, ["--help"])
    refused = runner.invoke(main, ["ghost", "--help"])

    assert listed.exit_code == 0, listed.output
    assert "ghost           Haunt the command line." in listed.stdout
    assert refused.exit_code == 1
    assert refused.stdout == ""
    assert refused.stderr == (
        "segsync: command 'ghost' is not available: No module named 'worker.cli.ghost'\n"
    )


def test_a_mistyped_command_is_misuse_with_close_names_suggested() -> None:
    result = CliRunner().invoke(main, ["publsh"])

    assert result.exit_code == 2
    assert "No such command 'publsh'." in result.stderr
    assert "'publish'" in result.stderr


def test_a_database_error_is_still_a_one_line_refusal(tmp_path: Path) -> None:
    # SQLAlchemy is no longer imported with the CLI, so its errors are recognised after the fact.
    database_file = tmp_path / "segsync.db"
    env = {"SEGSYNC_DATABASE_URL": f"sqlite:///{database_file}"}
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    with sqlite3.connect(database_file) as damaged:
        damaged.execute("DROP TABLE publications")

    result = runner.invoke(main, ["published"], env=env)

    assert result.exit_code == 1
    assert result.stderr == "segsync: database error: no such table: publications\n"
