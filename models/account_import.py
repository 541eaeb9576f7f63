"""Accounts CSV import: upsert accounts by external_id from a CSV file.

Bad rows are skipped and reported by line; every good row is stored."""

from __future__ import annotations

import codecs
import csv
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from models.accounts import PROFILE_FITS, Account
from models.domains import registrable_domain
from models.errors import InputError

CHUNK_SIZE = 1000
_CRM_NAME = re.compile(r"crm\.[a-z0-9_.-]+")
_NUMBER = r"([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?"  # no sign: negatives are refused
_Record = tuple[int, list[str] | str]  # (first line, cells), or (line, why csv cannot read it)
_Row = tuple[dict[str, Any], dict[str, str | None]]  # account values, crm.* values (None: remove)


@dataclass(frozen=True)
class RowError:
    """A skipped row: its 1-based line in the file (the header is line 1) and why."""

    line: int
    message: str


@dataclass
class ImportResult:
    """Accounts created, updated and already equal, and the rows skipped with their errors."""

    created: int
    updated: int
    unchanged: int
    errors: list[RowError]


class _CellError(ValueError):
    """A cell's value is invalid; the message continues `<column> "<value>" ...`."""


def _domain(value: str) -> str:
    try:
        return registrable_domain(value)
    except InputError as exc:
        raise _CellError(str(exc).removeprefix(repr(value)).strip()) from None


def _pattern(
    pattern: str,
    problem: str,
    convert: Callable[[str], Any] = str,
    ok: Callable[[Any], bool] = lambda _: True,
) -> Callable[[str], Any]:
    """A parser of values that match `pattern` and, once converted, pass `ok`."""
    regex = re.compile(pattern)

    def parse(value: str) -> Any:
        if regex.fullmatch(value) and ok(converted := convert(value)):
            return converted
        raise _CellError(problem)

    return parse


# Account column -> parser of a trimmed, non-empty cell; `website` and `crm.*` are handled apart.
# Digit counts are bounded so values fit their columns (BIGINT) and int() never sees a huge string.
_PARSERS: dict[str, Callable[[str], Any]] = {
    "external_id": str,
    "name": str,
    "domain": _domain,
    "industry": str,
    "employee_count": _pattern(
        r"[0-9]{1,18}", "is not a whole number (plain digits only, no separators)", int
    ),
    "annual_revenue": _pattern(
        _NUMBER, "is not a number ≥ 0 (like 1250000 or 1.5e6)", float, math.isfinite
    ),
    "country": str,
    "region": str,
    "profile_fit": _pattern(
        "(?i)" + "|".join(PROFILE_FITS), f"is not one of {', '.join(PROFILE_FITS)}", str.upper
    ),
    "buying_stage": str,
    "intent_score": _pattern(
        r"[0-9]{1,3}", "is not a whole number from 0 to 100", int, lambda number: number <= 100
    ),
    "salesforce_account_id": _pattern(
        r"[A-Za-z0-9]{15}([A-Za-z0-9]{3})?", "is not a Salesforce id (15 or 18 letters and digits)"
    ),
    "hubspot_company_id": _pattern(r"[0-9]+", "is not a HubSpot id (digits only)"),
}
_KNOWN = [*list(_PARSERS)[:3], "website", *list(_PARSERS)[3:]]


def _show(value: str) -> str:
    # Quoted and escaped so a message stays on one line whatever the cell holds.
    return json.dumps(value if len(value) <= 60 else value[:57] + "...", ensure_ascii=False)


def _lines(stream: BinaryIO, path: Path) -> Iterator[str]:
    # Decoding line by line (not through a text wrapper) lets a bad byte be reported by its line.
    for number, raw in enumerate(stream, start=1):
        try:
            yield (raw.removeprefix(codecs.BOM_UTF8) if number == 1 else raw).decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{path}: line {number} is not UTF-8 text") from None


def _records(stream: BinaryIO, path: Path) -> Iterator[_Record]:
    """The file's non-blank rows, each with the line it starts on."""
    reader = csv.reader(_lines(stream, path))
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, str(exc)
            continue
        if any("\x00" in cell for cell in cells):  # a database text value cannot hold NUL
            yield start, "it contains a NUL character"
        elif any(cell.strip() for cell in cells):  # spreadsheets save blank rows as ",,,"
            yield start, cells


def _header(records: Iterator[_Record], path: Path) -> list[str]:
    first = next(records, None)
    if first is None:
        raise InputError(f"{path}: the file is empty (a header row with external_id is needed)")
    line, cells = first
    if isinstance(cells, str):
        raise InputError(f"{path}: line {line}: cannot read the header row: {cells}")
    columns = [cell.strip().lower() for cell in cells]
    seen: dict[str, int] = {}
    for number, (column, cell) in enumerate(zip(columns, cells, strict=True), start=1):
        if not column:
            raise InputError(f"{path}: header column {number} has no name")
        if column in seen:
            raise InputError(
                f"{path}: column {_show(cell.strip())} appears twice"
                f" (columns {seen[column]} and {number})"
            )
        seen[column] = number
        # crm.<name> keys are lower-cased like every header name, so crm.Tier and crm.tier are one.
        if column not in _KNOWN and not _CRM_NAME.fullmatch(column):
            odd = len(cells) == 1 and any(sep in column for sep in ";\t|")
            hint = "; the file seems not to be comma-separated" if odd else ""
            raise InputError(
                f"{path}: unknown column {_show(cell.strip())} (known: {', '.join(_KNOWN)},"
                f" crm.<name> where <name> is letters, digits, _ . -){hint}"
            )
    if "external_id" not in seen:
        raise InputError(f"{path}: the header has no external_id column")
    return columns


def _parse_row(columns: list[str], cells: list[str]) -> tuple[_Row, list[str]]:
    """The row's values and its problems (none when it can be stored)."""
    if len(cells) != len(columns):
        return ({}, {}), [f"the row has {len(cells)} cells, the header has {len(columns)}"]
    values: dict[str, Any] = {}
    crm: dict[str, str | None] = {}
    problems: list[str] = []
    website: str | None = None
    failed: set[str] = set()
    for column, raw in zip(columns, cells, strict=True):
        cell = raw.strip()
        if column.startswith("crm."):
            crm[column[4:]] = cell or None
        elif column == "website":
            website = cell
        else:
            try:
                values[column] = _PARSERS[column](cell) if cell else None
            except _CellError as exc:
                problems.append(f"{column} {_show(cell)} {exc}")
                failed.add(column)
                continue
            limit = getattr(Account.__table__.c[column].type, "length", None)
            if isinstance(values[column], str) and limit and len(values[column]) > limit:
                problems.append(f"{column} is longer than {limit} characters")
    if not values.get("external_id"):
        problems.insert(0, "external_id is empty")
    # The website only feeds the domain: used when the row gives no domain of its own.
    if website is not None and not values.get("domain") and "domain" not in failed:
        try:
            values["domain"] = _domain(website) if website else None
        except _CellError as exc:
            problems.append(f"website {_show(website)} {exc}")
    return (values, crm), problems


def import_accounts(session: Session, path: Path) -> ImportResult:
    """Upsert the accounts of the CSV file `path` by external_id; the caller commits."""
    result = ImportResult(created=0, updated=0, unchanged=0, errors=[])
    try:
        stream = path.open("rb")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot open the file ({exc.strerror or exc})") from None
    # A savepoint: a refusal found mid-file (a bad byte) also undoes the chunks already stored.
    with stream, session.begin_nested():
        records = _records(stream, path)
        columns = _header(records, path)
        first_line: dict[str, int] = {}
        chunk: list[_Row] = []
        for line, cells in records:
            if isinstance(cells, str):
                result.errors.append(RowError(line, f"cannot read the row: {cells}"))
                continue
            row, problems = _parse_row(columns, cells)
            external_id = str(row[0].get("external_id") or "")
            earlier = first_line.setdefault(external_id, line) if external_id else line
            if earlier != line:
                problems.insert(0, f"external_id {_show(external_id)} is already on line {earlier}")
            if problems:
                result.errors.append(RowError(line, "; ".join(problems)))
                continue
            chunk.append(row)
            if len(chunk) >= CHUNK_SIZE:
                _store(session, chunk, result)
                chunk.clear()
        _store(session, chunk, result)
    return result


def _store(session: Session, chunk: list[_Row], result: ImportResult) -> None:
    """Insert the chunk's new accounts and update the changed ones, in one statement each."""
    if not chunk:
        return
    # Every row of a file has the same keys: those of the columns the file gives.
    given = [getattr(Account, name) for name in chunk[0][0]]
    wanted = [Account.id, Account.crm_attributes, *given]
    ids = [values["external_id"] for values, _ in chunk]
    existing = {
        row["external_id"]: row
        for row in session.execute(select(*wanted).where(Account.external_id.in_(ids))).mappings()
    }
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for values, crm in chunk:
        old = existing.get(values["external_id"])
        new = dict(values)
        if crm:
            merged = {**((old["crm_attributes"] or {}) if old is not None else {}), **crm}
            new["crm_attributes"] = {key: text for key, text in merged.items() if text is not None}
        if old is None:
            inserts.append({"crm_attributes": {}, **new})
        elif any(old[name] != value for name, value in new.items()):
            del new["external_id"]
            updates.append({"id": old["id"], **new})
        else:
            result.unchanged += 1
    if inserts:
        session.execute(insert(Account), inserts)
        result.created += len(inserts)
    if updates:
        session.execute(update(Account), updates)
        result.updated += len(updates)
