"""GET /v1/segments/{name}/refreshes on the real server: a CRM segment's source (connection,
report, column, schedule, next fire) and its newest refreshes with entered, exited, unmatched,
churn and the unmatched rows; a segment not read from a CRM says so."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy.orm import Session

from models.api_keys import create_api_key
from models.publishing import publish
from models.segment_catalog import create_segment
from tests.factories import add_accounts
from tests.web.crm_world import CrmWorld, crm_segment
from tests.web.documented import documented
from tests.web.server import ApiServer

Stored = Callable[..., Any]


def _tag() -> str:
    return uuid.uuid4().hex[:8].upper()


def _read_key(stored: Stored) -> str:
    key = stored(lambda session: create_api_key(session, f"read-{uuid.uuid4().hex}", "read")[1])
    assert isinstance(key, str)
    return key


def _published_crm_segment(stored: Stored, name: str, refreshes: int = 3) -> CrmWorld:
    def world(session: Session) -> CrmWorld:
        made = crm_segment(session, _tag(), name, refreshes)
        publish(session, name, ["api"])
        return made

    made = stored(world)
    assert isinstance(made, CrmWorld)
    return made


def _path(name: str) -> str:
    return f"/v1/segments/{quote(name, safe='')}/refreshes"


def test_the_source_and_the_newest_refreshes_with_their_churn_and_unmatched_rows(
    api: ApiServer, stored: Stored
) -> None:
    name = f"{_tag()} Named accounts"
    world = _published_crm_segment(stored, name)
    key = _read_key(stored)

    answer = api.get(_path(name), key)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["segment"] == name
    assert body["source"] == "crm_report_sync"
    assert body["detail"] is None
    source = body["crm_source"]
    next_fire = datetime.fromisoformat(source.pop("next_refresh_at"))
    assert next_fire.tzinfo is not None and next_fire.weekday() == 0 and next_fire.hour == 6
    assert source == {
        "kind": "salesforce_report",
        "title": "Salesforce report",
        "system": "salesforce",
        "connection": world.connection,
        "object_id": world.report,
        "column": "ACCOUNT_ID",
        "schedule": "0 6 * * 1",
        "description": f"Salesforce report {world.report} (column ACCOUNT_ID) "
        f"via connection {world.connection}",
    }
    failed, second, first = body["refreshes"]
    assert failed["id"] > second["id"] > first["id"]
    # The failed refresh kept the members and says why; it moved nothing.
    assert failed["status"] == "failed" and failed["reason"] == world.failure
    assert (failed["entered"], failed["exited"], failed["churn"]) == (0, 0, 0)
    assert failed["churn_rate"] is None and failed["finished_at"] is not None
    counts = ("status", "trigger", "rows_read", "entered", "exited", "unmatched", "members")
    assert [first[field] for field in counts] == ["succeeded", "manual", 4, 3, 0, 1, 3]
    assert [second[field] for field in counts] == ["succeeded", "manual", 3, 1, 1, 0, 3]
    assert (first["churn"], first["churn_rate"]) == (3, None)  # no members before it
    assert second["churn"] == 2 and abs(second["churn_rate"] - 2 / 3) < 1e-9
    assert first["unmatched_rows"] == [
        {"crm_id": world.ghost.crm_id, "website": world.ghost.website, "name": "Ghost Corp"}
    ]
    assert second["unmatched_rows"] == []
    for refresh in (first, second):
        started = datetime.fromisoformat(refresh["started_at"])
        assert datetime.fromisoformat(refresh["finished_at"]) >= started
        assert started >= datetime.fromisoformat(refresh["created_at"])


def test_the_segment_list_names_a_crm_segments_source(api: ApiServer, stored: Stored) -> None:
    name = f"{_tag()} listed"
    world = _published_crm_segment(stored, name)

    listed = api.get("/v1/segments", _read_key(stored)).json()["segments"]

    (entry,) = [segment for segment in listed if segment["name"] == name]
    assert entry["source"] == "crm_report_sync" and entry["members"] == 3
    assert entry["crm_source"]["object_id"] == world.report
    assert entry["crm_source"]["connection"] == world.connection
    assert entry["crm_source"]["schedule"] == "0 6 * * 1"


def test_limit_keeps_the_newest_refreshes(api: ApiServer, stored: Stored) -> None:
    name = f"{_tag()} limited"
    _published_crm_segment(stored, name)
    key = _read_key(stored)

    newest = api.get(_path(name), key, params={"limit": 1})
    refused = api.get(_path(name), key, params={"limit": 0})

    assert [refresh["status"] for refresh in newest.json()["refreshes"]] == ["failed"]
    assert refused.status_code == 422
    assert refused.json()["error"]["message"] == (
        "query.limit: Input should be greater than or equal to 1"
    )


def test_a_crm_segment_never_refreshed_has_its_source_and_no_refreshes(
    api: ApiServer, stored: Stored
) -> None:
    name = f"{_tag()} new"
    world = _published_crm_segment(stored, name, refreshes=0)

    body = api.get(_path(name), _read_key(stored)).json()

    assert body["crm_source"]["object_id"] == world.report
    assert body["refreshes"] == [] and body["detail"] is None


def test_names_with_slashes_reach_the_right_route_written_raw_or_encoded(
    api: ApiServer, stored: Stored
) -> None:
    """`{name:path}` routes end in /accounts or /refreshes: a name that itself ends so still
    reaches the route its path ends with."""
    tag = _tag()
    refreshed = f"Régions/EMEA/{tag}/accounts"
    listed = f"Régions/{tag}/refreshes"
    _published_crm_segment(stored, refreshed)
    _published_crm_segment(stored, listed)
    key = _read_key(stored)

    raw = api.get(f"/v1/segments/{quote(refreshed, safe='/')}/refreshes", key)
    encoded = api.get(_path(refreshed), key)
    accounts = api.get(f"/v1/segments/{quote(listed, safe='/')}/accounts", key)

    assert raw.status_code == encoded.status_code == 200, raw.text
    assert raw.json()["segment"] == encoded.json()["segment"] == refreshed
    assert len(raw.json()["refreshes"]) == 3
    assert accounts.status_code == 200, accounts.text
    assert accounts.json()["segment"] == listed
    assert len(accounts.json()["accounts"]) == 3


def test_a_segment_not_read_from_a_crm_answers_with_no_source_and_says_why(
    api: ApiServer, stored: Stored
) -> None:
    tag = _tag()

    def world(session: Session) -> None:
        add_accounts(session, [{"external_id": f"{tag}-1", "country": tag}])
        create_segment(session, f"{tag} filtered", filter_expression=f'country = "{tag}"')
        publish(session, f"{tag} filtered", ["api"])

    stored(world)
    answer = api.get(_path(f"{tag} FILTERED"), _read_key(stored))

    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "segment": f"{tag} filtered",
        "source": "filter",
        "crm_source": None,
        "detail": f"segment '{tag} filtered' is not read from a CRM: its members come from "
        "its filter",
        "refreshes": [],
    }


def test_an_unknown_segment_or_one_not_published_to_api_is_404(
    api: ApiServer, stored: Stored
) -> None:
    tag = _tag()

    def world(session: Session) -> None:
        crm_segment(session, tag, f"{tag} private")
        publish(session, f"{tag} private", ["enrichment"])

    stored(world)
    key = _read_key(stored)

    unpublished = api.get(_path(f"{tag} private"), key)
    unknown = api.get(_path(f"{tag} nothing"), key)
    no_key = api.get(_path(f"{tag} private"))

    assert unpublished.status_code == unknown.status_code == 404
    assert unpublished.json()["error"]["message"] == (
        f"segment '{tag} private' exists but is not published to api; "
        "publish it with `segsync publish NAME --use api`"
    )
    assert unknown.json()["error"]["message"].startswith(f"no segment named '{tag} nothing'")
    assert no_key.status_code == 401


def test_the_answers_are_the_documented_ones(api: ApiServer, stored: Stored) -> None:
    """The document names the answer's model and errors, and real answers (a CRM segment with
    every kind of refresh, a segment with no CRM source, the segment list) fit it."""
    document = api.get("/openapi.json").json()
    route = document["paths"]["/v1/segments/{name}/refreshes"]["get"]
    tag = _tag()
    name = f"{tag} documented"
    _published_crm_segment(stored, name)

    def filtered(session: Session) -> None:
        create_segment(session, f"{tag} filtered", filter_expression=f'country = "{tag}"')
        publish(session, f"{tag} filtered", ["api"])

    stored(filtered)
    key = _read_key(stored)
    operation = documented(api, key)["/v1/segments/{name}/refreshes"]["GET"]

    assert route["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SegmentRefreshes"
    }
    for status in ("401", "404", "422"):
        error = route["responses"][status]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/ErrorResponse"}, status
    refresh = document["components"]["schemas"]["RefreshView"]["properties"]
    assert {"entered", "exited", "unmatched", "churn", "unmatched_rows"} <= set(refresh)
    for shown in (name, f"{tag} filtered", f"{tag} nothing"):
        answer = api.get(_path(shown), key)
        assert answer.status_code == (404 if shown.endswith("nothing") else 200), answer.text
        operation.Case(path_parameters={"name": shown}).validate_response(answer)
    # The list, with this CRM segment's source in it, fits its document too.
    listed = api.get("/v1/segments", key)
    assert any(row["crm_source"] for row in listed.json()["segments"])
    documented(api, key)["/v1/segments"]["GET"].Case().validate_response(listed)
