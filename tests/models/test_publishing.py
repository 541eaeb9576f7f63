"""Every publishing rule: uses, the 200 limit, GTM eligibility, references, the legacy use."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.accounts import Account
from models.errors import InputError, NotFoundError, RuleError
from models.publishing import (
    MAX_PUBLISHED_SEGMENTS,
    account_segment_names,
    add_reference,
    plan_publish,
    publish,
    published_segment_count,
    published_table,
    remove_reference,
    unpublish,
)
from models.publishing_tables import Publication
from models.segment_catalog import create_segment, find_segment
from tests.factories import add_accounts, add_bare_segments, write_csv


@pytest.fixture
def account_list(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "accounts.csv", ["external_id"], [["A-1"], ["A-2"]])


@pytest.fixture
def seeded(session: Session) -> Session:
    add_accounts(
        session,
        [
            {"external_id": "A-1", "industry": "Software", "intent_score": 80},
            {"external_id": "A-2", "industry": "Fintech", "intent_score": 10},
            {"external_id": "A-3", "industry": "Software", "intent_score": 50},
        ],
    )
    session.commit()
    return session


def test_publish_for_several_uses_then_nothing_changes_the_second_time(seeded: Session) -> None:
    create_segment(seeded, "Software", filter_expression='industry = "Software"')
    change = publish(seeded, "software", ["enrichment", "api"])
    assert change.changed == ("enrichment", "api")
    seeded.commit()
    again = publish(seeded, "SOFTWARE", ["api", "enrichment"])
    assert again.changed == ()
    assert again.unchanged == ("api", "enrichment")
    rows = published_table(seeded)
    assert [(r.name, set(r.uses)) for r in rows] == [("Software", {"enrichment", "api"})]


def test_unknown_use_and_unknown_segment_are_refused(seeded: Session) -> None:
    create_segment(seeded, "Software", filter_expression='industry = "Software"')
    with pytest.raises(InputError, match="unknown use 'crm'"):
        publish(seeded, "Software", ["crm"])
    with pytest.raises(NotFoundError, match="no segment named 'Softwar'.*did you mean 'Software'"):
        publish(seeded, "Softwar", ["api"])


def test_legacy_sales_intelligence_can_be_unpublished_but_not_published(seeded: Session) -> None:
    create_segment(seeded, "Old SI", filter_expression='industry = "Software"')
    with pytest.raises(RuleError, match="sales_intelligence is a legacy use"):
        publish(seeded, "Old SI", ["sales_intelligence"])
    seeded.add(Publication(segment_id=find_segment(seeded, "Old SI").id, use="sales_intelligence"))
    seeded.commit()
    assert publish(seeded, "Old SI", ["sales_intelligence"]).changed == ()
    assert unpublish(seeded, "Old SI", ["sales_intelligence"]).changed == ("sales_intelligence",)
    seeded.commit()
    assert published_table(seeded) == []


def test_at_most_200_segments_counted_once_whatever_their_uses(session: Session) -> None:
    names = [f"segment {n:03d}" for n in range(MAX_PUBLISHED_SEGMENTS + 1)]
    add_bare_segments(session, names)
    for name in names[:MAX_PUBLISHED_SEGMENTS]:
        publish(session, name, ["enrichment"])
    session.commit()
    assert published_segment_count(session) == MAX_PUBLISHED_SEGMENTS
    # A segment already published may take more uses: it is still one segment.
    assert publish(session, names[0], ["api", "account_details"]).changed == (
        "api",
        "account_details",
    )
    with pytest.raises(RuleError, match="200 segments are already published.*at most 200"):
        publish(session, names[-1], ["api"])
    session.rollback()
    unpublish(session, names[1], ["enrichment"])
    assert publish(session, names[-1], ["api"]).changed == ("api",)
    session.commit()
    assert published_segment_count(session) == MAX_PUBLISHED_SEGMENTS


def test_concurrent_publishers_never_exceed_the_limit(
    session: Session, session_factory: sessionmaker[Session]
) -> None:
    already = MAX_PUBLISHED_SEGMENTS - 3
    names = [f"segment {n:03d}" for n in range(already + 12)]
    add_bare_segments(session, names)
    for name in names[:already]:
        publish(session, name, ["api"])
    session.commit()

    contenders = names[already:]
    barrier = threading.Barrier(len(contenders))
    outcomes: list[str] = []

    def contend(name: str) -> None:
        with session_factory() as own:
            barrier.wait()
            try:
                publish(own, name, ["enrichment"])
                own.commit()
                outcomes.append("published")
            except RuleError:
                own.rollback()
                outcomes.append("refused")

    threads = [threading.Thread(target=contend, args=(name,)) for name in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("published") == 3
    assert outcomes.count("refused") == len(contenders) - 3
    assert published_segment_count(session) == MAX_PUBLISHED_SEGMENTS


def test_gtm_refuses_a_filter_source_naming_it(seeded: Session) -> None:
    create_segment(seeded, "Software", filter_expression='industry = "Software"')
    with pytest.raises(RuleError, match="cannot be published to gtm: its source is a filter"):
        publish(seeded, "Software", ["gtm"])


def test_gtm_refuses_a_dynamic_filter_naming_it(seeded: Session, account_list: Path) -> None:
    create_segment(
        seeded,
        "Hot list",
        list_path=account_list,
        filter_expression='industry = "Software" and intent_score >= 70',
    )
    with pytest.raises(RuleError, match=r"filter 'intent_score >= 70' \(intent\) is dynamic"):
        publish(seeded, "Hot list", ["gtm"])
    # The same segment may still be published for uses that have no eligibility rule.
    assert publish(seeded, "Hot list", ["enrichment"]).changed == ("enrichment",)


@pytest.mark.parametrize("source", ["uploaded_list", "crm_report_sync", "crm_list_sync"])
def test_gtm_accepts_list_sources_with_static_filters(
    seeded: Session, account_list: Path, source: str
) -> None:
    create_segment(
        seeded,
        "Territory",
        list_path=account_list,
        source=source,
        filter_expression='industry in ("Software", "Fintech") and profile_fit != "D"',
    )
    assert plan_publish(seeded, "Territory", ["gtm"]).changed == ("gtm",)
    assert publish(seeded, "Territory", ["gtm"]).changed == ("gtm",)


def test_references_block_unpublishing_from_gtm_only(seeded: Session, account_list: Path) -> None:
    create_segment(seeded, "EMEA territory", list_path=account_list)
    with pytest.raises(RuleError, match="not published to gtm"):
        add_reference(seeded, "EMEA territory", "6qa_report", "Q3 pipeline")
    publish(seeded, "EMEA territory", ["gtm", "enrichment"])
    assert add_reference(seeded, "EMEA territory", "6qa_report", "Q3 pipeline")
    assert add_reference(seeded, "EMEA territory", "custom_6qa", "ICP 6QA")
    assert not add_reference(seeded, "EMEA territory", "custom_6qa", "ICP 6QA")
    seeded.commit()

    with pytest.raises(RuleError) as refused:
        unpublish(seeded, "EMEA territory", ["gtm", "enrichment"])
    message = str(refused.value)
    assert "saved 6QA report 'Q3 pipeline'" in message
    assert "custom 6QA 'ICP 6QA'" in message
    seeded.rollback()
    # Nothing was half-done: enrichment is still published too.
    assert {r.name: set(r.uses) for r in published_table(seeded)} == {
        "EMEA territory": {"gtm", "enrichment"}
    }
    assert unpublish(seeded, "EMEA territory", ["enrichment"]).changed == ("enrichment",)
    assert remove_reference(seeded, "EMEA territory", "6qa_report", "Q3 pipeline")
    assert remove_reference(seeded, "EMEA territory", "custom_6qa", "ICP 6QA")
    assert unpublish(seeded, "EMEA territory", ["gtm"]).changed == ("gtm",)


def test_reference_kind_and_title_are_checked(seeded: Session, account_list: Path) -> None:
    create_segment(seeded, "Named", list_path=account_list)
    with pytest.raises(InputError, match="unknown reference kind"):
        add_reference(seeded, "Named", "dashboard", "x")
    with pytest.raises(InputError, match="non-empty title"):
        add_reference(seeded, "Named", "custom_6qa", "  ")


def test_published_table_search_matches_name_or_folder_ignoring_case(seeded: Session) -> None:
    create_segment(seeded, "Énergie FR", filter_expression='country = "FR"', folder="Europe")
    create_segment(seeded, "Software", filter_expression='industry = "Software"', folder="ICP")
    publish(seeded, "Énergie FR", ["api"])
    publish(seeded, "Software", ["enrichment"])
    assert [r.name for r in published_table(seeded, "éner")] == ["Énergie FR"]
    assert [r.name for r in published_table(seeded, "EUROPE")] == ["Énergie FR"]
    assert [r.name for r in published_table(seeded, "soft")] == ["Software"]
    assert [r.name for r in published_table(seeded)] == ["Énergie FR", "Software"]


def test_account_details_lists_only_segments_published_for_it(seeded: Session) -> None:
    create_segment(seeded, "software", filter_expression='industry = "Software"')
    create_segment(seeded, "Intent", filter_expression="intent_score >= 50")
    create_segment(seeded, "Everyone", filter_expression="intent_score >= 0")
    publish(seeded, "software", ["account_details"])
    publish(seeded, "Intent", ["account_details", "enrichment"])
    publish(seeded, "Everyone", ["enrichment"])
    a1 = seeded.scalar(select(Account.id).where(Account.external_id == "A-1"))
    assert a1 is not None
    assert account_segment_names(seeded, a1, "account_details") == ["Intent", "software"]
