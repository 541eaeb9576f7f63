"""The Eloqua emulator itself: Eloqua's shapes, limits, errors and faults over real HTTPS."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from connectors.eloqua_time import WALL_FORMAT, eastern_wall
from connectors.sandbox.eloqua import (
    SEGMENT_FIELD,
    SMALL_TEXT_MAX,
    EloquaEmulator,
)
from connectors.sandbox.server import EmulatorServer, Request
from connectors.sandbox.tls import SandboxCertificates

STATEMENT = f"{{{{Contact.Field({SEGMENT_FIELD})}}}}"


class Api:
    """A bare HTTPS client of one emulator, with its Basic credentials unless told otherwise."""

    def __init__(self, emulator: EloquaEmulator, ca_bundle: str) -> None:
        self.emulator = emulator
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = ca_bundle
        self.auth: Any = (f"{emulator.site}\\{emulator.username}", emulator.password)

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(self.emulator.base_url + path, params=params, auth=self.auth)

    def post(self, path: str, body: Any) -> requests.Response:
        return self.session.post(self.emulator.base_url + path, json=body, auth=self.auth)

    def definition(self, **overrides: Any) -> requests.Response:
        body = {
            "name": "test import",
            "fields": {"ContactId": "{{Contact.Id}}", "Value": STATEMENT},
            "identifierFieldName": "ContactId",
            "isSyncTriggeredOnImport": True,
        } | overrides
        return self.post("/api/bulk/2.0/contacts/imports", body)

    def imported(self, rows: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
        """Create a definition, upload `rows` (which syncs them); the sync once it ended."""
        uri = self.definition(**overrides).json()["uri"]
        started = self.post(f"/api/bulk/2.0{uri}/data", rows)
        assert started.status_code == 201, started.text
        finished: dict[str, Any] = self.get(f"/api/bulk/2.0{started.json()['uri']}").json()
        return finished


@pytest.fixture
def start(sandbox_certificates: SandboxCertificates) -> Iterator[Callable[..., Api]]:
    """Serve an emulator built with the given options; a client of it."""
    servers: list[EmulatorServer] = []

    def make(**options: Any) -> Api:
        emulator = EloquaEmulator(**options)
        server = EmulatorServer(emulator, sandbox_certificates)
        server.start()
        servers.append(server)
        return Api(emulator, str(sandbox_certificates.ca_bundle))

    yield make
    for server in servers:
        server.stop()


def test_seeding_is_deterministic_and_realistic() -> None:
    first, second = EloquaEmulator(records=20), EloquaEmulator(records=20)
    contact = first.record("contacts", "1004")
    assert contact == second.record("contacts", "1004")
    assert contact["fields"]["C_EmailAddress"] == "dana.archer3@company1.com"
    assert contact["fields"]["C_Company"] == "Company 1"
    assert contact["accountId"] == "5002"  # every third contact is linked to its account
    assert first.record("contacts", "1005")["accountId"] is None
    assert first.record("contacts", "1010")["fields"]["C_EmailAddress"].endswith("@gmail.com")
    assert first.password != second.password


def test_only_contacts_are_held() -> None:
    with pytest.raises(KeyError, match="contacts only"):
        EloquaEmulator().add_records("accounts", [{}])
    with pytest.raises(KeyError, match="no contact field"):
        EloquaEmulator().add_records("contacts", [{"C_Nope": "x"}])


def test_id_names_the_base_url_and_refuses_bad_credentials(start: Callable[..., Api]) -> None:
    api = start()
    base = api.emulator.base_url

    answer = api.get("/id").json()

    assert answer["site"] == {"id": 42, "name": api.emulator.site}
    assert answer["urls"]["base"] == base
    assert answer["urls"]["apis"]["rest"]["bulk"] == f"{base}/API/Bulk/{{version}}/"
    api.auth = (f"{api.emulator.site}\\{api.emulator.username}", "wrong")
    refused = api.get("/id")
    assert (refused.status_code, refused.json()) == (401, "Not authenticated.")
    api.auth = None
    bearer = {"Authorization": f"Bearer {api.emulator.access_token}"}
    assert api.session.get(f"{base}/id", headers=bearer).status_code == 200
    assert api.get("/api/REST/1.0/data/contacts").status_code == 401


def test_contacts_page_with_count_page_and_depth(start: Callable[..., Api]) -> None:
    api = start(records=25)

    page = api.get("/API/REST/1.0/data/contacts", count=10, page=3, depth="complete").json()
    minimal = api.get("/api/rest/1.0/data/contacts", count=1).json()["elements"][0]

    assert (page["page"], page["pageSize"], page["total"]) == (3, 10, 25)
    assert [c["id"] for c in page["elements"]] == [str(n) for n in range(1021, 1026)]
    first = page["elements"][0]
    assert first["emailAddress"] == "ada.costa20@company10.com"
    assert first["accountName"] == "Company 10"
    assert {v["id"] for v in first["fieldValues"]} == {"100200", "100201"}
    assert set(minimal) == {"type", "id", "createdAt", "depth", "name", "updatedAt"}
    for bad in ({"count": 1001}, {"count": 0}, {"page": 0}):
        refused = api.get("/api/REST/1.0/data/contacts", **bad)
        assert refused.status_code == 400
        assert refused.json()[0]["type"] == "EndpointParameterError"


def test_contacts_search_by_id_or_field(start: Callable[..., Api]) -> None:
    api = start(records=12)
    path = "/api/REST/1.0/data/contacts"

    by_id = api.get(path, search="id>='1010'").json()
    by_email = api.get(path, search="C_EmailAddress='*@gmail.com'").json()

    assert [c["id"] for c in by_id["elements"]] == ["1010", "1011", "1012"]
    assert by_id["total"] == 3
    assert [c["id"] for c in by_email["elements"]] == ["1010"]
    assert api.get(path, search="id>='ten'").status_code == 400
    assert api.get(path, search="nonsense").status_code == 400


def _wall(stamp: str) -> str:
    """A REST epoch-seconds stamp as a search writes it: 'YYYY-MM-DD HH:MM:SS', US Eastern."""
    return eastern_wall(dt.datetime.fromtimestamp(int(stamp), dt.UTC)).strftime(WALL_FORMAT)


def _stamps(api: Api, contact_id: str) -> tuple[int, int]:
    found = api.get("/api/REST/1.0/data/contacts", search=f"id='{contact_id}'").json()
    [element] = found["elements"]
    return int(element["createdAt"]), int(element["updatedAt"])


def test_contacts_are_stamped_when_created_and_searched_by_modification_date(
    start: Callable[..., Api],
) -> None:
    api = start(records=3)
    path = "/api/REST/1.0/data/contacts"
    stamps = [_stamps(api, contact_id) for contact_id in ("1001", "1002", "1003")]
    assert all(
        created == updated and abs(created - time.time()) < 60 for created, updated in stamps
    )
    first, last = min(s for s, _ in stamps), max(s for s, _ in stamps)
    moment = _wall(str(first))

    at_or_after = api.get(path, search=f"C_DateModified>='{moment}'").json()
    after = api.get(path, search=f"C_DateModified>'{_wall(str(last))}'")
    by_day = api.get(path, search=f"c_datemodified>='{moment[:10]}'").json()

    assert [c["id"] for c in at_or_after["elements"]] == ["1001", "1002", "1003"]
    assert after.status_code == 204 and after.content == b""  # nothing matched: no body
    assert by_day["total"] == 3
    # The same moment written in UTC means 4-5 hours later in Eloqua's server time.
    in_utc = dt.datetime.fromtimestamp(first, dt.UTC).strftime(WALL_FORMAT)
    assert api.get(path, search=f"C_DateModified>='{in_utc}'").status_code == 204
    for refused, requirement in (
        ("C_DateModified>'yesterday'", "DateRequirement"),
        (f"C_DateModified>'{moment}Z'", "DateRequirement"),
        (f"updatedAt>'{moment}'", "SyntaxRequirement"),  # a property of /assets, not /data
        (f"C_DateModified~'{moment}'", "SyntaxRequirement"),
    ):
        answer = api.get(path, search=refused)
        assert answer.status_code == 400, refused
        assert answer.json()[0]["requirement"]["type"] == requirement


def test_an_import_sync_and_an_edit_move_the_modification_date(start: Callable[..., Api]) -> None:
    api = start(records=3)
    stamps = {contact_id: _stamps(api, contact_id)[1] for contact_id in ("1001", "1002", "1003")}
    before = max(stamps.values())
    time.sleep(1.1)  # stamps are whole seconds

    assert api.imported([{"ContactId": "1001", "Value": "ICP"}])["status"] == "success"
    api.emulator.edit_contact("1003", {"emailAddress": "moved@elsewhere.example"})

    _, imported = _stamps(api, "1001")
    _, edited = _stamps(api, "1003")
    assert imported > before and edited > before
    assert _stamps(api, "1002")[1] == stamps["1002"]
    changed = api.get(
        "/api/REST/1.0/data/contacts", search=f"C_DateModified>'{_wall(str(before))}'"
    ).json()
    assert [c["id"] for c in changed["elements"]] == ["1001", "1003"]
    assert api.emulator.record("contacts", "1003")["fields"]["C_EmailAddress"] == (
        "moved@elsewhere.example"
    )


def test_only_eloqua_sets_the_date_fields() -> None:
    emulator = EloquaEmulator(records=1)
    for field in ("C_DateModified", "C_DateCreated"):
        with pytest.raises(KeyError, match=f"{field} is set by Eloqua"):
            emulator.edit_contact("1001", {field: "2026-01-01"})
        with pytest.raises(KeyError, match=f"{field} is set by Eloqua"):
            emulator.add_records("contacts", [{field: "2026-01-01"}])
    with pytest.raises(KeyError, match="no contact field"):
        emulator.edit_contact("1001", {"C_Nope": "x"})
    with pytest.raises(KeyError):
        emulator.edit_contact("9999", {"emailAddress": "x@y.example"})


def test_contact_fields_say_type_and_internal_name(start: Callable[..., Api]) -> None:
    api = start()
    fields = api.get("/api/REST/1.0/assets/contact/fields", depth="complete").json()
    by_name = {f["internalName"]: f for f in fields["elements"]}
    assert by_name[SEGMENT_FIELD]["dataType"] == "text"
    assert by_name["C_Segment_Names_Long1"]["dataType"] == "largeText"
    assert by_name["C_DateCreated"]["isReadOnly"] == "true"
    assert by_name["C_DateModified"]["isReadOnly"] == "true"
    assert by_name["C_DateModified"]["dataType"] == "date"
    minimal = api.get("/api/REST/1.0/assets/contact/fields", count=2).json()
    assert "internalName" not in minimal["elements"][0] and minimal["total"] == len(by_name)


def test_an_import_sync_writes_rows_and_rejects_what_cannot_be(start: Callable[..., Api]) -> None:
    api = start(records=3)
    rows = [
        {"ContactId": "1001", "Value": "ICP;Tier 1"},
        {"ContactId": "1002", "Value": "x" * (SMALL_TEXT_MAX + 1)},
        {"ContactId": "9999", "Value": "y"},
        {"ContactId": "1003", "Value": ""},
    ]

    done = api.imported(rows)

    assert done["status"] == "warning" and done["syncStartedAt"] and done["syncEndedAt"]
    emulator = api.emulator
    assert emulator.record("contacts", "1001")["fields"][SEGMENT_FIELD] == "ICP;Tier 1"
    assert emulator.record("contacts", "1002")["fields"][SEGMENT_FIELD] is None
    assert [(w.record_id, w.value) for w in emulator.writes] == [
        ("1001", "ICP;Tier 1"),
        ("1003", ""),
    ]
    rejects = api.get(f"/api/bulk/2.0{done['uri']}/rejects", limit=1).json()
    assert (rejects["totalResults"], rejects["count"], rejects["hasMore"]) == (2, 1, True)
    [too_long] = rejects["items"]
    assert (too_long["statusCode"], too_long["recordIndex"]) == ("ELQ-00144", 2)
    assert too_long["invalidFields"] == ["Value"]
    [unknown] = api.get(f"/api/bulk/2.0{done['uri']}/rejects", offset=1).json()["items"]
    assert unknown["fieldValues"]["ContactId"] == "9999"
    assert unknown["message"] == "Contact does not exist."
    logs = api.get(f"/api/bulk/2.0{done['uri']}/logs").json()["items"]
    assert [(entry["statusCode"], entry["count"]) for entry in logs[:3]] == [
        ("ELQ-00001", 4),
        ("ELQ-00022", 2),
        ("ELQ-00060", 2),
    ]


def test_update_rules_and_email_identifiers(start: Callable[..., Api]) -> None:
    api = start(records=2)
    email = api.emulator.record("contacts", "1002")["fields"]["C_EmailAddress"]
    api.imported([{"ContactId": "1001", "Value": "Kept"}])

    kept = api.imported([{"ContactId": "1001", "Value": ""}], updateRule="ifNewIsNotNull")
    by_email = api.imported(
        [{"Email": email.upper(), "Value": "By email"}],
        fields={"Email": "{{Contact.Field(C_EmailAddress)}}", "Value": STATEMENT},
        identifierFieldName="Email",
    )

    assert kept["status"] == by_email["status"] == "success"
    assert api.emulator.record("contacts", "1001")["fields"][SEGMENT_FIELD] == "Kept"
    assert api.emulator.record("contacts", "1002")["fields"][SEGMENT_FIELD] == "By email"


def test_an_explicit_sync_and_a_busy_definition(start: Callable[..., Api]) -> None:
    api = start(records=1, sync_seconds=0.2)
    uri = api.definition(isSyncTriggeredOnImport=False).json()["uri"]

    staged = api.post(f"/api/bulk/2.0{uri}/data", [{"ContactId": "1001", "Value": "A"}])
    started = api.post("/api/bulk/2.0/syncs", {"syncedInstanceUri": uri})
    busy = api.post(f"/api/bulk/2.0{uri}/data", [{"ContactId": "1001", "Value": "B"}])
    active = api.get(f"/api/bulk/2.0{started.json()['uri']}").json()["status"]
    time.sleep(0.25)
    finished = api.get(f"/api/bulk/2.0{started.json()['uri']}").json()["status"]

    assert (staged.status_code, started.status_code, started.json()["status"]) == (
        204,
        201,
        "pending",
    )
    assert busy.status_code == 409
    assert (active, finished) == ("active", "success")
    assert api.emulator.record("contacts", "1001")["fields"][SEGMENT_FIELD] == "A"
    unknown = api.post("/api/bulk/2.0/syncs", {"syncedInstanceUri": "/contacts/imports/1"})
    assert unknown.status_code == 400
    assert api.post("/api/bulk/2.0/contacts/imports/1/data", []).status_code == 404


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"fields": {"ContactId": "{{Contact.Id}}", "V": "{{Contact.Field(C_Nope1)}}"}}, "fields"),
        (
            {"fields": {"ContactId": "{{Contact.Id}}", "V": "{{Contact.Field(C_DateCreated)}}"}},
            "fields",
        ),
        ({"fields": {f"F{n}": "{{Contact.Id}}" for n in range(101)}}, "fields"),
        ({"identifierFieldName": "Nope"}, "identifierFieldName"),
        ({"updateRule": "sometimes"}, "updateRule"),
        ({"name": ""}, "name"),
    ],
)
def test_invalid_definitions_are_refused_with_failures(
    start: Callable[..., Api], overrides: dict[str, Any], field: str
) -> None:
    refused = start().definition(**overrides)
    assert refused.status_code == 400
    assert refused.json()["failures"][0]["field"] == field


def test_faults_throttle_expire_and_fail(start: Callable[..., Api]) -> None:
    api = start(records=3)
    emulator = api.emulator
    emulator.faults.inject("rate_limit", retry_after=2)
    emulator.faults.inject("daily_limit")

    daily = api.get("/api/REST/1.0/data/contacts")
    limited = api.get("/api/REST/1.0/data/contacts")
    emulator.faults.inject("expire_token")
    expired = [api.get("/api/REST/1.0/data/contacts").status_code for _ in range(2)]
    renewed = [api.get("/id").status_code, api.get("/api/REST/1.0/data/contacts").status_code]
    emulator.faults.inject("record_failure", record_ids=["1002"], code="ELQ-00032")
    done = api.imported([{"ContactId": i, "Value": "v"} for i in ("1001", "1002")])
    emulator.faults.inject("sync_error")
    failed = api.imported([{"ContactId": "1003", "Value": "v"}])

    assert (daily.status_code, limited.status_code) == (429, 429)
    assert "daily" in daily.text and "daily" not in limited.text
    assert limited.headers["Retry-After"] == "2" and "Retry-After" not in daily.headers
    assert (expired, renewed) == ([401, 401], [200, 200])
    [rejected] = api.get(f"/api/bulk/2.0{done['uri']}/rejects").json()["items"]
    assert (done["status"], rejected["statusCode"]) == ("warning", "ELQ-00032")
    assert failed["status"] == "error"
    [log] = api.get(f"/api/bulk/2.0{failed['uri']}/logs").json()["items"]
    assert (log["statusCode"], log["severity"]) == ("ELQ-00146", "error")
    assert [w.record_id for w in emulator.writes] == ["1001"]


def test_a_sync_can_end_warning_with_no_rejected_row(start: Callable[..., Api]) -> None:
    api = start(records=2)
    api.emulator.faults.inject("sync_warning")

    done = api.imported([{"ContactId": i, "Value": "v"} for i in ("1001", "1002")])

    assert done["status"] == "warning"
    rejects = api.get(f"/api/bulk/2.0{done['uri']}/rejects").json()
    assert (rejects["totalResults"], rejects["items"]) == (0, [])
    logs = api.get(f"/api/bulk/2.0{done['uri']}/logs").json()["items"]
    assert ("ELQ-00026", "warning") in [(e["statusCode"], e["severity"]) for e in logs]
    assert [w.record_id for w in api.emulator.writes] == ["1001", "1002"]
    # Only the next sync: the one after ends `success` again.
    assert api.imported([{"ContactId": "1001", "Value": "w"}])["status"] == "success"


def test_routes_are_counted_by_shape_and_controls_work(start: Callable[..., Api]) -> None:
    api = start(records=1)
    api.imported([{"ContactId": "1001", "Value": "v"}])
    base = api.emulator.base_url

    stats = api.session.get(f"{base}/__sandbox/stats").json()
    writes = api.session.get(f"{base}/__sandbox/writes").json()

    assert stats["calls"] == {
        "POST /api/bulk/2.0/contacts/imports": 1,
        "POST /api/bulk/2.0/contacts/imports/{id}/data": 1,
        "GET /api/bulk/2.0/syncs/{id}": 1,
    }
    assert [(w["record_id"], w["field"], w["value"]) for w in writes] == [
        ("1001", SEGMENT_FIELD, "v")
    ]
    path = "/API/Bulk/2.0/syncs/1190/rejects"
    request = Request("GET", path, {}, {}, b"")
    assert api.emulator.route_name(request) == "/api/bulk/2.0/syncs/{id}/rejects"


def test_describe_and_delete(start: Callable[..., Api]) -> None:
    api = start(records=2)
    described = api.emulator.describe()
    assert set(described) == {
        "base_url",
        "login_url",
        "site",
        "username",
        "password",
        "access_token",
        "fields",
    }
    assert described["fields"] == {"contacts": SEGMENT_FIELD}
    assert described["login_url"] == described["base_url"] == api.emulator.base_url
    api.emulator.delete_record("contacts", "1001")
    assert [c["id"] for c in api.get("/api/REST/1.0/data/contacts").json()["elements"]] == ["1002"]
    assert api.imported([{"ContactId": "1001", "Value": "v"}])["status"] == "warning"
