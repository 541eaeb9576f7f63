"""Flower with segsync's app: every page but a bare `GET /healthcheck` asks for the credentials.

The routes come from Flower's own handler list (flower.urls.handlers), so a handler that a later
Flower adds is requested too, and fails this test if it answers without credentials.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import flower.urls
import pytest
from flower.views.monitor import Healthcheck
from tornado.web import RequestHandler, URLSpec

from tests.services import free_port
from tests.worker.celery_processes import CeleryProcess
from tests.worker.test_packaging import REPO, Program, local_http, program_environment

AUTH = ("ops", "flower-pass-1")
READY = "Visit me at"


def sample_path(spec: URLSpec) -> str:
    """A concrete path that `spec`'s pattern matches: each group becomes `sample`."""
    pattern = spec.regex.pattern.removesuffix("$")
    path = "/no-such-page" if pattern == ".*" else re.sub(r"\(\.[*+]\)", "sample", pattern)
    path = path.replace("/?", "/")
    assert spec.regex.fullmatch(path), f"teach sample_path the route {spec.regex.pattern!r}"
    return path


def flower_routes() -> list[tuple[str, type[RequestHandler]]]:
    """Each route Flower serves: a path reaching it, and its handler class."""
    specs = [h if isinstance(h, URLSpec) else URLSpec(*h) for h in flower.urls.handlers]
    routes = []
    for spec in specs:
        path = sample_path(spec)
        first = next(s for s in specs if s.regex.fullmatch(path))
        assert first is spec, f"{path} reaches {first.handler_class}, not {spec.handler_class}"
        routes.append((path, spec.handler_class))
    return routes


def implemented_methods(handler: type[RequestHandler]) -> list[str]:
    """The HTTP methods `handler` answers itself (tornado answers the others 405)."""
    return [
        method
        for method in handler.SUPPORTED_METHODS
        if getattr(handler, method.lower()) is not getattr(RequestHandler, method.lower())
    ]


@pytest.fixture
def env(tmp_path: Path, sqlite_template: Path, redis_url: str) -> dict[str, str]:
    return program_environment(tmp_path, sqlite_template, redis_url, redis_db=8)


@pytest.fixture
def segsync_flower(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[CeleryProcess, int]]:
    port = free_port()
    flower = CeleryProcess(
        ["flower", f"--port={port}"],
        {**env, "SEGSYNC_FLOWER_BASIC_AUTH": ":".join(AUTH)},
        tmp_path / "flower.log",
    )
    try:
        flower.wait_for(READY, timeout=120)
        yield flower, port
    finally:
        flower.stop()


def test_flower_refuses_to_start_without_credentials(env: dict[str, str], tmp_path: Path) -> None:
    refused = CeleryProcess(["flower", f"--port={free_port()}"], env, tmp_path / "refused.log")
    assert refused.process.wait(timeout=60) == 1
    assert "SEGSYNC_FLOWER_BASIC_AUTH" in refused.output()


def test_every_flower_route_but_healthcheck_requires_the_credentials(
    segsync_flower: tuple[CeleryProcess, int],
) -> None:
    flower, port = segsync_flower
    http = local_http()
    routes = flower_routes()
    assert {"/metrics", "/healthcheck", "/api/workers"} <= {path for path, _ in routes}
    for path, handler in routes:
        url = f"http://127.0.0.1:{port}{path}"
        for method in implemented_methods(handler):
            for auth in (None, ("ops", "wrong"), ("someone", AUTH[1])):
                answer = http.request(method, url, auth=auth, timeout=30)
                if handler is Healthcheck and method == "GET":
                    assert (answer.status_code, answer.text) == (200, "OK"), (method, path)
                    continue
                assert answer.status_code == 401, (method, path, auth, answer.status_code)
                assert answer.headers["WWW-Authenticate"].startswith("Basic "), (method, path)
        if "GET" in implemented_methods(handler):
            answer = http.get(url, auth=AUTH, timeout=30)
            assert answer.status_code != 401, path
    workers = http.get(f"http://127.0.0.1:{port}/api/workers", auth=AUTH, timeout=30)
    assert workers.status_code == 200
    style = http.get(f"http://127.0.0.1:{port}/static/css/flower.css", auth=AUTH, timeout=30)
    assert style.status_code == 200
    metrics = http.get(f"http://127.0.0.1:{port}/metrics", auth=AUTH, timeout=30)
    assert metrics.status_code == 200
    assert "flower_" in metrics.text
    assert AUTH[1] not in flower.output()


def test_celery_flower_with_segsyncs_app_is_gated_too(env: dict[str, str], tmp_path: Path) -> None:
    celery = [str(Path(sys.executable).parent / "celery"), "-A", "worker", "flower"]
    with_auth, without_auth = free_port(), free_port()
    # In the checkout, as the editable install runs it (the wheel is test_packaging's part).
    flowers = [
        Program(
            [*celery, f"--port={with_auth}"],
            {**env, "FLOWER_BASIC_AUTH": ":".join(AUTH)},
            tmp_path / "celery-flower.log",
            cwd=REPO,
        ),
        # Started without any credentials, it must not serve segsync's app in the open.
        Program([*celery, f"--port={without_auth}"], env, tmp_path / "open-flower.log", cwd=REPO),
    ]
    try:
        for flower in flowers:
            flower.wait_for(READY, timeout=120)
        http = local_http()
        metrics = f"http://127.0.0.1:{with_auth}/metrics"
        assert http.get(metrics, timeout=30).status_code == 401
        assert http.get(metrics, auth=AUTH, timeout=30).status_code == 200
        assert http.get(f"http://127.0.0.1:{with_auth}/healthcheck", timeout=30).text == "OK"
        for path in ("/", "/metrics", "/api/workers", "/static/css/flower.css"):
            answer = http.get(f"http://127.0.0.1:{without_auth}{path}", timeout=30)
            assert answer.status_code == 401, path
        assert http.get(f"http://127.0.0.1:{without_auth}/healthcheck", timeout=30).text == "OK"
    finally:
        for flower in flowers:
            flower.stop()
