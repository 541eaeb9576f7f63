"""POST /v1/orchestrations/{name}/runs, GET /v1/runs/{id} and POST /v1/runs/{id}/cancel on the
real server, with runs completed by a real Celery worker process (tests/worker/celery_stack.py)
on the test's database and Redis."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from models.api_keys import create_api_key
from tests.services import free_port
from tests.web.server import ApiServer, running_api
from tests.worker.celery_stack import Stack, stack, wait_until
from tests.worker.test_celery_e2e import seed
from web.v1.runs import NO_BROKER

__all__ = ["stack"]  # the real-Celery fixture, used here as in tests/worker
# Generous bounds for a loaded machine; every wait ends as soon as its condition holds.
BOUND = 120.0


@pytest.fixture
def served(stack: Stack, tmp_path: Path) -> Iterator[ApiServer]:
    """`segsync api` on the stack's database and broker, as deployed next to the workers."""
    env = {name: value for name, value in stack.env.items() if name.startswith("SEGSYNC_")}
    with running_api(env, tmp_path) as server:
        yield server


def _key(stack: Stack, scope: str) -> str:
    with Session(stack.database) as session:
        key = create_api_key(session, f"{scope}-{uuid.uuid4().hex[:8]}", scope)[1]
        session.commit()
    return key


def _ended(api: ApiServer, location: str, key: str) -> Callable[[], dict[str, Any] | None]:
    """Polls GET `location` until the run it names has ended; its answer then."""

    def ended() -> dict[str, Any] | None:
        answer = api.get(location, key)
        assert answer.status_code == 200, answer.text
        shown: dict[str, Any] = answer.json()
        return None if shown["active"] else shown

    return ended


def test_a_run_triggered_over_http_is_run_by_a_worker_and_shows_counts_and_failures(
    stack: Stack, served: ApiServer
) -> None:
    ids = list(seed(stack.sandbox, "hubspot", "contacts", 150, stack.companies))
    stack.orchestration("contacts", "hs", "contacts")
    # Two records are refused by HubSpot with a vendor code; the run ends partial.
    stack.hubspot.faults.inject(
        "record_failure", count=2, record_ids=ids[3:5], code="INVALID_EMAIL"
    )
    stack.worker("one")
    trigger = _key(stack, "trigger")

    queued = served.call("POST", "/v1/orchestrations/contacts/runs", trigger)

    assert queued.status_code == 202, queued.text
    run_id = queued.json()["run"]
    assert queued.headers["Location"] == f"/v1/runs/{run_id}"
    assert queued.json() == {
        "run": run_id,
        "orchestration": "contacts",
        "status": "queued",
        "resumed": False,
        "location": f"/v1/runs/{run_id}",
    }
    shown = wait_until(
        _ended(served, queued.headers["Location"], _key(stack, "read")),
        BOUND,
        f"run {run_id} to end",
        stack.tails,
    )
    assert (shown["status"], shown["trigger"], shown["orchestration"]) == (
        "partial",
        "manual",
        "contacts",
    )
    assert shown["counts"]["eligible"] == 150
    assert (shown["counts"]["enriched"], shown["counts"]["failed"]) == (148, 2)
    assert shown["counts"]["api_calls"] > 0
    assert shown["batches_done"] == shown["batches_total"] == 2
    assert shown["started_at"] and shown["finished_at"] and shown["duration_seconds"] >= 0
    assert [(f["record_id"], f["code"]) for f in shown["failures"]] == [
        (ids[3], "INVALID_EMAIL"),
        (ids[4], "INVALID_EMAIL"),
    ]
    # The same run as `segsync runs show ID` tells it.
    cli = stack.cli.json("runs", "show", str(run_id))
    assert isinstance(cli, dict)
    assert {name: cli[name] for name in shown["counts"]} == shown["counts"]
    assert (cli["status"], cli["reason"]) == (shown["status"], shown["reason"])
    assert [f["message"] for f in cli["failures"]] == [f["message"] for f in shown["failures"]]
    assert shown["read"] == "full" == cli["read"]  # the first run reads everything

    # ?full=true asks for a full read even when the next could read only what changed.
    again = served.call("POST", "/v1/orchestrations/contacts/runs?full=true", trigger)
    assert again.status_code == 202, again.text
    second = wait_until(
        _ended(served, again.headers["Location"], _key(stack, "read")),
        BOUND,
        "the full run to end",
        stack.tails,
    )
    assert second["read"] == "full" and second["counts"]["eligible"] == 150


def test_a_second_trigger_is_409_naming_the_active_run_and_cancel_ends_it(
    stack: Stack, served: ApiServer
) -> None:
    stack.orchestration("contacts", "hs", "contacts")
    trigger, read = _key(stack, "trigger"), _key(stack, "read")
    # No worker: the first run stays queued, so it is surely active at the second trigger.
    first = served.call("POST", "/v1/orchestrations/contacts/runs", trigger)
    second = served.call("POST", "/v1/orchestrations/contacts/runs", trigger)

    assert first.status_code == 202, first.text
    run_id = first.json()["run"]
    assert second.status_code == 409, second.text
    assert second.json()["error"]["code"] == "conflict"
    # The refused trigger is recorded as a skipped run (PostgreSQL may skip an id in between).
    skipped = f"run {run_id} of this orchestration is still active (queued)"
    message = second.json()["error"]["message"]
    assert re.fullmatch(rf"run \d+ skipped: {re.escape(skipped)}", message), message
    # A read key may look, not trigger or cancel.
    for path in ("/v1/orchestrations/contacts/runs", f"/v1/runs/{run_id}/cancel"):
        refused = served.call("POST", path, read)
        assert refused.status_code == 403, refused.text
        assert "this needs scope trigger" in refused.json()["error"]["message"]

    cancelled = served.call("POST", f"/v1/runs/{run_id}/cancel", trigger)

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json() == {
        "run": run_id,
        "status": "cancelled",
        "batches_done": 0,
        "batches_cancelled": 0,
        "batches_in_flight": 0,
        "message": f"run {run_id} cancelled before it wrote anything",
    }
    shown = served.get(f"/v1/runs/{run_id}", read).json()
    assert (shown["status"], shown["active"]) == ("cancelled", False)
    assert shown["reason"].startswith("cancelled through the API (key 'trigger-")
    again = served.call("POST", f"/v1/runs/{run_id}/cancel", trigger)
    assert again.status_code == 409
    message = again.json()["error"]["message"]
    assert message == f"run {run_id} already ended (cancelled); nothing to cancel"
    assert stack.cli.refused("runs", "cancel", str(run_id)) == f"segsync: {message}"
    # With nothing active, a new trigger is taken; a worker started now runs it.
    third = served.call("POST", "/v1/orchestrations/contacts/runs", trigger)
    assert third.status_code == 202, third.text
    stack.worker("late")
    ended = wait_until(
        _ended(served, third.headers["Location"], read), BOUND, "the third run", stack.tails
    )
    assert ended["status"] == "succeeded", ended


def test_unknown_and_disabled_orchestrations_and_unknown_runs(
    stack: Stack, served: ApiServer
) -> None:
    stack.orchestration("contacts", "hs", "contacts")
    stack.cli.ok("orchestrations", "disable", "contacts")
    trigger = _key(stack, "trigger")

    unknown = served.call("POST", "/v1/orchestrations/nothing/runs", trigger)
    disabled = served.call("POST", "/v1/orchestrations/contacts/runs", trigger)
    no_run = served.get("/v1/runs/999999", trigger)
    no_cancel = served.call("POST", "/v1/runs/999999/cancel", trigger)
    too_big = served.get(f"/v1/runs/{2**40}", trigger)
    nul = served.call("POST", "/v1/orchestrations/a%00b/runs", trigger)

    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"] == "no orchestration named 'nothing'"
    assert disabled.status_code == 409
    assert disabled.json()["error"]["message"] == "orchestration 'contacts' is disabled"
    assert stack.cli.refused("sync", "contacts", "--queue") == (
        "segsync: orchestration 'contacts' is disabled"
    )
    assert no_run.status_code == no_cancel.status_code == 404
    assert no_run.json()["error"]["message"] == "no run 999999"
    assert too_big.status_code == nul.status_code == 422


def test_triggering_without_a_broker_is_503_in_one_line(
    api: ApiServer, stored: Callable[..., object]
) -> None:
    key = stored(lambda session: create_api_key(session, f"t-{uuid.uuid4().hex}", "trigger")[1])

    refused = api.call("POST", "/v1/orchestrations/anything/runs", str(key))

    assert refused.status_code == 503
    assert refused.json()["error"] == {"code": "unavailable", "message": NO_BROKER}


def test_a_broker_that_does_not_answer_is_503_and_the_run_stays_stored(
    stack: Stack, tmp_path: Path
) -> None:
    stack.orchestration("contacts", "hs", "contacts")
    trigger = _key(stack, "trigger")
    env = {name: value for name, value in stack.env.items() if name.startswith("SEGSYNC_")}
    # The broker does not answer; the request limiter keeps the tests' Redis.
    env["SEGSYNC_BROKER_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    env["SEGSYNC_REDIS_URL"] = stack.redis_url
    with running_api(env, tmp_path) as server:
        refused = server.call("POST", "/v1/orchestrations/contacts/runs", trigger)

    assert refused.status_code == 503, refused.text
    message = refused.json()["error"]["message"]
    found = re.match(r"run (\d+) is stored but the broker did not take it \(", message)
    assert found, message
    assert "\n" not in message and message.endswith(
        "beat's sweeper sends it once SEGSYNC_STALE_AFTER_SECONDS have passed"
    )
    assert stack.run(int(found[1])).status == "queued"
