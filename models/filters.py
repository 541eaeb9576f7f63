"""The filter language of segment definitions: parsed into comparisons, compiled to one SQL WHERE.

Text `=`, `!=`, `in`, `contains` ignore case (lower() of both sides); `!=`, `not in` match no value.
A filter stays within the limits below, so that every filter accepted runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import operator as op
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from sqlalchemy import BigInteger, Float, Numeric, and_, case, cast, func, literal, or_
from sqlalchemy.sql.elements import ColumnElement

from models.accounts import PROFILE_FITS, Account
from models.errors import InputError

# More semantics a person may not guess:
# - lower() folds every script: segsync replaces SQLite's ASCII-only lower() (models.db), and
#   PostgreSQL's folds by the database's locale (any UTF-8 locale folds "É" to "é").
# - `is empty` is NULL or "" (NULL only for numbers); `!=` and `not in` also match NULL, as a
#   CRM report's "not equal to" includes blanks.
# - crm.* values are text; against a number literal (any operator, `=` included) a value that
#   reads as a number (" 42 ", "-1.5") compares numerically and any other value ("n/a") is no
#   value: it matches neither `=` nor `>`, but does match `!=` and `not in`.
_COMPANY = ("industry", "employee_count", "annual_revenue", "country", "region", "domain", "name")
FIELD_KINDS: Mapping[str, str] = MappingProxyType(
    {"profile_fit": "profile_fit", "intent_score": "intent", "buying_stage": "buying_stage"}
    | dict.fromkeys(_COMPANY, "company_profile")
)
NUMERIC_FIELDS = frozenset({"employee_count", "annual_revenue", "intent_score"})
CRM_PREFIX = "crm."
_CRM_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
# Only text of this shape is CAST: PostgreSQL's CAST raises on "n/a" (SQLite's reads it as 0).
_NUMERIC_TEXT = r"^\s*-?[0-9]+(\.[0-9]+)?\s*$"
_KEYWORDS = frozenset({"and", "or", "not", "in", "contains", "is", "empty"})
_TOKEN = re.compile(
    r"(?P<space>\s+)|(?P<number>-?\d+(?:\.\d+)?)|(?P<word>[A-Za-z_][A-Za-z0-9_.\-]*)"
    r"|(?P<op>>=|<=|!=|[=<>(),])|(?P<string>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')",
    re.DOTALL,
)
_Op = Callable[[Any, Any], ColumnElement[bool]]
_OPERATORS: dict[str, _Op] = {"=": op.eq, ">": op.gt, ">=": op.ge, "<": op.lt, "<=": op.le}
_ORDERING = frozenset(_OPERATORS) - {"="}

# The limits of a filter, each refused with its position (README, `segsync segments create`). The
# ceilings they keep clear of, measured with SQLite 3.40 and PostgreSQL 15 (tests/models/
# test_filters.py runs filters at every limit on both):
# - SQLite's parser stack (YYSTACKDEPTH, 100 entries) takes three entries for a "(" that follows an
#   operand, one for a "(" that starts one: `a or (b and (c or ...))` overflows it past about 30
#   levels, so _compile puts the most nested part first (then 100 levels parse). Python's recursion:
#   50 levels take about 400 of its 1000 frames, most in SQLAlchemy's compiler.
# - SQLite parses `a OR b OR c` left-deep and refuses expressions deeper than 1000
#   (SQLITE_MAX_EXPR_DEPTH); a comparison adds up to 2 operands (`!=` is `IS NULL OR !=`), so 400
#   comparisons reach a depth near 800, nesting included. PostgreSQL flattens such chains.
# - SQLite's LIKE pattern is at most 50000 characters (SQLITE_MAX_LIKE_PATTERN_LENGTH): a
#   `contains` value within 20000 characters stays under it with every character escaped. The
#   length also bounds the bind parameters (one per value, a value and its comma take two
#   characters) far under SQLite's 32766 and PostgreSQL's 65535.
MAX_LENGTH = 20_000  # characters of the expression, surrounding spaces stripped
MAX_DEPTH = 50  # levels of parentheses around a comparison
MAX_COMPARISONS = 400
MAX_LIST_VALUES = 1_000  # values of one `in (...)` or `not in (...)`
MAX_DIGITS = 30  # of one number: far below a float's 308 and Python's int() limit of 4300
# PostgreSQL text cannot hold NUL; a lone surrogate (undecodable command-line bytes) is no UTF-8.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
_EXCERPT = 40  # characters of a token shown in an error message

Value = str | int | Decimal


@dataclass(frozen=True)
class Comparison:
    """One comparison of a filter expression, as a person reads it."""

    field: str  # "industry" or "crm.tier"
    kind: str  # one of models.segments.FILTER_KINDS
    text: str  # normalised, e.g. 'employee_count >= 500'
    position: int  # 1-based, of the field in the (stripped) expression


@dataclass(frozen=True)
class _Token:
    kind: str  # "word", "number", "string", "op" or "end"
    text: str  # as written
    position: int
    value: Value | None = None  # for numbers and strings


@dataclass(frozen=True)
class _Test:
    comparison: Comparison
    operator: str  # a key of _OPERATORS, "!=", "in", "not in", "contains", "empty", "not empty"
    values: tuple[Value, ...]


@dataclass(frozen=True)
class _Combination:
    operator: str  # "and" or "or"
    parts: tuple[_Test | _Combination, ...]


@dataclass(frozen=True)
class ParsedFilter:
    """A valid filter expression: its comparisons, and the SQL condition it stands for."""

    expression: str
    comparisons: tuple[Comparison, ...]

    def where_clause(self) -> ColumnElement[bool]:
        """The SQL condition over `Account` that selects the accounts this filter matches."""
        # Parsing again is cheap and keeps this dataclass exactly its public fields.
        return _compile(_Parser(self.expression).parse())


def parse_filter(expression: str) -> ParsedFilter:
    """Parse a filter expression; error positions count from 1 in the stripped text."""
    text = expression.strip()
    if not text:
        raise InputError("filter: the expression is empty")
    parser = _Parser(text)
    parser.parse()
    return ParsedFilter(text, tuple(parser.comparisons))


def _fail(message: str, position: int, hint: str = "") -> InputError:
    return InputError(f"filter: {message} at position {position}{hint}")


def _excerpt(text: str) -> str:
    """`text` fit for a one-line message: control characters escaped, at most _EXCERPT shown."""
    shown = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text[:_EXCERPT])
    return shown + ("..." if len(text) > _EXCERPT else "")


def _quote(value: Value) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def _tokenize(text: str) -> list[_Token]:
    if len(text) > MAX_LENGTH:
        raise _fail(f"too long (at most {MAX_LENGTH} characters)", MAX_LENGTH + 1)
    unstorable = _UNSTORABLE.search(text)
    if unstorable:
        shown = f"U+{ord(unstorable.group()):04X}"
        raise _fail(f"character {shown} is not allowed", unstorable.start() + 1)
    tokens: list[_Token] = []
    at = 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None:
            if text[at] in "\"'":
                raise _fail("unclosed string", at + 1)
            raise _fail(f'unexpected character "{_excerpt(text[at])}"', at + 1)
        kind, chunk = match.lastgroup or "", match.group()
        value: Value | None = None
        if kind == "string":
            escapes = re.finditer(r"\\(.)", chunk[1:-1], re.DOTALL)
            bad = next((e for e in escapes if e.group(1) not in "\\\"'"), None)
            if bad:
                hint = " (write \\\\ for a backslash)"
                raise _fail(f'unknown escape "{_excerpt(bad.group())}"', at + bad.start() + 2, hint)
            value = re.sub(r"\\(.)", r"\1", chunk[1:-1], flags=re.DOTALL)
        elif kind == "number":
            if sum(c.isdigit() for c in chunk) > MAX_DIGITS:
                raise _fail(f"number too long (at most {MAX_DIGITS} digits)", at + 1)
            value = Decimal(chunk) if "." in chunk else int(chunk)
        if kind != "space":
            tokens.append(_Token(kind, chunk, at + 1, value))
        at = match.end()
    tokens.append(_Token("end", "", len(text) + 1))
    return tokens


class _Parser:
    """Recursive descent: or_expr := and_expr (or and_expr)*; and_expr := term (and term)*."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.at = 0
        self.depth = 0  # parentheses open around the current term
        self.comparisons: list[Comparison] = []

    def parse(self) -> _Test | _Combination:
        node = self._combination("or")
        token = self._peek()
        if token.kind != "end":
            raise _fail(f'unexpected "{_excerpt(token.text)}"', token.position)
        return node

    def _peek(self) -> _Token:
        return self.tokens[self.at]

    def _next(self) -> _Token:
        self.at += 1
        return self.tokens[self.at - 1]

    def _is(self, *words: str) -> bool:
        token = self._peek()
        if token.kind == "op":
            return token.text in words
        return token.kind == "word" and token.text.lower() in words

    def _combination(self, word: str) -> _Test | _Combination:
        # `and` binds tighter: an `or` is made of `and`s, an `and` of terms.
        parts = [self._combination("and") if word == "or" else self._term()]
        while self._is(word):
            self._next()
            parts.append(self._combination("and") if word == "or" else self._term())
        return parts[0] if len(parts) == 1 else _Combination(word, tuple(parts))

    def _term(self) -> _Test | _Combination:
        token = self._next()
        if token.kind == "op" and token.text == "(":
            # Refused before recursing: deeper nesting would exhaust Python's stack, then SQLite's.
            if self.depth == MAX_DEPTH:
                raise _fail(
                    f"too deeply nested (at most {MAX_DEPTH} levels of parentheses)", token.position
                )
            self.depth += 1
            node = self._combination("or")
            self._close(token, '")"')
            self.depth -= 1
            return node
        if token.kind == "end":
            after = f' after "{_excerpt(self.tokens[self.at - 2].text)}"' if self.at >= 2 else ""
            raise _fail(f"expected a comparison{after}", token.position)
        if token.kind != "word" or token.text.lower() in _KEYWORDS:
            hint = " (use != or not in)" if token.text.lower() == "not" else ""
            raise _fail(f'unexpected "{_excerpt(token.text)}"', token.position, hint)
        if len(self.comparisons) == MAX_COMPARISONS:
            raise _fail(f"too many comparisons (at most {MAX_COMPARISONS})", token.position)
        return self._comparison(token)

    def _comparison(self, field_token: _Token) -> _Test:
        field, kind = _field(field_token)
        operator, tokens = self._operator_and_values(field_token)
        _check(field, operator, tokens)
        values = tuple(t.value for t in tokens if t.value is not None)
        if field == "profile_fit":
            values = tuple(v.upper() if isinstance(v, str) else v for v in values)
        if operator in ("in", "not in"):
            shown = f"{field} {operator} ({', '.join(_quote(v) for v in values)})"
        elif operator in ("empty", "not empty"):
            shown = f"{field} is {operator}"
        else:
            shown = f"{field} {operator} {_quote(values[0])}"
        comparison = Comparison(field, kind, shown, field_token.position)
        self.comparisons.append(comparison)
        return _Test(comparison, operator, values)

    def _operator_and_values(self, field_token: _Token) -> tuple[str, tuple[_Token, ...]]:
        token = self._next()
        word = token.text.lower() if token.kind == "word" else ""
        if token.kind == "op" and (token.text in _OPERATORS or token.text == "!="):
            return token.text, (self._value(token.text),)
        if word == "contains":
            return word, (self._value(token.text),)
        if word == "is":
            negated = self._is("not")
            if negated:
                self._next()
            if not self._is("empty"):
                raise _fail('expected "empty" or "not empty" after "is"', self._peek().position)
            self._next()
            return ("not empty" if negated else "empty"), ()
        if word == "not" and not self._is("in"):
            raise _fail('expected "in" after "not"', self._peek().position)
        if word in ("in", "not"):
            operator = "not in" if word == "not" else "in"
            if word == "not":
                self._next()
            opening = self._next()
            if opening.text != "(" or opening.kind != "op":
                raise _fail(f'expected "(" after "{operator}"', opening.position)
            values = [self._value("(")]
            while self._is(","):
                values.append(self._value(self._next().text))
                if len(values) > MAX_LIST_VALUES:
                    limit = f"too many values in one list (at most {MAX_LIST_VALUES})"
                    raise _fail(limit, values[-1].position)
            self._close(opening, '"," or ")"')
            return operator, tuple(values)
        raise _fail(f'expected an operator after "{_excerpt(field_token.text)}"', token.position)

    def _close(self, opening: _Token, expected: str) -> None:
        closing = self._next()
        if closing.kind == "end":
            raise _fail('unclosed "("', opening.position)
        if closing.text != ")":
            raise _fail(
                f'expected {expected} but found "{_excerpt(closing.text)}"', closing.position
            )

    def _value(self, after: str) -> _Token:
        token = self._next()
        if token.value is None:
            hint = f' (quote text: "{_excerpt(token.text)}")' if token.kind == "word" else ""
            raise _fail(f'expected a value after "{after}"', token.position, hint)
        return token


def _field(token: _Token) -> tuple[str, str]:
    lowered = token.text.lower()
    if lowered.startswith(CRM_PREFIX):
        # The accounts import stores crm.<name> keys lower-cased, so names ignore case here too.
        name = lowered[len(CRM_PREFIX) :]
        if not _CRM_NAME.fullmatch(name):
            raise _fail(f'expected a name after "{_excerpt(token.text)}"', token.position)
        return CRM_PREFIX + name, "crm_map"
    if lowered in FIELD_KINDS:
        return lowered, FIELD_KINDS[lowered]
    known = ", ".join([*sorted(FIELD_KINDS), "crm.<name>"])
    raise _fail(f'unknown field "{_excerpt(token.text)}"', token.position, f" (known: {known})")


def _check(field: str, operator: str, tokens: tuple[_Token, ...]) -> None:
    """Refuse a value that does not fit its field or operator, at the value's position."""
    text_field = field in FIELD_KINDS and field not in NUMERIC_FIELDS
    for token in tokens:
        shown, at = _excerpt(token.text), token.position
        if operator == "contains" and field in NUMERIC_FIELDS:
            raise _fail(f'"contains" needs a text field, {field} is a number', at)
        if token.kind == "string" and field in NUMERIC_FIELDS:
            raise _fail(f"{field} is a number, not text {shown}", at)
        if token.kind == "string" and operator in _ORDERING:
            raise _fail(f'"{operator}" compares numbers, not text {shown}', at)
        if token.kind == "number" and operator == "contains":
            raise _fail(f'"contains" takes quoted text, not {shown}', at)
        if token.kind == "number" and text_field:
            raise _fail(f'{field} is text: quote the value ("{shown}")', at)
        if token.kind != tokens[0].kind:
            raise _fail(f'the values of "{operator}" must be all text or all numbers', at)
        if field == "profile_fit" and str(token.value).upper() not in PROFILE_FITS:
            raise _fail(f"profile_fit is one of {', '.join(PROFILE_FITS)}, not {shown}", at)


def _nesting(node: _Test | _Combination) -> int:
    """How many combinations deep `node` goes (0 for a single comparison)."""
    if isinstance(node, _Test):
        return 0
    return 1 + max(_nesting(part) for part in node.parts)


def _compile(node: _Test | _Combination) -> ColumnElement[bool]:
    if isinstance(node, _Combination):
        # The most nested part first: SQLite's parser then holds one entry per "(" instead of three.
        # AND and OR give the same result in any order; no part can raise (CASE guards each CAST).
        ordered = sorted(node.parts, key=_nesting, reverse=True)
        parts = [_compile(part) for part in ordered]
        return and_(*parts) if node.operator == "and" else or_(*parts)
    field, operator, values = node.comparison.field, node.operator, node.values
    raw: ColumnElement[Any]
    if field.startswith(CRM_PREFIX):
        raw = Account.crm_attributes[field[len(CRM_PREFIX) :]].as_string()
    else:
        raw = getattr(Account, field)
    if operator in ("empty", "not empty"):
        blank = raw.is_(None) if field in NUMERIC_FIELDS else or_(raw.is_(None), raw == "")
        return blank if operator == "empty" else ~blank
    subject: ColumnElement[Any]
    operands: list[ColumnElement[Any]]
    if any(isinstance(v, str) for v in values):
        subject = func.lower(raw)
        operands = [func.lower(literal(v)) for v in values]
    else:
        # Binds are typed (PostgreSQL casts them): BIGINT, as INTEGER overflows past 2**31; floats
        # past 2**63 and for decimals, since sqlite3 cannot bind a Decimal.
        operands = [
            literal(v, BigInteger)
            if isinstance(v, int) and abs(v) < 2**63
            else literal(float(v), Float)
            for v in values
        ]
        subject = raw
        if field not in NUMERIC_FIELDS:
            # CASE guards the CAST: non-numeric text becomes NULL instead of a PostgreSQL error.
            subject = case((raw.regexp_match(_NUMERIC_TEXT), cast(raw, Numeric)), else_=None)
    if operator == "contains":
        escaped = re.sub(r"([\\%_])", r"\\\1", str(values[0]))
        return subject.like(func.lower(literal(f"%{escaped}%")), escape="\\")
    if operator == "in":
        return subject.in_(operands)
    if operator == "not in":
        return or_(subject.is_(None), subject.not_in(operands))
    if operator == "!=":
        return or_(subject.is_(None), subject != operands[0])
    return _OPERATORS[operator](subject, operands[0])
