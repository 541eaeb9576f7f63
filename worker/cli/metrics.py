"""`segsync metrics`: segsync's figures for Prometheus over HTTP, read from the database at each
scrape (worker.metrics), behind the same basic auth as Flower."""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterable
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import click

from worker.basic_auth import accepted_pairs, is_authorized
from worker.cli.database import Database
from worker.cli.output import fail

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

REALM = "segsync metrics"
CREDENTIALS_VARIABLE = "SEGSYNC_FLOWER_BASIC_AUTH"


def is_loopback(address: str) -> bool:
    """Whether `address` only takes connections from this machine (127.0.0.0/8, ::1, localhost)."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def _plain(
    start_response: StartResponse, status: str, text: str, *headers: tuple[str, str]
) -> list[bytes]:
    body = f"{text}\n".encode()
    start_response(
        status,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            *headers,
        ],
    )
    return [body]


def metrics_app(sessions: sessionmaker[Session], accepted: list[str]) -> WSGIApplication:
    """The WSGI application: GET /metrics (asking for one of the `accepted` user:password pairs
    when there are any) and an open GET /healthz that answers "ok"."""
    # Imported here, not at the top, so that `segsync metrics --help` loads neither.
    from prometheus_client import CollectorRegistry, make_wsgi_app
    from sqlalchemy.exc import SQLAlchemyError

    from worker.metrics import SegsyncCollector

    registry = CollectorRegistry(auto_describe=False)
    registry.register(SegsyncCollector(sessions))
    prometheus = make_wsgi_app(registry)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        if path == "/healthz" and method in ("GET", "HEAD"):
            # The server is up; whether the database answers is /metrics' (503) and health's.
            return _plain(start_response, "200 OK", "ok")
        if accepted and not is_authorized(environ.get("HTTP_AUTHORIZATION", ""), accepted):
            challenge = ("WWW-Authenticate", f'Basic realm="{REALM}"')
            return _plain(start_response, "401 Unauthorized", "authentication required", challenge)
        if path != "/metrics":
            return _plain(start_response, "404 Not Found", "not found: try /metrics")
        try:
            # make_wsgi_app reads every metric before it starts the response.
            return prometheus(environ, start_response)  # type: ignore[no-any-return]
        except SQLAlchemyError as exc:
            reason = _database_error(exc)
            log.warning("metrics not read: %s", reason)
            return _plain(start_response, "503 Service Unavailable", reason)

    return app


def _database_error(exc: SQLAlchemyError) -> str:
    """One line naming the database error (the driver's first line, without the statement)."""
    original = getattr(exc, "orig", None) or exc
    lines = str(original).strip().splitlines()
    return f"database error: {lines[0] if lines else type(original).__name__}"


class _Server(ThreadingMixIn, WSGIServer):
    """One thread per request, so a slow scrape does not hold up /healthz."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    """No access log line per scrape."""

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing."""


def _accepted(database: Database) -> list[str]:
    credentials = database.settings.flower_basic_auth
    if credentials is None:
        return []
    pairs = accepted_pairs(credentials.get_secret_value())
    if not pairs:
        fail(f"{CREDENTIALS_VARIABLE} must be user:password")
    return pairs


@click.command("metrics")
@click.option("--port", default=9808, show_default=True, type=click.IntRange(0, 65535))
@click.option("--address", default="127.0.0.1", show_default=True)
@click.pass_obj
def metrics_command(database: Database, port: int, address: str) -> None:
    """Serve Prometheus metrics of segsync's runs, records and API use.

    GET /metrics reads them from the database at each scrape; it asks for the user:password of
    SEGSYNC_FLOWER_BASIC_AUTH when that is set. GET /healthz answers "ok" to anyone. Without
    credentials the server listens on a loopback address only.
    """
    accepted = _accepted(database)
    if not accepted and not is_loopback(address):
        fail(
            f"metrics on {address} would be open to the network: set {CREDENTIALS_VARIABLE}="
            "user:password, or listen on 127.0.0.1"
        )
    sessions = database.sessions()  # refuses, in one line, a database that is not upgraded
    _Server.address_family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        server = make_server(
            address,
            port,
            metrics_app(sessions, accepted),
            server_class=_Server,
            handler_class=_QuietHandler,
        )
    except OSError as exc:
        fail(f"cannot listen on {address}:{port}: {exc.strerror or exc}")
    where = f"[{address}]" if ":" in address else address
    auth = "basic auth" if accepted else "no auth, loopback only"
    click.echo(f"serving metrics on http://{where}:{server.server_port}/metrics ({auth})")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
