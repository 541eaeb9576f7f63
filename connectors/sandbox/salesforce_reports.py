"""The Salesforce emulator's Account reports and list views.

Reports follow the Reports and Dashboards REST API ("Get Report Metadata", "Execute Sync",
"Filter Reports on Demand", "Decode the Fact Map" in Salesforce's developer guide):
- `GET analytics/reports/{id}/describe`: reportMetadata (reportFormat, detailColumns,
  reportFilters, reportBooleanFilter, sortBy, groupingsDown/Across) and
  reportExtendedMetadata.detailColumnInfo (each column's label and dataType).
- `GET|POST analytics/reports/{id}?includeDetails=true`: a synchronous run; a POST body
  `{"reportMetadata": {...}}` may add reportFilters ({column, operator, value}), a
  reportBooleanFilter, sortBy ([{sortColumn, sortOrder}]) and a reportFormat. The answer holds the
  factMap ("T!T" for a tabular report, "0!T", "1!T", ... per row grouping of a summary report,
  "0!0", ... for a matrix), each with aggregates (the record count) and rows of dataCells
  ({value, label}); the reportMetadata echoed; and allData, false when more than 2,000 detail rows
  match ("The API returns up to the first 2,000 report rows. You can narrow results using filters").
List views follow REST's "List View Describe" (`GET sobjects/{obj}/listviews/{id}/describe`):
columns, id, orderBy, query (the SOQL, run through the query endpoint), scope, sobjectType.

The rows are the org's Accounts, read when the report runs, so a report's rows change with the
org's data; a test adds or removes rows of one report with `include` and `exclude`.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from connectors.sandbox.salesforce_store import ApiError, Store, make_id

# Detail rows one synchronous run returns at most.
REPORT_ROW_LIMIT = 2000
REPORT_PREFIX = "00O"
LIST_VIEW_PREFIX = "00B"
_FORMATS = ("TABULAR", "SUMMARY", "MATRIX")
_NOT_FOUND = "The requested resource does not exist"


@dataclass(frozen=True)
class ReportColumn:
    """A report column over one Account field: its API name, label and report data type."""

    name: str
    label: str
    data_type: str
    field: str

    def cell(self, record: dict[str, Any]) -> dict[str, Any]:
        """The column's dataCell for one Account: {value, label}."""
        value = record[self.field]
        if self.data_type == "id":
            # An id cell's value is the 18-character id; its label shows the 15-character one.
            return {"value": value, "label": value[:15]}
        return {"value": value, "label": "-" if value is None else str(value)}


# The columns an Accounts report type offers (API names as Salesforce spells them).
ACCOUNT_COLUMNS = {
    column.name: column
    for column in (
        ReportColumn("ACCOUNT_ID", "Account ID", "id", "Id"),
        ReportColumn("ACCOUNT.NAME", "Account Name", "string", "Name"),
        ReportColumn("URL", "Website", "url", "Website"),
    )
}


@dataclass
class Report:
    """One saved Accounts report and the rows tests added to or removed from it."""

    report_id: str
    name: str
    developer_name: str
    report_format: str
    detail_columns: list[str]
    groupings_down: list[str] = field(default_factory=list)
    groupings_across: list[str] = field(default_factory=list)
    # The saved filters ({column, operator, value}) and their logic ("1 OR 2"; None: all hold).
    filters: list[dict[str, str]] = field(default_factory=list)
    boolean_filter: str | None = None
    # None: every Account of the org; else only these (18-character ids).
    include: set[str] | None = None
    exclude: set[str] = field(default_factory=set)

    def metadata(self) -> dict[str, Any]:
        """The saved reportMetadata."""
        return {
            "id": self.report_id,
            "name": self.name,
            "developerName": self.developer_name,
            "reportFormat": self.report_format,
            "reportType": {"type": "AccountList", "label": "Accounts"},
            "detailColumns": list(self.detail_columns),
            "reportFilters": copy.deepcopy(self.filters),
            "reportBooleanFilter": self.boolean_filter,
            "sortBy": [],
            "groupingsDown": [_grouping(name) for name in self.groupings_down],
            "groupingsAcross": [_grouping(name) for name in self.groupings_across],
            "aggregates": ["RowCount"],
            "hasDetailRows": True,
            "hasRecordCount": True,
            "currency": None,
        }

    def extended_metadata(self, columns: list[str]) -> dict[str, Any]:
        """reportExtendedMetadata: each detail column's label and data type."""
        return {
            "detailColumnInfo": {
                name: {
                    "label": ACCOUNT_COLUMNS[name].label,
                    "dataType": ACCOUNT_COLUMNS[name].data_type,
                }
                for name in columns
            },
            "aggregateColumnInfo": {
                "RowCount": {
                    "label": "Record Count",
                    "dataType": "int",
                    "downGroupingContext": None,
                }
            },
            "groupingColumnInfo": {
                name: {"label": ACCOUNT_COLUMNS[name].label, "groupingLevel": level}
                for level, name in enumerate(self.groupings_down + self.groupings_across)
            },
        }

    def records(self, store: Store) -> list[dict[str, Any]]:
        """The Accounts the report shows now, in id (creation) order."""
        accounts = store.records["Account"]
        if self.include is None:
            chosen = list(accounts.values())
        else:
            chosen = [accounts[i] for i in sorted(self.include) if i in accounts]
        return [record for record in chosen if record["Id"] not in self.exclude]


@dataclass(frozen=True)
class ListView:
    """One Account list view: its columns (Account fields) and the SOQL it runs."""

    list_view_id: str
    developer_name: str
    label: str
    columns: tuple[str, ...]
    order_by: str

    def query(self) -> str:
        """The list view's SOQL, in the restricted form the emulator's query endpoint runs."""
        return f"SELECT {', '.join(self.columns)} FROM Account ORDER BY {self.order_by} ASC"

    def describe(self, store: Store) -> dict[str, Any]:
        """The List View Describe answer."""
        columns = []
        for name in self.columns:
            spec = Store.field("Account", name)
            assert spec is not None  # the seeded list views name known fields
            sorted_here = name == self.order_by
            columns.append(
                {
                    "ascendingLabel": "Z-A",
                    "descendingLabel": "A-Z",
                    "fieldNameOrPath": spec.name,
                    "hidden": spec.name == "Id",
                    "label": spec.label,
                    "selectListItem": spec.name,
                    "sortDirection": "ascending" if sorted_here else None,
                    "sortIndex": 0 if sorted_here else None,
                    "sortable": spec.name != "Id",
                    "type": spec.type,
                }
            )
        return {
            "columns": columns,
            "id": self.list_view_id,
            "orderBy": [
                {
                    "fieldNameOrPath": self.order_by,
                    "nullsPosition": "first",
                    "sortDirection": "ascending",
                }
            ],
            "query": self.query(),
            "relatedEntityId": None,
            "scope": "everything",
            "scopeEntityId": None,
            "sobjectType": "Account",
            "whereCondition": {"conditions": [], "conjunction": "and"},
        }


class ReportsApi:
    """The org's reports and list views, answering the REST resources above."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.reports: dict[str, Report] = {}
        self.list_views: dict[str, ListView] = {}
        # The seeded ones, for tests and `segsync sandbox start`.
        self.accounts_report = self.add_report(
            "All Accounts", "TABULAR", ["ACCOUNT_ID", "ACCOUNT.NAME", "URL"]
        )
        self.summary_report = self.add_report(
            "Accounts by Name", "SUMMARY", ["ACCOUNT_ID", "URL"], down=["ACCOUNT.NAME"]
        )
        self.names_report = self.add_report("Account Names", "TABULAR", ["ACCOUNT.NAME", "URL"])
        self.matrix_report = self.add_report(
            "Accounts Matrix", "MATRIX", ["ACCOUNT_ID"], down=["ACCOUNT.NAME"], across=["URL"]
        )
        view = ListView(
            make_id(LIST_VIEW_PREFIX, 1),
            "AllAccounts",
            "All Accounts",
            ("Name", "Website", "Id"),
            "Name",
        )
        self.list_views[view.list_view_id] = view
        self.accounts_list_view = view.list_view_id

    def add_report(
        self,
        name: str,
        report_format: str,
        columns: list[str],
        down: list[str] | None = None,
        across: list[str] | None = None,
        filters: list[dict[str, str]] | None = None,
        boolean_filter: str | None = None,
    ) -> str:
        """Save an Accounts report (columns, groupings and filters by API name); its id."""
        for name_ in [*columns, *(down or []), *(across or [])]:
            _column(name_)
        report_id = make_id(REPORT_PREFIX, len(self.reports) + 1)
        developer_name = re.sub(r"\W", "_", name)
        self.reports[report_id] = Report(
            report_id,
            name,
            developer_name,
            report_format,
            columns,
            down or [],
            across or [],
            list(filters or []),
            boolean_filter,
        )
        return report_id

    def report(self, report_id: str) -> Report:
        """The report with this 15- or 18-character id, or 404 as Salesforce words it."""
        for known, report in self.reports.items():
            if report_id and (known == report_id or known[:15] == report_id):
                return report
        raise ApiError(404, "NOT_FOUND", _NOT_FOUND)

    # -- routing --------------------------------------------------------------------------------

    def route_reports(
        self, method: str, parts: list[str], query: dict[str, list[str]], body: Any
    ) -> Any:
        """`analytics/reports/{id}[/describe]`: the answer body, or ApiError."""
        if len(parts) == 2 and parts[1] == "describe":
            _allow(method, ("GET",))
            return self.describe_report(parts[0])
        if len(parts) == 1:
            _allow(method, ("GET", "POST"))
            details = (query.get("includeDetails") or ["false"])[0].lower() == "true"
            overrides = None
            if method == "POST":
                if not isinstance(body, dict) or not isinstance(body.get("reportMetadata"), dict):
                    raise ApiError(
                        400, "BAD_REQUEST", "The request body must hold a reportMetadata object"
                    )
                overrides = body["reportMetadata"]
            return self.run(parts[0], details, overrides)
        raise ApiError(404, "NOT_FOUND", _NOT_FOUND)

    def route_list_views(self, method: str, object_type: str, parts: list[str]) -> Any:
        """`sobjects/{obj}/listviews/{id}/describe`: the answer body, or ApiError."""
        if len(parts) != 2 or parts[1] != "describe":
            raise ApiError(404, "NOT_FOUND", _NOT_FOUND)
        _allow(method, ("GET",))
        if Store.object_name(object_type) is None:
            raise ApiError(404, "NOT_FOUND", _NOT_FOUND)
        for known, view in self.list_views.items():
            if parts[0] and (known == parts[0] or known[:15] == parts[0]):
                if Store.object_name(object_type) != "Account":
                    break  # a list view belongs to one object
                return view.describe(self.store)
        raise ApiError(404, "NOT_FOUND", _NOT_FOUND)

    # -- reports --------------------------------------------------------------------------------

    def describe_report(self, report_id: str) -> dict[str, Any]:
        """The Describe answer: reportMetadata, reportExtendedMetadata, reportTypeMetadata."""
        report = self.report(report_id)
        return {
            "reportMetadata": report.metadata(),
            "reportExtendedMetadata": report.extended_metadata(report.detail_columns),
            "reportTypeMetadata": {
                "categories": [
                    {
                        "label": "Accounts",
                        "columns": {
                            name: {
                                "label": column.label,
                                "dataType": column.data_type,
                                "filterable": True,
                                "filterValues": [],
                            }
                            for name, column in ACCOUNT_COLUMNS.items()
                        },
                    }
                ],
                "dataTypeFilterOperatorMap": {
                    data_type: [{"name": name, "label": label} for name, label in _OPERATORS]
                    for data_type in ("id", "string", "url")
                },
            },
        }

    def run(
        self, report_id: str, details: bool, overrides: dict[str, Any] | None
    ) -> dict[str, Any]:
        """One synchronous run, with the POSTed reportMetadata's filters, sort and format."""
        report = self.report(report_id)
        metadata = report.metadata()
        if overrides:
            for key in ("reportFilters", "reportBooleanFilter", "sortBy", "reportFormat"):
                if key in overrides:
                    metadata[key] = copy.deepcopy(overrides[key])
            for key in ("detailColumns", "groupingsDown", "groupingsAcross"):
                if key in overrides:
                    metadata[key] = copy.deepcopy(overrides[key])
        report_format = metadata.get("reportFormat")
        if report_format not in _FORMATS:
            raise ApiError(400, "BAD_REQUEST", f"Invalid reportFormat: {report_format}")
        columns = _column_names(metadata.get("detailColumns"), "detailColumns")
        downs = _grouping_names(metadata.get("groupingsDown"), "groupingsDown")
        acrosses = _grouping_names(metadata.get("groupingsAcross"), "groupingsAcross")
        if report_format == "TABULAR" and (downs or acrosses):
            raise ApiError(400, "BAD_REQUEST", "A tabular report cannot have groupings")
        if report_format == "SUMMARY" and (not downs or acrosses):
            raise ApiError(400, "BAD_REQUEST", "A summary report needs row groupings only")
        if report_format == "MATRIX" and (not downs or not acrosses):
            raise ApiError(400, "BAD_REQUEST", "A matrix report needs row and column groupings")
        matches = _filter(report.records(self.store), metadata)
        matches = _sort(matches, metadata.get("sortBy"))
        shown = matches[:REPORT_ROW_LIMIT]
        fact_map = _fact_map(report_format, shown, len(matches), columns, downs, acrosses, details)
        extended = report.extended_metadata(columns)
        return {
            "attributes": {
                "describeUrl": f"/services/data/analytics/reports/{report.report_id}/describe",
                "reportId": report.report_id,
                "reportName": report.name,
                "type": "Report",
            },
            "allData": len(matches) <= REPORT_ROW_LIMIT,
            "factMap": fact_map,
            "groupingsDown": {"groupings": []},
            "groupingsAcross": {"groupings": []},
            "hasDetailRows": details,
            "reportExtendedMetadata": extended,
            "reportMetadata": metadata,
        }

    # -- tests' helpers ---------------------------------------------------------------------------

    def add_rows(self, report_id: str, account_ids: list[str]) -> None:
        """Make these Accounts rows of the report (again)."""
        report = self.report(report_id)
        for account_id in account_ids:
            report.exclude.discard(account_id)
            if report.include is not None:
                report.include.add(account_id)

    def remove_rows(self, report_id: str, account_ids: list[str]) -> None:
        """Take these Accounts out of the report's rows."""
        report = self.report(report_id)
        report.exclude.update(account_ids)
        if report.include is not None:
            report.include.difference_update(account_ids)


# Report filter operators (the Filter Operators API's names) the emulator evaluates.
_OPERATORS = (
    ("equals", "equals"),
    ("notEqual", "not equal to"),
    ("lessThan", "less than"),
    ("greaterThan", "greater than"),
    ("lessOrEqual", "less or equal"),
    ("greaterOrEqual", "greater or equal"),
    ("contains", "contains"),
    ("startsWith", "starts with"),
)
_OPERATOR_NAMES = {name for name, _ in _OPERATORS}


def _grouping(name: str) -> dict[str, Any]:
    return {"name": name, "sortOrder": "Asc", "dateGranularity": "None", "sortAggregate": None}


def _column_names(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise ApiError(400, "BAD_REQUEST", f"{where} must be a list of column names")
    for name in value:
        _column(name)
    return list(value)


def _grouping_names(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ApiError(400, "BAD_REQUEST", f"{where} must be a list of groupings")
    names = []
    for grouping in value:
        name = grouping.get("name") if isinstance(grouping, dict) else None
        if not isinstance(name, str):
            raise ApiError(400, "BAD_REQUEST", f"each of {where} needs a name")
        names.append(_column(name).name)
    return names


def _column(name: Any) -> ReportColumn:
    column = ACCOUNT_COLUMNS.get(name) if isinstance(name, str) else None
    if column is None:
        raise ApiError(400, "BAD_REQUEST", f"The column {name} is not valid for this report type")
    return column


def _key(column: ReportColumn, value: Any) -> str:
    # Ids compare by their 15 case-sensitive characters (15- and 18-character forms alike);
    # text compares case-insensitively, as report filters do.
    if value is None:
        return ""
    return str(value)[:15] if column.data_type == "id" else str(value).lower()


def _matches(column: ReportColumn, operator: str, wanted: str, record: dict[str, Any]) -> bool:
    have = _key(column, record[column.field])
    want = _key(column, wanted)
    if operator == "equals":
        return have in {_key(column, part) for part in wanted.split(",")}
    if operator == "notEqual":
        return have not in {_key(column, part) for part in wanted.split(",")}
    if operator == "contains":
        return want in have
    if operator == "startsWith":
        return have.startswith(want)
    if have == "":
        return False  # a blank value is neither greater nor less than anything
    return {
        "lessThan": have < want,
        "greaterThan": have > want,
        "lessOrEqual": have <= want,
        "greaterOrEqual": have >= want,
    }[operator]


def _filter(records: list[dict[str, Any]], metadata: dict[str, Any]) -> list[dict[str, Any]]:
    filters = metadata.get("reportFilters") or []
    if not isinstance(filters, list):
        raise ApiError(400, "BAD_REQUEST", "reportFilters must be a list")
    checks = []
    for number, item in enumerate(filters, 1):
        if not isinstance(item, dict):
            raise ApiError(400, "BAD_REQUEST", f"report filter {number} must be an object")
        column = _column(item.get("column"))
        operator = item.get("operator")
        if operator not in _OPERATOR_NAMES:
            raise ApiError(400, "BAD_REQUEST", f"Invalid filter operator: {operator}")
        value = item.get("value")
        checks.append((column, str(operator), "" if value is None else str(value)))
    logic = metadata.get("reportBooleanFilter")
    if not checks:
        return records
    if logic in (None, ""):
        return [r for r in records if all(_matches(c, o, v, r) for c, o, v in checks)]
    if not isinstance(logic, str):
        raise ApiError(400, "BAD_REQUEST", "reportBooleanFilter must be text")
    tokens = re.findall(r"\d+|AND|OR|NOT|\(|\)|\S", logic.upper())
    kept = []
    for record in records:
        results = [_matches(c, o, v, record) for c, o, v in checks]
        kept_here, rest = _logic_or(tokens, results, logic)
        if rest:
            raise ApiError(400, "BAD_REQUEST", f"Invalid reportBooleanFilter: {logic}")
        if kept_here:
            kept.append(record)
    return kept


# reportBooleanFilter: expr := term (OR term)*; term := factor (AND factor)*;
# factor := NOT factor | number | ( expr ). Each returns (value, tokens left).
def _logic_or(tokens: list[str], results: list[bool], text: str) -> tuple[bool, list[str]]:
    value, tokens = _logic_and(tokens, results, text)
    while tokens and tokens[0] == "OR":
        right, tokens = _logic_and(tokens[1:], results, text)
        value = value or right
    return value, tokens


def _logic_and(tokens: list[str], results: list[bool], text: str) -> tuple[bool, list[str]]:
    value, tokens = _logic_not(tokens, results, text)
    while tokens and tokens[0] == "AND":
        right, tokens = _logic_not(tokens[1:], results, text)
        value = value and right
    return value, tokens


def _logic_not(tokens: list[str], results: list[bool], text: str) -> tuple[bool, list[str]]:
    if not tokens:
        raise ApiError(400, "BAD_REQUEST", f"Invalid reportBooleanFilter: {text}")
    head, rest = tokens[0], tokens[1:]
    if head == "NOT":
        value, rest = _logic_not(rest, results, text)
        return not value, rest
    if head == "(":
        value, rest = _logic_or(rest, results, text)
        if not rest or rest[0] != ")":
            raise ApiError(400, "BAD_REQUEST", f"Invalid reportBooleanFilter: {text}")
        return value, rest[1:]
    if head.isdigit() and 1 <= int(head) <= len(results):
        return results[int(head) - 1], rest
    raise ApiError(400, "BAD_REQUEST", f"Invalid reportBooleanFilter: {text}")


def _sort(records: list[dict[str, Any]], sort_by: Any) -> list[dict[str, Any]]:
    if not sort_by:
        return records
    if not isinstance(sort_by, list) or len(sort_by) != 1 or not isinstance(sort_by[0], dict):
        raise ApiError(400, "BAD_REQUEST", "sortBy must hold one {sortColumn, sortOrder}")
    column = _column(sort_by[0].get("sortColumn"))
    order = sort_by[0].get("sortOrder", "Asc")
    if order not in ("Asc", "Desc"):
        raise ApiError(400, "BAD_REQUEST", f"Invalid sortOrder: {order}")
    return sorted(
        records, key=lambda record: _key(column, record[column.field]), reverse=order == "Desc"
    )


def _fact_map(
    report_format: str,
    shown: list[dict[str, Any]],
    total: int,
    columns: list[str],
    downs: list[str],
    acrosses: list[str],
    details: bool,
) -> dict[str, Any]:
    """Decode the Fact Map: rows by grouping key, each with the record count aggregate."""

    def fact(records: list[dict[str, Any]], count: int) -> dict[str, Any]:
        body: dict[str, Any] = {"aggregates": [{"label": f"{count:,}", "value": count}]}
        if details:
            body["rows"] = [
                {"dataCells": [ACCOUNT_COLUMNS[name].cell(record) for name in columns]}
                for record in records
            ]
        return body

    if report_format == "TABULAR":
        return {"T!T": fact(shown, total)}
    grand = {"aggregates": [{"label": f"{total:,}", "value": total}]}
    down = ACCOUNT_COLUMNS[downs[0]]
    row_index = {k: i for i, k in enumerate(sorted({_key(down, r[down.field]) for r in shown}))}
    cells: dict[tuple[int, int], list[dict[str, Any]]] = {}
    if report_format == "SUMMARY":
        for record in shown:
            cells.setdefault((row_index[_key(down, record[down.field])], -1), []).append(record)
    else:
        across = ACCOUNT_COLUMNS[acrosses[0]]
        keys = sorted({_key(across, r[across.field]) for r in shown})
        column_index = {k: i for i, k in enumerate(keys)}
        for record in shown:
            row = row_index[_key(down, record[down.field])]
            column = column_index[_key(across, record[across.field])]
            cells.setdefault((row, column), []).append(record)
    facts: dict[str, Any] = {"T!T": grand}
    for (row, column), records in sorted(cells.items()):
        facts[f"{row}!{'T' if column < 0 else column}"] = fact(records, len(records))
    return facts


def _allow(method: str, allowed: tuple[str, ...]) -> None:
    if method not in allowed:
        raise ApiError(
            405,
            "METHOD_NOT_ALLOWED",
            f"HTTP Method '{method}' not allowed. Allowed are {','.join(allowed)}",
        )
