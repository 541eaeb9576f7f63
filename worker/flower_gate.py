"""Flower behind its credentials: every page but a bare `GET /healthcheck` asks for them.

Flower 2.x checks credentials handler by handler and leaves some open: /metrics, /static, /login,
its 404 page and OPTIONS on every page. The gate sits where tornado hands each request to its
handler (Application.get_handler_delegate), so a handler a later Flower adds is closed as well.
"""

from __future__ import annotations

import binascii
import hmac
from base64 import b64decode
from typing import Any

import flower.command
from flower.app import Flower
from flower.views.monitor import Healthcheck
from tornado.httputil import HTTPServerRequest
from tornado.web import RequestHandler

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


def presented_credentials(request: HTTPServerRequest) -> bytes | None:
    """The `user:password` of the request's basic Authorization header, if it has one."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


def is_authorized(request: HTTPServerRequest, accepted: list[str]) -> bool:
    """Whether the request carries one of the accepted `user:password` pairs."""
    presented = presented_credentials(request)
    if presented is None:
        return False
    # Every pair is compared, in constant time, so timing tells nothing about which was close.
    matches = [hmac.compare_digest(presented, pair.encode()) for pair in accepted]
    return any(matches)


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
        if not probe and not is_authorized(request, list(self.options.basic_auth or [])):
            target_class, target_kwargs, path_args, path_kwargs = Unauthorized, {}, [], {}
        return super().get_handler_delegate(
            request, target_class, target_kwargs, path_args, path_kwargs
        )


def close_open_flower_handlers() -> None:
    """Make the `flower` command of this process serve through the gate (call before it runs)."""
    # The command builds its application from this module-level name when it runs.
    flower.command.Flower = GuardedFlower
