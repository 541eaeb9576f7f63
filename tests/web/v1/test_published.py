"""GET /v1/published on the real server: the published-segments settings table."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from models.api_keys import create_api_key
from models.publishing import publish, published_segment_count, unpublish
from tests.factories import add_bare_segments
from tests.web.server import ApiServer

Stored = Callable[..., Any]


def _world(session: Session, tag: str) -> str:
    """Segments of `tag` published for some uses (one in a folder), one not; a read key."""
    add_bare_segments(session, [f"{tag} b", f"{tag} A", f"{tag} unpublished"])
    add_bare_segments(session, [f"{tag} list"], source="uploaded_list")
    publish(session, f"{tag} b", ("api", "enrichment"))
    publish(session, f"{tag} A", ("account_details",))
    publish(session, f"{tag} list", ("gtm",))
    return create_api_key(session, f"read-{tag}", "read")[1]


def test_a_row_per_published_segment_with_its_uses_and_the_count_of_the_cap(
    api: ApiServer, stored: Stored
) -> None:
    tag = uuid.uuid4().hex[:8].upper()
    key = stored(_world, tag)
    count = stored(published_segment_count)

    answer = api.get("/v1/published", key)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [row for row in body["segments"] if row["name"].startswith(tag)] == [
        {"name": f"{tag} A", "folder": None, "uses": ["account_details"]},
        {"name": f"{tag} b", "folder": None, "uses": ["enrichment", "api"]},
        {"name": f"{tag} list", "folder": None, "uses": ["gtm"]},
    ]
    assert body["published"] == count >= 3
    assert body["max_published"] == 200
    assert body["summary"] == f"{count} of 200 segments published"


def test_search_keeps_matching_rows_and_the_count_stays_the_whole_table(
    api: ApiServer, stored: Stored
) -> None:
    tag = uuid.uuid4().hex[:8].upper()
    key = stored(_world, tag)
    stored(unpublish, f"{tag} A", ("account_details",))
    count = stored(published_segment_count)

    answer = api.get("/v1/published", key, params={"search": f"{tag.lower()} B"})
    nothing = api.get("/v1/published", key, params={"search": f"{tag}-no-such"})

    assert answer.status_code == 200, answer.text
    assert [row["name"] for row in answer.json()["segments"]] == [f"{tag} b"]
    assert answer.json()["summary"] == f"{count} of 200 segments published"
    assert nothing.json()["segments"] == []


def test_a_search_longer_than_a_name_is_a_one_line_422(api: ApiServer, stored: Stored) -> None:
    key = stored(lambda session: create_api_key(session, f"r-{uuid.uuid4().hex}", "read")[1])

    answer = api.get("/v1/published", key, params={"search": "x" * 256})

    assert answer.status_code == 422
    assert answer.json()["error"] == {
        "code": "invalid",
        "message": "query.search: String should have at most 255 characters",
    }
