"""Flower behind its credentials: every page but a bare `GET /healthcheck` asks for them.

Flower 2.x checks credentials handler by handler and leaves some open: /metrics, /static, /login,
its 404 page and OPTIONS on every page. The gate sits where tornado hands each request to its
handler (Application.get_handler_delegate), so a handler a later Flower adds is closed as well.
"""

from __future__ import annotations

from typing import Any

import flower.command
from flower.app import Flower
from flower.views.monitor import Healthcheck
from tornado.httputil import HTTPServerRequest
from tornado.web import RequestHandler

from worker.basic_auth import is_authorized

REALM = "segsync flower"


class Unauthorized(RequestHandler):
    """Answers 401 with a basic-auth challenge, whatever the path or method."""

    def check_xsrf_cookie(self) -> None:
        """Skip the XSRF check: it would answer 403 where the truth is 401."""

    def prepare(self) -> None:
        """Refuse before any handler code runs."""
        self.set_status(401)
        self.set_header("WWW-Authenticate", f'Basic realm="{REALM}"')
        self.finish("Access denied")


class GuardedFlower(Flower):  # type: ignore[misc]
    """Flower that hands a request without the credentials to `Unauthorized` instead."""

    def get_handler_delegate(
        self,
        request: HTTPServerRequest,
        target_class: type[RequestHandler],
        target_kwargs: dict[str, Any] | None = None,
        path_args: list[bytes] | None = None,
        path_kwargs: dict[str, bytes] | None = None,
    ) -> Any:
        """Route to the handler only if the request may see it."""
        # Healthcheck's route matches the bare path only: a probe needs no password.
        probe = target_class is Healthcheck and request.method == "GET"
        # No basic_auth configured (e.g. `celery -A worker flower` without credentials):
        # nothing is accepted, so Flower never serves segsync's app in the open.
        authorization = request.headers.get("Authorization", "")
        if not probe and not is_authorized(authorization, list(self.options.basic_auth or [])):
            target_class, target_kwargs, path_args, path_kwargs = Unauthorized, {}, [], {}
        return super().get_handler_delegate(
            request, target_class, target_kwargs, path_args, path_kwargs
        )


def close_open_flower_handlers() -> None:
    """Make the `flower` command of this process serve through the gate (call before it runs)."""
    # The command builds its application from this module-level name when it runs.
    flower.command.Flower = GuardedFlower
