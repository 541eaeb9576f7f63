"""SEGSYNC_LOG_FORMAT: a real worker, beat and CLI log one JSON object a line carrying the run's
ids, never a secret of the sandbox's connections; the default stays Celery's and Python's text."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest

from models.errors import InputError
from tests.worker.celery_processes import BEAT_STARTED, SEGSYNC, CeleryProcess, start_beat
from tests.worker.celery_stack import Stack, assert_each_written_once, ready
from tests.worker.cli.test_main import Cli
from tests.worker.sandbox_connections import salesforce_password_connection
from tests.worker.test_celery_e2e import seed
from worker.logs import (
    ContextFilter,
    _served_program,
    configure_logging,
    current_context,
    json_formatter,
    log_context,
    redact,
    set_program,
)

BOUND = 120.0
CELERY = str(Path(sys.executable).parent / "celery")
UPDATE_CONTACTS = "/crm/v3/objects/contacts/batch/update$"
LIST_CONTACTS = "/crm/v3/objects/contacts$"


class CeleryCommand(CeleryProcess):
    """`celery -A worker ARGS`: Celery's own entry point, which bypasses segsync's CLI."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._handle = log.open("wb")
        self.process = subprocess.Popen(
            [CELERY, "-A", "worker", *args],
            env=env,
            stdout=self._handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def json_lines(output: str) -> list[dict[str, Any]]:
    """Every line of `output` as a JSON object (the test fails on the first that is not)."""
    parsed = []
    for number, line in enumerate(output.splitlines(), start=1):
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"line {number} is not JSON: {line!r}\n{output[-3000:]}") from None
        assert isinstance(value, dict), line
        parsed.append(value)
    return parsed


def any_json(output: str) -> bool:
    """Whether any line of `output` is a JSON object."""
    for line in output.splitlines():
        try:
            if isinstance(json.loads(line), dict):
                return True
        except json.JSONDecodeError:
            continue
    return False


def queue_together(stack: Stack, *orchestrations: str) -> list[int]:
    """`segsync sync NAME --queue` of each, started together (each CLI takes seconds to start)."""
    commands = [
        subprocess.Popen(
            [SEGSYNC, "sync", name, "--queue"],
            env=stack.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in orchestrations
    ]
    run_ids = []
    for command in commands:
        stdout, stderr = command.communicate(timeout=BOUND)
        assert command.returncode == 0, stderr
        found = re.fullmatch(r"run (\d+) queued\s*", stdout)
        assert found, stdout
        run_ids.append(int(found[1]))
    return run_ids


def sandbox_secrets(stack: Stack) -> dict[str, str]:
    """Every secret the sandbox gave the connections, and the sessions it issued for them."""
    salesforce = stack.sandbox.describe()["salesforce"]
    return {
        "salesforce password": salesforce["password"],
        "salesforce security token": salesforce["security_token"],
        "salesforce session": salesforce["access_token"],  # the session the worker logged into
        "salesforce client secret": salesforce["client_secret"],
        "hubspot private-app token": stack.hubspot.private_app_token,
        "hubspot refresh token": stack.hubspot.refresh_token,
        "segsync secret key": stack.env["SEGSYNC_SECRET_KEY"],
    }


def assert_no_secret(output: str, secrets: dict[str, str]) -> None:
    for what, secret in secrets.items():
        assert secret not in output, f"the {what} appears in the log"


def test_worker_and_beat_log_json_lines_carrying_the_run_and_batch_and_no_secret(
    stack: Stack,
) -> None:
    hubspot_expected = seed(stack.sandbox, "hubspot", "contacts", 150, stack.companies)
    seed(stack.sandbox, "salesforce", "Contact", 20, stack.companies)
    stack.orchestration("hs-contacts", "hs", "contacts")
    stack.orchestration("sf-contacts", "sf", "Contact")
    # A connection whose password goes wrong once its orchestration exists: its run fails, and
    # the error must not leak the password.
    stack.cli.ok(*salesforce_password_connection(stack.sandbox, "sf-wrong"))
    stack.orchestration("sf-wrong-contacts", "sf-wrong", "Contact")
    wrong_password = "pw-wrong-7d1f0c9e"
    stack.cli.ok("connections", "update", "sf-wrong", "--secret", f"password={wrong_password}")
    # The first batch update of HubSpot contacts is refused once: its task retries.
    stack.hubspot.faults.inject("server_error", path=UPDATE_CONTACTS)
    stack.env["SEGSYNC_LOG_FORMAT"] = "json"
    # Everything starts together, the runs queued meanwhile: each program takes seconds to start.
    worker = stack.worker("json", wait=False)
    beat = CeleryCommand(
        ["beat", "--loglevel=INFO", f"--schedule={stack.logs / 'beat-json.schedule'}"],
        stack.env,
        stack.logs / "beat-json.log",
    )
    stack.processes.append(beat)
    text_env = {k: v for k, v in stack.env.items() if k != "SEGSYNC_LOG_FORMAT"}
    text_beat = start_beat(
        text_env, stack.logs / "beat-text.log", stack.logs / "text.schedule", wait=False
    )
    stack.processes.append(text_beat)

    hubspot_run, salesforce_run, wrong_run = queue_together(
        stack, "hs-contacts", "sf-contacts", "sf-wrong-contacts"
    )
    ready([worker], [text_beat])
    assert stack.finished(hubspot_run, BOUND).status == "succeeded"
    assert stack.finished(salesforce_run, BOUND).status == "succeeded"
    assert stack.finished(wrong_run, BOUND).status == "failed"
    beat.wait_for(BEAT_STARTED, BOUND)
    assert_each_written_once(stack.sandbox, "hubspot", "contacts", hubspot_expected)
    worker.stop()  # a warm shutdown: its last lines are JSON too
    beat.stop()

    lines = json_lines(worker.output())
    for line in lines:
        assert {"timestamp", "level", "logger", "message", "program"} <= set(line), line
        assert line["program"] == "worker", line
        assert line["timestamp"].endswith("+00:00"), line
    assert any(line["message"].endswith(" ready.") for line in lines)
    # Celery's own lines are JSON too.
    assert any("received" in line["message"] for line in lines)
    hubspot_lines = [line for line in lines if line.get("run_id") == hubspot_run]
    about_hubspot = {"orchestration": "hs-contacts", "system": "hubspot", "object": "contacts"}
    for line in hubspot_lines:
        assert line.items() >= about_hubspot.items(), line
    batch_ids = {b.id for b in stack.batches(hubspot_run)}
    written = [
        line
        for line in hubspot_lines
        if line.get("batch_id") in batch_ids and line["message"].endswith(" written")
    ]
    assert len(written) == 2, hubspot_lines
    retried = [line for line in hubspot_lines if "again in" in line["message"]]
    assert len(retried) == 1 and retried[0]["level"] == "WARNING", hubspot_lines
    assert retried[0]["batch_id"] in batch_ids and "task_id" in retried[0]
    assert any(
        line["message"] == f"run {hubspot_run} planned: 2 batches to write" for line in lines
    )
    salesforce_lines = [line for line in lines if line.get("run_id") == salesforce_run]
    assert {line["system"] for line in salesforce_lines} == {"salesforce"}, salesforce_lines
    assert any(line["message"].endswith(" written") for line in salesforce_lines)
    failed = [
        line for line in lines if line.get("run_id") == wrong_run and line["level"] == "ERROR"
    ]
    assert len(failed) == 1 and failed[0]["orchestration"] == "sf-wrong-contacts", failed
    assert failed[0]["message"].startswith(f"run {wrong_run} failed: ")

    beat_lines = json_lines(beat.output())
    assert any("beat: Starting" in line["message"] for line in beat_lines)
    assert {line["program"] for line in beat_lines} == {"beat"}
    # Without SEGSYNC_LOG_FORMAT, beat logs Celery's text as before.
    text = text_beat.output()
    assert "beat: Starting..." in text and not any_json(text), text[-2000:]

    secrets = {**sandbox_secrets(stack), "wrong password": wrong_password}
    for process in stack.processes:
        assert_no_secret(process.output(), secrets)


def foreground_sync(stack: Stack, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SEGSYNC, "sync", "hs-contacts"],
        env=env,
        capture_output=True,
        text=True,
        timeout=BOUND,
    )


def test_foreground_sync_logs_json_lines_of_its_run_and_text_stays_the_default(
    stack: Stack,
) -> None:
    seed(stack.sandbox, "hubspot", "contacts", 30, stack.companies)
    stack.orchestration("hs-contacts", "hs", "contacts")
    # A page of the read is refused once: the connector logs that it reads it again.
    stack.hubspot.faults.inject("server_error", path=LIST_CONTACTS)

    done = foreground_sync(stack, {**stack.env, "SEGSYNC_LOG_FORMAT": "json"})

    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "succeeded" in done.stdout  # the command's own output stays for people
    lines = json_lines(done.stderr)
    retry = [line for line in lines if "again in" in line["message"]]
    assert len(retry) == 1, lines
    assert (
        retry[0].items()
        >= {
            "program": "cli",
            "run_id": 1,
            "orchestration": "hs-contacts",
            "system": "hubspot",
            "object": "contacts",
            "level": "INFO",
            "logger": "connectors.base",
        }.items()
    )
    # Without a terminal, its progress lines are log lines too.
    progress = [line for line in lines if line["logger"] == "worker.cli.progress"]
    assert progress and all(line["run_id"] == 1 for line in progress), lines
    assert any(line["message"] == "run 1 reading: 30 records" for line in progress), progress
    assert_no_secret(done.stdout + done.stderr, sandbox_secrets(stack))

    # The default: the same run's stderr is the plain progress it always was, no JSON.
    stack.hubspot.faults.inject("server_error", path=LIST_CONTACTS)
    plain = foreground_sync(stack, {k: v for k, v in stack.env.items() if "LOG_FORMAT" not in k})
    assert plain.returncode == 0, (plain.stdout, plain.stderr)
    assert "run 2 reading" in plain.stderr and not any_json(plain.stderr), plain.stderr


def test_a_log_format_other_than_text_or_json_is_refused_in_one_line(database_url: str) -> None:
    cli = Cli(database_url)
    cli.env["SEGSYNC_LOG_FORMAT"] = "yaml"
    line = cli.refused("runs", "list")
    assert line == "segsync: SEGSYNC_LOG_FORMAT must be text or json, not 'yaml'"


def test_log_context_nests_restores_and_takes_only_the_known_fields() -> None:
    with log_context(run_id=3, orchestration="o", system="hubspot", object="contacts"):
        with log_context(batch_id=9, system=None):
            assert dict(current_context()) == {
                "run_id": 3,
                "orchestration": "o",
                "system": "hubspot",
                "object": "contacts",
                "batch_id": 9,
            }
        assert "batch_id" not in current_context()
    assert dict(current_context()) == {}
    with pytest.raises(TypeError, match="token"), log_context(token="x"):
        pass


def formatted(record: logging.LogRecord) -> dict[str, Any]:
    ContextFilter().filter(record)
    value: dict[str, Any] = json.loads(json_formatter().format(record))
    return value


def test_a_json_line_carries_its_context_and_the_exception_on_one_key() -> None:
    set_program("worker")
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "worker.tasks", logging.ERROR, __file__, 1, "run %d: %s", (5, "x"), sys.exc_info()
        )
    with log_context(run_id=5, batch_id=8):
        line = formatted(record)
    assert list(line)[:3] == ["timestamp", "level", "logger"]
    assert line["message"] == "run 5: x" and line["level"] == "ERROR"
    assert (line["run_id"], line["batch_id"], line["program"]) == (5, 8, "worker")
    assert line["exception"].startswith("Traceback") and "ValueError: boom" in line["exception"]


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("login with password=hunter2hunter2 failed", "hunter2hunter2"),
        ('{"client_secret": "abcdef0123456789"}', "abcdef0123456789"),
        ("Authorization: Bearer 00D5g000000SgSyEAK!AQ0abcdefghijklmnop", "AQ0abcdefghijklmnop"),
        ("token pat-na1-3f2b9c4e-1a2b-4c3d-8e9f-0a1b2c3d4e5f", "3f2b9c4e-1a2b"),
        ("redis://:s3cr3tpass@redis:6379/0", "s3cr3tpass"),
        ('password=\\"quoted-secret\\"', "quoted-secret"),
    ],
)
def test_known_secret_shapes_are_redacted(text: str, hidden: str) -> None:
    assert hidden not in redact(text)
    assert "***" in redact(text)


def test_redaction_leaves_ordinary_lines_alone() -> None:
    line = "pardot refused the access token; renewing it (run 4, batch 2/3)"
    assert redact(line) == line


def test_the_json_formatter_redacts_what_slips_into_a_message() -> None:
    record = logging.LogRecord(
        "x", logging.WARNING, __file__, 1, "url %s", ("https://u:topsecret@h/x",), None
    )
    assert "topsecret" not in json_formatter().format(record)


def test_text_format_configures_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEGSYNC_LOG_FORMAT", raising=False)
    before = list(logging.getLogger().handlers)
    configure_logging("cli")
    assert logging.getLogger().handlers == before


def test_a_bad_format_raises_an_input_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGSYNC_LOG_FORMAT", "JSON ")
    with pytest.raises(InputError, match="SEGSYNC_LOG_FORMAT must be text or json, not 'JSON '"):
        configure_logging("cli")


@pytest.mark.parametrize(
    ("command", "program"),
    [("worker", "worker"), ("beat", "beat"), ("metrics", "metrics"), ("sync", "cli")],
)
def test_the_cli_names_the_program_its_command_runs(command: str, program: str) -> None:
    with click.Context(click.Group("segsync")) as context:
        context.invoked_subcommand = command
        assert _served_program("cli") == program
