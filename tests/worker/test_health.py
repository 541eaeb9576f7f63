"""`segsync health`: each check failing and passing on the real parts (PostgreSQL and SQLite, the
session's Redis, a real worker and a real beat), bounded by its timeout, and beat's heartbeat."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from celery import Celery
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, make_url, select, update
from sqlalchemy.orm import Session

from models.base import utcnow
from models.db import MIGRATIONS_DIR, head_revision, make_engine
from models.observability import ServiceHeartbeat, record_heartbeat
from tests.models.test_health import add_run
from tests.services import free_port
from tests.worker.celery_processes import SEGSYNC
from tests.worker.celery_stack import Stack, wait_until
from worker.cli.health import CHECK_NAMES, health_command
from worker.health import CHECKS
from worker.state_files import StateFolderScheduler

Env = dict[str, str | None]


def health(env: Env, *args: str) -> Result:
    """`segsync health ARGS` with `env` over the test's environment (None unsets a variable)."""
    return CliRunner().invoke(health_command, list(args), env=env)


def lines(result: Result | subprocess.CompletedProcess[str]) -> dict[str, tuple[str, str]]:
    """Each check's (ok|fail, detail) from the human output."""
    found = {}
    for line in result.stdout.splitlines():
        name, state, detail = line.split(maxsplit=2)
        found[name] = (state, detail)
    return found


def checked(env: Env, *args: str) -> dict[str, dict[str, object]]:
    """Each check of `health --json ARGS` by name."""
    result = health(env, "--json", *args)
    assert result.exit_code in (0, 1), (result.output, result.stderr)
    document = json.loads(result.stdout)
    return {check["name"]: check for check in document["checks"]}


def database_env(database_url: str) -> Env:
    """A database and no broker, no rate-limit Redis."""
    return {
        "SEGSYNC_DATABASE_URL": database_url,
        "SEGSYNC_BROKER_URL": None,
        "SEGSYNC_REDIS_URL": None,
    }


def migrate(database_url: str, revision: str) -> None:
    """Take the database down to `revision` ("base": no segsync schema at all)."""
    engine = make_engine(database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    command.downgrade(config, revision)
    engine.dispose()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel completes them) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield int(listener.getsockname()[1])


def test_a_database_at_the_latest_revision_holds_and_hides_its_password(
    database_url: str,
) -> None:
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        # The tests' server trusts every local connection: a password is sent and ignored.
        database_url = url.set(password="hunter2-secret").render_as_string(hide_password=False)
    result = health(database_env(database_url), "--check", "database")
    assert result.exit_code == 0, (result.output, result.stderr)
    state, detail = lines(result)["database"]
    shown = make_url(database_url).render_as_string(hide_password=True)
    assert (state, detail) == ("ok", f"{shown} at revision {head_revision()} (the latest)")
    assert "hunter2" not in result.output + result.stderr


def test_a_database_behind_the_latest_migration_fails_naming_db_upgrade(
    database_url: str,
) -> None:
    migrate(database_url, "0006")
    result = health(database_env(database_url), "--check", "database", "--check", "beat")
    assert result.exit_code == 1
    shown = make_url(database_url).render_as_string(hide_password=True)
    expected = (
        f"database {shown} is at revision 0006, not {head_revision()}: run `segsync db upgrade`"
    )
    # Beat's heartbeat is read from the same database: it says the same, not a traceback.
    assert lines(result) == {"database": ("fail", expected), "beat": ("fail", expected)}
    assert result.stderr == "segsync: 2 of 2 checks failed: database, beat\n"


def test_an_empty_database_fails_naming_db_upgrade(database_url: str) -> None:
    migrate(database_url, "base")
    result = health(database_env(database_url), "--check", "database")
    assert result.exit_code == 1
    state, detail = lines(result)["database"]
    assert state == "fail"
    assert detail.endswith(
        f"has no segsync schema, not {head_revision()}: run `segsync db upgrade`"
    )


def test_a_missing_sqlite_file_fails_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.db"
    result = health(database_env(f"sqlite:///{path}"), "--check", "database", "--check", "runs")
    expected = f"database file {path} does not exist: run `segsync db upgrade`"
    assert lines(result) == {"database": ("fail", expected), "runs": ("fail", expected)}
    assert not path.exists()


def test_an_unreachable_database_fails_without_its_password() -> None:
    url = f"postgresql+psycopg://segsync:hunter2-secret@127.0.0.1:{free_port()}/segsync"
    result = health(database_env(url), "--check", "database")
    assert result.exit_code == 1
    state, detail = lines(result)["database"]
    assert state == "fail"
    assert detail.startswith(f"cannot open database {url.replace('hunter2-secret', '***')}: ")
    assert "hunter2" not in result.output + result.stderr


def test_the_broker_reachable_holds(redis_url: str) -> None:
    result = health({"SEGSYNC_BROKER_URL": redis_url}, "--check", "broker")
    assert result.exit_code == 0, result.output
    assert lines(result) == {"broker": ("ok", f"{redis_url} reachable")}


def test_a_broker_on_a_closed_port_fails_without_its_password() -> None:
    port = free_port()
    env: Env = {"SEGSYNC_BROKER_URL": f"redis://:hunter2-secret@127.0.0.1:{port}/0"}
    result = health(env, "--check", "broker")
    assert result.exit_code == 1
    state, detail = lines(result)["broker"]
    assert state == "fail"
    assert detail.startswith(f"redis://:**@127.0.0.1:{port}/0 unreachable: ")
    assert "Connection refused" in detail
    assert "hunter2" not in result.output + result.stderr


def test_no_broker_configured_fails_saying_how_to_set_one() -> None:
    result = health({"SEGSYNC_BROKER_URL": None}, "--check", "broker", "--check", "workers")
    expected = "no broker configured: set SEGSYNC_BROKER_URL (e.g. redis://host:6379/0)"
    assert lines(result) == {"broker": ("fail", expected), "workers": ("fail", expected)}
    assert result.exit_code == 1


def test_the_rate_limit_redis_answering_ping_holds(redis_url: str) -> None:
    # Its own SEGSYNC_REDIS_URL, or else the broker when that is Redis.
    own: Env = {"SEGSYNC_REDIS_URL": redis_url, "SEGSYNC_BROKER_URL": None}
    the_brokers: Env = {"SEGSYNC_REDIS_URL": None, "SEGSYNC_BROKER_URL": redis_url}
    for env in (own, the_brokers):
        result = health(env, "--check", "rate_limits")
        assert result.exit_code == 0, result.output
        assert lines(result) == {"rate_limits": ("ok", f"{redis_url} answers PING")}


def test_a_rate_limit_redis_on_a_closed_port_fails(redis_url: str) -> None:
    port = free_port()
    env: Env = {
        "SEGSYNC_REDIS_URL": f"redis://:hunter2-secret@127.0.0.1:{port}/1",
        "SEGSYNC_BROKER_URL": redis_url,
    }
    result = health(env, "--check", "rate_limits")
    assert result.exit_code == 1
    state, detail = lines(result)["rate_limits"]
    assert state == "fail"
    assert detail.startswith(f"redis://:**@127.0.0.1:{port}/1 does not answer PING: ")
    assert "hunter2" not in result.output + result.stderr


def test_no_rate_limit_redis_fails_saying_how_to_set_one() -> None:
    env: Env = {"SEGSYNC_REDIS_URL": None, "SEGSYNC_BROKER_URL": None}
    result = health(env, "--check", "rate_limits")
    assert result.exit_code == 1
    state, detail = lines(result)["rate_limits"]
    assert state == "fail"
    assert "set SEGSYNC_REDIS_URL, or a redis:// SEGSYNC_BROKER_URL" in detail


def test_a_check_that_does_not_end_in_time_fails_saying_it_timed_out(silent_port: int) -> None:
    # libpq waits at least 2 s to connect: the probe's 1 s passes first, whatever the load.
    env: Env = {
        "SEGSYNC_DATABASE_URL": f"postgresql+psycopg://segsync@127.0.0.1:{silent_port}/segsync",
        "SEGSYNC_BROKER_URL": f"redis://127.0.0.1:{silent_port}/0",
    }
    found = checked(env, "--check", "database", "--check", "broker", "--timeout", "1")
    assert found["database"] == {
        "name": "database",
        "ok": False,
        "detail": "timed out after 1 s",
        "seconds": 1.0,
    }
    # Bounded too, by its own socket timeout or the probe's.
    assert found["broker"]["ok"] is False


def test_only_the_selected_checks_run_in_the_documented_order_and_json(redis_url: str) -> None:
    env: Env = {"SEGSYNC_BROKER_URL": redis_url, "SEGSYNC_REDIS_URL": None}
    result = health(env, "--json", "--check", "rate_limits", "--check", "broker")
    assert result.exit_code == 0, (result.output, result.stderr)
    document = json.loads(result.stdout)
    assert document["ok"] is True
    assert [check["name"] for check in document["checks"]] == ["broker", "rate_limits"]
    for check in document["checks"]:
        assert set(check) == {"name", "ok", "detail", "seconds"}
        assert check["ok"] is True
        assert isinstance(check["seconds"], float)


def test_json_says_not_ok_when_one_check_fails(redis_url: str) -> None:
    env: Env = {
        "SEGSYNC_BROKER_URL": redis_url,
        "SEGSYNC_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
    }
    result = health(env, "--json", "--check", "broker", "--check", "rate_limits")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert [check["ok"] for check in document["checks"]] == [True, False]


def test_every_check_the_command_offers_has_its_function() -> None:
    assert tuple(CHECKS) == CHECK_NAMES


def test_an_unknown_check_is_a_usage_error_listing_the_valid_ones() -> None:
    result = health({}, "--check", "database", "--check", "flower")
    assert result.exit_code == 2
    assert "'flower' is not one of" in result.stderr
    for name in CHECK_NAMES:
        assert f"'{name}'" in result.stderr


def test_no_run_overdue_holds_and_an_old_queued_run_fails_named(database_url: str) -> None:
    engine = create_engine(database_url)
    with Session(engine) as session:
        fresh = add_run(session, "Accounts", status="queued")
        session.commit()
        result = health(database_env(database_url), "--check", "runs")
        assert result.exit_code == 0, (result.output, result.stderr)
        assert lines(result) == {"runs": ("ok", "no queued or running run is overdue")}
        # Queued two hours ago and never sent again: the sweeper (every 60 s, resending after
        # 1,800 s by default) would have sent it long ago.
        old = add_run(session, "Leads", status="queued", created_at=utcnow() - timedelta(hours=2))
        session.commit()
        assert fresh.id != old.id
    engine.dispose()
    result = health(database_env(database_url), "--check", "runs")
    assert result.exit_code == 1
    state, detail = lines(result)["runs"]
    assert state == "fail"
    assert detail.startswith(
        f"1 overdue: run {old.id} of 'Leads' queued for 2 h (not sent again for 2 h; "
        "the sweeper sends a queued run again after 30 min)"
    )


def scheduler(tmp_path: Path) -> StateFolderScheduler:
    """Beat's scheduler, as `segsync beat` makes it, with an app that has nothing to send."""
    app = Celery("health-test", broker="memory://", set_as_current=False)
    return StateFolderScheduler(app=app, schedule_filename=str(tmp_path / "schedule"))


def test_beat_ticks_at_least_once_per_beat_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.setenv("SEGSYNC_DATABASE_URL", database_url)
    monkeypatch.setenv("SEGSYNC_BEAT_INTERVAL_SECONDS", "7")
    beat = scheduler(tmp_path)
    try:
        # Nothing due: Celery would sleep its default 300 s; one interval is the longest.
        assert beat.tick() == 7.0
        assert beat.max_interval == 7.0
    finally:
        beat.close()


def test_beat_records_a_heartbeat_each_tick_and_a_database_error_does_not_stop_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("SEGSYNC_DATABASE_URL", database_url)
    # A heartbeat at most every half interval: 5 ms apart here.
    monkeypatch.setenv("SEGSYNC_BEAT_INTERVAL_SECONDS", "0.01")
    engine = create_engine(database_url)
    table = ServiceHeartbeat.__table__
    beat = scheduler(tmp_path)
    try:
        beat.tick()
        with Session(engine) as session:
            first = session.scalars(select(ServiceHeartbeat)).one()
        assert (first.component, first.hostname, first.pid) == (
            "beat",
            socket.gethostname(),
            os.getpid(),
        )
        table.drop(engine)  # type: ignore[attr-defined]
        caplog.set_level(logging.INFO, logger="worker.beat_heartbeat")
        for _ in range(3):
            wait_until(
                lambda: beat._heartbeat._next_at <= time.monotonic(), 10, "the next heartbeat"
            )
            assert beat.tick() == 0.01  # beat goes on
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, warnings  # once per failure streak
        assert warnings[0].startswith("beat: heartbeat not recorded in ")
        table.create(engine)  # type: ignore[attr-defined]
        wait_until(lambda: beat._heartbeat._next_at <= time.monotonic(), 10, "the next heartbeat")
        beat.tick()
        with Session(engine) as session:
            assert session.scalars(select(ServiceHeartbeat.pid)).all() == [os.getpid()]
        assert caplog.records[-1].getMessage() == "beat: heartbeat recorded again"
    finally:
        beat.close()
        engine.dispose()


def test_workers_and_beat_hold_while_they_run_and_fail_once_they_are_gone(stack: Stack) -> None:
    worker = stack.worker("w1", wait=False)
    beat = stack.beat("b1", wait=False)
    worker.wait_for("ready.")
    beat.wait_for("beat: Starting")
    # Beat ticks every second here (SEGSYNC_BEAT_INTERVAL_SECONDS=1): stale after 3 s.

    def all_hold() -> subprocess.CompletedProcess[str] | None:
        # The command itself, in a fresh process: every check at once, importing as they start.
        result = subprocess.run(
            [SEGSYNC, "health", "--timeout", "4"],
            env=stack.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return result if result.returncode == 0 else None

    result = wait_until(all_hold, 120, "every check to hold", stack.tails)
    found = lines(result)
    assert list(found) == list(CHECK_NAMES)
    assert found["workers"] == ("ok", f"1 answered: w1@{socket.gethostname()}")
    state, detail = found["beat"]
    assert state == "ok"
    assert detail.endswith(f"ago on host {socket.gethostname()} (pid {beat.process.pid})")

    worker.kill()
    beat.kill()

    def gone() -> dict[str, dict[str, object]] | None:
        found = checked(dict(stack.env), "--check", "workers", "--check", "beat")
        return None if found["beat"]["ok"] or found["workers"]["ok"] else found

    found_gone = wait_until(gone, 120, "workers and beat to fail", stack.tails)
    assert str(found_gone["workers"]["detail"]).startswith("no worker answered a ping within ")
    assert str(found_gone["beat"]["detail"]).startswith("last heartbeat ")
    assert str(found_gone["beat"]["detail"]).endswith(
        f"on host {socket.gethostname()} (stale after 3 s)"
    )


def test_beat_without_a_heartbeat_or_with_a_stale_one_fails(database_url: str) -> None:
    result = health(database_env(database_url), "--check", "beat")
    assert lines(result) == {"beat": ("fail", "no heartbeat ever recorded: start `segsync beat`")}
    engine = create_engine(database_url)
    with Session(engine) as session:
        record_heartbeat(session, "beat", "h1", 4242)
        session.commit()
        result = health(database_env(database_url), "--check", "beat")
        assert result.exit_code == 0
        state, detail = lines(result)["beat"]
        assert state == "ok"
        assert detail.endswith("ago on host h1 (pid 4242)")
        # Beat ticks every 60 s by default: stale after three intervals.
        session.execute(
            update(ServiceHeartbeat).values(seen_at=utcnow() - timedelta(seconds=412.2))
        )
        session.commit()
    engine.dispose()
    result = health(database_env(database_url), "--check", "beat")
    assert result.exit_code == 1
    assert lines(result) == {
        "beat": ("fail", "last heartbeat 412 s ago on host h1 (stale after 180 s)")
    }
