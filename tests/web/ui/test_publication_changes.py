"""Wanted publication changes: form values, differences, and applying each on its own."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import FormData

from models.db import transaction
from models.errors import InputError
from models.publishing import MAX_PUBLISHED_SEGMENTS, published_uses
from models.publishing_tables import Publication
from models.segment_catalog import create_segment, find_segment
from tests.factories import add_bare_segments
from web.ui.publication_changes import (
    ChangeOutcome,
    WantedChange,
    apply_changes,
    differences,
    outcome_summary,
    parse_changes,
    publication_value,
)


def test_changes_go_through_a_form_and_back_unchanged() -> None:
    changes = [
        WantedChange("Key: accounts", "gtm", True),
        WantedChange("Émigrés", "sales_intelligence", False),
    ]
    form = FormData([("change", c.field_value) for c in [*changes, changes[0]]])

    assert parse_changes(form) == changes
    assert changes[0].describe() == "Publish 'Key: accounts' to GTM"
    assert changes[1].describe() == "Unpublish 'Émigrés' from Sales Intelligence (legacy)"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("delete:gtm:X", "form value 'delete:gtm:X' is not a publish or unpublish change"),
        ("publish:billboards:X", "form value 'billboards:X' is not a use and a segment name"),
        ("publish:gtm: ", "form value 'gtm: ' is not a use and a segment name"),
    ],
)
def test_a_malformed_change_is_refused_naming_it(value: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_changes(FormData([("change", value)]))


def test_differences_are_the_boxes_that_changed_for_the_rows_shown() -> None:
    before = {publication_value("A", "gtm"), publication_value("B", "api")}
    after = {publication_value("A", "enrichment"), publication_value("B", "api")}
    after.add(publication_value("Not shown", "api"))

    assert differences(["A", "B"], before, after) == [
        WantedChange("A", "enrichment", True),
        WantedChange("A", "gtm", False),
    ]


def test_each_change_is_applied_alone_unpublishing_first(
    session_factory: sessionmaker[Session],
) -> None:
    fillers = [f"filler {n:03d}" for n in range(MAX_PUBLISHED_SEGMENTS)]
    with transaction(session_factory) as session:
        add_bare_segments(session, fillers)
        session.add_all(
            Publication(segment_id=find_segment(session, name).id, use="api") for name in fillers
        )
        create_segment(session, "Dynamic", filter_expression='country = "FR"')
    changes = [
        WantedChange("Dynamic", "gtm", True),  # refused: a filter segment
        WantedChange("Dynamic", "enrichment", True),  # fits: filler 000 makes room first
        WantedChange("filler 000", "api", False),
        WantedChange("Nowhere", "api", True),
    ]

    outcomes = apply_changes(session_factory, changes)

    assert [o.change for o in outcomes] == changes
    assert [o.refused for o in outcomes] == [True, False, False, True]
    assert outcomes[0].message.startswith("segment 'Dynamic' cannot be published to gtm: ")
    assert outcomes[1].message == "published to Segment name enrichment"
    assert outcomes[2].message == "unpublished from API"
    assert outcomes[3].message == "no segment named 'Nowhere'"
    assert outcome_summary(outcomes) == (
        "Applied 2 changes; 2 refused (the reason is shown with each)."
    )
    with session_factory() as session:
        assert published_uses(session, find_segment(session, "Dynamic")) == {"enrichment"}
    # Applying again changes nothing and says so.
    again = apply_changes(session_factory, changes[1:3])
    assert again == [
        ChangeOutcome(changes[1], False, "was already published to Segment name enrichment"),
        ChangeOutcome(changes[2], False, "was not published to API"),
    ]
