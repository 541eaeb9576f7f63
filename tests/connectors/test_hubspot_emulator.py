"""The HubSpot emulator itself: HubSpot's shapes, limits, errors and faults over real HTTPS."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from hubspot import HubSpot  # type: ignore[import-untyped]
from hubspot.crm.objects import (  # type: ignore[import-untyped]
    BatchInputSimplePublicObjectBatchInput,
    BatchReadInputSimplePublicObjectId,
    SimplePublicObjectBatchInput,
    SimplePublicObjectId,
)

from connectors.sandbox.hubspot import TEXT_MAX_LENGTH, HubSpotEmulator
from connectors.sandbox.server import EmulatorServer, Request
from connectors.sandbox.tls import SandboxCertificates

FIELD = "segment_names"


class Api:
    """A bare HTTPS client of one emulator, authenticated with a given bearer token."""

    def __init__(self, emulator: HubSpotEmulator, ca_bundle: str) -> None:
        self.emulator = emulator
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = ca_bundle
        self.token: str | None = emulator.private_app_token

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(self.emulator.base_url + path, params=params, headers=self._auth())

    def update(self, object_type: str, inputs: list[dict[str, Any]]) -> requests.Response:
        url = f"{self.emulator.base_url}/crm/v3/objects/{object_type}/batch/update"
        return self.session.post(url, json={"inputs": inputs}, headers=self._auth())

    def read(self, object_type: str, body: Any, **params: str) -> requests.Response:
        url = f"{self.emulator.base_url}/crm/v3/objects/{object_type}/batch/read"
        return self.session.post(url, json=body, params=params, headers=self._auth())

    def refresh(self, **overrides: str) -> requests.Response:
        form = {
            "grant_type": "refresh_token",
            "client_id": self.emulator.client_id,
            "client_secret": self.emulator.client_secret,
            "refresh_token": self.emulator.refresh_token,
        } | overrides
        return self.session.post(f"{self.emulator.base_url}/oauth/v1/token", data=form)

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


@pytest.fixture
def start(sandbox_certificates: SandboxCertificates) -> Iterator[Callable[..., Api]]:
    """Serve an emulator built with the given options; a client of it."""
    servers: list[EmulatorServer] = []

    def make(**options: Any) -> Api:
        emulator = HubSpotEmulator(**options)
        server = EmulatorServer(emulator, sandbox_certificates)
        server.start()
        servers.append(server)
        return Api(emulator, str(sandbox_certificates.ca_bundle))

    yield make
    for server in servers:
        server.stop()


def test_seeding_is_deterministic_and_realistic() -> None:
    first, second = HubSpotEmulator(records=20), HubSpotEmulator(records=20)
    contact = first.record("contacts", "1021")
    assert contact == second.record("contacts", "1021")
    assert contact["properties"]["email"] == "ada.archer0@company0.com"
    assert contact["associations"]["companies"]["results"][0] == {
        "id": "1001",
        "type": "contact_to_company",
    }
    assert first.record("companies", "1002")["properties"]["domain"] == "company1.com"
    assert first.record("contacts", "1030")["properties"]["email"].endswith("@gmail.com")
    assert "associations" not in first.record("contacts", "1022")
    assert HubSpotEmulator(records=0).add_records("contacts", [{}]) == ["1001"]


def test_lists_pages_with_the_after_cursor_and_a_next_link(start: Callable[..., Api]) -> None:
    api = start(records=150)
    page = api.get("/crm/v3/objects/contacts", limit=500, properties="email,segment_names")
    body = page.json()
    assert page.status_code == 200 and len(body["results"]) == 100  # 100 at most
    first = body["results"][0]
    assert set(first) == {"id", "properties", "createdAt", "updatedAt", "archived"}
    assert set(first["properties"]) == {
        "email",
        FIELD,
        "hs_object_id",
        "createdate",
        "lastmodifieddate",
    }
    assert first["properties"][FIELD] is None
    following = body["paging"]["next"]
    rest = api.session.get(following["link"], headers=api._auth()).json()
    assert len(rest["results"]) == 50 and "paging" not in rest
    assert rest["results"][0]["id"] == following["after"]
    assert set(rest["results"][0]["properties"]) >= {"email", FIELD}


def test_properties_repeated_or_default_and_company_associations(
    start: Callable[..., Api],
) -> None:
    api = start(records=6)
    url = f"{api.emulator.base_url}/crm/v3/objects/contacts"
    query = [("properties", "email"), ("properties", "website"), ("associations", "companies")]
    repeated = api.session.get(url, params=query, headers=api._auth()).json()["results"]
    assert {"email", "website"} <= set(repeated[0]["properties"])
    assert repeated[0]["associations"]["companies"]["results"] == [
        {"id": "1001", "type": "contact_to_company"},
        {"id": "1001", "type": "contact_to_company_unlabeled"},
    ]
    assert "associations" not in repeated[1]
    plain = api.get("/crm/v3/objects/contacts").json()["results"][0]["properties"]
    assert {"email", "firstname", "lastname"} <= set(plain) and "company" not in plain


def test_batch_update_answers_200_or_207_and_logs_every_write(start: Callable[..., Api]) -> None:
    api = start()
    ids = api.emulator.add_records("contacts", [{}, {}])
    ok = api.update("contacts", [{"id": i, "properties": {FIELD: "A;B"}} for i in ids])
    assert ok.status_code == 200 and ok.json()["status"] == "COMPLETE"
    assert [r["id"] for r in ok.json()["results"]] == ids

    partial = api.update(
        "contacts",
        [{"id": ids[0], "properties": {FIELD: ""}}, {"id": "999999", "properties": {FIELD: "X"}}],
    )
    body = partial.json()
    assert partial.status_code == 207 and body["numErrors"] == 1
    assert body["errors"] == [
        {
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": "Could not get some CONTACT objects, they may be deleted or not exist. "
            "Check that ids are valid.",
            "context": {"ids": ["999999"]},
        }
    ]
    assert api.emulator.record("contacts", ids[0])["properties"][FIELD] == ""
    writes = [(w.record_id, w.value) for w in api.emulator.writes]
    assert writes == [(ids[0], "A;B"), (ids[1], "A;B"), (ids[0], "")]
    assert api.emulator.writes[0].call == api.emulator.writes[1].call


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ([{"id": str(n), "properties": {FIELD: "x"}} for n in range(101)], "maximum of 100"),
        ([{"id": "1001", "properties": {"nope": "x"}}], "PROPERTY_DOESNT_EXIST"),
        ([{"id": "1001", "properties": {FIELD: "x" * (TEXT_MAX_LENGTH + 1)}}], "INVALID_STRING"),
        ([{"id": "1001", "properties": {FIELD: "x"}}] * 2, "Duplicate IDs"),
    ],
)
def test_batch_update_refuses_the_whole_batch(
    start: Callable[..., Api], inputs: list[dict[str, Any]], expected: str
) -> None:
    api = start(records=1)
    fine = {"id": "1002", "properties": {FIELD: "fits"}}  # the seeded contact
    answer = api.update("contacts", [*inputs, fine] if len(inputs) < 100 else inputs)
    assert answer.status_code == 400
    assert answer.json()["category"] == "VALIDATION_ERROR"
    assert expected in answer.json()["message"]
    assert api.emulator.writes == []


def test_batch_read_answers_200_with_the_properties_asked_for(start: Callable[..., Api]) -> None:
    api = start()
    ids = api.emulator.add_records(
        "contacts", [{"email": "a@x.example", FIELD: "A;B"}, {"email": "b@x.example", FIELD: ""}]
    )
    answer = api.read("contacts", {"inputs": [{"id": i} for i in ids], "properties": [FIELD]})
    body = answer.json()
    assert answer.status_code == 200 and body["status"] == "COMPLETE"
    assert {"startedAt", "completedAt"} <= set(body) and "errors" not in body
    assert [r["id"] for r in body["results"]] == ids
    assert [r["properties"][FIELD] for r in body["results"]] == ["A;B", ""]
    assert "email" not in body["results"][0]["properties"]
    assert body["results"][0]["properties"]["hs_object_id"] == ids[0]
    assert api.emulator.writes == []
    plain = api.read("contacts", {"inputs": [{"id": ids[0]}]}).json()["results"][0]
    assert plain["properties"]["email"] == "a@x.example"  # the default properties


def test_batch_read_answers_207_naming_deleted_and_unknown_ids(start: Callable[..., Api]) -> None:
    api = start()
    ids = api.emulator.add_records("contacts", [{FIELD: "v"}, {FIELD: "w"}])
    api.emulator.delete_record("contacts", ids[1])
    inputs = [{"id": ids[0]}, {"id": ids[1]}, {"id": "999999"}, {"id": "not-a-number"}]
    answer = api.read("contacts", {"inputs": inputs, "properties": [FIELD]})
    body = answer.json()
    assert answer.status_code == 207 and body["status"] == "COMPLETE"
    assert [r["id"] for r in body["results"]] == [ids[0]]
    assert body["numErrors"] == 1
    assert body["errors"] == [
        {
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": "Could not get some CONTACT objects, they may be deleted or not exist. "
            "Check that ids are valid.",
            "context": {"ids": [ids[1], "999999", "not-a-number"]},
        }
    ]
    archived = api.read(
        "contacts", {"inputs": [{"id": ids[1]}], "properties": [FIELD]}, archived="true"
    )
    [found] = archived.json()["results"]
    assert archived.status_code == 200 and found["archived"] is True
    assert found["properties"][FIELD] == "w"
    gone = api.update("contacts", [{"id": ids[1], "properties": {FIELD: "x"}}])
    assert gone.status_code == 207 and gone.json()["errors"][0]["context"] == {"ids": [ids[1]]}
    assert api.get("/crm/v3/objects/contacts").json()["results"][0]["id"] == ids[0]
    assert len(api.get("/crm/v3/objects/contacts").json()["results"]) == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"inputs": [{"id": str(n)} for n in range(101)], "properties": [FIELD]}, "maximum of 100"),
        ({"inputs": [{"id": "a@x.example"}], "idProperty": "email"}, "idProperty email"),
        ({"inputs": [{"name": "1001"}]}, "Invalid input JSON"),
        ({"inputs": [{"id": "1001"}], "properties": FIELD}, "Invalid input JSON"),
        ([{"id": "1001"}], "Invalid input JSON"),
    ],
)
def test_batch_read_refuses_a_malformed_batch(
    start: Callable[..., Api], body: Any, expected: str
) -> None:
    api = start(records=1)
    answer = api.read("contacts", body)
    assert answer.status_code == 400
    assert answer.json()["category"] == "VALIDATION_ERROR"
    assert expected in answer.json()["message"]


def test_text_values_up_to_the_limit_are_kept(start: Callable[..., Api]) -> None:
    api = start()
    [record_id] = api.emulator.add_records("contacts", [{}])
    value = "y" * TEXT_MAX_LENGTH
    assert api.update("contacts", [{"id": record_id, "properties": {FIELD: value}}]).ok
    assert api.emulator.record("contacts", record_id)["properties"][FIELD] == value


def test_properties_endpoint_and_unknown_object_types(start: Callable[..., Api]) -> None:
    api = start(leads_enabled=False)
    found = api.get(f"/crm/v3/properties/0-1/{FIELD}").json()
    assert (found["name"], found["type"], found["fieldType"]) == (FIELD, "string", "text")
    assert found["modificationMetadata"]["readOnlyValue"] is False
    missing = api.get("/crm/v3/properties/contacts/nope")
    assert missing.status_code == 404 and missing.json()["category"] == "OBJECT_NOT_FOUND"
    for path in ("/crm/v3/objects/leads", f"/crm/v3/properties/leads/{FIELD}"):
        refused = api.get(path)
        assert refused.status_code == 400
        assert refused.json()["message"] == "Unable to infer object type from: leads"


def test_leads_when_the_account_has_them(start: Callable[..., Api]) -> None:
    api = start(records=8)
    leads = api.get("/crm/v3/objects/0-136", associations="companies").json()["results"]
    assert len(leads) == 2
    assert leads[0]["associations"]["companies"]["results"][0]["type"] == "lead_to_company"
    assert api.get(f"/crm/v3/properties/leads/{FIELD}").ok


def test_authentication_and_the_oauth_refresh_flow(start: Callable[..., Api]) -> None:
    api = start(records=2)
    api.token = None
    refused = api.get("/crm/v3/objects/contacts")
    assert refused.status_code == 401
    assert refused.json()["category"] == "INVALID_AUTHENTICATION"
    assert refused.json()["message"].startswith("Authentication credentials not found.")
    assert "X-HubSpot-RateLimit-Max" not in refused.headers

    granted = api.refresh().json()
    assert granted["expires_in"] == 1800 and granted["token_type"] == "bearer"
    assert granted["refresh_token"] == api.emulator.refresh_token
    api.token = granted["access_token"]
    assert api.get("/crm/v3/objects/contacts").ok

    assert api.refresh(refresh_token="stolen").json()["status"] == "BAD_REFRESH_TOKEN"
    assert api.refresh(client_secret="guess").json()["status"] == "BAD_CLIENT_ID"
    assert api.refresh(grant_type="password").status_code == 400


def test_expire_token_expires_oauth_tokens_but_not_the_private_app_token(
    start: Callable[..., Api],
) -> None:
    api = start(records=1)
    api.token = api.refresh().json()["access_token"]
    api.emulator.faults.inject("expire_token")
    expired = api.get("/crm/v3/objects/contacts")
    assert expired.status_code == 401
    assert expired.json()["category"] == "EXPIRED_AUTHENTICATION"
    assert "expired" in expired.json()["message"]
    api.token = api.emulator.private_app_token
    assert api.get("/crm/v3/objects/contacts").ok
    api.token = api.refresh().json()["access_token"]
    assert api.get("/crm/v3/objects/contacts").ok


def test_the_rolling_window_limit_with_hubspots_body_and_headers(
    start: Callable[..., Api],
) -> None:
    api = start(requests_per_ten_seconds=3, window_seconds=0.4)
    answers = [api.get("/crm/v3/objects/contacts") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["X-HubSpot-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert answers[0].headers["X-HubSpot-RateLimit-Max"] == "3"
    assert answers[0].headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "400"
    assert answers[0].headers["X-HubSpot-RateLimit-Daily"] == "250000"
    assert answers[2].headers["X-HubSpot-RateLimit-Daily-Remaining"] == "249997"
    body = answers[3].json()
    assert {k: body[k] for k in ("status", "message", "category", "policyName")} == {
        "status": "error",
        "message": "You have reached your ten_secondly_rolling limit.",
        "category": "RATE_LIMITS",
        "policyName": "TEN_SECONDLY_ROLLING",
    }
    assert "errorType" not in body and body["correlationId"]
    time.sleep(0.45)
    assert api.get("/crm/v3/objects/contacts").ok


def test_the_daily_limit_applies_to_private_apps_only(start: Callable[..., Api]) -> None:
    api = start(daily_limit=2)
    assert [api.get("/crm/v3/objects/contacts").status_code for _ in range(3)] == [200, 200, 429]
    last = api.get("/crm/v3/objects/contacts")
    assert last.json()["policyName"] == "DAILY"
    assert last.json()["message"] == "You have reached your daily limit."
    assert last.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
    # OAuth apps have no daily limit, and HubSpot sends them no daily headers.
    api.token = api.refresh().json()["access_token"]
    oauth = api.get("/crm/v3/objects/contacts")
    assert oauth.ok and "X-HubSpot-RateLimit-Daily" not in oauth.headers
    api.emulator.reset()
    api.token = api.emulator.private_app_token
    assert api.get("/crm/v3/objects/contacts").ok


def test_the_secondly_limit_answers_as_real_hubspot_does(start: Callable[..., Api]) -> None:
    api = start(requests_per_second=2)
    answers = [api.get("/crm/v3/objects/contacts") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert [a.headers["X-HubSpot-RateLimit-Secondly"] for a in answers] == ["2"] * 3
    assert [a.headers["X-HubSpot-RateLimit-Secondly-Remaining"] for a in answers[:2]] == ["1", "0"]
    # The recorded real body: a category, no errorType and no policyName.
    body = answers[2].json()
    assert body == {
        "status": "error",
        "message": "You have reached your secondly limit.",
        "category": "RATE_LIMITS",
        "correlationId": body["correlationId"],
    }


def test_successful_answers_carry_the_secondly_headers_besides_the_daily_ones(
    start: Callable[..., Api],
) -> None:
    answer = start().get("/crm/v3/objects/contacts")
    assert answer.ok
    assert answer.headers["X-HubSpot-RateLimit-Secondly"] == "100"
    assert answer.headers["X-HubSpot-RateLimit-Secondly-Remaining"] == "99"
    assert answer.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "249999"


@pytest.mark.parametrize(
    ("params", "message", "policy"),
    [
        ({"policy": "SECONDLY", "policy_name": False}, "secondly", None),
        ({"policy": "SECONDLY"}, "secondly", "SECONDLY"),
        ({"policy": "DAILY", "policy_name": False}, "daily", None),
    ],
)
def test_an_injected_429_has_policyname_or_not_as_asked(
    start: Callable[..., Api], params: dict[str, Any], message: str, policy: str | None
) -> None:
    api = start()
    api.emulator.faults.inject("rate_limit", **params)
    body = api.get("/crm/v3/objects/contacts").json()
    assert body["message"] == f"You have reached your {message} limit."
    assert (body["category"], body.get("policyName"), "errorType" in body) == (
        "RATE_LIMITS",
        policy,
        False,
    )


@pytest.mark.parametrize(
    ("fault", "policy"), [("rate_limit", "TEN_SECONDLY_ROLLING"), ("daily_limit", "DAILY")]
)
def test_injected_limits(start: Callable[..., Api], fault: str, policy: str) -> None:
    api = start()
    api.emulator.faults.inject(fault, count=2)
    answers = [api.get("/crm/v3/objects/contacts") for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].json()["policyName"] == policy


def test_injected_record_failures_fail_only_those_records(start: Callable[..., Api]) -> None:
    api = start()
    ids = api.emulator.add_records("contacts", [{}, {}, {}])
    api.emulator.faults.inject("record_failure", record_ids=[ids[1]], code="CONFLICT")
    answer = api.update("contacts", [{"id": i, "properties": {FIELD: "v"}} for i in ids])
    assert answer.status_code == 207
    [error] = answer.json()["errors"]
    assert (error["category"], error["context"]) == ("CONFLICT", {"ids": [ids[1]]})
    assert [w.record_id for w in api.emulator.writes] == [ids[0], ids[2]]
    again = api.update("contacts", [{"id": ids[1], "properties": {FIELD: "v"}}])
    assert again.status_code == 200


def test_stats_group_paths_by_shape(start: Callable[..., Api]) -> None:
    api = start(records=1)
    api.get(f"/crm/v3/properties/contacts/{FIELD}")
    api.get("/crm/v3/properties/contacts/email")
    api.update("contacts", [])
    stats = api.session.get(f"{api.emulator.base_url}/__sandbox/stats").json()
    assert stats["calls"] == {
        "GET /crm/v3/properties/contacts/{propertyName}": 2,
        "POST /crm/v3/objects/contacts/batch/update": 1,
    }
    request = Request("GET", "/crm/v3/objects/contacts/1001", {}, {}, b"")
    assert api.emulator.route_name(request) == "/crm/v3/objects/contacts/{id}"


def test_describe_gives_what_a_client_needs(start: Callable[..., Api]) -> None:
    api = start()
    described = api.emulator.describe()
    assert described["base_url"].startswith("https://127.0.0.1:")
    assert described["access_token"] == api.emulator.private_app_token
    assert set(described["oauth"]) == {"client_id", "client_secret", "refresh_token"}
    assert described["fields"] == dict.fromkeys(("contacts", "companies", "leads"), FIELD)
    # A portal without the Leads object has no leads to fill.
    without_leads = HubSpotEmulator(leads_enabled=False).describe()["fields"]
    assert without_leads == dict.fromkeys(("contacts", "companies"), FIELD)


def test_the_official_client_works_unchanged(
    start: Callable[..., Api], sandbox_certificates: SandboxCertificates
) -> None:
    api = start(records=120)
    client = HubSpot(
        access_token=api.emulator.private_app_token,
        host=api.emulator.base_url,
        ssl_ca_cert=str(sandbox_certificates.ca_bundle),
    )
    contacts = client.crm.contacts.get_all(properties=["email", FIELD])
    assert len(contacts) == 120
    batch = BatchInputSimplePublicObjectBatchInput(
        inputs=[
            SimplePublicObjectBatchInput(id=contacts[0].id, properties={FIELD: "A"}),
            SimplePublicObjectBatchInput(id="404404", properties={FIELD: "B"}),
        ]
    )
    answer = client.crm.contacts.batch_api.update(batch)
    assert [r.id for r in answer.results] == [contacts[0].id]
    assert answer.errors[0].context == {"ids": ["404404"]}
    assert client.crm.properties.core_api.get_by_name("companies", FIELD).field_type == "text"


def test_the_official_client_reads_a_batch_unchanged(
    start: Callable[..., Api], sandbox_certificates: SandboxCertificates
) -> None:
    api = start()
    [record_id] = api.emulator.add_records("contacts", [{FIELD: "A"}])
    client = HubSpot(
        access_token=api.emulator.private_app_token,
        host=api.emulator.base_url,
        ssl_ca_cert=str(sandbox_certificates.ca_bundle),
    )
    batch = BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id=record_id), SimplePublicObjectId(id="404404")],
        properties=[FIELD],
        properties_with_history=[],
    )
    answer = client.crm.contacts.batch_api.read(batch)
    assert [(r.id, r.properties[FIELD]) for r in answer.results] == [(record_id, "A")]
    assert answer.errors[0].category == "OBJECT_NOT_FOUND"
    assert answer.errors[0].context == {"ids": ["404404"]}
