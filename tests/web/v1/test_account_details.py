"""GET /v1/accounts/{key} on the real server: the account's fields as `segsync accounts show`
shows them and the segments published to account_details that contain it."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from models.api_keys import create_api_key
from models.publishing import publish
from models.segment_catalog import create_segment
from tests.factories import add_accounts
from tests.web.server import SEGSYNC, ApiServer

Stored = Callable[..., Any]


def _world(session: Session, tag: str) -> str:
    """An account of country `tag` in segments published for several uses; a read key."""
    add_accounts(
        session,
        [
            {
                "external_id": f"{tag}-1",
                "name": "Acme",
                "domain": f"acme-{tag.lower()}.co.uk",
                "industry": "Software",
                "employee_count": 250,
                "annual_revenue": 1.5e7,
                "country": tag,
                "profile_fit": "A",
                "intent_score": 71,
                "crm_attributes": {"owner": "Ana", "tier": "gold"},
            }
        ],
    )
    every = f'country = "{tag}"'
    for name, uses in (
        (f"{tag} Zeta details", ("account_details",)),
        (f"{tag} Émeraude details+api", ("account_details", "api")),
        (f"{tag} api only", ("api",)),
        (f"{tag} unpublished", ()),
    ):
        create_segment(session, name, filter_expression=every)
        if uses:
            publish(session, name, uses)
    return create_api_key(session, f"read-{tag}", "read")[1]


def test_the_account_fields_and_its_account_details_segments_as_accounts_show_gives_them(
    api: ApiServer, api_database_url: str, stored: Stored, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8].upper()
    key = stored(_world, tag)

    answer = api.get(f"/v1/accounts/{tag}-1", key)
    by_url = api.get(f"/v1/accounts/https://www.ACME-{tag}.co.uk/about", key)
    shown = subprocess.run(
        [SEGSYNC, "accounts", "show", f"{tag}-1", "--json"],
        env={**os.environ, "SEGSYNC_DATABASE_URL": api_database_url},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body == {
        "account": {
            "external_id": f"{tag}-1",
            "name": "Acme",
            "domain": f"acme-{tag.lower()}.co.uk",
            "industry": "Software",
            "employee_count": 250,
            "annual_revenue": 1.5e7,
            "country": tag,
            "region": None,
            "profile_fit": "A",
            "buying_stage": None,
            "intent_score": 71,
            "salesforce_account_id": None,
            "hubspot_company_id": None,
            "crm": {"owner": "Ana", "tier": "gold"},
        },
        "segments": [f"{tag} Émeraude details+api", f"{tag} Zeta details"],
    }
    assert by_url.status_code == 200 and by_url.json() == body
    # The CLI's JSON holds the same values: fields, crm.<name> keys and the segments.
    cli = json.loads(shown.stdout)
    account = dict(body["account"])
    crm = account.pop("crm")
    assert cli == {
        **account,
        **{f"crm.{k}": v for k, v in crm.items()},
        "segments": body["segments"],
    }


def test_an_account_in_no_account_details_segment_has_none_and_an_unknown_one_is_404(
    api: ApiServer, stored: Stored
) -> None:
    tag = uuid.uuid4().hex[:8].upper()

    def world(session: Session) -> str:
        add_accounts(session, [{"external_id": f"{tag}-lonely", "country": tag}])
        create_segment(session, f"{tag} api", filter_expression=f'country = "{tag}"')
        publish(session, f"{tag} api", ("api",))
        return create_api_key(session, f"read-{tag}", "read")[1]

    key = stored(world)
    lonely = api.get(f"/v1/accounts/{tag}-lonely", key)
    unknown = api.get("/v1/accounts/nobody-here.example.org", key)

    assert lonely.status_code == 200, lonely.text
    assert lonely.json()["segments"] == []
    assert unknown.status_code == 404
    assert unknown.json()["error"] == {
        "code": "not_found",
        "message": "no account with external id or domain 'nobody-here.example.org'",
    }


def test_a_domain_of_two_accounts_is_400_asking_for_the_external_id(
    api: ApiServer, stored: Stored
) -> None:
    tag = uuid.uuid4().hex[:8].lower()

    def world(session: Session) -> str:
        add_accounts(
            session,
            [
                {"external_id": f"{tag}-a", "domain": f"twin-{tag}.com"},
                {"external_id": f"{tag}-b", "domain": f"twin-{tag}.com"},
            ],
        )
        return create_api_key(session, f"read-{tag}", "read")[1]

    key = stored(world)
    answer = api.get(f"/v1/accounts/twin-{tag}.com", key)

    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == (
        f"more than one account has domain twin-{tag}.com: name one by its external id"
    )
