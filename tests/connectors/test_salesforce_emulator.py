"""The Salesforce emulator itself, spoken to over HTTPS the way Salesforce is spoken to."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from connectors.sandbox.salesforce import SalesforceEmulator
from connectors.sandbox.salesforce_store import KEY_PREFIXES, with_checksum
from connectors.sandbox.tls import SandboxCertificates
from tests.connectors.harness_salesforce import running

DATA = "/services/data/v59.0"
FIELD = "Segment_Names__c"


@dataclass
class Org:
    """A running emulator and an HTTPS session that trusts it."""

    emulator: SalesforceEmulator
    http: requests.Session

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        """A request with the user's current session (or `token`)."""
        headers = {
            "Authorization": f"Bearer {token or self.emulator.describe()['access_token']}",
            **kwargs.pop("headers", {}),
        }
        return self.http.request(method, self.emulator.base_url + path, headers=headers, **kwargs)

    def leads(self, count: int, **values: Any) -> list[str]:
        """Add `count` Leads."""
        rows = [
            {"LastName": f"L{n}", "Email": f"l{n}@x{n}.example", **values} for n in range(count)
        ]
        return self.emulator.add_records("Lead", rows)

    def update(self, records: list[dict[str, Any]], all_or_none: bool = False) -> Any:
        """PATCH composite/sobjects."""
        return self.call(
            "PATCH",
            f"{DATA}/composite/sobjects",
            json={"allOrNone": all_or_none, "records": records},
        )


def lead(record_id: str, **values: Any) -> dict[str, Any]:
    return {"attributes": {"type": "Lead"}, "id": record_id, **values}


@pytest.fixture
def org(sandbox_certificates: SandboxCertificates) -> Iterator[Org]:
    emulator = SalesforceEmulator()
    http = requests.Session()
    http.verify = str(sandbox_certificates.ca_bundle)
    http.trust_env = False
    with running(emulator, sandbox_certificates):
        yield Org(emulator, http)
    http.close()


def soap_login(org: Org, password: str) -> requests.Response:
    info = org.emulator.describe()
    body = (
        '<?xml version="1.0" encoding="utf-8"?><env:Envelope '
        'xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:urn="urn:partner.soap.sforce.com"><env:Body><urn:login>'
        f"<urn:username>{info['username']}</urn:username><urn:password>{password}</urn:password>"
        "</urn:login></env:Body></env:Envelope>"
    )
    return org.http.post(
        f"{org.emulator.base_url}/services/Soap/u/59.0",
        data=body,
        headers={"Content-Type": "text/xml", "SOAPAction": "login"},
    )


def token(org: Org, **form: str) -> requests.Response:
    return org.http.post(f"{org.emulator.base_url}/services/oauth2/token", data=form)


# -- seeding and ids --------------------------------------------------------------------------


def test_seeding_is_deterministic_and_linked() -> None:
    first, second = SalesforceEmulator(records=3), SalesforceEmulator(records=3)
    for name in ("Lead", "Contact", "Account"):
        assert first.store.records[name] == second.store.records[name]
        assert len(first.store.records[name]) == 3
    accounts = first.store.records["Account"]
    for contact in first.store.records["Contact"].values():
        assert contact["AccountId"] in accounts
        domain = contact["Email"].split("@")[1]
        assert accounts[contact["AccountId"]]["Website"] == f"https://www.{domain}"
    lead = next(iter(first.store.records["Lead"].values()))
    assert lead["Email"].endswith("@company1.com") and lead["Company"] == "Company 1"


def test_ids_are_18_characters_with_the_key_prefix_and_checksum() -> None:
    emulator = SalesforceEmulator(records=70)
    for name, prefix in KEY_PREFIXES.items():
        ids = list(emulator.store.records[name])
        assert ids == sorted(ids), "ids must sort in creation order"
        for record_id in ids:
            assert len(record_id) == 18 and record_id.startswith(prefix)
            assert with_checksum(record_id[:15]) == record_id
    # Salesforce's own example: 001A0000006Vm9r -> 001A0000006Vm9rIAC.
    assert with_checksum("001A0000006Vm9r") == "001A0000006Vm9rIAC"


# -- logins and sessions ----------------------------------------------------------------------


def test_soap_login_returns_the_session_and_the_instance(org: Org) -> None:
    info = org.emulator.describe()
    response = soap_login(org, info["password"] + info["security_token"])
    assert response.status_code == 200
    assert f"<sessionId>{info['access_token']}</sessionId>" in response.text
    assert f"<serverUrl>{org.emulator.base_url}/services/Soap/u/59.0/" in response.text


def test_soap_login_with_a_bad_password_is_a_500_invalid_login_fault(org: Org) -> None:
    response = soap_login(org, org.emulator.describe()["password"])  # token missing
    assert response.status_code == 500
    assert "<faultcode>sf:INVALID_LOGIN</faultcode>" in response.text
    assert "<sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>" in response.text


def test_oauth_password_and_client_credentials_grants(org: Org) -> None:
    info = org.emulator.describe()
    granted = token(
        org,
        grant_type="password",
        client_id=info["client_id"],
        client_secret=info["client_secret"],
        username=info["username"],
        password=info["password"] + info["security_token"],
    )
    assert granted.status_code == 200
    assert granted.json()["access_token"] == info["access_token"]
    assert granted.json()["instance_url"] == org.emulator.base_url
    basic = base64.b64encode(f"{info['client_id']}:{info['client_secret']}".encode()).decode()
    by_header = org.http.post(
        f"{org.emulator.base_url}/services/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert by_header.status_code == 200 and by_header.json()["token_type"] == "Bearer"


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"grant_type": "password", "client_id": "nope"}, "invalid_client_id"),
        (
            {"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"},
            "invalid_client",
        ),
        ({"grant_type": "authorization_code"}, "unsupported_grant_type"),
        (
            {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "a.b"},
            "invalid_grant",
        ),
    ],
)
def test_oauth_refusals_use_salesforce_error_codes(
    org: Org, form: dict[str, str], error: str
) -> None:
    response = token(org, **form)
    assert response.status_code == 400
    assert response.json()["error"] == error and response.json()["error_description"]


def test_oauth_password_grant_with_a_wrong_password_is_invalid_grant(org: Org) -> None:
    info = org.emulator.describe()
    response = token(
        org,
        grant_type="password",
        client_id=info["client_id"],
        client_secret=info["client_secret"],
        username=info["username"],
        password=info["password"],
    )
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "authentication failure",
    }


def _jwt(key: rsa.RSAPrivateKey, claims: dict[str, Any]) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "RS256"}).encode())
    signing_input = f"{header}.{b64(json.dumps(claims).encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"


def test_jwt_bearer_checks_claims_and_a_trusted_certificates_signature(org: Org) -> None:
    info = org.emulator.describe()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = {
        "iss": info["client_id"],
        "sub": info["username"],
        "aud": "https://login.salesforce.com",
        "exp": int(time.time()) + 180,
    }
    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

    def attempt(signer: rsa.RSAPrivateKey, **changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = token(
            org, grant_type=grant, assertion=_jwt(signer, {**claims, **changes})
        ).json()
        return body

    assert attempt(key)["access_token"] == info["access_token"]
    assert attempt(key, aud="https://evil.example")["error_description"] == "audience is invalid"
    assert attempt(key, iss="someone-else")["error"] == "invalid_client_id"
    assert attempt(key, sub="nobody@x.example")["error"] == "invalid_grant"
    assert attempt(key, exp=int(time.time()) - 5)["error"] == "invalid_grant"
    # Until a certificate is trusted any well-formed RS256 signature passes; then only its key's.
    assert "access_token" in attempt(other)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(x509.Name([]))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2020, 1, 1))
        .not_valid_after(dt.datetime(2040, 1, 1))
        .sign(key, hashes.SHA256())
    )
    org.emulator.trust_jwt_certificate(certificate.public_bytes(serialization.Encoding.PEM))
    assert attempt(other) == {"error": "invalid_grant", "error_description": "invalid assertion"}
    assert "access_token" in attempt(key)


def test_unknown_or_missing_session_is_401_invalid_session_id(org: Org) -> None:
    for headers in ({"Authorization": "Bearer not-a-session"}, {"Authorization": ""}):
        response = org.http.get(f"{org.emulator.base_url}{DATA}/limits", headers=headers)
        assert response.status_code == 401
        assert response.json() == [
            {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
        ]


def test_expire_token_invalidates_every_session_until_a_new_login(org: Org) -> None:
    old = org.emulator.describe()["access_token"]
    assert org.call("GET", f"{DATA}/limits", old).status_code == 200
    org.emulator.faults.inject("expire_token")
    assert org.call("GET", f"{DATA}/limits", old).status_code == 401
    assert org.call("GET", f"{DATA}/limits", old).status_code == 401
    info = org.emulator.describe()
    response = soap_login(org, info["password"] + info["security_token"])
    assert old not in response.text and info["access_token"] in response.text
    assert org.call("GET", f"{DATA}/limits", info["access_token"]).status_code == 200


# -- limits and faults --------------------------------------------------------------------------


def test_every_rest_response_reports_api_usage_and_the_daily_limit_holds(org: Org) -> None:
    org.emulator.daily_api_limit = 3
    headers = [org.call("GET", f"{DATA}/limits").headers["Sforce-Limit-Info"] for _ in range(3)]
    assert headers == ["api-usage=1/3", "api-usage=2/3", "api-usage=3/3"]
    refused = org.call("GET", f"{DATA}/limits")
    assert refused.status_code == 403
    assert refused.json() == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    assert refused.headers["Sforce-Limit-Info"] == "api-usage=3/3"
    org.emulator.reset()
    assert org.call("GET", f"{DATA}/limits").json()["DailyApiRequests"] == {
        "Max": 3,
        "Remaining": 2,
    }


def test_rate_limit_is_the_concurrent_variant_and_daily_limit_the_total_one(org: Org) -> None:
    org.emulator.faults.inject("rate_limit")
    org.emulator.faults.inject("daily_limit")
    concurrent = org.call("GET", f"{DATA}/limits")
    daily = org.call("GET", f"{DATA}/limits")
    assert concurrent.status_code == daily.status_code == 403
    assert concurrent.json()[0]["message"] == "ConcurrentPerOrgLongTxn Limit exceeded."
    assert daily.json()[0]["message"] == "TotalRequests Limit exceeded."
    assert {concurrent.json()[0]["errorCode"], daily.json()[0]["errorCode"]} == {
        "REQUEST_LIMIT_EXCEEDED"
    }
    assert org.call("GET", f"{DATA}/limits").status_code == 200


def test_unsupported_api_version_and_unknown_resource_are_404(org: Org) -> None:
    assert org.call("GET", "/services/data/v99.0/limits").status_code == 404
    # Versions that do not exist: one release ahead, a point release, one before REST began.
    for version in ("64.0", "59.5", "19.0"):
        assert org.call("GET", f"/services/data/v{version}/limits").status_code == 404, version
    missing = org.call("GET", f"{DATA}/sobjects/Opportunity/describe")
    assert missing.status_code == 404 and missing.json()[0]["errorCode"] == "NOT_FOUND"


@pytest.mark.parametrize("version", ["60.0", "61.0", "62.0", "63.0"])
def test_current_api_versions_are_served(org: Org, version: str) -> None:
    assert org.call("GET", f"/services/data/v{version}/limits").status_code == 200
    query = {"q": "SELECT Id FROM Lead"}
    answer = org.call("GET", f"/services/data/v{version}/query", params=query)
    assert answer.status_code == 200 and answer.json()["done"] is True


def test_an_org_describes_a_current_version_and_refuses_one_that_does_not_exist() -> None:
    assert SalesforceEmulator().describe()["api_version"] == "62.0"
    with pytest.raises(ValueError, match="no API version 64.0"):
        SalesforceEmulator(api_version="64.0")


# -- describe and query -------------------------------------------------------------------------


def test_describe_lists_fields_with_type_length_and_updateable(org: Org) -> None:
    body = org.call("GET", f"{DATA}/sobjects/Contact/describe").json()
    fields = {field["name"]: field for field in body["fields"]}
    assert fields[FIELD]["type"] == "string" and fields[FIELD]["length"] == 255
    assert fields["Segment_Names_Long__c"]["length"] == 32768
    assert fields["Segment_Picklist__c"]["type"] == "multipicklist"
    assert fields["Id"]["updateable"] is False and fields["AccountId"]["type"] == "reference"


def test_query_pages_2000_records_with_next_records_url(org: Org) -> None:
    ids = org.leads(2500)
    first = org.call("GET", f"{DATA}/query", params={"q": "SELECT Id, Email FROM Lead ORDER BY Id"})
    body = first.json()
    assert (body["totalSize"], body["done"], len(body["records"])) == (2500, False, 2000)
    assert body["records"][0]["attributes"]["type"] == "Lead"
    assert body["nextRecordsUrl"].startswith(f"{DATA}/query/01g")
    assert body["nextRecordsUrl"].endswith("-2000")
    rest = org.call("GET", body["nextRecordsUrl"]).json()
    assert rest["done"] is True and "nextRecordsUrl" not in rest
    assert [r["Id"] for r in body["records"] + rest["records"]] == ids


def test_query_batch_size_header_count_and_modstamp_filter(org: Org) -> None:
    org.emulator.add_records(
        "Lead", [{"LastName": "old", "SystemModstamp": _at("2023-06-01T00:00:00Z")}]
    )
    new = org.leads(300)
    small = org.call(
        "GET",
        f"{DATA}/query",
        params={"q": "SELECT Id FROM Lead"},
        headers={"Sforce-Query-Options": "batchSize=200"},
    ).json()
    assert len(small["records"]) == 200
    count = org.call("GET", f"{DATA}/query", params={"q": "SELECT COUNT() FROM Lead"}).json()
    assert count == {"totalSize": 301, "done": True, "records": []}
    since = org.call(
        "GET",
        f"{DATA}/query",
        params={"q": "SELECT Id FROM Lead WHERE SystemModstamp > 2024-01-01T00:00:00+00:00"},
    ).json()
    assert [r["Id"] for r in since["records"]] == new


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Id, Nope__c FROM Lead", "INVALID_FIELD"),
        ("SELECT Id FROM Opportunity", "INVALID_TYPE"),
        ("SELECT Id, (SELECT Id FROM Contacts) FROM Account", "MALFORMED_QUERY"),
        ("DELETE FROM Lead", "MALFORMED_QUERY"),
        ("SELECT Id FROM Lead WHERE Email > 2024-01-01T00:00:00Z", "INVALID_FIELD"),
    ],
)
def test_bad_soql_gets_salesforce_error_codes(org: Org, soql: str, code: str) -> None:
    response = org.call("GET", f"{DATA}/query", params={"q": soql})
    assert response.status_code == 400 and response.json()[0]["errorCode"] == code


def test_only_ten_query_cursors_stay_open(org: Org) -> None:
    org.leads(2001)
    urls = [
        org.call("GET", f"{DATA}/query", params={"q": "SELECT Id FROM Lead"}).json()[
            "nextRecordsUrl"
        ]
        for _ in range(11)
    ]
    oldest = org.call("GET", urls[0])
    assert oldest.status_code == 400 and oldest.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"
    assert org.call("GET", urls[-1]).status_code == 200


def test_where_id_in_answers_the_listed_records_that_still_exist(org: Org) -> None:
    ids = org.leads(5, **{FIELD: "v"})
    org.emulator.delete_record("Lead", ids[3])
    other = with_checksum("00Q5g000009zzzz")  # well formed, never created
    account = org.emulator.add_records("Account", [{"Name": "A"}])[0]  # another object's id
    listed = [ids[4], ids[0][:15], ids[3], other, account, ids[4]]
    soql = f"SELECT Id, {FIELD} FROM Lead WHERE Id IN (" + ", ".join(f"'{i}'" for i in listed)
    body = org.call("GET", f"{DATA}/query", params={"q": soql + ")"}).json()
    # Id order, each record once, 18-character ids whatever was listed; deleted ones left out.
    assert [r["Id"] for r in body["records"]] == [ids[0], ids[4]]
    assert body["totalSize"] == 2 and body["done"] is True
    assert body["records"][0][FIELD] == "v"
    lowered = f"select Id from Lead where id in ('{ids[1]}')"
    answer = org.call("GET", f"{DATA}/query", params={"q": lowered}).json()
    assert [r["Id"] for r in answer["records"]] == [ids[1]]


@pytest.mark.parametrize(
    ("where", "code"),
    [
        ("Id IN ('00Q5g00000AbCd')", "INVALID_QUERY_FILTER_OPERATOR"),
        ("Id IN ('00Q5g00000AbCdEaaa')", "INVALID_QUERY_FILTER_OPERATOR"),
        ("Id IN ('00Q5g00000AbCd\\'E')", "INVALID_QUERY_FILTER_OPERATOR"),
        ("Id IN ()", "MALFORMED_QUERY"),
        ("Id IN (00Q5g00000AbCdE)", "MALFORMED_QUERY"),
        ("Email IN ('a@b.example')", "MALFORMED_QUERY"),
        ("Nope__c IN ('x')", "INVALID_FIELD"),
    ],
)
def test_where_id_in_refuses_what_salesforce_refuses(org: Org, where: str, code: str) -> None:
    response = org.call("GET", f"{DATA}/query", params={"q": f"SELECT Id FROM Lead WHERE {where}"})
    assert response.status_code == 400 and response.json()[0]["errorCode"] == code


# -- sObject Collections -------------------------------------------------------------------------


def test_collection_update_mixes_successes_and_record_errors(org: Org) -> None:
    ok, deleted, long = org.leads(3)
    org.emulator.delete_record("Lead", deleted)
    results = org.update(
        [
            lead(ok, **{FIELD: "A;B"}),
            lead(deleted, **{FIELD: "x"}),
            lead(long, **{FIELD: "y" * 256}),
            lead("00Qbad", **{FIELD: "x"}),
            lead(with_checksum("00Q5g0000009999"), **{FIELD: "x"}),
            lead(org.emulator.add_records("Contact", [{"LastName": "c"}])[0], **{FIELD: "x"}),
        ]
    ).json()
    assert results[0] == {"id": ok, "success": True, "errors": []}
    codes = [r["errors"][0]["statusCode"] for r in results[1:]]
    assert codes == [
        "ENTITY_IS_DELETED",
        "STRING_TOO_LONG",
        "MALFORMED_ID",
        "INVALID_CROSS_REFERENCE_KEY",
        "MALFORMED_ID",
    ]
    assert all("id" not in r and r["success"] is False for r in results[1:])
    assert results[2]["errors"][0]["fields"] == [FIELD]
    assert "max length=255" in results[2]["errors"][0]["message"]
    assert org.emulator.record("Lead", ok)[FIELD] == "A;B"
    assert org.emulator.record("Lead", long)[FIELD] is None
    assert [(w.record_id, w.value) for w in org.emulator.writes] == [(ok, "A;B")]


def test_all_or_none_rolls_back_every_record(org: Org) -> None:
    good, bad = org.leads(2)
    results = org.update(
        [lead(good, **{FIELD: "v"}), lead(bad, **{FIELD: "z" * 300})], all_or_none=True
    ).json()
    assert [r["errors"][0]["statusCode"] for r in results] == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "STRING_TOO_LONG",
    ]
    assert org.emulator.record("Lead", good)[FIELD] is None and not org.emulator.writes


def test_more_than_200_records_is_exceeded_id_limit(org: Org) -> None:
    ids = org.leads(201)
    response = org.update([lead(i, **{FIELD: "v"}) for i in ids])
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    assert not org.emulator.writes


def test_unknown_field_or_type_fails_the_whole_request(org: Org) -> None:
    [record_id] = org.leads(1)
    unknown = org.update([lead(record_id, Nope__c="v")])
    assert unknown.status_code == 400 and unknown.json()[0]["errorCode"] == "INVALID_FIELD"
    wrong_type = org.update([{"attributes": {"type": "Widget"}, "id": record_id}])
    assert wrong_type.json()[0]["errorCode"] == "INVALID_TYPE"
    read_only = org.update([lead(record_id, SystemModstamp="2024-01-01T00:00:00Z")]).json()
    assert read_only[0]["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


def test_record_failure_fault_hits_the_next_write_only(org: Org) -> None:
    ids = org.leads(3)
    org.emulator.faults.inject("record_failure", record_ids=[ids[1]])
    org.emulator.faults.inject(
        "record_failure",
        record_ids=[ids[2]],
        code="FIELD_CUSTOM_VALIDATION_EXCEPTION",
        message="no",
    )
    first = org.update([lead(i, **{FIELD: "v"}) for i in ids]).json()
    assert [r["success"] for r in first] == [True, False, True]
    assert first[1]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
    assert ids[1] in first[1]["errors"][0]["message"]
    second = org.update([lead(i, **{FIELD: "w"}) for i in ids]).json()
    assert second[2]["errors"][0] == {
        "statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "message": "no",
        "fields": [],
    }
    third = org.update([lead(i, **{FIELD: "w"}) for i in ids]).json()
    assert all(r["success"] for r in third)


def test_write_log_has_one_entry_per_record_per_write_and_empty_is_null(org: Org) -> None:
    ids = org.leads(2)
    org.update([lead(i, **{FIELD: "a"}) for i in ids])
    org.update([lead(ids[0], **{FIELD: ""})])
    entries = [(w.record_id, w.value) for w in org.emulator.writes]
    assert entries == [(ids[0], "a"), (ids[1], "a"), (ids[0], None)]
    assert org.emulator.writes[0].call == org.emulator.writes[1].call != org.emulator.writes[2].call
    assert org.emulator.record("Lead", ids[0])[FIELD] is None


# -- Bulk API 2.0 -----------------------------------------------------------------------------


def _poll(org: Org, path: str) -> dict[str, Any]:
    states = []
    for _ in range(5):
        info: dict[str, Any] = org.call("GET", path).json()
        states.append(info["state"])
        if info["state"] in ("JobComplete", "Failed", "Aborted"):
            break
    assert states[0] == "InProgress", "a job must be polled at least once before completing"
    return info


def test_bulk_query_results_page_with_locators(org: Org) -> None:
    ids = org.leads(5, **{FIELD: "x"})
    job = org.call(
        "POST",
        f"{DATA}/jobs/query",
        json={"operation": "query", "query": f"SELECT Id, {FIELD} FROM Lead"},
    ).json()
    assert job["state"] == "UploadComplete" and job["object"] == "Lead"
    assert _poll(org, f"{DATA}/jobs/query/{job['id']}")["numberRecordsProcessed"] == 5
    rows: list[dict[str, str]] = []
    locator = ""
    pages = 0
    while locator != "null":
        params = {"maxRecords": 2, **({"locator": locator} if locator else {})}
        page = org.call("GET", f"{DATA}/jobs/query/{job['id']}/results", params=params)
        assert page.headers["Content-Type"].startswith("text/csv")
        assert int(page.headers["Sforce-NumberOfRecords"]) <= 2
        rows.extend(csv.DictReader(io.StringIO(page.text)))
        locator = page.headers["Sforce-Locator"]
        pages += 1
    assert pages == 3 and [r["Id"] for r in rows] == ids and {r[FIELD] for r in rows} == {"x"}


def test_bulk_query_refuses_what_bulk_api_2_cannot_do(org: Org) -> None:
    for soql in (
        "SELECT COUNT() FROM Lead",
        "SELECT Id FROM Lead ORDER BY Id",
        "SELECT Nope FROM Lead",
    ):
        response = org.call(
            "POST", f"{DATA}/jobs/query", json={"operation": "query", "query": soql}
        )
        assert response.status_code == 400


def _ingest(org: Org, csv_text: str) -> dict[str, Any]:
    job = org.call(
        "POST",
        f"{DATA}/jobs/ingest",
        json={"object": "Lead", "operation": "update", "contentType": "CSV"},
    ).json()
    assert job["state"] == "Open" and job["contentUrl"].endswith(
        f"/jobs/ingest/{job['id']}/batches"
    )
    upload = org.call(
        "PUT",
        f"{DATA}/jobs/ingest/{job['id']}/batches",
        data=csv_text.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert upload.status_code == 201
    closed = org.call("PATCH", f"{DATA}/jobs/ingest/{job['id']}", json={"state": "UploadComplete"})
    assert closed.json()["state"] == "UploadComplete"
    return _poll(org, f"{DATA}/jobs/ingest/{job['id']}")


def test_bulk_ingest_reports_successes_and_failures_and_logs_writes(org: Org) -> None:
    ok, cleared, unchanged, too_long, deleted = org.leads(5, **{FIELD: "old"})
    org.emulator.delete_record("Lead", deleted)
    info = _ingest(
        org,
        f"Id,{FIELD}\n{ok},new\n{cleared},#N/A\n{unchanged},\n"
        f"{too_long},{'x' * 256}\n{deleted},v\n",
    )
    assert info["state"] == "JobComplete"
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (5, 2)
    base = f"{DATA}/jobs/ingest/{info['id']}"
    succeeded = list(
        csv.DictReader(io.StringIO(org.call("GET", f"{base}/successfulResults/").text))
    )
    failed = list(csv.DictReader(io.StringIO(org.call("GET", f"{base}/failedResults/").text)))
    assert [r["sf__Id"] for r in succeeded] == [ok, cleared, unchanged]
    assert {r["sf__Id"]: r["sf__Error"].split(":")[0] for r in failed} == {
        too_long: "STRING_TOO_LONG",
        deleted: "ENTITY_IS_DELETED",
    }
    assert [org.emulator.record("Lead", i)[FIELD] for i in (ok, cleared, unchanged, too_long)] == [
        "new",
        None,
        "old",
        "old",
    ]
    assert [(w.record_id, w.value) for w in org.emulator.writes] == [(ok, "new"), (cleared, None)]


def test_bulk_ingest_with_an_unknown_column_fails_the_job(org: Org) -> None:
    [record_id] = org.leads(1)
    info = _ingest(org, f"Id,Nope__c\n{record_id},v\n")
    assert info["state"] == "Failed"
    assert info["errorMessage"] == "InvalidBatch : Field name not found : Nope__c"


def test_bulk_ingest_takes_record_failure_faults(org: Org) -> None:
    ids = org.leads(2)
    org.emulator.faults.inject("record_failure", record_ids=[ids[0]])
    info = _ingest(org, f"Id,{FIELD}\n{ids[0]},a\n{ids[1]},b\n")
    failed = org.call("GET", f"{DATA}/jobs/ingest/{info['id']}/failedResults/").text
    assert "UNABLE_TO_LOCK_ROW" in failed and ids[0] in failed
    assert [w.record_id for w in org.emulator.writes] == [ids[1]]


# -- control endpoints and stats ---------------------------------------------------------------


def test_control_endpoints_inject_faults_report_writes_and_group_routes(org: Org) -> None:
    base = org.emulator.base_url
    [record_id] = org.leads(1)
    org.leads(2000)
    injected = org.http.post(f"{base}/__sandbox/faults", json={"kind": "expire_token"})
    assert injected.json() == {"injected": "expire_token", "count": 1}
    assert (
        org.call("GET", f"{DATA}/limits", org.emulator.describe()["access_token"]).status_code
        == 401
    )
    org.update([lead(record_id, **{FIELD: "v"})])
    first = org.call("GET", f"{DATA}/query", params={"q": "SELECT Id FROM Lead"}).json()
    org.call("GET", first["nextRecordsUrl"])
    writes = org.http.get(f"{base}/__sandbox/writes").json()
    assert [(w["record_id"], w["field"], w["value"]) for w in writes] == [(record_id, FIELD, "v")]
    stats = org.http.get(f"{base}/__sandbox/stats").json()
    assert stats["writes"] == 1
    assert stats["calls"][f"GET {DATA}/query/{{locator}}"] == 1
    assert stats["calls"][f"PATCH {DATA}/composite/sobjects"] == 1
    assert org.http.post(f"{base}/__sandbox/reset").json() == {"reset": True}
    assert org.http.get(f"{base}/__sandbox/stats").json() == {"calls": {}, "writes": 0}
