"""The Salesforce emulator's API user: credentials, sessions, SOAP login and OAuth token flows."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import xml.etree.ElementTree as ElementTree
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from connectors.sandbox.server import Request, Response

ORG_ID = "00D5g000000SgSyEAK"
USER_ID = "0055g000000SgSyAAK"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_BAD_LOGIN = "Invalid username, password, security token; or user locked out."
_SOAP_FAULT = (
    '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
    'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:sf="urn:fault.partner.soap.sforce.com" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>'
    "<faultcode>sf:{code}</faultcode><faultstring>{code}: {message}</faultstring><detail>"
    '<sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>{code}</sf:exceptionCode>'
    "<sf:exceptionMessage>{message}</sf:exceptionMessage></sf:LoginFault></detail>"
    "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
)


class ApiUser:
    """The org's API user and its connected app, with random credentials per emulator.

    JWT bearer assertions are checked for an RS256 header, iss = client_id, sub = username, an
    audience of login/test.salesforce.com or the emulator's own URL and an unexpired exp; the
    signature is verified too once `trust_jwt_certificate()` has been given the app's key.
    """

    def __init__(self) -> None:
        self.username = "sandbox-user@segsync.example"
        self.password = f"pw-{secrets.token_hex(8)}"
        self.security_token = secrets.token_hex(12)
        self.client_id = f"3MVG9{secrets.token_hex(20)}"
        self.client_secret = secrets.token_hex(32)
        self._signing_key = secrets.token_bytes(32)
        self._jwt_key: rsa.RSAPublicKey | None = None
        self._sessions: set[str] = set()
        self._session: str | None = None

    def session(self) -> str:
        """The user's valid session, started if there is none."""
        # Salesforce hands a user's valid session back on a new login instead of minting another.
        if self._session is None:
            self._session = f"{ORG_ID}!{secrets.token_urlsafe(72)}"
            self._sessions.add(self._session)
        return self._session

    def expire_sessions(self) -> None:
        """Every session issued so far stops working."""
        self._sessions.clear()
        self._session = None

    def authorized(self, authorization: str) -> bool:
        """Whether an Authorization header carries a valid session ("Bearer" or "OAuth")."""
        scheme, _, token = authorization.partition(" ")
        return scheme.lower() in ("bearer", "oauth") and token.strip() in self._sessions

    def trust_jwt_certificate(self, pem: bytes) -> None:
        """Verify JWT bearer signatures with this X.509 certificate or PEM public key."""
        key = (
            x509.load_pem_x509_certificate(pem).public_key()
            if b"CERTIFICATE" in pem
            else serialization.load_pem_public_key(pem)
        )
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("JWT bearer signatures are RS256: the key must be RSA")
        self._jwt_key = key

    def soap_login(self, request: Request, base_url: str) -> Response:
        """The partner SOAP `login()` call; a LoginFault with HTTP 500 when refused."""
        try:
            root = ElementTree.fromstring(request.body)
        except ElementTree.ParseError:
            return _soap_fault("INVALID_LOGIN", _BAD_LOGIN)
        values = {element.tag.rpartition("}")[2]: element.text or "" for element in root.iter()}
        password_ok = hmac.compare_digest(
            values.get("password", ""), self.password + self.security_token
        )
        if values.get("username") != self.username or not password_ok:
            return _soap_fault("INVALID_LOGIN", _BAD_LOGIN)
        version = request.path.rstrip("/").rpartition("/")[2]
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
            "<loginResponse><result>"
            f"<metadataServerUrl>{base_url}/services/Soap/m/{version}/{ORG_ID}"
            "</metadataServerUrl><passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
            f"<serverUrl>{base_url}/services/Soap/u/{version}/{ORG_ID}</serverUrl>"
            f"<sessionId>{escape(self.session())}</sessionId><userId>{USER_ID}</userId>"
            f"<userInfo><organizationId>{ORG_ID}</organizationId><userId>{USER_ID}</userId>"
            f"<userName>{escape(self.username)}</userName></userInfo>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return Response(200, body, content_type="text/xml;charset=UTF-8")

    def oauth_token(self, request: Request, base_url: str) -> Response:
        """`/services/oauth2/token` for the password, client_credentials and JWT bearer grants."""
        form = {key: values[0] for key, values in parse_qs(request.body.decode()).items()}
        grant = form.get("grant_type", "")
        if grant == "password":
            if form.get("client_id") != self.client_id:
                return _oauth_error("invalid_client_id", "client identifier invalid")
            if not hmac.compare_digest(form.get("client_secret", ""), self.client_secret):
                return _oauth_error("invalid_client", "invalid client credentials")
            password_ok = hmac.compare_digest(
                form.get("password", ""), self.password + self.security_token
            )
            if form.get("username") != self.username or not password_ok:
                return _oauth_error("invalid_grant", "authentication failure")
        elif grant == "client_credentials":
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
            scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() == "basic":
                try:
                    client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
                except ValueError:
                    client_id = secret = ""
            if client_id != self.client_id or not hmac.compare_digest(secret, self.client_secret):
                return _oauth_error("invalid_client", "invalid client credentials")
        elif grant == JWT_GRANT:
            refused = self._check_jwt(form.get("assertion", ""), base_url)
            if refused is not None:
                return _oauth_error(*refused)
        else:
            return _oauth_error("unsupported_grant_type", "grant type not supported")
        issued = str(int(time.time() * 1000))
        signature = hmac.new(self._signing_key, f"{base_url}{issued}".encode(), hashlib.sha256)
        body: dict[str, Any] = {
            "access_token": self.session(),
            "instance_url": base_url,
            "id": f"{base_url}/id/{ORG_ID}/{USER_ID}",
            "token_type": "Bearer",
            "issued_at": issued,
            "signature": base64.b64encode(signature.digest()).decode(),
        }
        if grant != "password":
            body["scope"] = "api"
        return Response(200, body)

    def _check_jwt(self, assertion: str, base_url: str) -> tuple[str, str] | None:
        """None if the assertion is acceptable, else (error, error_description)."""
        invalid = ("invalid_grant", "invalid assertion")
        parts = assertion.split(".")
        if len(parts) != 3:
            return invalid
        try:
            header = json.loads(_unb64(parts[0]))
            claims = json.loads(_unb64(parts[1]))
            signature = _unb64(parts[2])
        except ValueError:
            return invalid
        if not isinstance(header, dict) or header.get("alg") != "RS256" or not signature:
            return invalid
        if not isinstance(claims, dict) or claims.get("iss") != self.client_id:
            return ("invalid_client_id", "client identifier invalid")
        audiences = {base_url, "https://login.salesforce.com", "https://test.salesforce.com"}
        if str(claims.get("aud", "")).rstrip("/") not in audiences:
            return ("invalid_grant", "audience is invalid")
        if claims.get("sub") != self.username:
            return ("invalid_grant", "user hasn't approved this consumer")
        try:
            expired = float(claims.get("exp", 0)) < time.time()
        except (TypeError, ValueError):
            expired = True
        if expired:
            return invalid
        if self._jwt_key is not None:
            try:
                self._jwt_key.verify(
                    signature,
                    f"{parts[0]}.{parts[1]}".encode(),
                    padding.PKCS1v15(),
                    hashes.SHA256(),
                )
            except InvalidSignature:
                return invalid
        return None


def _oauth_error(error: str, description: str) -> Response:
    return Response(400, {"error": error, "error_description": description})


def _soap_fault(code: str, message: str) -> Response:
    # Salesforce answers a failed SOAP login with HTTP 500 and a LoginFault.
    body = _SOAP_FAULT.format(code=code, message=escape(message))
    return Response(500, body, content_type="text/xml;charset=UTF-8")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
