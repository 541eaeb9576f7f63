"""The Salesforce emulator's reports and list views, spoken to over HTTPS as Salesforce is."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from connectors.sandbox.salesforce import SalesforceEmulator
from connectors.sandbox.salesforce_reports import REPORT_ROW_LIMIT
from connectors.sandbox.tls import SandboxCertificates
from tests.connectors.harness_salesforce import running

DATA = "/services/data/v59.0"
NOT_FOUND = [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]


class Org:
    """A running emulator with `accounts` seeded Accounts and an HTTPS session that trusts it."""

    def __init__(self, emulator: SalesforceEmulator, http: requests.Session) -> None:
        self.emulator = emulator
        self.http = http
        self.reports: dict[str, str] = emulator.describe()["reports"]
        self.list_view: str = emulator.describe()["list_views"]["accounts"]

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A request with the API user's session."""
        token = self.emulator.describe()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        return self.http.request(
            method, self.emulator.base_url + DATA + path, headers=headers, **kwargs
        )

    def run(self, report_id: str, metadata: dict[str, Any] | None = None) -> Any:
        """Run a report synchronously with details (POST with metadata when given)."""
        params = {"includeDetails": "true"}
        if metadata is None:
            response = self.call("GET", f"/analytics/reports/{report_id}", params=params)
        else:
            response = self.call(
                "POST",
                f"/analytics/reports/{report_id}",
                params=params,
                json={"reportMetadata": metadata},
            )
        assert response.status_code == 200, response.text
        return response.json()

    def account_ids(self) -> list[str]:
        """The org's Account ids in creation order."""
        return list(self.emulator.store.records["Account"])


def _org(certificates: SandboxCertificates, accounts: int) -> Iterator[Org]:
    emulator = SalesforceEmulator(records=accounts)
    http = requests.Session()
    http.verify = str(certificates.ca_bundle)
    http.trust_env = False
    with running(emulator, certificates):
        yield Org(emulator, http)
    http.close()


@pytest.fixture
def org(sandbox_certificates: SandboxCertificates) -> Iterator[Org]:
    yield from _org(sandbox_certificates, 5)


@pytest.fixture(scope="module")
def big_org(sandbox_certificates: SandboxCertificates) -> Iterator[Org]:
    """2,500 Accounts (more than one run returns); tests here only read it."""
    yield from _org(sandbox_certificates, 2500)


def ids_of(result: Any, key: str = "T!T") -> list[str]:
    return [row["dataCells"][0]["value"] for row in result["factMap"][key]["rows"]]


def test_the_seeded_reports_and_list_view_exist_without_records() -> None:
    described = SalesforceEmulator().describe()
    assert set(described["reports"]) == {"accounts", "accounts_summary", "names_only", "matrix"}
    assert all(report_id.startswith("00O") for report_id in described["reports"].values())
    assert described["list_views"]["accounts"].startswith("00B")


def test_describe_gives_the_report_metadata_and_each_columns_label_and_type(org: Org) -> None:
    response = org.call("GET", f"/analytics/reports/{org.reports['accounts']}/describe")
    assert response.status_code == 200
    described = response.json()
    metadata = described["reportMetadata"]
    assert metadata["id"] == org.reports["accounts"]
    assert metadata["reportFormat"] == "TABULAR"
    assert metadata["detailColumns"] == ["ACCOUNT_ID", "ACCOUNT.NAME", "URL"]
    assert metadata["reportFilters"] == [] and metadata["sortBy"] == []
    assert described["reportExtendedMetadata"]["detailColumnInfo"] == {
        "ACCOUNT_ID": {"label": "Account ID", "dataType": "id"},
        "ACCOUNT.NAME": {"label": "Account Name", "dataType": "string"},
        "URL": {"label": "Website", "dataType": "url"},
    }
    matrix = org.call("GET", f"/analytics/reports/{org.reports['matrix']}/describe").json()
    assert matrix["reportMetadata"]["reportFormat"] == "MATRIX"


def test_a_run_gives_the_rows_as_data_cells_under_t_t_with_all_data(org: Org) -> None:
    result = org.run(org.reports["accounts"])
    assert result["allData"] is True
    assert result["hasDetailRows"] is True
    assert result["reportMetadata"]["id"] == org.reports["accounts"]
    fact = result["factMap"]["T!T"]
    assert fact["aggregates"] == [{"label": "5", "value": 5}]
    first_id = org.account_ids()[0]
    assert fact["rows"][0]["dataCells"] == [
        {"value": first_id, "label": first_id[:15]},
        {"value": "Company 1", "label": "Company 1"},
        {"value": "https://www.company1.com", "label": "https://www.company1.com"},
    ]
    assert ids_of(result) == org.account_ids()
    summary_only = org.call(
        "GET", f"/analytics/reports/{org.reports['accounts']}", params={"includeDetails": "false"}
    ).json()
    assert "rows" not in summary_only["factMap"]["T!T"]
    assert summary_only["hasDetailRows"] is False


def test_a_run_returns_the_first_2000_rows_and_all_data_false_past_them(big_org: Org) -> None:
    result = big_org.run(big_org.reports["accounts"])
    assert result["allData"] is False
    assert len(ids_of(result)) == REPORT_ROW_LIMIT == 2000
    assert result["factMap"]["T!T"]["aggregates"][0]["value"] == 2500
    assert ids_of(result) == big_org.account_ids()[:2000]


def test_an_added_greater_than_filter_and_sort_give_the_rest_and_are_echoed(big_org: Org) -> None:
    ids = big_org.account_ids()
    added = {"column": "ACCOUNT_ID", "operator": "greaterThan", "value": ids[1999]}
    metadata = {
        "reportFilters": [added],
        "sortBy": [{"sortColumn": "ACCOUNT_ID", "sortOrder": "Asc"}],
    }
    result = big_org.run(big_org.reports["accounts"], metadata)
    assert result["allData"] is True
    assert ids_of(result) == ids[2000:]
    assert result["reportMetadata"]["reportFilters"] == [added]
    assert result["reportMetadata"]["sortBy"] == metadata["sortBy"]
    # A 15-character id filters alike; a descending sort reverses the rows.
    added["value"] = ids[2399][:15]
    metadata["sortBy"] = [{"sortColumn": "ACCOUNT_ID", "sortOrder": "Desc"}]
    assert ids_of(big_org.run(big_org.reports["accounts"], metadata)) == ids[2400:][::-1]


def test_filters_combine_by_their_boolean_filter_logic(org: Org) -> None:
    ids = org.account_ids()
    metadata = {
        "reportFilters": [
            {"column": "ACCOUNT.NAME", "operator": "equals", "value": "company 1"},
            {"column": "URL", "operator": "contains", "value": "company4"},
            {"column": "ACCOUNT_ID", "operator": "lessThan", "value": ids[4]},
        ],
        "reportBooleanFilter": "(1 OR 2) AND 3",
    }
    assert ids_of(org.run(org.reports["accounts"], metadata)) == [ids[0], ids[3]]
    metadata["reportBooleanFilter"] = None  # every filter holds: none matches all three
    assert org.run(org.reports["accounts"], metadata)["factMap"]["T!T"]["rows"] == []


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        (
            {"reportFilters": [{"column": "OWNER", "operator": "equals", "value": "x"}]},
            "The column OWNER is not valid for this report type",
        ),
        (
            {"reportFilters": [{"column": "URL", "operator": "between", "value": "x"}]},
            "Invalid filter operator: between",
        ),
        (
            {
                "reportFilters": [{"column": "URL", "operator": "equals", "value": "x"}],
                "reportBooleanFilter": "1 OR 2",
            },
            "Invalid reportBooleanFilter: 1 OR 2",
        ),
        ({"sortBy": [{"sortColumn": "URL", "sortOrder": "Up"}]}, "Invalid sortOrder: Up"),
    ],
)
def test_a_bad_run_body_is_a_400_in_salesforces_error_shape(
    org: Org, metadata: dict[str, Any], message: str
) -> None:
    response = org.call(
        "POST", f"/analytics/reports/{org.reports['accounts']}", json={"reportMetadata": metadata}
    )
    assert response.status_code == 400
    assert response.json() == [{"message": message, "errorCode": "BAD_REQUEST"}]


def test_an_unknown_report_or_list_view_is_a_404(org: Org) -> None:
    unknown = "00O5g00000009zzAAA"
    for path in (
        f"/analytics/reports/{unknown}",
        f"/analytics/reports/{unknown}/describe",
        f"/sobjects/Account/listviews/{org.reports['accounts']}/describe",
        f"/sobjects/Lead/listviews/{org.list_view}/describe",
    ):
        response = org.call("GET", path)
        assert (response.status_code, response.json()) == (404, NOT_FOUND), path
    refused = org.call("DELETE", f"/analytics/reports/{org.reports['accounts']}")
    assert refused.status_code == 405


def test_summary_and_matrix_runs_key_rows_by_their_groupings(org: Org) -> None:
    summary = org.run(org.reports["accounts_summary"])
    assert summary["reportMetadata"]["reportFormat"] == "SUMMARY"
    assert "rows" not in summary["factMap"]["T!T"]
    assert summary["factMap"]["T!T"]["aggregates"][0]["value"] == 5
    assert sorted(key for key in summary["factMap"] if key != "T!T") == [f"{n}!T" for n in range(5)]
    assert ids_of(summary, "0!T") == [org.account_ids()[0]]  # "company 1" sorts first
    matrix = org.run(org.reports["matrix"])
    assert matrix["reportMetadata"]["reportFormat"] == "MATRIX"
    assert {key for key in matrix["factMap"] if key != "T!T"} == {f"{n}!{n}" for n in range(5)}
    # A summary run may ask for a flat tabular run instead (the run body's reportFormat).
    flat = org.run(
        org.reports["accounts_summary"],
        {"reportFormat": "TABULAR", "groupingsDown": [], "groupingsAcross": []},
    )
    assert ids_of(flat) == org.account_ids()


def test_rows_follow_the_orgs_accounts_and_the_tests_additions_and_removals(org: Org) -> None:
    report = org.reports["accounts"]
    ids = org.account_ids()
    org.emulator.remove_report_rows(report, [ids[1]])
    org.emulator.delete_record("Account", ids[2])
    [new] = org.emulator.add_records("Account", [{"Name": "New Co", "Website": "new.co"}])
    assert ids_of(org.run(report)) == [ids[0], ids[3], ids[4], new]
    org.emulator.add_report_rows(report, [ids[1]])
    assert ids_of(org.run(report)) == [ids[0], ids[1], ids[3], ids[4], new]
    # Another report keeps its own rows.
    assert len(ids_of(org.run(org.reports["names_only"]))) == 5


def test_the_list_view_describe_gives_its_query_which_the_query_endpoint_pages(
    big_org: Org,
) -> None:
    described = big_org.call("GET", f"/sobjects/Account/listviews/{big_org.list_view}/describe")
    assert described.status_code == 200
    body = described.json()
    assert body["id"] == big_org.list_view
    assert body["sobjectType"] == "Account"
    assert [column["fieldNameOrPath"] for column in body["columns"]] == ["Name", "Website", "Id"]
    assert body["columns"][0]["label"] == "Account Name"
    assert body["orderBy"][0]["fieldNameOrPath"] == "Name"
    page = big_org.call("GET", "/query", params={"q": body["query"]}).json()
    assert page["totalSize"] == 2500 and page["done"] is False
    rows = list(page["records"])
    while not page["done"]:
        page = big_org.http.get(
            big_org.emulator.base_url + page["nextRecordsUrl"],
            headers={"Authorization": f"Bearer {big_org.emulator.describe()['access_token']}"},
        ).json()
        rows += page["records"]
    assert sorted(row["Id"] for row in rows) == big_org.account_ids()
    names = [row["Name"] for row in rows]
    assert names == sorted(names)


def test_reports_meet_the_orgs_limits_and_injected_faults(org: Org) -> None:
    org.emulator.faults.inject("rate_limit", path="/analytics/reports/")
    limited = org.call("GET", f"/analytics/reports/{org.reports['accounts']}")
    assert limited.status_code == 403
    assert limited.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    org.emulator.faults.inject("server_error", path="/listviews/", status=429)
    throttled = org.call("GET", f"/sobjects/Account/listviews/{org.list_view}/describe")
    assert throttled.status_code == 429
    org.emulator.daily_api_limit = org.emulator.api_usage
    spent = org.call("GET", f"/analytics/reports/{org.reports['accounts']}/describe")
    assert spent.status_code == 403
    assert "TotalRequests" in spent.json()[0]["message"]
