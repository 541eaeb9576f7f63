"""GET /v1/accounts/{key}/segments on the real server: the segments published to api that
contain the account, found by external id or domain as import normalises them."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy.orm import Session

from models.api_keys import create_api_key
from models.publishing import publish
from models.segment_catalog import create_segment
from tests.factories import add_accounts
from tests.web.server import ApiServer


def _world(session: Session, tag: str) -> str:
    """Two accounts of country `tag`, segments published for several uses; a read key."""
    add_accounts(
        session,
        [
            {
                "external_id": f"{tag}-1",
                "name": "Acme",
                "domain": f"acme-{tag.lower()}.com",
                "country": tag,
            },
            {"external_id": f"{tag}-2", "name": "Globex", "domain": f"globex-{tag.lower()}.com"},
        ],
    )
    every = f'country = "{tag}"'
    for name, uses in (
        (f"{tag} b api", ("api",)),
        (f"{tag} a api+enrichment", ("api", "enrichment")),
        (f"{tag} enrichment only", ("enrichment",)),
        (f"{tag} unpublished", ()),
    ):
        create_segment(session, name, filter_expression=every)
        if uses:
            publish(session, name, uses)
    return create_api_key(session, f"read-{tag}", "read")[1]


def test_the_segments_published_to_api_that_contain_the_account_in_name_order(
    api: ApiServer, stored: Callable[..., object]
) -> None:
    tag = uuid.uuid4().hex[:8].upper()
    key = stored(_world, tag)
    assert isinstance(key, str)

    answer = api.get(f"/v1/accounts/{tag}-1/segments", key)

    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "account": {"external_id": f"{tag}-1", "name": "Acme", "domain": f"acme-{tag.lower()}.com"},
        "segments": [f"{tag} a api+enrichment", f"{tag} b api"],
    }
    # By domain, written as a URL, upper case or an email address: the same account.
    for written in (f"https://www.ACME-{tag}.com/about", f"someone@acme-{tag}.com"):
        by_domain = api.get(f"/v1/accounts/{written.replace('/', '%2F')}/segments", key)
        assert by_domain.status_code == 200, by_domain.text
        assert by_domain.json()["account"]["external_id"] == f"{tag}-1"
    # An account in no api segment has none.
    assert api.get(f"/v1/accounts/{tag}-2/segments", key).json()["segments"] == []


def test_an_unknown_account_is_404_in_the_one_error_shape(
    api: ApiServer, stored: Callable[..., object]
) -> None:
    key = stored(lambda session: create_api_key(session, f"r-{uuid.uuid4().hex}", "read")[1])

    answer = api.get("/v1/accounts/nobody.example.org/segments", str(key))

    assert answer.status_code == 404
    assert answer.json() == {
        "error": {
            "code": "not_found",
            "message": "no account with external id or domain 'nobody.example.org'",
        }
    }


def test_a_key_with_a_nul_character_is_422_on_every_backend(
    api: ApiServer, stored: Callable[..., object]
) -> None:
    key = stored(lambda session: create_api_key(session, f"r-{uuid.uuid4().hex}", "read")[1])

    for path in (
        "/v1/accounts/a%00b/segments",
        "/v1/accounts/a%00b",
        "/v1/segments/a%00b/accounts",
    ):
        answer = api.get(path, str(key))
        assert answer.status_code == 422, (path, answer.text)
        assert answer.json()["error"]["code"] == "invalid"
