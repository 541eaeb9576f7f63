"""Segment members read from Salesforce: the Account rows of a report or of a list view.

Reports go through the Reports and Dashboards REST API. A synchronous run returns at most the
first 2,000 detail rows ("allData": false past that; Salesforce's "Requirements and
Limitations"), so a report is read in runs: each POSTs the report's own reportMetadata ("Filter
Reports on Demand") as a flat tabular run sorted by the id column, with one added filter
`column greaterThan <the last id of the previous run>`, until a run says allData is true.

A list view's describe ("List View Describe": columns, query, sobjectType, ...) names the SOQL
the list view runs; that query is read like any other, page by page through nextRecordsUrl.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import requests

from connectors.errors import FatalError, RetryableError
from connectors.members import CrmMember

logger = logging.getLogger(__name__)

# call(method, path under /services/data/vXX.X/, **requests kwargs) -> a 2xx response
Call = Callable[..., requests.Response]
# Runs one fetch, asking again after a short retryable error (Connector._read_page).
PageFetch = Callable[[Callable[[], Any]], Any]
# The rows of a SOQL query, every page (SalesforceConnector._query_rows).
QueryRows = Callable[[str], Iterator[Mapping[str, Any]]]

ACCOUNT_PREFIX = "001"
# A record id: 15 case-sensitive characters, optionally followed by the 3-character checksum.
_RECORD_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
# The report formats whose detail rows can be read as one sorted list.
_READABLE_FORMATS = ("TABULAR", "SUMMARY")
# Detail columns that hold an Account's website or name, by API name (Accounts report types
# call the website "URL") or, in custom report types, by label.
_WEBSITE_COLUMNS = {"URL", "WEBSITE", "ACCOUNT.WEBSITE", "ACCOUNT.URL"}
_NAME_COLUMNS = {"ACCOUNT.NAME", "ACCOUNT_NAME", "NAME"}


def account_id_18(value: str) -> str:
    """The 18-character form of a 15- or 18-character id (the suffix encodes the case)."""
    if len(value) == 18:
        return value
    suffix = ""
    for chunk in range(3):
        part = value[chunk * 5 : chunk * 5 + 5]
        suffix += _CHECKSUM[sum(1 << i for i, char in enumerate(part) if char.isupper())]
    return value + suffix


def _check_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not _RECORD_ID.match(value):
        raise FatalError(f"{value!r} is not a Salesforce {what} id (15 or 18 letters and digits)")
    return value


@dataclass(frozen=True)
class _Columns:
    """Where a report's rows hold the id, website and name (indexes into dataCells)."""

    id_index: int
    website_index: int | None
    name_index: int | None


@dataclass(frozen=True)
class MembersReader:
    """Reads report and list view members through the adapter's own calls, retries and errors."""

    call: Call
    read_page: PageFetch
    query_rows: QueryRows

    # -- reports --------------------------------------------------------------------------------

    def report_members(self, report_id: str, column: str = "ACCOUNT_ID") -> Iterator[CrmMember]:
        """Every Account row of the report, past the 2,000-row cap, lazily, each id once.

        FatalError naming the report when it does not exist, is not a tabular or summary
        report, or has no usable Account id column (the message lists its columns).
        """
        _check_id(report_id, "report")
        described = self._json(
            lambda: self.call("GET", f"analytics/reports/{report_id}/describe"),
            f"report {report_id}",
        )
        metadata = described.get("reportMetadata") if isinstance(described, dict) else None
        if not isinstance(metadata, dict):
            raise FatalError(f"Salesforce sent no reportMetadata for report {report_id}")
        title = _report_title(report_id, metadata)
        report_format = metadata.get("reportFormat")
        if report_format not in _READABLE_FORMATS:
            raise FatalError(
                f"Salesforce report {title} is a {str(report_format).lower()} report: only "
                "tabular and summary reports can give a segment's members"
            )
        info = (described.get("reportExtendedMetadata") or {}).get("detailColumnInfo") or {}
        detail = metadata.get("detailColumns")
        if not isinstance(detail, list) or not all(isinstance(name, str) for name in detail):
            raise FatalError(f"Salesforce report {title} lists no detail columns")
        columns = _report_columns(title, detail, info, column)
        id_column = detail[columns.id_index]
        last: str | None = None
        seen: set[str] = set()
        runs = 0
        while True:
            body = {"reportMetadata": _run_metadata(metadata, id_column, last)}
            run = partial(
                self.call,
                "POST",
                f"analytics/reports/{report_id}",
                params={"includeDetails": "true"},
                json=body,
            )
            answer = self._json(run, f"report {report_id}")
            runs += 1
            rows = _detail_rows(answer, title)
            previous = last
            for cells in rows:
                value = _cell_value(cells, columns.id_index)
                if value is None:
                    continue  # a row without an Account (an outer join's blank side)
                record_id = _account_id(value, f"report {title}", id_column)
                last = value
                if record_id[:15] in seen:
                    continue
                seen.add(record_id[:15])
                yield CrmMember(
                    crm_id=record_id,
                    website=_cell_text(cells, columns.website_index),
                    name=_cell_text(cells, columns.name_index),
                )
            if answer.get("allData") is True:
                logger.info("salesforce: report %s read in %d run(s)", report_id, runs)
                return
            if last is None or last == previous:
                raise FatalError(
                    f"Salesforce report {title} says it has more rows than it returned, yet a "
                    f"run filtered on {id_column} after the last id returned none"
                )

    # -- list views -------------------------------------------------------------------------------

    def list_view_members(
        self, list_view_id: str, object_type: str = "Account"
    ) -> Iterator[CrmMember]:
        """Every row of the list view's own query (paged as any query), lazily, each id once.

        FatalError naming the list view when it does not exist or its query selects no Id.
        """
        _check_id(list_view_id, "list view")
        if object_type.strip().lower() != "account":
            raise FatalError(
                f"only Account list views give a segment's members, not {object_type!r}"
            )
        described = self._json(
            lambda: self.call("GET", f"sobjects/Account/listviews/{list_view_id}/describe"),
            f"list view {list_view_id}",
        )
        query = described.get("query") if isinstance(described, dict) else None
        if not isinstance(query, str) or not query.strip():
            raise FatalError(f"Salesforce sent no query for list view {list_view_id}")
        seen: set[str] = set()
        for row in self.query_rows(query):
            values = {str(key).lower(): value for key, value in row.items()}
            value = values.get("id")
            if not isinstance(value, str):
                raise FatalError(f"Salesforce list view {list_view_id}'s query selects no Id")
            record_id = _account_id(value, f"list view {list_view_id}", "Id")
            if record_id[:15] in seen:
                continue
            seen.add(record_id[:15])
            yield CrmMember(
                crm_id=record_id,
                website=_text(values.get("website")),
                name=_text(values.get("name")),
            )

    # -- calls ------------------------------------------------------------------------------------

    def _json(self, send: Callable[[], requests.Response], what: str) -> Any:
        """The JSON answer of `send`, read again after a retryable error; a FatalError names
        `what` (a 404 says it does not exist)."""

        def fetch() -> Any:
            response = send()
            try:
                return response.json()
            except ValueError:
                raise RetryableError(
                    f"Salesforce sent an answer that is not valid JSON for {what}",
                    code="UNREADABLE",
                ) from None

        try:
            return self.read_page(fetch)
        except FatalError as error:
            if error.code == "NOT_FOUND":
                named = FatalError(
                    f"Salesforce has no {what} (deleted, or not shared with the API user)",
                    code="NOT_FOUND",
                )
            else:  # a lost permission, say: the message names what could not be read
                named = FatalError(f"reading Salesforce {what}: {error}", code=error.code)
        raise named


def _report_title(report_id: str, metadata: Mapping[str, Any]) -> str:
    name = metadata.get("name")
    return f"{name!r} ({report_id})" if isinstance(name, str) and name else report_id


def _report_columns(
    title: str, detail: list[str], info: Mapping[str, Any], column: str
) -> _Columns:
    """The id column's index (FatalError listing the columns when unusable), and the others'."""

    def label(name: str) -> str:
        entry = info.get(name)
        return str(entry.get("label") or name) if isinstance(entry, dict) else name

    def data_type(name: str) -> str:
        entry = info.get(name)
        return str(entry.get("dataType") or "") if isinstance(entry, dict) else ""

    listed = ", ".join(f"{name} ({label(name)})" for name in detail) or "none"
    wanted = [i for i, name in enumerate(detail) if name.upper() == column.strip().upper()]
    if not wanted:
        raise FatalError(
            f"Salesforce report {title} has no {column} column to take Account ids from; "
            f"its columns: {listed}"
        )
    index = wanted[0]
    kind = data_type(detail[index])
    if kind and kind != "id":
        raise FatalError(
            f"Salesforce report {title}'s column {detail[index]} holds {kind} values, not record "
            f"ids; its columns: {listed}"
        )

    def find(names: set[str], wanted_label: str) -> int | None:
        for i, name in enumerate(detail):
            if i != index and (
                name.upper() in names or label(name).strip().lower() == wanted_label
            ):
                return i
        return None

    return _Columns(index, find(_WEBSITE_COLUMNS, "website"), find(_NAME_COLUMNS, "account name"))


def _run_metadata(metadata: Mapping[str, Any], column: str, after: str | None) -> dict[str, Any]:
    """The report's metadata as one flat run sorted by `column`, past the id `after`."""
    run = copy.deepcopy(dict(metadata))
    # A summary report's detail rows come in grouping order; its 2,000-row window would not be
    # the lowest ids. Run as tabular (the run body's reportFormat), with no groupings.
    run["reportFormat"] = "TABULAR"
    run["groupingsDown"] = []
    run["groupingsAcross"] = []
    run["sortBy"] = [{"sortColumn": column, "sortOrder": "Asc"}]
    filters = list(run.get("reportFilters") or [])
    if after is not None:
        filters.append({"column": column, "operator": "greaterThan", "value": after})
        logic = run.get("reportBooleanFilter")
        if isinstance(logic, str) and logic.strip():
            # Filter logic names every filter by number: the added one must hold as well.
            run["reportBooleanFilter"] = f"({logic}) AND {len(filters)}"
    run["reportFilters"] = filters
    return run


def _detail_rows(answer: Any, title: str) -> list[list[Any]]:
    """The dataCells of every detail row of a run (a tabular run's rows are under "T!T")."""
    fact_map = answer.get("factMap") if isinstance(answer, dict) else None
    if not isinstance(fact_map, dict):
        raise FatalError(f"Salesforce sent no factMap for report {title}")
    rows: list[list[Any]] = []
    for fact in fact_map.values():
        for row in (fact or {}).get("rows") or []:
            cells = row.get("dataCells") if isinstance(row, dict) else None
            if isinstance(cells, list):
                rows.append(cells)
    return rows


def _cell_value(cells: list[Any], index: int | None) -> Any:
    if index is None or index >= len(cells) or not isinstance(cells[index], dict):
        return None
    return cells[index].get("value")


def _cell_text(cells: list[Any], index: int | None) -> str | None:
    return _text(_cell_value(cells, index))


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _account_id(value: Any, source: str, column: str) -> str:
    """The 18-character Account id in a row, or FatalError when the column holds other ids."""
    text = str(value)
    if not _RECORD_ID.match(text):
        raise FatalError(f"Salesforce {source}: {column} holds {text[:40]!r}, not a record id")
    if not text.startswith(ACCOUNT_PREFIX):
        raise FatalError(
            f"Salesforce {source}: {column} holds ids of another object ({text[:3]}...), "
            f"not Account ids ({ACCOUNT_PREFIX}...)"
        )
    return account_id_18(text)
