"""The filter language: what each expression selects on SQLite and PostgreSQL, and its errors."""

from __future__ import annotations

import random
from typing import Any

import pytest
from sqlalchemy import Integer, func, insert, literal, select
from sqlalchemy.orm import Session

from models.accounts import Account
from models.errors import InputError
from models.filters import (
    FIELD_KINDS,
    MAX_COMPARISONS,
    MAX_DEPTH,
    MAX_DIGITS,
    MAX_LENGTH,
    MAX_LIST_VALUES,
    Comparison,
    parse_filter,
)
from models.segments import FILTER_KINDS, Segment, SegmentMembership

ACCOUNTS: dict[str, dict[str, Any]] = {
    "acme": {
        "name": "Acme Corp",
        "domain": "acme.com",
        "industry": "Software",
        "employee_count": 1200,
        "annual_revenue": 55_000_000.0,
        "country": "US",
        "region": "NA",
        "profile_fit": "A",
        "buying_stage": "Decision",
        "intent_score": 80,
        "crm_attributes": {"tier": "Gold", "score": "42", "owner-name": "Ann", "region.code": "x1"},
    },
    "beta": {
        "name": "Beta GmbH",
        "industry": "FINTECH",
        "employee_count": 500,
        "annual_revenue": 1_000_000.0,
        "country": "DE",
        "region": "EMEA",
        "profile_fit": "B",
        "buying_stage": "Awareness",
        "intent_score": 30,
        # Not a number: PostgreSQL must not try to CAST it, SQLite must not read it as 0.
        "crm_attributes": {"tier": "silver", "score": "n/a"},
    },
    "gamma": {
        "name": 'Gamma "G" O\'Neil\\Co',
        "industry": "Retail",
        "employee_count": 50,
        "annual_revenue": 250_000.5,
        "country": "FR",
        "region": "EMEA",
        "profile_fit": "C",
        "crm_attributes": {"tier": "", "score": " 7.5 "},
    },
    "delta": {"name": "Delta 100%_off", "country": "", "crm_attributes": {}},
    "eps": {
        "name": "Epsilon",
        "industry": "software",
        "employee_count": 499,
        "annual_revenue": 0.0,
        "country": "us",
        "profile_fit": "D",
        "intent_score": 5,
        "crm_attributes": {"tier": "GOLD", "score": "-3"},
    },
}
EVERYONE = set(ACCOUNTS)


@pytest.fixture
def accounts(session: Session) -> Session:
    """The session, with the five accounts above committed."""
    session.add_all(Account(external_id=key, **fields) for key, fields in ACCOUNTS.items())
    session.commit()
    return session


def selected(session: Session, expression: str) -> set[str]:
    """External ids of the accounts `expression` selects, in one SQL statement."""
    where = parse_filter(expression).where_clause()
    return set(session.scalars(select(Account.external_id).where(where)))


def check(session: Session, cases: dict[str, set[str]]) -> None:
    """Every expression selects exactly its expected accounts (all failures reported at once)."""
    wrong = {e: (selected(session, e), want) for e, want in cases.items()}
    wrong = {e: got_want for e, got_want in wrong.items() if got_want[0] != got_want[1]}
    assert not wrong, "\n".join(f"{e}: got {g}, want {w}" for e, (g, w) in wrong.items())


def test_numeric_operators(accounts: Session) -> None:
    check(
        accounts,
        {
            "employee_count = 500": {"beta"},
            # != and not in also match accounts without a value.
            "employee_count != 500": {"acme", "gamma", "delta", "eps"},
            "employee_count > 500": {"acme"},
            "employee_count >= 500": {"acme", "beta"},
            "employee_count < 500": {"gamma", "eps"},
            "employee_count <= 500": {"beta", "gamma", "eps"},
            "employee_count in (50, 499)": {"gamma", "eps"},
            "employee_count not in (50, 499)": {"acme", "beta", "delta"},
            "annual_revenue > 250000.25": {"acme", "beta", "gamma"},
            "annual_revenue < 250000.75": {"gamma", "eps"},
            "intent_score > -1": {"acme", "beta", "eps"},
            "intent_score >= 30": {"acme", "beta"},
            # Beyond a 32-bit integer (and beyond 64 bits): no out-of-range error on PostgreSQL.
            "employee_count < 3000000000": {"acme", "beta", "gamma", "eps"},
            "employee_count < 99999999999999999999": {"acme", "beta", "gamma", "eps"},
        },
    )


def test_text_operators_ignore_case(accounts: Session) -> None:
    check(
        accounts,
        {
            'industry = "software"': {"acme", "eps"},
            "industry = 'SOFTWARE'": {"acme", "eps"},
            'industry != "Software"': {"beta", "gamma", "delta"},
            'industry in ("fintech", "RETAIL")': {"beta", "gamma"},
            'industry not in ("Software")': {"beta", "gamma", "delta"},
            'name contains "ta"': {"beta", "delta"},
            'name contains "ACME"': {"acme"},
            # LIKE wildcards in the value are matched literally.
            'name contains "%_"': {"delta"},
            'name contains "_"': {"delta"},
            "name = 'gamma \"g\" o\\'neil\\\\co'": {"gamma"},
            'domain = "ACME.com"': {"acme"},
            'country = "us"': {"acme", "eps"},
            'region = "emea"': {"beta", "gamma"},
            'buying_stage = "decision"': {"acme"},
            'profile_fit = "a"': {"acme"},
            "profile_fit in ('B', 'c')": {"beta", "gamma"},
            'profile_fit != "D"': {"acme", "beta", "gamma", "delta"},
        },
    )


def test_case_is_ignored_beyond_ascii(session: Session) -> None:
    session.add(Account(external_id="ecole", name="école über", crm_attributes={}))
    session.commit()
    check(session, {'name = "ÉCOLE ÜBER"': {"ecole"}, 'name contains "Über"': {"ecole"}})


def test_is_empty_means_null_or_empty_text(accounts: Session) -> None:
    check(
        accounts,
        {
            "industry is empty": {"delta"},
            "country is empty": {"delta"},  # "" rather than NULL
            "country IS NOT EMPTY": {"acme", "beta", "gamma", "eps"},
            "employee_count is empty": {"delta"},
            "intent_score is not empty": {"acme", "beta", "eps"},
            "crm.tier is empty": {"gamma", "delta"},  # "" and a missing key
            "crm.tier is not empty": {"acme", "beta", "eps"},
        },
    )


def test_crm_fields_compare_as_text(accounts: Session) -> None:
    check(
        accounts,
        {
            'crm.tier = "gold"': {"acme", "eps"},
            'crm.tier != "gold"': {"beta", "gamma", "delta"},
            'crm.tier in ("Silver", "")': {"beta", "gamma"},
            'crm.tier not in ("Silver", "")': {"acme", "delta", "eps"},
            'crm.tier contains "OL"': {"acme", "eps"},
            'crm.score = "N/A"': {"beta"},
            'crm.owner-name = "ann"': {"acme"},
            'crm.Region.Code = "X1"': {"acme"},
            # Attribute names ignore case, as the import stores them lower-cased.
            'crm.region.code = "x1"': {"acme"},
            'CRM.tier = "silver"': {"beta"},
        },
    )


def test_crm_fields_against_numbers_compare_numerically(accounts: Session) -> None:
    check(
        accounts,
        {
            "crm.score > 5": {"acme", "gamma"},  # 42 > 5 although "42" < "5" as text
            "crm.score >= 7.5": {"acme", "gamma"},
            # "n/a" is no number: SQLite would read it as 0 and PostgreSQL would fail to CAST it.
            "crm.score < 1": {"eps"},
            "crm.score <= -3": {"eps"},
            "crm.score = 42": {"acme"},
            "crm.score = 7.50": {"gamma"},  # " 7.5 " is the number 7.5
            "crm.score != 42": {"beta", "gamma", "delta", "eps"},
            "crm.score in (-3, 42)": {"acme", "eps"},
            "crm.score not in (-3, 42)": {"beta", "gamma", "delta"},
            "crm.tier > 0": set(),
        },
    )


def test_and_binds_tighter_than_or_and_parentheses_group(accounts: Session) -> None:
    check(
        accounts,
        {
            'industry = "Retail" or industry = "Software" and employee_count > 1000': {
                "gamma",
                "acme",
            },
            '(industry = "Retail" or industry = "Software") and employee_count > 1000': {"acme"},
            'profile_fit = "B" or employee_count > 1000 and industry = "Retail"': {"beta"},
            '(profile_fit = "B" or employee_count > 1000) and industry = "Retail"': set(),
            '((country = "us") and (intent_score >= 5 and intent_score < 80))': {"eps"},
            'country = "FR" or country = "DE" or country = "US" and intent_score < 10': {
                "gamma",
                "beta",
                "eps",
            },
            "INDUSTRY In ('software') AnD country Is Not Empty Or profile_fit = 'c'": {
                "acme",
                "eps",
                "gamma",
            },
        },
    )


def test_where_clause_fills_memberships_with_insert_select(accounts: Session) -> None:
    segment = Segment(name="Big software", name_key="big software", source="filter")
    accounts.add(segment)
    accounts.flush()
    parsed = parse_filter('industry = "software" and employee_count >= 1000 or crm.score < 0')
    chosen = select(Account.id, literal(segment.id, Integer)).where(parsed.where_clause())
    accounts.execute(insert(SegmentMembership).from_select(["account_id", "segment_id"], chosen))
    accounts.commit()
    members = accounts.scalars(
        select(Account.external_id)
        .join(SegmentMembership, SegmentMembership.account_id == Account.id)
        .where(SegmentMembership.segment_id == segment.id)
    )
    assert set(members) == {"acme", "eps"}


def test_comparisons_report_field_kind_normalised_text_and_position() -> None:
    parsed = parse_filter(
        "  profile_fit='a' AND employee_count>=0500 and crm.tier in ('x', \"y\\\"z\")"
        " or intent_score <= 1.50 or buying_stage is not empty or country contains 'it\\'s'  "
    )
    assert parsed.expression.startswith("profile_fit='a'")
    assert parsed.expression.endswith("'it\\'s'")
    assert parsed.comparisons == (
        Comparison("profile_fit", "profile_fit", 'profile_fit = "A"', 1),
        Comparison("employee_count", "company_profile", "employee_count >= 500", 21),
        Comparison("crm.tier", "crm_map", 'crm.tier in ("x", "y\\"z")', 46),
        Comparison("intent_score", "intent", "intent_score <= 1.50", 75),
        Comparison("buying_stage", "buying_stage", "buying_stage is not empty", 99),
        Comparison("country", "company_profile", 'country contains "it\'s"', 128),
    )


def test_every_field_has_a_known_kind() -> None:
    assert set(FIELD_KINDS) == {
        "profile_fit",
        "industry",
        "employee_count",
        "annual_revenue",
        "country",
        "region",
        "domain",
        "name",
        "intent_score",
        "buying_stage",
    }
    assert set(FIELD_KINDS.values()) <= set(FILTER_KINDS)
    for field, kind in FIELD_KINDS.items():
        value = "1" if kind == "intent" or field in ("employee_count", "annual_revenue") else '"A"'
        assert parse_filter(f"{field} = {value}").comparisons[0].kind == kind


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "the expression is empty"),
        ("   ", "the expression is empty"),
        ('industy = "x"', 'unknown field "industy" at position 1 (known: annual_revenue, '),
        ("employee_count >=", 'expected a value after ">=" at position 18'),
        ("employee_count >= and", 'expected a value after ">=" at position 19'),
        ('industry = "Software', "unclosed string at position 12"),
        ("industry = 'it\\'s", "unclosed string at position 12"),
        ('industry = "x" and and country = "y"', 'unexpected "and" at position 20'),
        ('industry = "x" country = "y"', 'unexpected "country" at position 16'),
        ('industry = "x" or', 'expected a comparison after "or" at position 18'),
        ('(industry = "x"', 'unclosed "(" at position 1'),
        ('industry = "x")', 'unexpected ")" at position 15'),
        ('(industry = "x" country = "y")', 'expected ")" but found "country" at position 17'),
        ('industry in "x"', 'expected "(" after "in" at position 13'),
        ('industry in ("a"', 'unclosed "(" at position 13'),
        ('industry in ("a",)', 'expected a value after "," at position 18'),
        ('industry in ("a" "b")', 'expected "," or ")" but found ""b"" at position 18'),
        ("industry is full", 'expected "empty" or "not empty" after "is" at position 13'),
        ("industry is not", 'expected "empty" or "not empty" after "is" at position 16'),
        ('not industry = "x"', 'unexpected "not" at position 1 (use != or not in)'),
        ('industry not "x"', 'expected "in" after "not" at position 14'),
        ('industry "x"', 'expected an operator after "industry" at position 10'),
        ("industry = Software", 'expected a value after "=" at position 12 (quote text: "Sof'),
        ('industry = "a\\nb"', 'unknown escape "\\n" at position 14'),
        ('industry = "x" & country = "y"', 'unexpected character "&" at position 16'),
        ('crm. = "x"', 'expected a name after "crm." at position 1'),
        ('employee_count = "500"', 'employee_count is a number, not text "500" at position 18'),
        ('employee_count contains "5"', '"contains" needs a text field, employee_count is a'),
        ("intent_score in (1, 'high')", "intent_score is a number, not text 'high' at position 21"),
        ('industry > "M"', '">" compares numbers, not text "M" at position 12'),
        ('crm.tier <= "gold"', '"<=" compares numbers, not text "gold" at position 13'),
        ("industry = 5", 'industry is text: quote the value ("5") at position 12'),
        ("crm.tier contains 5", '"contains" takes quoted text, not 5 at position 19'),
        (
            'crm.tier in ("a", 1)',
            'the values of "in" must be all text or all numbers at position 19',
        ),
        ('profile_fit = "E"', 'profile_fit is one of A, B, C, D, not "E" at position 15'),
        ("profile_fit in ('A', 'AB')", "profile_fit is one of A, B, C, D, not 'AB' at position 22"),
    ],
)
def test_errors_name_the_problem_and_its_position(expression: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_filter(expression)
    assert str(caught.value).startswith(f"filter: {message}")
    assert "\n" not in str(caught.value)


def nested(innermost: str, levels: int, or_part: str, and_part: str) -> str:
    """`innermost` in `levels` parentheses: `or_part or (...)`, `and_part and (...)` in turn."""
    expression = innermost
    for level in range(levels):
        expression = (
            f"{and_part} and ({expression})" if level % 2 else f"{or_part} or ({expression})"
        )
    return expression


def padded(expression: str, length: int) -> str:
    """`expression or name contains "%%...%"`, exactly `length` characters long."""
    head = f'{expression} or name contains "'
    return head + "%" * (length - len(head) - 1) + '"'


def refusal(expression: str) -> str:
    """The message parse_filter refuses `expression` with, checked to be one line."""
    with pytest.raises(InputError) as caught:
        parse_filter(expression)
    message = str(caught.value)
    assert message.startswith("filter: ") and "\n" not in message
    return message


def test_the_reported_inputs_are_refused_by_the_language() -> None:
    # A RecursionError traceback and "database error: Expression tree is too large" before.
    deep = "(" * 2000 + 'industry = "x"' + ")" * 2000
    assert refusal(deep) == (
        f"filter: too deeply nested (at most {MAX_DEPTH} levels of parentheses)"
        f" at position {MAX_DEPTH + 1}"
    )
    term = 'industry = "x"'
    chain = " or ".join([term] * 3000)
    assert refusal(chain) == (
        f"filter: too long (at most {MAX_LENGTH} characters) at position {MAX_LENGTH + 1}"
    )
    shorter = " or ".join([term] * (MAX_COMPARISONS + 1))
    assert refusal(shorter) == (
        f"filter: too many comparisons (at most {MAX_COMPARISONS})"
        f" at position {MAX_COMPARISONS * len(term + ' or ') + 1}"
    )


def test_each_limit_is_refused_one_past_it_with_its_position() -> None:
    too_long = padded('industry = "x"', MAX_LENGTH + 1)
    assert refusal(too_long) == (
        f"filter: too long (at most {MAX_LENGTH} characters) at position {MAX_LENGTH + 1}"
    )
    # Surrounding spaces do not count, as positions count in the stripped text.
    parse_filter("  " + padded('industry = "x"', MAX_LENGTH) + "\n ")
    # The parentheses of a list are no nesting.
    parse_filter("(" * MAX_DEPTH + "industry in ('a')" + ")" * MAX_DEPTH)
    value = '"v0000", '
    values = ", ".join(f'"v{n:04}"' for n in range(MAX_LIST_VALUES + 1))
    assert refusal(f"industry in ({values})") == (
        f"filter: too many values in one list (at most {MAX_LIST_VALUES})"
        f" at position {len('industry in (') + MAX_LIST_VALUES * len(value) + 1}"
    )
    assert refusal("employee_count < 1" + "0" * MAX_DIGITS) == (
        f"filter: number too long (at most {MAX_DIGITS} digits) at position 18"
    )
    assert refusal("annual_revenue > -0." + "0" * MAX_DIGITS).endswith(" digits) at position 18")
    # Python's int() refuses more than 4300 digits, float() an int past 1e308: no traceback.
    assert "number too long" in refusal("employee_count < " + "9" * 5000)
    assert "number too long" in refusal("employee_count < " + "9" * 400)
    assert refusal('name = "a\x00b"') == "filter: character U+0000 is not allowed at position 10"
    # Bytes that are not UTF-8 reach Python's argv as lone surrogates, which no database stores.
    assert refusal('name = "\udcff"') == "filter: character U+DCFF is not allowed at position 9"


def test_error_messages_show_tokens_on_one_short_line() -> None:
    message = refusal('industry = "x" "' + "y" * 5000 + '\nz"')
    assert message == f'filter: unexpected ""{"y" * 39}..." at position 16'
    assert refusal('industry = "a" or "\n"') == 'filter: unexpected ""\\n"" at position 19'
    assert refusal("industry = \x07") == 'filter: unexpected character "\\x07" at position 12'
    assert len(refusal("x" * MAX_LENGTH)) < 300


def test_filters_at_every_limit_select_on_both_databases(accounts: Session) -> None:
    # The comparisons of the long chains are of the kinds that compile to two SQL operands each.
    innermost = " or ".join(
        ['country = "us"', *["crm.tier is empty"] * (MAX_COMPARISONS - MAX_DEPTH - 1)]
    )
    # The deepest group written last, an `or` of MAX_COMPARISONS - MAX_DEPTH comparisons inside it:
    # SQLite's parser stack and expression depth both at their worst. Each `or` level adds a
    # comparison no account matches, each `and` level one every account matches.
    deepest = nested(innermost, MAX_DEPTH, 'crm.tier = "none"', "crm.score != 999")
    assert len(parse_filter(deepest).comparisons) == MAX_COMPARISONS
    assert deepest.count("(") == MAX_DEPTH
    longest = padded('name contains "100%_"', MAX_LENGTH)
    assert len(longest) == MAX_LENGTH
    check(
        accounts,
        {
            deepest: {"acme", "eps", "gamma", "delta"},
            " or ".join(["crm.score != 42"] * MAX_COMPARISONS): EVERYONE - {"acme"},
            " and ".join(["crm.score not in (42, 7.5)"] * MAX_COMPARISONS): {
                "beta",
                "delta",
                "eps",
            },
            "crm.score in ("
            + ", ".join(str(n) for n in [-3, *range(1000, 1000 + MAX_LIST_VALUES - 1)])
            + ")": {"eps"},
            "industry not in ("
            + ", ".join(f'"v{n}"' for n in range(MAX_LIST_VALUES - 1))
            + ', "retail")': EVERYONE - {"gamma"},
            # Every "%" escaped: SQLite's LIKE takes patterns up to 50000 characters.
            longest: {"delta"},
            "employee_count < " + "9" * MAX_DIGITS: {"acme", "beta", "gamma", "eps"},
            "annual_revenue > 0." + "0" * (MAX_DIGITS - 2) + "1": {"acme", "beta", "gamma"},
        },
    )


def hostile_filters(rng: random.Random) -> list[str]:
    """Filters built to break a parser or a database: deep, long, huge, unbalanced, binary."""
    comparison = rng.choice(
        ['industry = "x"', "crm.score != 1", "crm.tier not in ('a', 'b')", "intent_score > 5"]
    )
    size = rng.choice(
        [
            rng.randint(1, 5),
            rng.randint(MAX_DEPTH - 2, MAX_DEPTH + 2),
            rng.randint(MAX_COMPARISONS - 2, MAX_COMPARISONS + 2),
            rng.randint(MAX_LIST_VALUES - 2, MAX_LIST_VALUES + 2),
            rng.randint(1, 5000),
        ]
    )
    fragments = ["(", ")", " or ", " and ", comparison, '"', "'", "\\", ",", " in ", "\x07", "é"]
    soup = "".join(rng.choice(fragments) for _ in range(rng.randint(1, 60)))
    bound = 10 ** rng.choice([3, MAX_DIGITS - 1, MAX_DIGITS + 1])
    numbers = ", ".join(str(rng.randint(-bound, bound)) for _ in range(size))
    # Any character, lone surrogates included (1 in 550): long texts hold some, short ones rarely.
    length = rng.choice([rng.randint(1, 20), rng.randint(1, MAX_LENGTH)])
    text = "".join(chr(rng.randint(1, 0x10FFFF)) for _ in range(length))
    return [
        "(" * size + comparison + ")" * rng.randint(size - 2, size + 2),
        nested(comparison, size, comparison, comparison),
        rng.choice([" or ", " and "]).join([comparison] * size),
        f"crm.score in ({numbers})",
        f'name contains "{"%_" * rng.randint(1, MAX_LENGTH)}"',
        'name = "' + text.replace("\\", "\\\\").replace('"', '\\"') + '"',  # raw characters
        soup,
    ]


def test_hostile_filters_are_refused_cleanly_or_run(accounts: Session) -> None:
    rng = random.Random(9)  # fixed: a failure reproduces
    accepted = refused = 0
    for _ in range(40):
        for expression in hostile_filters(rng):
            try:
                where = parse_filter(expression).where_clause()
            except InputError as error:
                assert str(error).startswith("filter: ") and "\n" not in str(error)
                refused += 1
                continue
            # What the language accepts runs: no database error, no recursion error.
            accounts.scalar(select(func.count()).select_from(Account).where(where))
            accepted += 1
    # Both sides of every limit were reached.
    assert accepted > 40 and refused > 40
