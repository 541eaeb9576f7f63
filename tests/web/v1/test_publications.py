"""PUT / DELETE /v1/segments/{name}/publications/{use} on the real server: the publishing rules
of `segsync publish` / `unpublish`, refused with the command's own one-line reason."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from models.api_keys import create_api_key
from models.publishing import MAX_PUBLISHED_SEGMENTS, add_reference, publish
from models.publishing_tables import Publication
from models.segment_catalog import create_segment, find_segment
from models.segments import Segment
from tests.factories import add_accounts, write_csv
from tests.web.server import ApiServer
from tests.worker.cli.test_main import Cli

Stored = Callable[..., object]


def _path(name: str, use: str) -> str:
    return f"/v1/segments/{name.replace('/', '%2F')}/publications/{use}"


def _key(stored: Stored, scope: str = "publish") -> str:
    key = stored(lambda session: create_api_key(session, f"{scope}-{uuid.uuid4().hex}", scope)[1])
    assert isinstance(key, str)
    return key


def _segment(stored: Stored, tag: str, **how: object) -> str:
    """A segment named after `tag` over one account of its own; its name."""

    def build(session: Session) -> str:
        add_accounts(session, [{"external_id": f"{tag}-1", "domain": f"{tag}.example.com"}])
        return create_segment(session, f"{tag} segment", **how).name  # type: ignore[arg-type]

    name = stored(build)
    assert isinstance(name, str)
    return name


@pytest.fixture
def cli(api_database_url: str) -> Cli:
    """The command line on the server's database, to compare its words with the API's."""
    return Cli(api_database_url)


def test_put_publishes_and_repeating_it_changes_nothing_and_answers_the_same(
    api: ApiServer, stored: Stored, cli: Cli
) -> None:
    tag = uuid.uuid4().hex[:10]
    name = _segment(stored, tag, filter_expression=f'domain = "{tag}.example.com"')
    key = _key(stored)

    first = api.call("PUT", _path(name, "api"), key)
    again = api.call("PUT", _path(name, "api"), key)
    second_use = api.call("PUT", _path(name.upper(), "enrichment"), key)

    assert first.status_code == again.status_code == second_use.status_code == 200, first.text
    count = first.json()["published_segments"]
    assert first.json() == {
        "segment": name,
        "use": "api",
        "changed": True,
        "uses": ["api"],
        "published_segments": count,
        "max_published_segments": MAX_PUBLISHED_SEGMENTS,
        "message": f"published {name!r} to api ({count} of {MAX_PUBLISHED_SEGMENTS} segments "
        "published)",
    }
    # The same answer, saying nothing changed, in the command line's words.
    already = cli.ok("publish", name, "--use", "api", "--yes").stdout.strip()
    assert again.json() == {**first.json(), "changed": False, "message": already}
    # Another use of a published segment does not count it twice.
    assert second_use.json()["uses"] == ["enrichment", "api"]
    assert second_use.json()["published_segments"] == count


def test_delete_unpublishes_and_repeating_it_changes_nothing(
    api: ApiServer, stored: Stored, cli: Cli
) -> None:
    tag = uuid.uuid4().hex[:10]
    name = _segment(stored, tag, filter_expression=f'domain = "{tag}.example.com"')
    stored(publish, name, ["api", "enrichment"])
    key = _key(stored)

    first = api.call("DELETE", _path(name, "api"), key)
    again = api.call("DELETE", _path(name, "api"), key)

    assert first.status_code == again.status_code == 200, first.text
    assert first.json()["changed"] is True and first.json()["uses"] == ["enrichment"]
    assert first.json()["message"].startswith(f"unpublished {name!r} from api (")
    not_published = cli.ok("unpublish", name, "--use", "api", "--yes").stdout.strip()
    assert again.json() == {**first.json(), "changed": False, "message": not_published}


def test_gtm_eligibility_refuses_with_409_and_the_cli_reason_naming_source_and_filter(
    api: ApiServer, stored: Stored, cli: Cli, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:10]
    from_filter = _segment(stored, tag, filter_expression=f'domain = "{tag}.example.com"')
    listed = write_csv(tmp_path / "list.csv", ["domain"], [[f"{tag}.example.com"]])
    dynamic = str(
        stored(
            lambda session: (
                create_segment(
                    session,
                    f"{tag} listed",
                    list_path=listed,
                    filter_expression="intent_score >= 50",
                ).name
            )
        )
    )
    key = _key(stored)

    for name, named in ((from_filter, "its source is a filter"), (dynamic, "intent_score >= 50")):
        refused = api.call("PUT", _path(name, "gtm"), key)
        assert refused.status_code == 409, refused.text
        message = refused.json()["error"]["message"]
        assert named in message
        assert refused.json()["error"]["code"] == "conflict"
        assert cli.refused("publish", name, "--use", "gtm", "--yes") == f"segsync: {message}"
    # Nothing was published.
    assert api.call("DELETE", _path(dynamic, "gtm"), key).json()["uses"] == []


def test_unpublishing_gtm_used_by_a_report_is_409_naming_the_report(
    api: ApiServer, stored: Stored, cli: Cli, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:10]
    listed = write_csv(tmp_path / "list.csv", ["domain"], [[f"{tag}.example.com"]])
    name = _segment(stored, tag, list_path=listed)
    key = _key(stored)
    assert api.call("PUT", _path(name, "gtm"), key).json()["changed"] is True
    stored(add_reference, name, "6qa_report", f"Pipeline {tag}")

    refused = api.call("DELETE", _path(name, "gtm"), key)

    assert refused.status_code == 409, refused.text
    message = refused.json()["error"]["message"]
    assert f"saved 6QA report 'Pipeline {tag}'" in message
    assert cli.refused("unpublish", name, "--use", "gtm", "--yes") == f"segsync: {message}"
    assert api.call("PUT", _path(name, "gtm"), key).json()["uses"] == ["gtm"]


def test_the_200_cap_refuses_a_new_segment_with_the_cli_reason(
    api: ApiServer, stored: Stored, cli: Cli
) -> None:
    tag = uuid.uuid4().hex[:10]
    name = _segment(stored, tag, filter_expression=f'domain = "{tag}.example.com"')
    key = _key(stored)

    def fill(session: Session) -> list[str]:
        published = session.scalar(select(func.count(func.distinct(Publication.segment_id))))
        names = [f"{tag} filler {n}" for n in range(MAX_PUBLISHED_SEGMENTS - (published or 0))]
        for filler in names:
            create_segment(session, filler, filter_expression='country = "nowhere"')
            publish(session, filler, ["enrichment"])
        return names

    fillers = stored(fill)
    assert isinstance(fillers, list)
    try:
        refused = api.call("PUT", _path(name, "api"), key)
        # A segment published already may take another use: it is counted once.
        more = api.call("PUT", _path(fillers[0], "api"), key)

        assert refused.status_code == 409, refused.text
        message = refused.json()["error"]["message"]
        assert f"{MAX_PUBLISHED_SEGMENTS} segments are already published" in message
        assert cli.refused("publish", name, "--use", "api", "--yes") == f"segsync: {message}"
        assert more.status_code == 200, more.text
        assert more.json()["published_segments"] == MAX_PUBLISHED_SEGMENTS
    finally:

        def unfill(session: Session) -> None:
            ids = select(Segment.id).where(Segment.name.in_(fillers))
            session.execute(delete(Publication).where(Publication.segment_id.in_(ids)))

        stored(unfill)


def test_an_unknown_use_is_400_naming_the_uses_and_legacy_is_unpublish_only(
    api: ApiServer, stored: Stored
) -> None:
    tag = uuid.uuid4().hex[:10]
    name = _segment(stored, tag, filter_expression=f'domain = "{tag}.example.com"')
    key = _key(stored)

    unknown = api.call("PUT", _path(name, "billboards"), key)
    legacy = api.call("PUT", _path(name, "sales_intelligence"), key)

    assert unknown.status_code == 400
    assert unknown.json()["error"]["message"] == (
        "unknown use 'billboards' (uses: enrichment, account_details, gtm, api, sales_intelligence)"
    )
    assert legacy.status_code == 409
    assert "legacy use" in legacy.json()["error"]["message"]

    # A segment still published there from before can be taken off it.
    def legacy_publication(session: Session) -> None:
        session.add(
            Publication(segment_id=find_segment(session, name).id, use="sales_intelligence")
        )

    stored(legacy_publication)
    removed = api.call("DELETE", _path(name, "sales_intelligence"), key)
    assert removed.status_code == 200, removed.text
    assert removed.json()["changed"] is True and removed.json()["uses"] == []


def test_an_unknown_segment_is_404_and_a_read_or_trigger_key_is_403(
    api: ApiServer, stored: Stored
) -> None:
    tag = uuid.uuid4().hex[:10]
    name = _segment(stored, tag, filter_expression=f'domain = "{tag}.example.com"')

    missing = api.call("PUT", _path(f"{tag} nothing", "api"), _key(stored))
    # A NUL cannot be in any stored name (PostgreSQL refuses it): 422, on either database.
    nul = api.call("PUT", "/v1/segments/a%00b/publications/api", _key(stored))
    assert nul.status_code == 422, nul.text
    assert nul.json()["error"]["message"].startswith("path.name: String should match pattern")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"].startswith(f"no segment named '{tag} nothing'")
    for scope in ("read", "trigger"):
        key = _key(stored, scope)
        for method in ("PUT", "DELETE"):
            refused = api.call(method, _path(name, "api"), key)
            assert refused.status_code == 403, refused.text
            assert "this needs scope publish" in refused.json()["error"]["message"]
    assert api.call("PUT", _path(name, "api"), _key(stored)).json()["uses"] == ["api"]
