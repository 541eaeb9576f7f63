"""Record -> account matching: explicit link first, then email domain (never free mail), website."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from connectors.systems import SYSTEMS, VENDORS
from models.accounts import Account
from models.matching import (
    AccountIndex,
    build_account_index,
    match_account,
    salesforce_id_forms,
)
from models.vocabulary import LINK_COLUMNS
from tests.factories import add_accounts


def index_for(session: Session, system: str) -> AccountIndex:
    add_accounts(
        session,
        [
            {
                "id": 1,
                "external_id": "A",
                "domain": "acme.com",
                "salesforce_account_id": "001000000000001AAA",
                "hubspot_company_id": "901",
            },
            {"id": 2, "external_id": "B", "domain": "globex.co.uk"},
            {"id": 3, "external_id": "C", "domain": "shared.io"},
            {"id": 4, "external_id": "D", "domain": "shared.io"},
            {"id": 5, "external_id": "E", "domain": "gmail.com"},
        ],
    )
    return build_account_index(session.connection(), system)


def test_explicit_link_wins_over_domains(session: Session) -> None:
    index = index_for(session, "salesforce")
    # A 15-character id and the 18-character form of the same record both match.
    for linked in ("001000000000001AAA", "001000000000001"):
        assert (
            match_account(index, linked_account_id=linked, email="x@globex.co.uk", website=None)
            == 1
        )
    hubspot = build_account_index(session.connection(), "hubspot")
    assert match_account(hubspot, linked_account_id="901", email=None, website=None) == 1


def test_email_domain_then_website(session: Session) -> None:
    index = index_for(session, "salesforce")
    assert (
        match_account(index, linked_account_id=None, email="Jo@Mail.Globex.co.uk", website=None)
        == 2
    )
    assert (
        match_account(
            index, linked_account_id="001unknown00000", email=None, website="https://www.acme.com/x"
        )
        == 1
    )
    assert (
        match_account(index, linked_account_id=None, email="jo@other.org", website="acme.com") == 1
    )


def test_free_mail_never_matches_even_an_account_with_that_domain(session: Session) -> None:
    index = index_for(session, "salesforce")
    assert match_account(index, linked_account_id=None, email="jo@gmail.com", website=None) is None
    assert (
        match_account(index, linked_account_id=None, email="jo@gmail.com", website="globex.co.uk")
        == 2
    )


def test_ambiguous_and_malformed_domains_do_not_match(session: Session) -> None:
    index = index_for(session, "salesforce")
    assert match_account(index, linked_account_id=None, email="a@shared.io", website=None) is None
    assert (
        match_account(index, linked_account_id=None, email="not an email", website="not a site")
        is None
    )


def test_each_system_links_by_the_column_its_registry_entry_names(session: Session) -> None:
    pardot = index_for(session, "pardot")
    marketo = build_account_index(session.connection(), "marketo")

    # Pardot's links are Salesforce Account ids: the 15-character form matches too.
    assert match_account(pardot, linked_account_id="001000000000001", email=None, website=None) == 1
    # Marketo records link to no account: an id that happens to be an account's matches nothing.
    assert match_account(marketo, linked_account_id="1", email=None, website=None) is None
    assert set(LINK_COLUMNS) == {s for s in SYSTEMS if VENDORS[s].link_column is not None}
    assert set(LINK_COLUMNS.values()) <= set(Account.__table__.columns.keys())


@pytest.mark.parametrize(
    ("short", "case_safe"),
    [
        # Published worked examples of Salesforce's 15 -> 18 character conversion (CASESAFEID).
        ("a0D30000001n7Pi", "a0D30000001n7PiEAI"),
        ("a01M00000062mPg", "a01M00000062mPgIAI"),
        ("001M000000qfPyS", "001M000000qfPySIAU"),
        ("0019000000B98de", "0019000000B98deAAB"),
        ("AbCdEfGhIjKlMnO", "AbCdEfGhIjKlMnOVKV"),
        ("aBcDEfgHIJKLMNO", "aBcDEfgHIJKLMNO025"),
    ],
)
def test_salesforce_id_forms_are_the_15_and_18_character_ids(short: str, case_safe: str) -> None:
    assert salesforce_id_forms(short) == (short, case_safe)
    assert salesforce_id_forms(case_safe) == (short, case_safe)


def test_a_malformed_salesforce_id_has_only_its_own_form() -> None:
    assert salesforce_id_forms("001-bad") == ("001-bad",)
