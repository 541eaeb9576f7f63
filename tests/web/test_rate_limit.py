"""The per-key request limit of `segsync api` (SEGSYNC_API_RATE_LIMIT) on real server processes:
shared by every process through Redis, 429 with Retry-After past it, keys never in the logs."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import redis
import requests
from schemathesis.checks import not_a_server_error

from models.api_keys import create_api_key
from tests.services import free_port
from tests.web.documented import documented
from tests.web.server import SEGSYNC, running_api

# Few requests in a window far longer than sending them takes, even on a loaded machine.
CALLS = 4
WINDOW_SECONDS = 10
PATH = "/v1/accounts/nobody.example.org/segments"


def _new_key(stored: Callable[..., object], scope: str = "read") -> str:
    key = stored(lambda session: create_api_key(session, f"rl-{uuid.uuid4().hex}", scope)[1])
    assert isinstance(key, str)
    return key


def _limited(answer: requests.Response) -> bool:
    return answer.status_code == 429


def test_two_server_processes_on_one_redis_share_a_keys_budget(
    api_database_url: str, redis_url: str, stored: Callable[..., object], tmp_path: Path
) -> None:
    key, other = _new_key(stored), _new_key(stored, "publish")
    env = {
        "SEGSYNC_DATABASE_URL": api_database_url,
        "SEGSYNC_REDIS_URL": redis_url,
        "SEGSYNC_API_RATE_LIMIT": f"{CALLS}/{WINDOW_SECONDS}",
    }
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
    with ExitStack() as servers:
        first = servers.enter_context(running_api(env, tmp_path / "first"))
        second = servers.enter_context(running_api(env, tmp_path / "second"))
        both = (first, second)

        # The budget is spent half on each process; the next request is refused by either.
        answers = [both[n % 2].get(PATH, key) for n in range(CALLS)]
        refused = [server.get(PATH, key) for server in both]
        # Another key has its own budget, on both processes.
        elsewhere = [server.get(PATH, other) for server in both]

        assert [answer.status_code for answer in answers] == [404] * CALLS  # no such account
        assert all(_limited(answer) for answer in refused), [a.text for a in refused]
        assert [answer.status_code for answer in elsewhere] == [404, 404]
        # Each refusal is as the OpenAPI document says (status, body, a Retry-After of >= 1 s).
        operation = documented(first, key)["/v1/accounts/{key}/segments"]["GET"]
        retry_after_doc = operation.definition.raw["responses"]["429"]["headers"]["Retry-After"]
        assert retry_after_doc["required"] is True
        assert retry_after_doc["schema"] == {"type": "integer", "minimum": 1}
        case = operation.Case(path_parameters={"key": "nobody.example.org"})
        for answer in refused:
            case.validate_response(answer)
            retry_after = answer.headers["Retry-After"]
            assert retry_after.isdigit() and 1 <= int(retry_after) <= WINDOW_SECONDS
            error = answer.json()["error"]
            assert error["code"] == "rate_limited"
            assert f"made {CALLS} requests in {WINDOW_SECONDS} s" in error["message"]
            assert "SEGSYNC_API_RATE_LIMIT" in error["message"]

        # Waiting as long as Retry-After says makes room again.
        time.sleep(int(refused[-1].headers["Retry-After"]))
        again = second.get(PATH, key)
        assert again.status_code == 404, again.text

        # The limiter names the key by its digest in Redis; the key itself is nowhere.
        digest = hashlib.sha256(key.encode()).hexdigest()
        store = redis.Redis.from_url(redis_url)
        names = [name.decode() for name in store.keys("segsync:ratelimit:api-key:*")]
        assert f"segsync:ratelimit:api-key:{digest}:rate" in names
        assert not any(key in name or other in name for name in names)
        for server in both:
            assert key not in server.logged() and other not in server.logged()


def test_without_redis_each_process_counts_a_keys_requests_itself(
    api_database_url: str, stored: Callable[..., object], tmp_path: Path
) -> None:
    key = _new_key(stored)
    env = {"SEGSYNC_DATABASE_URL": api_database_url, "SEGSYNC_API_RATE_LIMIT": "2/60"}
    assert "SEGSYNC_REDIS_URL" not in os.environ and "SEGSYNC_BROKER_URL" not in os.environ
    with running_api(env, tmp_path) as server:
        answers = [server.get(PATH, key).status_code for _ in range(3)]
        missing = server.get(PATH)

        assert answers == [404, 404, 429]
        assert missing.status_code == 401  # no key, no budget: authentication comes first
        assert key not in server.logged()


def test_a_redis_that_does_not_answer_is_503_in_the_one_shape(
    api_database_url: str, stored: Callable[..., object], tmp_path: Path
) -> None:
    key = _new_key(stored)
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    env = {"SEGSYNC_DATABASE_URL": api_database_url, "SEGSYNC_REDIS_URL": nowhere}
    with running_api(env, tmp_path) as server:
        answer = server.get(PATH, key)
        logged = server.logged()
        operation = documented(server, key)["/v1/accounts/{key}/segments"]["GET"]

    # A documented answer (503 is in every /v1 route's document), though a server error.
    operation.Case(path_parameters={"key": "x"}).validate_response(
        answer, excluded_checks=[not_a_server_error]
    )

    assert answer.status_code == 503
    assert answer.json() == {
        "error": {
            "code": "unavailable",
            "message": "rate limit store unavailable (ConnectionError)",
        }
    }
    assert key not in logged and nowhere not in answer.text


def test_a_bad_rate_limit_setting_is_refused_in_one_line_naming_the_variable(
    api_database_url: str, tmp_path: Path
) -> None:
    for bad in ("600", "0/60", "10/0", "ten/60", "10/nan"):
        env = {
            **os.environ,
            "SEGSYNC_DATABASE_URL": api_database_url,
            "SEGSYNC_API_RATE_LIMIT": bad,
        }
        done = subprocess.run(
            [SEGSYNC, "api", "--port", "0"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

        assert done.returncode == 1, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith("segsync: SEGSYNC_API_RATE_LIMIT: ")
        assert "CALLS/SECONDS" in lines[0] and repr(bad) in lines[0]
