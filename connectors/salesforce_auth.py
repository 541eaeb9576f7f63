"""Salesforce connection settings and the four ways to get a session: SOAP or OAuth password,
OAuth JWT bearer, OAuth client credentials, or a session given outright."""

from __future__ import annotations

import base64
import json
import logging
import re
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from connectors.errors import FatalError, RetryableError
from connectors.http import VendorHttp, redact

logger = logging.getLogger(__name__)

AUTH_METHODS = ("password", "jwt", "client_credentials", "session")
_VERSION = re.compile(r"^\d{2,3}\.0$")
_JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_JWT_HEADER = b'{"alg":"RS256","typ":"JWT"}'
# Login faults worth trying again later; every other fault is a credential or setup problem.
_RETRYABLE_FAULTS = frozenset({"SERVER_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED", "UNKNOWN_EXCEPTION"})
_REQUIRED = {
    "password": ("username", "password"),
    "jwt": ("username", "client_id", "private_key"),
    "client_credentials": ("client_id", "client_secret"),
    "session": ("instance_url", "access_token"),
}


@dataclass(frozen=True)
class SalesforceConfig:
    """How to reach one Salesforce org; secrets never show in repr.

    auth: "password" (SOAP login with username, password and security_token, or the OAuth
    password grant when client_id and client_secret are set too), "jwt" (OAuth JWT bearer:
    client_id is the connected app's consumer key, private_key its PEM RSA key, username the
    user), "client_credentials" (OAuth client credentials: needs a My Domain login_url), or
    "session" (instance_url and access_token from elsewhere; no re-login when it expires).
    login_url: https://login.salesforce.com, https://test.salesforce.com for sandboxes, or a My
    Domain URL. Bulk API 2.0 is used to write more than bulk_write_threshold records
    (`write_bulk`) and to read objects with more than bulk_read_threshold records (None: never;
    0: always, without counting first).
    """

    auth: str = "password"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)
    login_url: str = "https://login.salesforce.com"
    instance_url: str | None = None
    jwt_audience: str | None = None
    # Winter '25's REST version, served by every current org (simple-salesforce 1.12 still
    # defaults to 59.0, Winter '24).
    api_version: str = "62.0"
    ca_bundle: str | None = None
    timeout: float = 60.0
    bulk_write_threshold: int = 2000
    bulk_read_threshold: int | None = 200_000
    bulk_poll_interval: float = 2.0
    bulk_timeout: float = 600.0
    bulk_page_size: int = 50_000

    def __post_init__(self) -> None:
        if self.auth not in AUTH_METHODS:
            raise ValueError(
                f"Salesforce auth must be one of {', '.join(AUTH_METHODS)}, not {self.auth!r}"
            )
        missing = [name for name in _REQUIRED[self.auth] if not getattr(self, name)]
        if missing:
            raise ValueError(f"Salesforce {self.auth} login needs {', '.join(missing)}")
        for name in ("login_url", "instance_url"):
            value = getattr(self, name)
            if value is not None and (
                urlsplit(value).scheme != "https" or not urlsplit(value).netloc
            ):
                raise ValueError(f"Salesforce {name} must be an https:// URL, not {value!r}")
        if not _VERSION.match(self.api_version):
            raise ValueError(
                f"Salesforce api_version must look like 59.0, not {self.api_version!r}"
            )
        if self.bulk_page_size <= 0 or self.bulk_write_threshold < 0:
            raise ValueError("Salesforce bulk_page_size must be positive, bulk thresholds >= 0")

    @property
    def secrets(self) -> tuple[str | None, ...]:
        """Every secret in this config, for redaction."""
        return (
            self.password,
            self.security_token,
            self.client_secret,
            self.private_key,
            self.access_token,
        )


@dataclass(frozen=True)
class LoginResult:
    """A session: the token to send and the instance to send it to (https://host[:port])."""

    access_token: str = field(repr=False)
    instance_url: str


def login(http: VendorHttp, config: SalesforceConfig) -> LoginResult:
    """Log in with `config` over `http`; FatalError for refused credentials."""
    if config.auth == "session":
        assert config.access_token and config.instance_url  # checked by SalesforceConfig
        return LoginResult(config.access_token, _origin(config.instance_url))
    base = config.login_url.rstrip("/")
    logger.info("Salesforce %s login at %s", config.auth, urlsplit(base).netloc)
    if config.auth == "password" and not (config.client_id and config.client_secret):
        result = _soap_login(http, f"{base}/services/Soap/u/{config.api_version}", config)
    elif config.auth == "password":
        result = _token(
            http,
            base,
            config,
            {
                "grant_type": "password",
                "client_id": config.client_id,
                "client_secret": config.client_secret,
                "username": config.username,
                "password": (config.password or "") + (config.security_token or ""),
            },
        )
    elif config.auth == "jwt":
        result = _token(
            http, base, config, {"grant_type": _JWT_GRANT, "assertion": jwt_assertion(config)}
        )
    else:
        result = _token(
            http,
            base,
            config,
            {
                "grant_type": "client_credentials",
                "client_id": config.client_id,
                "client_secret": config.client_secret,
            },
        )
    if config.instance_url:
        return LoginResult(result.access_token, _origin(config.instance_url))
    return result


def jwt_audience(config: SalesforceConfig) -> str:
    """The JWT `aud`: login.salesforce.com or test.salesforce.com for Salesforce hosts."""
    if config.jwt_audience:
        return config.jwt_audience
    host = urlsplit(config.login_url).hostname or ""
    if host == "test.salesforce.com" or host.endswith(".sandbox.my.salesforce.com"):
        return "https://test.salesforce.com"
    if host == "salesforce.com" or host.endswith(".salesforce.com"):
        return "https://login.salesforce.com"
    # An Experience Cloud site, a custom login host, or the sandbox emulator: its own URL.
    return config.login_url.rstrip("/")


def jwt_assertion(config: SalesforceConfig) -> str:
    """An RS256-signed JWT bearer assertion valid for three minutes."""
    try:
        key = serialization.load_pem_private_key((config.private_key or "").encode(), None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise FatalError("the Salesforce JWT private_key must be an unencrypted PEM RSA key")
    claims = {
        "iss": config.client_id,
        "sub": config.username,
        "aud": jwt_audience(config),
        "exp": int(time.time()) + 180,
    }
    signing_input = f"{_b64(_JWT_HEADER)}.{_b64(json.dumps(claims).encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _origin(url: str) -> str:
    """https://host[:port] of `url`, without the legacy "-api" host suffix SOAP may return."""
    netloc = urlsplit(url).netloc.replace("-api.", ".")
    return f"https://{netloc}"


def _soap_login(http: VendorHttp, url: str, config: SalesforceConfig) -> LoginResult:
    password = (config.password or "") + (config.security_token or "")
    body = (
        '<?xml version="1.0" encoding="utf-8" ?><env:Envelope '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:urn="urn:partner.soap.sforce.com"><env:Body><urn:login>'
        f"<urn:username>{escape(config.username or '')}</urn:username>"
        f"<urn:password>{escape(password)}</urn:password>"
        "</urn:login></env:Body></env:Envelope>"
    )
    response = http.request(
        "POST",
        url,
        what="logging in",
        data=body.encode(),
        headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": "login"},
    )
    values = _xml_values(response.content)
    session_id, server_url = values.get("sessionId"), values.get("serverUrl")
    if response.status_code == 200 and session_id and server_url:
        return LoginResult(session_id, _origin(server_url))
    code = values.get("exceptionCode") or values.get("faultcode", "").rpartition(":")[2]
    message = values.get("exceptionMessage") or values.get("faultstring") or ""
    text = redact(
        f"Salesforce login failed ({code or response.status_code}): {message}", config.secrets
    )
    if code in _RETRYABLE_FAULTS or (not code and response.status_code >= 500):
        raise RetryableError(text, code=code or None)
    raise FatalError(text, code=code or None)


def _xml_values(content: bytes) -> dict[str, str]:
    """Leaf element texts by local name (namespaces dropped); {} when it is not XML."""
    try:
        root = ElementTree.fromstring(content)
    except ElementTree.ParseError:
        return {}
    return {node.tag.rpartition("}")[2]: (node.text or "") for node in root.iter() if not len(node)}


def _token(
    http: VendorHttp, base: str, config: SalesforceConfig, form: dict[str, Any]
) -> LoginResult:
    response = http.request(
        "POST",
        f"{base}/services/oauth2/token",
        what="logging in",
        data=form,
        headers={"Accept": "application/json"},
    )
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    token, instance = body.get("access_token"), body.get("instance_url")
    if response.status_code == 200 and isinstance(token, str) and isinstance(instance, str):
        return LoginResult(token, _origin(instance))
    code = str(body.get("error") or response.status_code)
    text = redact(
        f"Salesforce login failed ({code}): {body.get('error_description') or ''}", config.secrets
    )
    if response.status_code >= 500 or response.status_code == 429:
        raise RetryableError(text, code=code)
    raise FatalError(text, code=code)
