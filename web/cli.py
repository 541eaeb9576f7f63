"""`segsync api`: the HTTP API served by uvicorn."""

from __future__ import annotations

from pathlib import Path

import click

from worker.cli.database import Database
from worker.cli.output import fail

# uvicorn builds the app in each of its processes from this factory (web.app).
APP_FACTORY = "web.app:app_from_environment"


@click.command("api")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Server processes sharing the port.",
)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Serve HTTPS with this PEM certificate (chain); needs --tls-key.",
)
@click.option(
    "--tls-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The certificate's PEM private key.",
)
@click.pass_obj
def api_command(
    database: Database,
    host: str,
    port: int,
    workers: int,
    tls_cert: Path | None,
    tls_key: Path | None,
) -> None:
    """Serve the HTTP API (/v1) and the web app (/) for people who sign in."""
    import uvicorn

    from models.db import require_current_schema

    if workers > 1 and port == 0:
        fail("--workers above 1 needs a --port: processes cannot share a port chosen at random")
    _check_tls_files(tls_cert, tls_key)
    # Refuse at once, in one line, what every request would otherwise fail on.
    require_current_schema(database.engine)
    from uvicorn.config import LOGGING_CONFIG

    from worker.logs import log_format

    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # Request lines carry no key (keys go in a header), so the access log may stay on.
        access_log=True,
        # Text: uvicorn's own lines ("Uvicorn running on ...", one per request). JSON: none of
        # uvicorn's handlers; its lines reach segsync's JSON handler (web.app configures it in
        # each server process).
        log_config=None if log_format() == "json" else LOGGING_CONFIG,
        server_header=False,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
    )


def _check_tls_files(certificate: Path | None, key: Path | None) -> None:
    """Refuse in one line, before the server starts, TLS files that cannot serve HTTPS."""
    if certificate is None and key is None:
        return
    if certificate is None or key is None:
        fail("--tls-cert and --tls-key go together: give both to serve HTTPS, or neither")
        return
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certificate, key)
    except ssl.SSLError as error:
        # The message names the files, never their contents.
        reason = (
            "the key does not belong to the certificate"
            if error.reason == "KEY_VALUES_MISMATCH"
            else f"not a usable PEM certificate and key ({error.reason})"
        )
        fail(f"cannot serve HTTPS with --tls-cert {certificate} and --tls-key {key}: {reason}")
    except OSError as error:
        reason = error.strerror or str(error)
        fail(f"cannot serve HTTPS with --tls-cert {certificate} and --tls-key {key}: {reason}")
