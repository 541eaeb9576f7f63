"""`segsync api` as a service: health, readiness, OpenAPI, keys, and errors in one shape."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

from models.api_keys import create_api_key, revoke_api_key
from tests.services import free_port
from tests.web.server import ApiServer, running_api


def test_healthz_and_readyz_answer_without_a_key(api: ApiServer) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"
    assert ready.json()["checks"]["database"]["ok"] is True


def test_readyz_is_503_naming_a_broker_that_does_not_answer(
    api_database_url: str, tmp_path: Path
) -> None:
    broker = f"redis://127.0.0.1:{free_port()}/0"
    env = {"SEGSYNC_DATABASE_URL": api_database_url, "SEGSYNC_BROKER_URL": broker}
    with running_api(env, tmp_path) as server:
        ready = server.get("/readyz")

    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["database"]["ok"] is True
    assert checks["broker"]["ok"] is False and "unreachable" in checks["broker"]["detail"]


def test_the_openapi_document_lists_the_v1_routes_and_the_error_shape(api: ApiServer) -> None:
    document = api.get("/openapi.json").json()

    assert "/v1/accounts/{key}/segments" in document["paths"]
    assert "ErrorResponse" in document["components"]["schemas"]
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_a_missing_wrong_or_revoked_key_is_401_and_never_logged(
    api: ApiServer, stored: Callable[..., object]
) -> None:
    name = f"k-{uuid.uuid4().hex}"
    key = str(stored(lambda session: create_api_key(session, name, "read")[1]))
    path = "/v1/accounts/x/segments"

    missing = api.get(path)
    wrong = api.get(path, key[:-2] + "zz")
    assert api.get(path, key).status_code == 404  # the key works: no such account
    stored(revoke_api_key, name)
    revoked = api.get(path, key)

    assert missing.status_code == wrong.status_code == revoked.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert missing.json()["error"] == {
        "code": "unauthorized",
        "message": "missing API key: send `Authorization: Bearer KEY`",
    }
    assert (
        wrong.json()["error"]["message"]
        == revoked.json()["error"]["message"]
        == ("unknown or revoked API key")
    )
    assert key not in api.logged() and key[:-2] not in api.logged()


def test_unknown_paths_and_methods_answer_in_the_one_shape(api: ApiServer) -> None:
    unknown = api.get("/v1/nothing-here")
    method = api.call("DELETE", "/healthz")

    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    assert method.status_code == 405
    assert method.json()["error"]["code"] == "method_not_allowed"


def test_the_log_shows_where_it_listens_and_each_request_and_json_mode_logs_json(
    api: ApiServer, api_database_url: str, tmp_path: Path
) -> None:
    api.get("/healthz")
    text_log = api.logged()
    env = {"SEGSYNC_DATABASE_URL": api_database_url, "SEGSYNC_LOG_FORMAT": "json"}
    with running_api(env, tmp_path) as server:
        server.get("/v1/accounts/x/segments")
    lines = [json.loads(line) for line in server.logged().splitlines() if line.strip()]

    assert "Uvicorn running on http://127.0.0.1:" in text_log
    assert '"GET /healthz HTTP/1.1" 200' in text_log
    assert lines and all(line["program"] == "api" for line in lines)
    assert any("GET /v1/accounts/x/segments" in line["message"] for line in lines)
