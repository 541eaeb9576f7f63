"""The Salesforce login server's OAuth refresh-token grant, which issues the Pardot emulator's
access tokens: `POST /services/oauth2/token` (https://login.salesforce.com in real life), with
Salesforce's `{"error", "error_description"}` bodies.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from urllib.parse import parse_qs, unquote_plus

from connectors.sandbox.server import Request, Response

TOKEN_PATH = "/services/oauth2/token"


def new_token() -> str:
    """A fresh access token in Salesforce's shape (org id, "!", opaque part)."""
    return f"00D5g000004SANDBOX!{secrets.token_urlsafe(72)}"


def refused_grant(
    request: Request, client_id: str, client_secret: str, refresh_token: str
) -> Response | None:
    """Salesforce's answer refusing this refresh-token request, or None when it is granted."""
    form = token_parameters(request)
    if form is None:
        return _oauth_error("invalid_client", "invalid client credentials")
    if form.get("grant_type") != "refresh_token":
        return _oauth_error("unsupported_grant_type", "grant type not supported")
    if form.get("client_id") != client_id:
        return _oauth_error("invalid_client_id", "client identifier invalid")
    if not secrets.compare_digest(form.get("client_secret", ""), client_secret):
        return _oauth_error("invalid_client", "invalid client credentials")
    if not secrets.compare_digest(form.get("refresh_token", ""), refresh_token):
        return _oauth_error("invalid_grant", "expired access/refresh token")
    return None


def token_answer(token: str, base_url: str) -> Response:
    """The grant's answer carrying `token`."""
    body = {
        "access_token": token,
        "signature": secrets.token_urlsafe(32),
        "scope": "refresh_token pardot_api",
        "instance_url": base_url,
        "id": f"{base_url}/id/00D5g000004SANDBOX/0055g00000SANDBOX",
        "token_type": "Bearer",
        "issued_at": str(int(time.time() * 1000)),
    }
    return Response(body=body)


def token_parameters(request: Request) -> dict[str, str] | None:
    """A token request's parameters from its query string and form body (the body wins), with
    the client's credentials from an HTTP Basic header when it has one; None when that header
    cannot be read. Salesforce takes the client's id and secret either as parameters or as
    `Authorization: Basic base64(client_id:client_secret)` (Salesforce REST API Developer Guide,
    "Understanding the OAuth Refresh Token Process"), as RFC 6749 section 2.3.1 asks of every
    OAuth 2.0 server, and it also reads parameters sent in the query string."""
    parameters = {key: values[0] for key, values in request.query.items() if values}
    body = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
    parameters |= {key: values[0] for key, values in body.items()}
    header = request.headers.get("authorization", "")
    if header[:6].lower() != "basic ":
        return parameters
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, colon, client_secret = decoded.partition(":")
    if not colon:
        return None
    # RFC 6749 2.3.1: each part is form-urlencoded before the pair is base64-encoded.
    parameters.setdefault("client_id", unquote_plus(client_id))
    parameters.setdefault("client_secret", unquote_plus(client_secret))
    return parameters


def _oauth_error(error: str, description: str) -> Response:
    return Response(400, {"error": error, "error_description": description})
