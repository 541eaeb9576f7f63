"""The Salesforce adapter: documented responses parsed (responses), then the emulator over HTTPS."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import responses
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from responses import matchers
from simple_salesforce import Salesforce  # type: ignore[attr-defined]

from connectors.base import FieldInfo, Record, Update
from connectors.errors import ConnectorError, DailyQuotaError, FatalError, RetryableError
from connectors.salesforce import SalesforceConfig, SalesforceConnector
from connectors.salesforce_auth import jwt_assertion, jwt_audience
from connectors.sandbox.salesforce import SalesforceEmulator
from connectors.sandbox.tls import SandboxCertificates, make_certificates
from tests.connectors.harness import Harness
from tests.connectors.harness_salesforce import connector_config, running

INSTANCE = "https://acme.my.salesforce.com"
DATA = f"{INSTANCE}/services/data/v62.0"
TOKEN = "00D5g000000XyZ!AQ4AQLongSessionToken.abcdefghijklmnop"
FIELD = "Segment_Names__c"
LEAD_IDS = ["00Q5g00000AbCdEAAV", "00Q5g00000AbCdFAAV", "00Q5g00000AbCdGAAV"]


def session_connector(**overrides: Any) -> SalesforceConnector:
    """A connector on an existing session: no login call precedes the REST calls."""
    settings: dict[str, Any] = {
        "auth": "session",
        "instance_url": INSTANCE,
        "access_token": TOKEN,
        "bulk_read_threshold": None,
    }
    settings.update(overrides)
    return SalesforceConnector(SalesforceConfig(**settings))


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        yield rsps


def sent_json(call: Any) -> Any:
    return json.loads(call.request.body)


def sent_text(call: Any) -> str:
    body = call.request.body
    return body.decode() if isinstance(body, bytes) else str(body)


# -- writes: sObject Collections ---------------------------------------------------------------


def test_composite_results_keep_record_failures_apart(mocked: responses.RequestsMock) -> None:
    mocked.patch(
        f"{DATA}/composite/sobjects",
        json=[
            {"id": LEAD_IDS[0], "success": True, "errors": []},
            {
                "success": False,
                "errors": [
                    {
                        "statusCode": "UNABLE_TO_LOCK_ROW",
                        "message": "unable to obtain exclusive access to this record",
                        "fields": [],
                    }
                ],
            },
            {
                "success": False,
                "errors": [
                    {
                        "statusCode": "STRING_TOO_LONG",
                        "message": "Segment Names: data value too large: xxx (max length=255)",
                        "fields": [FIELD],
                    }
                ],
            },
        ],
    )
    connector = session_connector()
    updates = [Update(LEAD_IDS[0], "A;B"), Update(LEAD_IDS[1], "C"), Update(LEAD_IDS[2], "")]
    results = connector.write_batch("lead", FIELD, updates)
    assert [(r.record_id, r.ok, r.code) for r in results] == [
        (LEAD_IDS[0], True, None),
        (LEAD_IDS[1], False, "UNABLE_TO_LOCK_ROW"),
        (LEAD_IDS[2], False, "STRING_TOO_LONG"),
    ]
    assert results[2].message == "Segment Names: data value too large: xxx (max length=255)"
    body = sent_json(mocked.calls[0])
    assert body["allOrNone"] is False
    assert body["records"][0] == {"attributes": {"type": "Lead"}, "id": LEAD_IDS[0], FIELD: "A;B"}
    assert body["records"][2][FIELD] is None, "an empty value clears the field"
    assert mocked.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert connector.api_calls == 1


@pytest.mark.parametrize(
    "code",
    ["ENTITY_IS_DELETED", "FIELD_CUSTOM_VALIDATION_EXCEPTION", "INVALID_CROSS_REFERENCE_KEY"],
)
def test_other_record_codes_are_record_level(mocked: responses.RequestsMock, code: str) -> None:
    mocked.patch(
        f"{DATA}/composite/sobjects",
        json=[{"success": False, "errors": [{"statusCode": code, "message": "m", "fields": []}]}],
    )
    [result] = session_connector().write_batch("Lead", FIELD, [Update(LEAD_IDS[0], "v")])
    assert (result.ok, result.code, result.message) == (False, code, "m")


def test_a_record_level_invalid_field_stops_the_run(mocked: responses.RequestsMock) -> None:
    mocked.patch(
        f"{DATA}/composite/sobjects",
        json=[
            {
                "success": False,
                "errors": [{"statusCode": "INVALID_FIELD_FOR_INSERT_UPDATE", "message": "ro"}],
            }
        ],
    )
    with pytest.raises(FatalError, match="INVALID_FIELD_FOR_INSERT_UPDATE"):
        session_connector().write_batch("Lead", FIELD, [Update(LEAD_IDS[0], "v")])


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind", "code"),
    [
        (
            403,
            [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
            {},
            DailyQuotaError,
            "REQUEST_LIMIT_EXCEEDED",
        ),
        (
            403,
            [
                {
                    "message": "ConcurrentPerOrgLongTxn Limit exceeded.",
                    "errorCode": "REQUEST_LIMIT_EXCEEDED",
                }
            ],
            {},
            RetryableError,
            "REQUEST_LIMIT_EXCEEDED",
        ),
        (
            503,
            [{"message": "Server unavailable", "errorCode": "SERVER_UNAVAILABLE"}],
            {"Retry-After": "30"},
            RetryableError,
            "SERVER_UNAVAILABLE",
        ),
        (500, [{"message": "boom", "errorCode": "UNKNOWN_EXCEPTION"}], {}, RetryableError, None),
        (502, "<html>Bad gateway</html>", {}, RetryableError, None),
        (400, [{"message": "No such column", "errorCode": "INVALID_FIELD"}], {}, FatalError, None),
        (400, [{"message": "sObject type", "errorCode": "INVALID_TYPE"}], {}, FatalError, None),
        (
            400,
            [{"message": "record limit reached", "errorCode": "EXCEEDED_ID_LIMIT"}],
            {},
            FatalError,
            None,
        ),
        (
            403,
            [{"message": "API disabled", "errorCode": "API_DISABLED_FOR_ORG"}],
            {},
            FatalError,
            None,
        ),
        (404, [{"message": "not there", "errorCode": "NOT_FOUND"}], {}, FatalError, None),
    ],
)
def test_request_level_errors_are_classified_by_status_and_body(
    mocked: responses.RequestsMock,
    status: int,
    body: Any,
    headers: dict[str, str],
    kind: type[ConnectorError],
    code: str | None,
) -> None:
    payload = {"json": body} if not isinstance(body, str) else {"body": body}
    mocked.patch(f"{DATA}/composite/sobjects", status=status, headers=headers, **payload)
    with pytest.raises(kind) as raised:
        session_connector().write_batch("Lead", FIELD, [Update(LEAD_IDS[0], "v")])
    assert type(raised.value) is kind
    if code:
        assert raised.value.code == code
    if headers:
        assert isinstance(raised.value, RetryableError) and raised.value.retry_after == 30
    # No vendor exception rides along, and the session id is nowhere in the error.
    assert raised.value.__context__ is None and raised.value.__cause__ is None
    assert TOKEN not in str(raised.value)


def test_an_error_message_echoing_the_token_is_redacted(mocked: responses.RequestsMock) -> None:
    mocked.patch(
        f"{DATA}/composite/sobjects",
        status=400,
        json=[{"message": f"bad session {TOKEN}", "errorCode": "MALFORMED_REQUEST"}],
    )
    with pytest.raises(FatalError) as raised:
        session_connector().write_batch("Lead", FIELD, [Update(LEAD_IDS[0], "v")])
    assert TOKEN not in str(raised.value) and "[redacted]" in str(raised.value)


def test_an_expired_given_session_is_fatal_without_a_retry(mocked: responses.RequestsMock) -> None:
    mocked.patch(
        f"{DATA}/composite/sobjects",
        status=401,
        json=[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
    )
    connector = session_connector()
    with pytest.raises(FatalError, match="INVALID_SESSION_ID") as raised:
        connector.write_batch("Lead", FIELD, [Update(LEAD_IDS[0], "v")])
    assert raised.value.__context__ is None
    assert len(mocked.calls) == 1 and connector.api_calls == 1


@pytest.mark.parametrize(
    ("failure", "words"),
    [(requests.ConnectionError("reset"), "failed"), (requests.ReadTimeout("slow"), "timed out")],
)
def test_connection_failures_are_retryable_and_counted(
    mocked: responses.RequestsMock, failure: Exception, words: str
) -> None:
    mocked.patch(f"{DATA}/composite/sobjects", body=failure)
    connector = session_connector()
    with pytest.raises(RetryableError, match=words) as raised:
        connector.write_batch("Lead", FIELD, [Update(LEAD_IDS[0], "v")])
    assert raised.value.__context__ is None
    assert connector.api_calls == 1


def test_a_batch_naming_one_record_twice_is_refused_before_any_call() -> None:
    connector = session_connector()
    # The 15-character form and the 18-character one are the same record.
    twice = [Update(LEAD_IDS[0], "a"), Update(LEAD_IDS[0][:15], "b")]
    with pytest.raises(ValueError, match="a salesforce batch cannot update one record twice"):
        connector.write_batch("Lead", FIELD, twice)
    assert connector.api_calls == 0


def test_batches_over_200_are_refused_and_empty_ones_cost_nothing() -> None:
    connector = session_connector()
    with pytest.raises(ValueError, match="at most 200"):
        connector.write_batch("Lead", FIELD, [Update(f"00Q{n:015d}", "v") for n in range(201)])
    assert connector.write_batch("Lead", FIELD, []) == []
    assert connector.api_calls == 0


@pytest.mark.parametrize(
    "field", ["Name, (SELECT Id FROM Contacts)", "Segment_Names__c'", "a b", "_x", "x__", ""]
)
def test_field_names_are_validated_before_any_call(field: str) -> None:
    connector = session_connector()
    with pytest.raises(FatalError, match="not a valid Salesforce field name"):
        connector.read_records("Lead", field)
    with pytest.raises(FatalError):
        connector.write_batch("Lead", field, [Update(LEAD_IDS[0], "v")])
    assert connector.api_calls == 0


# -- reads and describe ------------------------------------------------------------------------


def test_query_pages_follow_next_records_url_lazily(mocked: responses.RequestsMock) -> None:
    mocked.get(
        f"{DATA}/query/",
        match=[
            matchers.query_param_matcher(
                {"q": "SELECT Id, Email, Website, Segment_Names__c FROM Lead ORDER BY Id"}
            )
        ],
        headers={"Sforce-Limit-Info": "api-usage=18/5000"},
        json={
            "totalSize": 3,
            "done": False,
            "nextRecordsUrl": "/services/data/v62.0/query/01gD0000002HU6KIAW-2000",
            "records": [
                {
                    "attributes": {"type": "Lead", "url": "/x"},
                    "Id": LEAD_IDS[0],
                    "Email": "ada@acme.example",
                    "Website": "www.acme.example",
                    "Segment_Names__c": "ICP;Tier 1",
                },
                {"Id": LEAD_IDS[1], "Email": None, "Website": None, "Segment_Names__c": None},
            ],
        },
    )
    mocked.get(
        f"{INSTANCE}/services/data/v62.0/query/01gD0000002HU6KIAW-2000",
        headers={"Sforce-Limit-Info": "api-usage=19/5000"},
        json={
            "totalSize": 3,
            "done": True,
            "records": [{"Id": LEAD_IDS[2], "Email": "x@y.example"}],
        },
    )
    connector = session_connector()
    records = connector.read_records("Lead", FIELD)
    assert len(mocked.calls) == 0, "nothing is fetched before the first record is asked for"
    first = next(records)
    assert first == Record(
        id=LEAD_IDS[0], value="ICP;Tier 1", email="ada@acme.example", website="www.acme.example"
    )
    next(records)
    assert len(mocked.calls) == 1
    assert connector.quota is not None and (connector.quota.used, connector.quota.limit) == (
        18,
        5000,
    )
    rest = list(records)
    assert [r.id for r in rest] == [LEAD_IDS[2]] and rest[0].value is None
    assert connector.quota.used == 19 and connector.quota.period == "daily"


def test_contacts_and_accounts_carry_their_account_link(mocked: responses.RequestsMock) -> None:
    mocked.get(
        f"{DATA}/query/",
        match=[
            matchers.query_param_matcher(
                {"q": "SELECT Id, Email, AccountId, segment_names__c FROM Contact ORDER BY Id"}
            )
        ],
        json={
            "totalSize": 1,
            "done": True,
            "records": [
                {
                    "Id": "0035g0000001",
                    "Email": "a@b.example",
                    "AccountId": "0015g0000009",
                    "Segment_Names__c": "S",
                }
            ],
        },
    )
    mocked.get(
        f"{DATA}/query/",
        match=[
            matchers.query_param_matcher(
                {"q": "SELECT Id, Website, Segment_Names__c FROM Account ORDER BY Id"}
            )
        ],
        json={
            "totalSize": 1,
            "done": True,
            "records": [{"Id": "0015g0000009", "Website": "b.example"}],
        },
    )
    connector = session_connector()
    # The configured spelling of the field may differ in case from Salesforce's.
    [contact] = connector.read_records("Contact", "segment_names__c")
    assert contact == Record(
        "0035g0000001", "S", email="a@b.example", linked_account_id="0015g0000009"
    )
    [account] = connector.read_records("Account", FIELD)
    assert account == Record(
        "0015g0000009", None, website="b.example", linked_account_id="0015g0000009"
    )


def test_a_small_read_is_one_query_whose_first_page_decides_against_bulk(
    mocked: responses.RequestsMock,
) -> None:
    mocked.get(
        f"{DATA}/query/",
        match=[
            matchers.query_param_matcher(
                {
                    "q": "SELECT Id, Email, Website, Segment_Names__c FROM Lead "
                    "WHERE SystemModstamp > 2024-05-01T12:00:00+00:00 ORDER BY Id"
                }
            )
        ],
        json={"totalSize": 0, "done": True, "records": []},
    )
    connector = session_connector(bulk_read_threshold=200_000)
    since = dt.datetime(2024, 5, 1, 14, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert list(connector.read_records("Lead", FIELD, modified_since=since)) == []
    assert len(mocked.calls) == 1  # no COUNT() first: an unchanged CRM costs one call
    with pytest.raises(ValueError, match="timezone-aware"):
        connector.read_records("Lead", FIELD, modified_since=dt.datetime(2024, 5, 1))


def test_describe_reports_the_field_or_names_the_missing_one(
    mocked: responses.RequestsMock,
) -> None:
    mocked.get(
        f"{DATA}/sobjects/Lead/describe",
        json={
            "name": "Lead",
            "fields": [
                {"name": "Id", "type": "id", "length": 18, "updateable": False, "label": "Lead ID"},
                {
                    "name": "Segment_Names__c",
                    "type": "string",
                    "length": 255,
                    "updateable": True,
                    "label": "Segment Names",
                },
                {"name": "Score__c", "type": "double", "length": 0, "updateable": True},
            ],
        },
    )
    connector = session_connector()
    assert connector.describe_field("Lead", "segment_names__c") == FieldInfo(
        "Lead", "Segment_Names__c", "string", 255, True, "Segment Names"
    )
    assert connector.describe_field("Lead", "Score__c").max_length is None
    with pytest.raises(FatalError, match="^field Segment_Names_X__c not found on Lead$"):
        connector.describe_field("Lead", "Segment_Names_X__c")


# -- logins ------------------------------------------------------------------------------------

SOAP_OK = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns="urn:partner.soap.sforce.com"><soapenv:Body><loginResponse><result>
<passwordExpired>false</passwordExpired>
<serverUrl>https://na1-api.salesforce.com/services/Soap/u/62.0/00D5g000000XyZ</serverUrl>
<sessionId>{token}</sessionId><userId>005D0000000nVYVIA2</userId>
</result></loginResponse></soapenv:Body></soapenv:Envelope>"""

SOAP_FAULT = """<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope
 xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:sf="urn:fault.partner.soap.sforce.com"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>
<faultcode>sf:INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid username, password,
 security token; or user locked out.</faultstring><detail><sf:LoginFault xsi:type="sf:LoginFault">
<sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode><sf:exceptionMessage>Invalid username,
 password, security token; or user locked out.</sf:exceptionMessage></sf:LoginFault></detail>
</soapenv:Fault></soapenv:Body></soapenv:Envelope>"""


def password_connector(**overrides: Any) -> SalesforceConnector:
    settings: dict[str, Any] = {
        "username": "ops@acme.example",
        "password": "pa<ss&word",
        "security_token": "TOKEN123456",
        "bulk_read_threshold": None,
    }
    settings.update(overrides)
    return SalesforceConnector(SalesforceConfig(**settings))


def test_soap_login_uses_server_url_without_the_api_suffix(mocked: responses.RequestsMock) -> None:
    mocked.post(
        "https://test.salesforce.com/services/Soap/u/62.0",
        body=SOAP_OK.format(token=TOKEN),
        content_type="text/xml",
    )
    mocked.get(
        "https://na1.salesforce.com/services/data/v62.0/limits/",
        json={"DailyApiRequests": {"Max": 15000, "Remaining": 14000}},
    )
    connector = password_connector(login_url="https://test.salesforce.com")
    connector.check_credentials()
    body = sent_text(mocked.calls[0])
    assert "<urn:password>pa&lt;ss&amp;wordTOKEN123456</urn:password>" in body
    assert mocked.calls[0].request.headers["SOAPAction"] == "login"
    assert mocked.calls[1].request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert connector.api_calls == 2
    assert connector.quota is not None and (connector.quota.used, connector.quota.limit) == (
        1000,
        15000,
    )


def test_a_soap_login_fault_is_fatal_and_names_the_code(mocked: responses.RequestsMock) -> None:
    mocked.post(
        "https://login.salesforce.com/services/Soap/u/62.0",
        status=500,
        body=SOAP_FAULT,
        content_type="text/xml",
    )
    with pytest.raises(FatalError, match=r"\(INVALID_LOGIN\): Invalid username") as raised:
        password_connector().check_credentials()
    assert raised.value.code == "INVALID_LOGIN" and raised.value.__context__ is None
    assert "pa<ss&word" not in str(raised.value) and "TOKEN123456" not in str(raised.value)


def test_a_login_server_outage_is_retryable(mocked: responses.RequestsMock) -> None:
    mocked.post("https://login.salesforce.com/services/Soap/u/62.0", status=503, body="down")
    with pytest.raises(RetryableError):
        password_connector().check_credentials()


def test_oauth_password_grant_errors_and_success(mocked: responses.RequestsMock) -> None:
    url = "https://acme.my.salesforce.com/services/oauth2/token"
    mocked.post(
        url,
        status=400,
        json={"error": "invalid_grant", "error_description": "authentication failure"},
    )
    connector = password_connector(
        login_url="https://acme.my.salesforce.com",
        client_id="3MVGabc",
        client_secret="s3cr3t-value",
    )
    with pytest.raises(FatalError, match=r"invalid_grant\): authentication failure"):
        connector.check_credentials()
    form = parse_qs(sent_text(mocked.calls[0]))
    assert form["password"] == ["pa<ss&wordTOKEN123456"]
    assert form["grant_type"] == ["password"] and form["client_id"] == ["3MVGabc"]
    mocked.replace(
        responses.POST,
        url,
        json={"access_token": TOKEN, "instance_url": INSTANCE, "token_type": "Bearer"},
    )
    mocked.get(f"{DATA}/limits/", json={})
    connector.check_credentials()


def test_client_credentials_login_posts_the_client_pair(mocked: responses.RequestsMock) -> None:
    mocked.post(
        "https://acme.my.salesforce.com/services/oauth2/token",
        match=[
            matchers.urlencoded_params_matcher(
                {
                    "grant_type": "client_credentials",
                    "client_id": "3MVGabc",
                    "client_secret": "s3cr3t",
                }
            )
        ],
        json={"access_token": TOKEN, "instance_url": INSTANCE},
    )
    mocked.get(f"{DATA}/limits/", json={})
    SalesforceConnector(
        SalesforceConfig(
            auth="client_credentials",
            client_id="3MVGabc",
            client_secret="s3cr3t",
            login_url="https://acme.my.salesforce.com",
        )
    ).check_credentials()


def _rsa_pem() -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return key, pem


def test_jwt_assertion_is_rs256_signed_with_the_documented_claims() -> None:
    key, pem = _rsa_pem()
    config = SalesforceConfig(
        auth="jwt",
        client_id="3MVGabc",
        username="ops@acme.example",
        private_key=pem,
        login_url="https://test.salesforce.com",
    )
    header, claims, signature = jwt_assertion(config).split(".")

    def decode(part: str) -> bytes:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    assert json.loads(decode(header))["alg"] == "RS256"
    body = json.loads(decode(claims))
    assert (body["iss"], body["sub"], body["aud"]) == (
        "3MVGabc",
        "ops@acme.example",
        "https://test.salesforce.com",
    )
    assert 0 < body["exp"] - dt.datetime.now(dt.UTC).timestamp() <= 180
    key.public_key().verify(
        decode(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256()
    )


@pytest.mark.parametrize(
    ("login_url", "audience"),
    [
        ("https://login.salesforce.com", "https://login.salesforce.com"),
        ("https://test.salesforce.com", "https://test.salesforce.com"),
        ("https://acme.my.salesforce.com", "https://login.salesforce.com"),
        ("https://acme--uat.sandbox.my.salesforce.com", "https://test.salesforce.com"),
        ("https://127.0.0.1:8443/", "https://127.0.0.1:8443"),
    ],
)
def test_jwt_audience_follows_the_login_host(login_url: str, audience: str) -> None:
    config = SalesforceConfig(
        auth="jwt", client_id="c", username="u", private_key="k", login_url=login_url
    )
    assert jwt_audience(config) == audience


def test_an_unusable_jwt_key_is_fatal_before_any_call() -> None:
    connector = SalesforceConnector(
        SalesforceConfig(auth="jwt", client_id="c", username="u", private_key="not a key")
    )
    with pytest.raises(FatalError, match="PEM RSA key"):
        connector.check_credentials()
    assert connector.api_calls == 0


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"auth": "oauth"}, "auth must be one of"),
        ({"username": "u"}, "needs password"),
        ({"auth": "session", "access_token": "t"}, "needs instance_url"),
        ({"auth": "client_credentials", "client_id": "c"}, "needs client_secret"),
        (
            {"username": "u", "password": "p", "login_url": "http://login.salesforce.com"},
            "https://",
        ),
        ({"username": "u", "password": "p", "api_version": "v59.0"}, "api_version"),
    ],
)
def test_config_refuses_incomplete_or_unsafe_settings(settings: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        SalesforceConfig(**settings)


def test_config_and_connector_repr_hide_secrets() -> None:
    config = SalesforceConfig(
        username="u", password="hunter2-pw", security_token="tok-123456", client_secret="cs-99999"
    )
    text = repr(config) + repr(SalesforceConnector(config))
    assert "hunter2-pw" not in text and "tok-123456" not in text and "cs-99999" not in text
    assert "username='u'" in text


def test_a_ca_bundle_is_used_instead_of_the_environment() -> None:
    connector = SalesforceConnector(
        SalesforceConfig(username="u", password="p", ca_bundle="/etc/segsync/ca.pem")
    )
    http = connector._http.session
    assert http.verify == "/etc/segsync/ca.pem" and http.trust_env is False
    default = SalesforceConnector(SalesforceConfig(username="u", password="p"))._http.session
    assert default.trust_env is True


# -- against the emulator over HTTPS -----------------------------------------------------------


@pytest.fixture
def org(sandbox_certificates: SandboxCertificates) -> Iterator[SalesforceEmulator]:
    emulator = SalesforceEmulator(records=3)
    with running(emulator, sandbox_certificates):
        yield emulator


def test_the_default_api_version_is_a_current_one_the_org_serves(
    org: SalesforceEmulator, sandbox_certificates: SandboxCertificates
) -> None:
    info = org.describe()
    config = SalesforceConfig(
        username=info["username"],
        password=info["password"],
        security_token=info["security_token"],
        login_url=info["login_url"],
        ca_bundle=str(sandbox_certificates.ca_bundle),
    )
    assert config.api_version == "62.0"
    connector = SalesforceConnector(config)
    assert len(list(connector.read_records("Lead", FIELD))) == 3
    assert org.calls["POST /services/Soap/u/62.0"] == 1
    assert org.calls["GET /services/data/v62.0/query"] >= 1


def live(
    org: SalesforceEmulator, certificates: SandboxCertificates, **overrides: Any
) -> SalesforceConnector:
    return SalesforceConnector(connector_config(org, certificates, **overrides))


def _certificate(key: rsa.RSAPrivateKey) -> bytes:
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(x509.Name([]))
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(dt.datetime(2020, 1, 1))
        .not_valid_after(dt.datetime(2040, 1, 1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def _auth_settings(org: SalesforceEmulator, method: str, valid: bool) -> dict[str, Any]:
    info = org.describe()
    wrong = "" if valid else "-wrong"
    if method == "soap":
        return {"password": info["password"] + wrong}
    if method == "oauth_password":
        return {"client_id": info["client_id"], "client_secret": info["client_secret"] + wrong}
    if method == "jwt":
        key, pem = _rsa_pem()
        org.trust_jwt_certificate(_certificate(key))
        if not valid:
            pem = _rsa_pem()[1]  # a key the org does not trust
        return {"auth": "jwt", "client_id": info["client_id"], "private_key": pem}
    if method == "client_credentials":
        return {
            "auth": "client_credentials",
            "client_id": info["client_id"],
            "client_secret": info["client_secret"] + wrong,
        }
    return {
        "auth": "session",
        "instance_url": info["instance_url"],
        "access_token": info["access_token"] + wrong,
    }


AUTH_METHODS = ["soap", "oauth_password", "jwt", "client_credentials", "session"]


@pytest.mark.parametrize("method", AUTH_METHODS)
def test_every_login_method_reads_and_writes(
    org: SalesforceEmulator, sandbox_certificates: SandboxCertificates, method: str
) -> None:
    connector = live(org, sandbox_certificates, **_auth_settings(org, method, valid=True))
    connector.check_credentials()
    records = list(connector.read_records("Contact", FIELD))
    assert len(records) == 3 and all(r.linked_account_id and r.email for r in records)
    [result] = connector.write_batch("Contact", FIELD, [Update(records[0].id, "ICP")])
    assert result.ok and org.record("Contact", records[0].id)[FIELD] == "ICP"


@pytest.mark.parametrize("method", AUTH_METHODS)
def test_every_login_method_refuses_bad_credentials(
    org: SalesforceEmulator, sandbox_certificates: SandboxCertificates, method: str
) -> None:
    connector = live(org, sandbox_certificates, **_auth_settings(org, method, valid=False))
    with pytest.raises(FatalError) as raised:
        connector.check_credentials()
    assert raised.value.code in (
        "INVALID_LOGIN",
        "invalid_client",
        "invalid_grant",
        "INVALID_SESSION_ID",
    )


def test_simple_salesforce_works_against_the_emulator_unchanged(
    org: SalesforceEmulator, sandbox_certificates: SandboxCertificates
) -> None:
    info = org.describe()
    http = requests.Session()
    http.verify = str(sandbox_certificates.ca_bundle)
    http.trust_env = False
    sf: Any = Salesforce(
        instance_url=info["instance_url"], session_id=info["access_token"], session=http
    )
    leads = sf.query_all("SELECT Id, Email FROM Lead")["records"]
    assert len(leads) == 3 and sf.api_usage["api-usage"].total == org.daily_api_limit
    assert sf.Lead.describe()["name"] == "Lead"
    sf.bulk2.Lead.update(records=[{"Id": leads[0]["Id"], FIELD: "bulk"}], wait=0)
    assert org.record("Lead", leads[0]["Id"])[FIELD] == "bulk"
    http.close()


def test_paging_over_2000_records_costs_one_call_per_page(
    org: SalesforceEmulator, sandbox_certificates: SandboxCertificates
) -> None:
    ids = org.add_records("Lead", [{"LastName": f"p{n}"} for n in range(4500)])
    connector = live(org, sandbox_certificates)
    read = [r.id for r in connector.read_records("Lead", FIELD)]
    assert read[3:] == ids and len(set(read)) == len(read) == 4503
    assert connector.api_calls == 1 + 3  # login, three pages (the first also says how many)


def test_a_session_expiring_mid_read_is_renewed(
    org: SalesforceEmulator, sandbox_certificates: SandboxCertificates
) -> None:
    org.add_records("Lead", [{"LastName": f"p{n}"} for n in range(2500)])
    connector = live(org, sandbox_certificates)
    records = connector.read_records("Lead", FIELD)
    first = [next(records) for _ in range(2000)]
    org.faults.inject("expire_token")
    rest = list(records)
    assert len(first) + len(rest) == 2503
    assert org.calls["POST /services/Soap/u/62.0"] == 2


def test_bulk_query_is_used_for_large_objects_and_survives_expiry(
    org: SalesforceEmulator, sandbox_certificates: SandboxCertificates
) -> None:
    ids = org.add_records("Lead", [{"LastName": f"b{n}", FIELD: f"v{n}"} for n in range(2500)])
    connector = live(org, sandbox_certificates, bulk_read_threshold=1000, bulk_page_size=1000)
    records = connector.read_records("Lead", FIELD)
    first = next(records)
    org.faults.inject("expire_token")
    rest = list(records)
    by_id = {r.id: r for r in [first, *rest]}
    assert len(by_id) == 2503 and by_id[ids[7]].value == "v7"
    assert by_id[next(iter(org.store.records["Lead"]))].email.endswith("@company1.com")  # type: ignore[union-attr]
    assert org.calls["POST /services/data/v62.0/jobs/query"] == 1
    assert org.calls["GET /services/data/v62.0/jobs/query/{id}/results"] == 4  # 3 pages + retry
    assert org.calls["POST /services/Soap/u/62.0"] == 2


def test_a_bulk_result_page_that_fails_briefly_is_fetched_again_by_its_locator(
    org: SalesforceEmulator,
    sandbox_certificates: SandboxCertificates,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    org.add_records("Lead", [{"LastName": f"b{n}"} for n in range(2500)])
    connector = live(org, sandbox_certificates, bulk_read_threshold=1000, bulk_page_size=1000)
    waits: list[float] = []
    monkeypatch.setattr("connectors.base.time.sleep", waits.append)
    records = connector.read_records("Lead", FIELD)
    first = next(records)
    org.faults.inject("server_error")  # the second result page fails once

    rest = list(records)

    # One wait of 1 s before the page is asked again (the others are the job's status polls).
    assert len({r.id for r in [first, *rest]}) == 2503 and waits.count(1.0) == 1
    assert org.calls["POST /services/data/v62.0/jobs/query"] == 1  # the job is not made again
    assert org.calls["GET /services/data/v62.0/jobs/query/{id}/results"] == 4  # 3 pages + 1


def test_write_bulk_reads_failures_back_and_renews_an_expired_session(
    org: SalesforceEmulator,
    sandbox_certificates: SandboxCertificates,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = org.add_records("Lead", [{"LastName": f"w{n}", FIELD: "old"} for n in range(6)])
    org.delete_record("Lead", ids[4])
    org.faults.inject("record_failure", record_ids=[ids[5]])
    upload = org.bulk._upload

    def upload_then_expire(*args: Any) -> Any:
        # The session dies between uploading the data and closing the job.
        answer = upload(*args)
        org.faults.inject("expire_token")
        return answer

    monkeypatch.setattr(org.bulk, "_upload", upload_then_expire)
    connector = live(org, sandbox_certificates)
    assert connector.prefers_bulk(2001) and not connector.prefers_bulk(2000)
    updates = [
        Update(ids[0], "A;B"),
        Update(ids[1], ""),
        Update(ids[2], "x" * 256),
        Update(ids[3], 'new, with "quotes"\nand a newline'),
        Update(ids[4], "v"),
        Update(ids[5], "v"),
    ]
    results = connector.write_bulk("Lead", FIELD, updates)
    assert [(r.record_id, r.ok, r.code) for r in results] == [
        (ids[0], True, None),
        (ids[1], True, None),
        (ids[2], False, "STRING_TOO_LONG"),
        (ids[3], True, None),
        (ids[4], False, "ENTITY_IS_DELETED"),
        (ids[5], False, "UNABLE_TO_LOCK_ROW"),
    ]
    assert "max length=255" in (results[2].message or "")
    assert [org.record("Lead", i)[FIELD] for i in ids[:4]] == [
        "A;B",
        None,
        "old",
        'new, with "quotes"\nand a newline',
    ]
    assert sorted(w.record_id for w in org.writes) == sorted([*ids[:2], ids[3]])
    assert org.calls["POST /services/data/v62.0/jobs/ingest"] == 1
    assert org.calls["POST /services/Soap/u/62.0"] == 2


def test_write_bulk_with_an_unknown_field_is_fatal(
    org: SalesforceEmulator, sandbox_certificates: SandboxCertificates
) -> None:
    [lead] = list(org.store.records["Lead"])[:1]
    with pytest.raises(FatalError, match="Field name not found : Nope__c"):
        live(org, sandbox_certificates).write_bulk("Lead", "Nope__c", [Update(lead, "v")])


def test_quota_is_reported_and_a_spent_day_is_its_own_error(
    org: SalesforceEmulator, sandbox_certificates: SandboxCertificates
) -> None:
    org.daily_api_limit = 2
    connector = live(org, sandbox_certificates)
    list(connector.read_records("Lead", FIELD))  # one query page
    assert connector.quota is not None and (connector.quota.used, connector.quota.limit) == (1, 2)
    connector.describe_field("Lead", FIELD)
    with pytest.raises(DailyQuotaError, match="TotalRequests"):
        connector.describe_field("Lead", FIELD)
    assert connector.quota.used == 2


def test_modified_since_reads_only_newer_records(
    org: SalesforceEmulator, sandbox_certificates: SandboxCertificates
) -> None:
    [new] = org.add_records("Lead", [{"LastName": "new"}])
    since = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
    assert [
        r.id
        for r in live(org, sandbox_certificates).read_records("Lead", FIELD, modified_since=since)
    ] == [new]


def test_describe_reports_lengths_from_the_emulator(
    org: SalesforceEmulator, sandbox_certificates: SandboxCertificates
) -> None:
    connector = live(org, sandbox_certificates)
    assert connector.describe_field("Account", "Segment_Names_Long__c").max_length == 32768
    assert connector.describe_field("Lead", "Segment_Picklist__c").type == "multipicklist"
    assert connector.describe_field("Contact", "Id").writable is False


def test_requests_ca_bundle_in_the_environment_does_not_override_the_config(
    org: SalesforceEmulator,
    sandbox_certificates: SandboxCertificates,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = make_certificates(tmp_path / "other")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other.ca_bundle))
    plain = requests.Session()
    plain.verify = str(sandbox_certificates.ca_bundle)
    with pytest.raises(requests.exceptions.SSLError):
        plain.get(f"{org.base_url}/services/data/v62.0/limits")  # psf/requests#3829
    plain.close()
    live(org, sandbox_certificates).check_credentials()


def test_the_contract_harness_is_wired_to_its_emulator(salesforce_harness: Harness) -> None:
    harness = salesforce_harness
    emulator = harness.emulator
    assert isinstance(emulator, SalesforceEmulator)
    ids = harness.add_records(3)
    assert all(i.startswith("00Q") for i in ids) and harness.stored_value(ids[0]) is None
    connector = harness.make_connector()
    described = connector.describe_field(harness.object_type, harness.field)
    assert (described.name, described.max_length) == (harness.field, harness.field_max_length)
    [result] = connector.write_batch(harness.object_type, harness.field, [Update(ids[0], "S")])
    assert result.ok and harness.stored_value(ids[0]) == "S"
    with pytest.raises(FatalError, match="INVALID_LOGIN"):
        harness.make_connector(valid=False).check_credentials()
    info = emulator.describe()
    assert {info["password"], info["security_token"], info["access_token"]} <= set(harness.secrets)
    assert harness.page_size == 2000


# -- read_values: a retried batch reads its records back ---------------------------------------


def test_read_values_is_one_id_query_mapped_back_to_the_ids_given(
    mocked: responses.RequestsMock,
) -> None:
    short = LEAD_IDS[1][:15]  # 15-character ids are answered with their 18-character form
    soql = (
        f"SELECT Id, {FIELD} FROM Lead WHERE Id IN "
        f"('{LEAD_IDS[0]}','{short}','{LEAD_IDS[2]}','00Q5g00000AbCdZAAV')"
    )
    mocked.get(
        f"{DATA}/query/",
        match=[matchers.query_param_matcher({"q": soql})],
        json={
            "totalSize": 3,
            "done": True,
            "records": [
                {"attributes": {"type": "Lead"}, "Id": LEAD_IDS[0], "Segment_Names__c": "A;B"},
                {"attributes": {"type": "Lead"}, "Id": LEAD_IDS[1], "Segment_Names__c": None},
                # The field's case as describe spells it, not as configured.
                {"attributes": {"type": "Lead"}, "Id": LEAD_IDS[2], "segment_names__C": ""},
            ],
        },
    )
    connector = session_connector()
    asked = [LEAD_IDS[0], short, LEAD_IDS[2], "00Q5g00000AbCdZAAV", LEAD_IDS[0]]

    values = connector.read_values("lead", FIELD, asked)

    # The deleted (unanswered) id is absent; null and "" are both None.
    assert values == {LEAD_IDS[0]: "A;B", short: None, LEAD_IDS[2]: None}
    assert connector.api_calls == 1


def test_read_values_of_the_id_field_selects_it_once(mocked: responses.RequestsMock) -> None:
    mocked.get(
        f"{DATA}/query/",
        match=[
            matchers.query_param_matcher(
                {"q": f"SELECT Id FROM Lead WHERE Id IN ('{LEAD_IDS[0]}')"}
            )
        ],
        json={"totalSize": 1, "done": True, "records": [{"Id": LEAD_IDS[0]}]},
    )
    assert session_connector().read_values("Lead", "Id", [LEAD_IDS[0]]) == {
        LEAD_IDS[0]: LEAD_IDS[0]
    }


@pytest.mark.parametrize(
    "bad_id", ["00Q5g00000AbCd", "00Q5g00000AbCdEAA", "00Q5g00000AbCd'", "00Q5g00000AbC E", ""]
)
def test_read_values_refuses_what_cannot_be_an_id_before_any_call(bad_id: str) -> None:
    connector = session_connector()
    with pytest.raises(ValueError, match="not a Salesforce record id"):
        connector.read_values("Lead", FIELD, [LEAD_IDS[0], bad_id])
    assert connector.api_calls == 0


def test_read_values_over_200_ids_or_none_cost_nothing() -> None:
    connector = session_connector()
    with pytest.raises(ValueError, match="batch takes at most 200"):
        connector.read_values("Lead", FIELD, [f"00Q5g{n:010d}" for n in range(201)])
    with pytest.raises(FatalError, match="not a valid Salesforce field name"):
        connector.read_values("Lead", "Name, Email", [LEAD_IDS[0]])
    assert connector.read_values("Lead", FIELD, []) == {}
    assert connector.api_calls == 0


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (400, "INVALID_FIELD", FatalError),
        (400, "INVALID_QUERY_FILTER_OPERATOR", FatalError),
        (503, "SERVER_UNAVAILABLE", RetryableError),
    ],
)
def test_read_values_errors_are_classified_like_other_calls(
    mocked: responses.RequestsMock,
    status: int,
    code: str,
    kind: type[ConnectorError],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A retryable answer is asked again after 1, 2 and 4 s (connectors.base): noted, not slept.
    waits: list[float] = []
    monkeypatch.setattr("connectors.base.time.sleep", waits.append)
    mocked.get(f"{DATA}/query/", status=status, json=[{"message": "m", "errorCode": code}])
    with pytest.raises(kind) as raised:
        session_connector().read_values("Lead", FIELD, [LEAD_IDS[0]])
    assert raised.value.code == code and raised.value.__context__ is None
    assert waits == ([1.0, 2.0, 4.0] if kind is RetryableError else [])


def test_read_values_against_the_emulator_after_a_write(
    org: SalesforceEmulator, sandbox_certificates: SandboxCertificates
) -> None:
    ids = org.add_records("Lead", [{"LastName": f"r{n}"} for n in range(200)])
    connector = live(org, sandbox_certificates)
    connector.write_batch("Lead", FIELD, [Update(i, f"S{n}") for n, i in enumerate(ids[:150])])
    org.delete_record("Lead", ids[0])
    org.reset()
    asked = [ids[0], ids[1][:15], *ids[2:]]

    values = connector.read_values("Lead", FIELD, asked)

    assert ids[0] not in values
    assert values[ids[1][:15]] == "S1"
    assert values == {
        record_id: (f"S{n + 1}" if n + 1 < 150 else None) for n, record_id in enumerate(asked[1:])
    }
    assert sum(org.calls.values()) == 1, org.calls
