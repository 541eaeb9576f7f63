"""`segsync metrics`: a real metrics server process scraped over HTTP after real runs through a
real worker, each metric checked against the runs' rows and the emulators' own counts."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.orm import Session

from connectors.sandbox.cluster import Sandbox
from models.base import as_utc
from models.connections import Connection, new_secret_key
from models.observability import ConnectionQuota
from models.runs import ApiUsage, SyncRun
from tests.worker.celery_processes import SEGSYNC, CeleryProcess
from tests.worker.celery_stack import Stack, wait_until
from tests.worker.cli.test_main import Cli
from tests.worker.sandbox_connections import hubspot_connection
from tests.worker.test_celery_e2e import load_accounts_and_segments, seed

CREDENTIALS = ("prometheus", "scrape-secret-7")
SERVING = re.compile(r"serving metrics on http://127\.0\.0\.1:(\d+)/metrics")
BOUND = 120.0

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class MetricsServer:
    """A `segsync metrics` process on a port of its own choosing (--port 0)."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.process = CeleryProcess(["metrics", "--port", "0", *args], env, log)
        self.process.wait_for("serving metrics on", timeout=BOUND)
        found = SERVING.search(self.process.output())
        assert found, self.process.output()
        self.base = f"http://127.0.0.1:{found[1]}"

    def get(self, path: str, auth: tuple[str, str] | None = CREDENTIALS) -> requests.Response:
        return requests.get(self.base + path, auth=auth, timeout=60)

    def scrape(self) -> Samples:
        response = self.get("/metrics")
        assert response.status_code == 200, response.text
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        }


def value(samples: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in samples, (
        f"{name}{labels} not served: {sorted(k for k in samples if k[0] == name)}"
    )
    return samples[key]


def rows(engine: Engine) -> tuple[list[SyncRun], list[tuple[str, ConnectionQuota]], int]:
    """Every run, every quota row with its connection's name, and today's API usage of all
    orchestrations."""
    with Session(engine) as session:
        runs = list(session.scalars(select(SyncRun).order_by(SyncRun.id)))
        quotas = [
            (name, quota)
            for name, quota in session.execute(
                select(Connection.name, ConnectionQuota).join(
                    Connection, Connection.id == ConnectionQuota.connection_id
                )
            ).all()
        ]
        today = session.scalar(
            select(func.coalesce(func.sum(ApiUsage.calls), 0)).where(
                ApiUsage.day == datetime.now(UTC).date()
            )
        )
    return runs, quotas, int(today or 0)


def queue_again(stack: Stack, orchestration: str) -> None:
    """`segsync sync NAME --queue` while a run of it is active: recorded as skipped."""
    done = stack.send_queue(orchestration)
    assert "skipped" in done.stdout + done.stderr, (done.stdout, done.stderr)


def test_every_metric_tells_the_figures_of_real_runs(stack: Stack, tmp_path: Path) -> None:
    hubspot, salesforce = stack.hubspot, stack.salesforce
    # 250 contacts (three batches of 100) that match an account, 5 that match none; values over
    # 10 characters are cut.
    contacts = list(seed(stack.sandbox, "hubspot", "contacts", 250, stack.companies))
    hubspot.add_records(
        "contacts", [{"email": f"n{n}@nobody.example", "segment_names": "x"} for n in range(5)]
    )
    seed(stack.sandbox, "salesforce", "Lead", 12, stack.companies)
    stack.orchestration("hs contacts", "hs", "contacts", "--max-length", "10")
    stack.orchestration("sf leads", "sf", "Lead")
    env = {**stack.env, "SEGSYNC_FLOWER_BASIC_AUTH": ":".join(CREDENTIALS)}
    server = MetricsServer(env, tmp_path / "metrics.log")
    stack.processes.append(server.process)
    before = server.scrape()
    assert value(before, "segsync_runs_total", orchestration="hs contacts", outcome="failed") == 0
    assert value(before, "segsync_api_calls_total", connection="hs", system="hubspot") == 0

    # HubSpot's 429 says to wait its interval: 1 s here.
    hubspot.window_seconds = 1.0
    # One worker process, one task at a time: while it holds the first batch update, the
    # Salesforce run waits queued.
    stack.worker("one", concurrency=1)
    hubspot.reset()
    salesforce.reset()
    updates = "/batch/update$"
    hubspot.faults.inject("hold", path=updates)
    hubspot.faults.inject("rate_limit", after=1, path=updates)  # the second batch update: 429
    # Each successful batch update takes one: the two ids fail in whichever batch holds them.
    hubspot.faults.inject(
        "record_failure", 3, path=updates, record_ids=contacts[7:9], code="INVALID_EMAIL"
    )
    hs_run = stack.queue("hs contacts")
    wait_until(lambda: hubspot.held == 1, BOUND, "the first batch update held", stack.tails)
    queue_again(stack, "hs contacts")
    sf_run = stack.queue("sf leads")

    started = datetime.now(UTC)
    busy = server.scrape()
    scraped = datetime.now(UTC)
    runs, _, _ = rows(stack.database)
    by_id = {run.id: run for run in runs}
    assert (by_id[hs_run].status, by_id[sf_run].status) == ("running", "queued")
    for status, count in (("queued", 1), ("running", 1), ("deferred", 0)):
        assert value(busy, "segsync_active_runs", status=status) == count
    running_since = as_utc(by_id[hs_run].started_at)  # type: ignore[arg-type]
    queued_since = as_utc(by_id[sf_run].created_at)
    for status, since in (("running", running_since), ("queued", queued_since)):
        age = value(busy, "segsync_oldest_active_run_age_seconds", status=status)
        assert (started - since).total_seconds() <= age <= (scraped - since).total_seconds()

    hubspot.release()
    for run_id in (hs_run, sf_run):
        stack.finished(run_id, timeout=BOUND)
    after = server.scrape()
    runs, quotas, calls_today = rows(stack.database)
    by_id = {run.id: run for run in runs}
    hs, sf = by_id[hs_run], by_id[sf_run]
    assert (hs.status, sf.status) == ("partial", "succeeded"), (hs.reason, stack.tails())

    # The runs' rows hold what the emulators saw...
    assert hs.failed == 2 and hs.unmatched == 5 and hs.truncated > 0
    assert hs.enriched == 250 - 2
    assert hs.throttled == hubspot.statuses.count(429) == 1
    assert hs.batches_retried == 1
    assert hs.api_calls == sum(hubspot.calls.values())
    assert sf.api_calls > 0 and sf.throttled == 0 and sf.batches_retried == 0
    # ...and the metrics tell the rows.
    outcomes = {"hs contacts": {"partial": 1, "skipped": 1}, "sf leads": {"succeeded": 1}}
    for name, counted in outcomes.items():
        for outcome in ("succeeded", "partial", "failed", "cancelled", "skipped"):
            served = value(after, "segsync_runs_total", orchestration=name, outcome=outcome)
            assert served == counted.get(outcome, 0), (name, outcome)
    for name, run in (("hs contacts", hs), ("sf leads", sf)):
        labels = {"orchestration": name}
        assert value(after, "segsync_records_written_total", **labels) == run.enriched
        assert value(after, "segsync_records_failed_total", **labels) == run.failed
        assert value(after, "segsync_records_unmatched_total", **labels) == run.unmatched
        assert value(after, "segsync_records_truncated_total", **labels) == run.truncated
        assert value(after, "segsync_batches_retried_total", **labels) == run.batches_retried
        took = (as_utc(run.finished_at) - as_utc(run.started_at)).total_seconds()  # type: ignore[arg-type]
        assert value(after, "segsync_run_duration_seconds_count", **labels) == 1
        assert value(after, "segsync_run_duration_seconds_sum", **labels) == pytest.approx(
            took, abs=0.01
        )
        assert value(after, "segsync_run_duration_seconds_bucket", le="+Inf", **labels) == 1
        for bound in ("1.0", "5.0", "15.0", "30.0", "60.0", "120.0", "300.0"):
            expected = 1 if took <= float(bound) else 0
            served = value(after, "segsync_run_duration_seconds_bucket", le=bound, **labels)
            assert served == expected, (name, bound, took)
    for connection, system, run in (("hs", "hubspot", hs), ("sf", "salesforce", sf)):
        labels = {"connection": connection, "system": system}
        assert value(after, "segsync_api_calls_total", **labels) == run.api_calls
        assert value(after, "segsync_throttled_responses_total", **labels) == run.throttled
        assert value(after, "segsync_api_calls_today", **labels) == run.api_calls
    assert calls_today == hs.api_calls + sf.api_calls
    for status in ("queued", "running", "deferred"):
        assert value(after, "segsync_active_runs", status=status) == 0
    for status in ("queued", "running"):
        assert value(after, "segsync_oldest_active_run_age_seconds", status=status) == 0
    # Both vendors report a daily quota: HubSpot in headers to private apps, Salesforce in
    # Sforce-Limit-Info.
    assert {(name, q.period, q.limit) for name, q in quotas} == {
        ("hs", "daily", hubspot.daily_limit),
        ("sf", "daily", salesforce.daily_api_limit),
    }
    systems = {"hs": "hubspot", "sf": "salesforce"}
    for connection, quota in quotas:
        system = systems[connection]
        labels = {"connection": connection, "system": system, "period": "daily"}
        assert 0 < quota.used <= quota.limit
        assert value(after, "segsync_vendor_quota_used", **labels) == quota.used
        assert value(after, "segsync_vendor_quota_limit", **labels) == quota.limit
        reported = value(after, "segsync_vendor_quota_reported_timestamp_seconds", **labels)
        assert reported == pytest.approx(as_utc(quota.reported_at).timestamp(), abs=0.001)
    # Labels are bounded: no record id reaches any of them.
    label_values = {v for _, labels in after for _, v in labels}
    assert not label_values & set(contacts)

    # Basic auth: no credentials, or wrong ones, get a challenge; the probe needs none.
    for auth in (None, (CREDENTIALS[0], "wrong")):
        refused = server.get("/metrics", auth=auth)
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"] == 'Basic realm="segsync metrics"'
        assert "segsync_" not in refused.text
    probe = server.get("/healthz", auth=None)
    assert (probe.status_code, probe.text) == (200, "ok\n")


def run_metrics(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SEGSYNC, "metrics", *args], env=env, capture_output=True, text=True, timeout=60
    )


def environment(database_url: str) -> dict[str, str]:
    """This process's environment without its SEGSYNC_ settings, on `database_url`."""
    kept = {name: v for name, v in os.environ.items() if not name.startswith("SEGSYNC_")}
    return {**kept, "SEGSYNC_DATABASE_URL": database_url}


def test_an_address_open_to_the_network_needs_credentials(tmp_path: Path) -> None:
    # Refused before the database is opened: this one does not even exist.
    env = environment(f"sqlite:///{tmp_path}/absent.db")
    done = run_metrics(env, "--address", "0.0.0.0")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "segsync: metrics on 0.0.0.0 would be open to the network: set "
        "SEGSYNC_FLOWER_BASIC_AUTH=user:password, or listen on 127.0.0.1"
    ]
    done = run_metrics({**env, "SEGSYNC_FLOWER_BASIC_AUTH": "no-colon"})
    assert (done.returncode, done.stderr.strip()) == (
        1,
        "segsync: SEGSYNC_FLOWER_BASIC_AUTH must be user:password",
    )


def test_a_database_not_upgraded_is_refused_in_one_line(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path}/empty.db")
    done = run_metrics(env)
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith("segsync: database ") and "run `segsync db upgrade`" in line


def test_a_database_error_during_a_scrape_answers_503_in_one_line(
    database_url: str, tmp_path: Path
) -> None:
    env = environment(database_url)
    server = MetricsServer(env, tmp_path / "metrics.log")
    try:
        assert server.get("/metrics", auth=None).status_code == 200
        engine = create_engine(database_url)
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE connection_quotas"))
        engine.dispose()
        failed = server.get("/metrics", auth=None)
        assert failed.status_code == 503
        [line] = failed.text.splitlines()
        assert line.startswith("database error: ") and "connection_quotas" in line, line
        assert "Traceback" not in server.process.output()
        # The server goes on: the probe answers, and the next scrape would read again.
        assert server.get("/healthz", auth=None).text == "ok\n"
        assert server.get("/nowhere", auth=None).status_code == 404
    finally:
        server.process.kill()


def test_a_foreground_run_is_charged_its_429s_its_retried_batch_and_the_quota(
    database_url: str, tmp_path: Path
) -> None:
    cli = Cli(database_url)
    cli.env["SEGSYNC_SECRET_KEY"] = new_secret_key()
    load_accounts_and_segments(cli, tmp_path)
    with Sandbox(["hubspot"]) as sandbox:
        hubspot = sandbox.emulators["hubspot"]
        hubspot.window_seconds = 0.1  # type: ignore[attr-defined] (the wait its 429 names)
        hubspot.add_records(  # type: ignore[attr-defined]
            "contacts", [{"email": f"p{n}@acme.com"} for n in range(150)]
        )
        cli.ok(*hubspot_connection(sandbox))
        cli.ok("orchestrations", "create", "Contacts", "--connection", "hs", "--object",
               "contacts", "--field", "segment_names")  # fmt: skip
        hubspot.faults.inject("rate_limit", path="^/crm/v3/objects/contacts$", method="GET")
        hubspot.faults.inject("rate_limit", after=1, path="/batch/update$")  # the second write
        cli.ok("sync", "Contacts")
    engine = create_engine(database_url)
    runs, quotas, _ = rows(engine)
    engine.dispose()
    [run] = runs
    assert (run.status, run.enriched, run.batches_total) == ("succeeded", 150, 2)
    assert (run.throttled, run.batches_retried) == (2, 1)
    [(connection, quota)] = quotas
    assert (connection, quota.period, quota.limit) == ("hs", "daily", hubspot.daily_limit)  # type: ignore[attr-defined]
