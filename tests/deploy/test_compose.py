"""deploy/compose.yaml: its services, their order, secrets and volumes; and each segsync service
started here as compose would start it (tests/deploy/compose_local.py), each becoming healthy by
its own healthcheck, with a queued sync completing through them and the API answering with a key
made in a container."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from sqlalchemy import make_url, text

from connectors.sandbox.cluster import Sandbox
from models.connections import new_secret_key
from models.db import make_engine
from tests.deploy.compose_local import (
    LONG_RUNNING,
    SEGSYNC_SERVICES,
    Image,
    LocalService,
    Servers,
    build_image,
    container_ports,
    image_environment,
    load_compose,
    local_service,
    secret_names,
)
from tests.worker.celery_stack import wait_until
from tests.worker.cli.test_main import Cli
from tests.worker.test_celery_e2e import field_value, load, seed
from tests.worker.test_packaging import Program, local_http

COMPOSE = load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
# Setting names whose values are secrets: never in the compose file's environment or the image.
SECRET_WORDS = re.compile(r"SECRET|PASSWORD|BASIC_AUTH|TOKEN|FERNET", re.IGNORECASE)
# Each program starts next to the others on a loaded 2-core machine.
HEALTHY_TIMEOUT = 240.0


def test_the_services_and_the_order_they_start_in() -> None:
    assert set(SERVICES) == {"postgres", "redis", *SEGSYNC_SERVICES}
    assert SERVICES["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert SERVICES["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert SERVICES["migrate"]["command"] == ["segsync", "db", "upgrade"]
    assert SERVICES["migrate"]["restart"] == "no"
    assert SERVICES["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in LONG_RUNNING:
        assert SERVICES[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "redis": {"condition": "service_healthy"},
        }, name
        assert SERVICES[name]["healthcheck"]["test"], name


def test_workers_scale_and_beat_is_exactly_one() -> None:
    worker = SERVICES["worker"]
    # A fixed container name or host port would make a second replica fail to start.
    assert "container_name" not in worker
    assert not worker.get("ports")
    assert SERVICES["beat"]["deploy"]["replicas"] == 1
    for name in SEGSYNC_SERVICES:
        assert "build" in SERVICES[name] and SERVICES[name]["image"] == SERVICES["worker"]["image"]


def test_secrets_come_from_files_never_from_the_compose_file_or_the_image() -> None:
    for name, service in SERVICES.items():
        for key, value in service.get("environment", {}).items():
            if SECRET_WORDS.search(key):
                # Only a pointer to a mounted file (postgres's POSTGRES_PASSWORD_FILE).
                assert key.endswith("_FILE") and str(value).startswith("/run/secrets/"), (name, key)
            assert make_url_password(str(value)) is None, (name, key)
    for secret in COMPOSE["secrets"].values():
        assert secret["file"].startswith("./secrets/"), secret
    assert not [key for key in image_environment() if SECRET_WORDS.search(key)]
    # The services that open connections or guard Flower get exactly those secrets.
    assert "segsync_secret_key" in secret_names(SERVICES["worker"])
    for name in ("flower", "metrics"):
        assert "segsync_flower_basic_auth" in secret_names(SERVICES[name]), name
    for name in ("migrate", "beat", "flower", "metrics", "api"):
        assert "segsync_secret_key" not in secret_names(SERVICES[name]), name
    for name in SEGSYNC_SERVICES:
        assert "segsync_database_password" in secret_names(SERVICES[name]), name


def make_url_password(value: str) -> str | None:
    """The password of a URL-looking value (None when it is no URL or carries none)."""
    found = re.match(r"^[a-z][a-z0-9+.-]*://[^/@]*:([^/@]*)@", value)
    return found[1] if found else None


def test_the_state_volumes_are_the_images_state_folder() -> None:
    state_dir = image_environment()["SEGSYNC_STATE_DIR"]
    for name in ("beat", "flower"):
        (volume,) = SERVICES[name]["volumes"]
        assert volume.split(":")[1] == state_dir, name


@pytest.fixture
def deploy_database(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database (compose's `segsync`): its URL, without a password."""
    name = f"segsync_deploy_{os.getpid()}"
    admin = make_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        url = make_url(postgres_admin_url).set(database=name, password=None)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def passing(services: list[LocalService]) -> set[str]:
    """The services whose compose healthcheck, run here, passes within its timeout (all run at
    once, as Docker runs each container's)."""
    started = [(service, probe(service)) for service in services]
    passed = set()
    for service, check in started:
        try:
            if check.wait(timeout=service.healthcheck_timeout) == 0:
                passed.add(service.name)
        except subprocess.TimeoutExpired:
            check.kill()
            check.wait()
    return passed


def test_each_service_runs_from_the_image_becomes_healthy_and_a_queued_sync_completes(
    deploy_database: str,
    postgres_admin_url: str,
    redis_url: str,
    tmp_path: Path,
) -> None:
    redis.Redis.from_url(redis_url).flushdb()
    image: Image = build_image(tmp_path / "image")
    password = make_url(postgres_admin_url).password or secrets.token_urlsafe(16)
    flower_credentials = ("ops", secrets.token_urlsafe(16))
    values = {
        "segsync_secret_key": new_secret_key(),
        "segsync_flower_basic_auth": ":".join(flower_credentials),
        "segsync_database_password": password,
    }
    secret_files = tmp_path / "secrets"
    secret_files.mkdir()
    assert set(COMPOSE["secrets"]) == set(values)
    for secret, value in values.items():
        Path(secret_files / Path(COMPOSE["secrets"][secret]["file"]).name).write_text(value + "\n")
    servers = Servers(database_url=deploy_database, redis_url=redis_url)
    services = {
        name: local_service(COMPOSE, name, image, servers, secret_files, tmp_path / "services")
        for name in SEGSYNC_SERVICES
    }
    # Each healthcheck fails while its service is not running: it probes the service itself.
    before = {name: probe(services[name]) for name in LONG_RUNNING}

    migrated = subprocess.run(
        services["migrate"].command,
        env=services["migrate"].environment,
        cwd=services["migrate"].workdir,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert migrated.returncode == 0, migrated.stderr
    assert "upgraded from empty to revision" in migrated.stdout

    with Sandbox(["salesforce", "hubspot"]) as sandbox, ExitStack() as running:
        cli = Cli(deploy_database)
        cli.env.update(
            {
                "SEGSYNC_DATABASE_PASSWORD": password,
                "SEGSYNC_SECRET_KEY": values["segsync_secret_key"],
            }
        )
        companies = load(cli, sandbox, tmp_path)
        expected = seed(sandbox, "hubspot", "contacts", 40, companies)
        cli.ok(
            "orchestrations", "create", "hubspot contacts", "--connection", "hs",
            "--object", "contacts", "--field", "segment_names",
        )  # fmt: skip
        cli.ok("publish", "Tier 1", "--use", "api", "--yes")
        for name, check in before.items():
            assert check.wait(timeout=120) != 0, f"{name}'s healthcheck passed before it started"

        programs: dict[str, Program] = {}
        running.callback(stop_all, programs)
        for name in LONG_RUNNING:
            service = services[name]
            program = Program(
                service.command, service.environment, tmp_path / f"{name}.log", service.workdir
            )
            programs[name] = program

        def logs() -> str:
            return "\n".join(
                f"--- {name}\n{program.output()[-2500:]}" for name, program in programs.items()
            )

        waiting = set(LONG_RUNNING)

        def all_healthy() -> bool:
            for name in waiting:
                exited = programs[name].process.poll()
                assert exited is None, f"{name} exited {exited}:\n{programs[name].output()[-3000:]}"
            waiting.difference_update(passing([services[name] for name in waiting]))
            return not waiting

        wait_until(all_healthy, HEALTHY_TIMEOUT, "every service's healthcheck to pass", logs)

        # A sync queued from a worker's container (`docker compose exec worker segsync sync ...`).
        worker = services["worker"]
        synced = subprocess.run(
            [
                "segsync",
                "sync",
                "hubspot contacts",
                "--queue",
                "--wait",
                "--timeout",
                "240",
                "--json",
            ],
            env=worker.environment,
            cwd=worker.workdir,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert synced.stdout, synced.stderr + logs()
        run = json.loads(synced.stdout)
        assert run["status"] == "succeeded", (run, logs())
        wrong = {
            record: (value, actual)
            for record, value in expected.items()
            if (actual := field_value(sandbox, "hubspot", "contacts", record)) != value
        }
        assert not wrong, wrong

        # Flower and the metrics answer their published ports only with the secret credentials.
        http = local_http()
        answers = {}
        for name, path in (("flower", "/"), ("metrics", "/metrics")):
            (port,) = services[name].ports.values()
            url = f"http://127.0.0.1:{port}{path}"
            assert http.get(url, timeout=30).status_code == 401, name
            answers[name] = http.get(url, auth=flower_credentials, timeout=30)
            assert answers[name].status_code == 200, name
        # The API answers on its published port with a key made in its container
        # (`docker compose exec api segsync apikeys create ...`), and only with it.
        check_api(services["api"], http)
        # The metrics service reads the run the workers just ended.
        scraped = answers["metrics"].text
        labels = '{orchestration="hubspot contacts",outcome="succeeded"}'
        assert f"segsync_runs_total{labels} 1.0" in scraped, scraped
        written = 'segsync_records_written_total{orchestration="hubspot contacts"}'
        assert run["enriched"] > 0
        assert f"{written} {float(run['enriched'])}" in scraped, scraped
        running.close()
        for name, program in programs.items():
            output = program.output()
            for secret, value in values.items():
                assert value not in output, f"{name} logged {secret}"


def stop_all(programs: dict[str, Program]) -> None:
    """`docker compose stop`: every service is asked to stop at once, then each is waited for."""
    for program in programs.values():
        if program.process.poll() is None:
            os.killpg(program.process.pid, signal.SIGTERM)
    for program in programs.values():
        program.stop()


def probe(service: LocalService) -> subprocess.Popen[bytes]:
    """The service's healthcheck started now (its exit status read later)."""
    assert service.healthcheck is not None
    return subprocess.Popen(
        service.healthcheck,
        env=service.environment,
        cwd=service.workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def check_api(api: LocalService, http: requests.Session) -> None:
    """/readyz answers, and a read key made by `segsync apikeys create` reads an account's api
    segments (the accounts and segments of tests.worker.test_celery_e2e; Tier 1 is published to
    api, Software; ICP is not)."""
    created = subprocess.run(
        ["segsync", "apikeys", "create", "deploy test", "--scope", "read"],
        env=api.environment,
        cwd=api.workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    (key,) = re.findall(r"\b(segsync_\S+)", created.stdout)
    (port,) = api.ports.values()
    base = f"http://127.0.0.1:{port}"
    ready = http.get(f"{base}/readyz", timeout=30)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["database"]["ok"] and ready.json()["checks"]["broker"]["ok"]
    url = f"{base}/v1/accounts/acme.com/segments"
    assert http.get(url, timeout=30).status_code == 401
    answers = {
        account: http.get(
            f"{base}/v1/accounts/{account}/segments",
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        for account in ("acme.com", "A-2")
    }
    assert {account: answer.status_code for account, answer in answers.items()} == {
        "acme.com": 200,
        "A-2": 200,
    }, {account: answer.text for account, answer in answers.items()}
    assert answers["acme.com"].json()["account"]["external_id"] == "A-1"
    assert answers["acme.com"].json()["segments"] == ["Tier 1"]
    assert answers["A-2"].json()["segments"] == []


def test_published_ports_are_those_the_commands_and_healthchecks_use() -> None:
    for name in ("flower", "metrics", "api"):
        service = SERVICES[name]
        (port,) = container_ports(service)
        assert port in service["command"], name
        assert any(port in part for part in service["healthcheck"]["test"]), name
