"""GET /v1/segments and /v1/segments/{name}/accounts on the real server: the segments published
to api, and their members page by page with cursors that stay exact while accounts change."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from models.accounts import Account
from models.api_keys import create_api_key
from models.publishing import publish
from models.segment_catalog import create_segment, find_segment, refresh_membership
from tests.factories import add_accounts
from tests.web.server import ApiServer

Stored = Callable[..., Any]


def _tag() -> str:
    return uuid.uuid4().hex[:8].upper()


def _read_key(stored: Stored) -> str:
    key = stored(lambda session: create_api_key(session, f"read-{uuid.uuid4().hex}", "read")[1])
    assert isinstance(key, str)
    return key


def _accounts(session: Session, tag: str, numbers: range, country: str | None = None) -> None:
    add_accounts(
        session,
        [
            {
                "external_id": f"{tag}-{n:03d}",
                "name": f"Company {n}",
                "domain": f"c{n}-{tag.lower()}.com",
                "country": country or tag,
            }
            for n in numbers
        ],
    )


def _segment(
    session: Session, name: str, tag: str, uses: tuple[str, ...], folder: str | None = None
) -> None:
    create_segment(session, name, filter_expression=f'country = "{tag}"', folder=folder)
    if uses:
        publish(session, name, uses)


def _path(name: str) -> str:
    return f"/v1/segments/{quote(name, safe='')}/accounts"


def _read_all(api: ApiServer, key: str, first: str) -> list[str]:
    """Every external id, following `next` from `first` to the end."""
    seen: list[str] = []
    path: str | None = first
    while path is not None:
        answer = api.get(path, key)
        assert answer.status_code == 200, answer.text
        seen += [account["external_id"] for account in answer.json()["accounts"]]
        path = answer.json()["next"]
    return seen


def test_the_segments_published_to_api_in_name_order_with_folder_source_members_and_uses(
    api: ApiServer, stored: Stored
) -> None:
    tag = _tag()
    key = _read_key(stored)

    def world(session: Session) -> None:
        _accounts(session, tag, range(3))
        _segment(session, f"{tag} b", tag, ("api",), folder="Sales")
        _segment(session, f"{tag} A", tag, ("account_details", "api", "enrichment"))
        _segment(session, f"{tag} c enrichment only", tag, ("enrichment",))
        _segment(session, f"{tag} d unpublished", tag, ())

    stored(world)
    answer = api.get("/v1/segments", key)

    assert answer.status_code == 200, answer.text
    mine = [row for row in answer.json()["segments"] if row["name"].startswith(tag)]
    assert mine == [
        {
            "name": f"{tag} A",
            "folder": None,
            "source": "filter",
            "members": 3,
            "uses": ["enrichment", "account_details", "api"],
            "crm_source": None,
        },
        {
            "name": f"{tag} b",
            "folder": "Sales",
            "source": "filter",
            "members": 3,
            "uses": ["api"],
            "crm_source": None,
        },
    ]


def test_members_come_a_page_at_a_time_with_a_next_cursor_link_and_header(
    api: ApiServer, stored: Stored
) -> None:
    tag = _tag()
    key = _read_key(stored)
    stored(
        lambda session: (_accounts(session, tag, range(5)), _segment(session, tag, tag, ("api",)))
    )

    first = api.get(_path(tag) + "?limit=2", key)
    everything = _read_all(api, key, _path(tag) + "?limit=2")

    assert first.status_code == 200, first.text
    body = first.json()
    assert body["segment"] == tag
    assert [a["external_id"] for a in body["accounts"]] == [f"{tag}-000", f"{tag}-001"]
    assert body["accounts"][0]["domain"] == f"c0-{tag.lower()}.com"
    assert body["accounts"][0]["crm"] == {}
    assert body["next"] == f"{_path(tag)}?limit=2&cursor={body['next_cursor']}"
    assert first.headers["Link"] == f'<{body["next"]}>; rel="next"'
    assert everything == [f"{tag}-{n:03d}" for n in range(5)]
    # The cursor alone continues the listing too; the last page has no next and no Link.
    second = api.get(_path(tag), key, params={"cursor": body["next_cursor"], "limit": 3}).json()
    assert [a["external_id"] for a in second["accounts"]] == [f"{tag}-{n:03d}" for n in (2, 3, 4)]
    last = api.get(_path(tag), key, params={"cursor": body["next_cursor"], "limit": 3})
    assert last.json()["next"] is None and last.json()["next_cursor"] is None
    assert "Link" not in last.headers


def test_pages_stay_exact_while_accounts_are_added_and_removed_between_reads(
    api: ApiServer, stored: Stored
) -> None:
    """Accounts join before and after the cursor and leave before and after it between page
    reads: each one present throughout appears exactly once (an offset would skip or repeat)."""
    tag = _tag()
    key = _read_key(stored)

    def world(session: Session) -> None:
        # Accounts outside the segment with lower ids than its members; some join it midway.
        _accounts(session, f"{tag}X", range(6), country="elsewhere")
        _accounts(session, tag, range(40))
        _segment(session, tag, tag, ("api",))

    stored(world)

    def change(session: Session, removed: list[str], joined: list[str], added: range) -> None:
        session.execute(delete(Account).where(Account.external_id.in_(removed)))
        session.execute(update(Account).where(Account.external_id.in_(joined)).values(country=tag))
        _accounts(session, f"{tag}N", added, country=tag)
        refresh_membership(session, find_segment(session, tag))

    seen: list[str] = []
    path: str | None = _path(tag) + "?limit=7"
    changes = [
        # Remove two already read and two not yet read; add new accounts.
        ([f"{tag}-001", f"{tag}-005", f"{tag}-020", f"{tag}-021"], [], range(0, 3)),
        # Older accounts (lower ids than the cursor) join; one unread leaves.
        ([f"{tag}-030"], [f"{tag}X-000", f"{tag}X-001"], range(3, 5)),
        ([f"{tag}-008", f"{tag}-035"], [f"{tag}X-005"], range(5, 6)),
    ]
    pages = 0
    while path is not None:
        answer = api.get(path, key)
        assert answer.status_code == 200, answer.text
        seen += [account["external_id"] for account in answer.json()["accounts"]]
        path = answer.json()["next"]
        if pages < len(changes):
            stored(change, *changes[pages])
        pages += 1

    removed = {external_id for gone, _, _ in changes for external_id in gone}
    throughout = {f"{tag}-{n:03d}" for n in range(40)} - removed
    assert len(seen) == len(set(seen)), "an account was repeated"
    assert throughout <= set(seen), f"skipped: {sorted(throughout - set(seen))}"
    # Accounts with ids above the cursor that joined are read; ones that joined below are not.
    assert {f"{tag}N-{n:03d}" for n in range(6)} <= set(seen)
    assert not {f"{tag}X-000", f"{tag}X-001", f"{tag}X-005"} & set(seen)
    assert pages > len(changes)


def test_a_segment_not_published_to_api_is_404_saying_so_and_an_unknown_one_is_404(
    api: ApiServer, stored: Stored
) -> None:
    tag = _tag()
    key = _read_key(stored)
    stored(lambda session: _segment(session, f"{tag} enrichment", tag, ("enrichment",)))

    unpublished = api.get(_path(f"{tag} ENRICHMENT"), key)
    unknown = api.get(_path(f"{tag} nothing"), key)

    assert unpublished.status_code == unknown.status_code == 404
    assert unpublished.json()["error"] == {
        "code": "not_found",
        "message": f"segment '{tag} enrichment' exists but is not published to api; "
        "publish it with `segsync publish NAME --use api`",
    }
    assert unknown.json()["error"]["message"].startswith(f"no segment named '{tag} nothing'")


def test_a_name_with_slashes_and_non_ascii_letters_is_one_path_parameter(
    api: ApiServer, stored: Stored
) -> None:
    tag = _tag()
    name = f"Régions/Île-de-France 北京 {tag}"
    key = _read_key(stored)
    stored(
        lambda session: (_accounts(session, tag, range(3)), _segment(session, name, tag, ("api",)))
    )

    listed = [row["name"] for row in api.get("/v1/segments", key).json()["segments"]]
    # Written with its slash as is, or percent-encoded: the same segment; `next` links work.
    raw = api.get(f"/v1/segments/{quote(name, safe='/')}/accounts?limit=2", key)
    encoded = _read_all(api, key, _path(name) + "?limit=2")

    assert name in listed
    assert raw.status_code == 200, raw.text
    assert raw.json()["segment"] == name
    assert encoded == [f"{tag}-{n:03d}" for n in range(3)]


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("0", "query.limit: Input should be greater than or equal to 1"),
        ("1001", "query.limit: Input should be less than or equal to 1000"),
        (
            "ten",
            "query.limit: Input should be a valid integer, unable to parse string as an integer",
        ),
    ],
)
def test_a_limit_out_of_bounds_is_a_one_line_422(
    api: ApiServer, stored: Stored, limit: str, message: str
) -> None:
    tag = _tag()
    key = _read_key(stored)
    stored(lambda session: _segment(session, tag, tag, ("api",)))

    answer = api.get(_path(tag), key, params={"limit": limit})

    assert answer.status_code == 422
    assert answer.json()["error"] == {"code": "invalid", "message": message}


def test_a_bad_cursor_is_400_saying_to_start_again(api: ApiServer, stored: Stored) -> None:
    tag = _tag()
    key = _read_key(stored)

    def world(session: Session) -> None:
        _accounts(session, tag, range(3))
        _segment(session, f"{tag} one", tag, ("api",))
        _segment(session, f"{tag} two", tag, ("api",))

    stored(world)
    cursor = api.get(_path(f"{tag} one") + "?limit=1", key).json()["next_cursor"]
    assert isinstance(cursor, str)

    answers = {
        written: api.get(_path(f"{tag} one"), key, params={"cursor": written})
        for written in ("not-a-cursor", cursor + "A", cursor[:-1], "é", "x" * 5000)
    }
    elsewhere = api.get(_path(f"{tag} two"), key, params={"cursor": cursor})

    for written, answer in answers.items():
        assert answer.status_code == 400, (written, answer.text)
        assert answer.json()["error"] == {
            "code": "invalid",
            "message": "cursor: not a cursor this API gave out; start again without cursor",
        }
    assert elsewhere.status_code == 400
    assert elsewhere.json()["error"]["message"] == (
        "cursor: it belongs to another listing (was the segment recreated?); "
        "start again without cursor"
    )


def test_the_read_routes_need_a_key(api: ApiServer) -> None:
    for path in ("/v1/segments", "/v1/segments/x/accounts", "/v1/published", "/v1/accounts/x"):
        answer = api.get(path)
        assert answer.status_code == 401, path
        assert answer.json()["error"]["code"] == "unauthorized"


def test_every_scope_reads(api: ApiServer, stored: Stored) -> None:
    for scope in ("read", "publish", "trigger"):
        key = stored(lambda session, s=scope: create_api_key(session, f"{s}-{_tag()}", s)[1])
        assert api.get("/v1/segments", str(key)).status_code == 200, scope


def test_the_openapi_document_describes_the_answers_and_errors(api: ApiServer) -> None:
    document = api.get("/openapi.json").json()
    listing = document["paths"]["/v1/segments/{name}/accounts"]["get"]

    assert listing["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/MemberPage"
    }
    for status in ("400", "401", "403", "404", "422", "429"):
        error = listing["responses"][status]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/ErrorResponse"}, status
    for path in ("/v1/segments", "/v1/published", "/v1/accounts/{key}"):
        assert "200" in document["paths"][path]["get"]["responses"], path
    # Accounts are named by external id; segsync's own row ids stay inside.
    fields = document["components"]["schemas"]["AccountFields"]["properties"]
    assert "id" not in fields and "external_id" in fields
