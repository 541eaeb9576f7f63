"""Segment members from Salesforce reports and list views, read from the emulator over HTTPS."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.errors import DailyQuotaError, FatalError
from connectors.members import CrmMember
from connectors.salesforce import SalesforceConnector
from connectors.salesforce_members import account_id_18
from connectors.sandbox.salesforce import SalesforceEmulator
from connectors.sandbox.salesforce_store import with_checksum
from connectors.sandbox.tls import SandboxCertificates
from tests.connectors.harness_salesforce import connector_config, running

MakeOrg = Callable[[int], tuple[SalesforceEmulator, SalesforceConnector]]


@pytest.fixture
def make_org(sandbox_certificates: SandboxCertificates) -> Iterator[MakeOrg]:
    """Start an emulator with n seeded Accounts and a connector logged in to it."""
    stops: list[Any] = []
    connectors: list[SalesforceConnector] = []

    def make(accounts: int) -> tuple[SalesforceEmulator, SalesforceConnector]:
        emulator = SalesforceEmulator(records=accounts)
        serving = running(emulator, sandbox_certificates)
        serving.__enter__()
        stops.append(serving)
        connector = SalesforceConnector(connector_config(emulator, sandbox_certificates))
        connectors.append(connector)
        return emulator, connector

    yield make
    for connector in connectors:
        connector.close()
    for serving in stops:
        serving.__exit__(None, None, None)


def accounts(emulator: SalesforceEmulator) -> dict[str, dict[str, Any]]:
    return dict(emulator.store.records["Account"])


def report_runs(emulator: SalesforceEmulator, report_id: str) -> int:
    return sum(
        count
        for route, count in emulator.calls.items()
        if route.startswith("POST ") and route.endswith(f"/analytics/reports/{report_id}")
    )


def test_every_row_of_a_large_report_is_read_in_runs_past_the_2000_row_cap(
    make_org: MakeOrg,
) -> None:
    emulator, connector = make_org(4500)
    report = emulator.describe()["reports"]["accounts"]
    members = list(connector.report_members(report))
    stored = accounts(emulator)
    assert len(members) == 4500
    assert [member.crm_id for member in members] == list(stored)  # each once, in id order
    assert all(len(member.crm_id) == 18 for member in members)
    first = stored[members[0].crm_id]
    assert members[0] == CrmMember(first["Id"], first["Website"], first["Name"])
    assert report_runs(emulator, report) == 3  # 2,000 + 2,000 + 500 rows


def test_a_summary_report_is_read_as_one_sorted_list(make_org: MakeOrg) -> None:
    emulator, connector = make_org(2100)
    report = emulator.describe()["reports"]["accounts_summary"]
    members = list(connector.report_members(report))
    assert [member.crm_id for member in members] == list(accounts(emulator))
    assert members[0].website == "https://www.company1.com"
    assert members[0].name is None  # the summary report's detail columns have no name
    assert report_runs(emulator, report) == 2


def test_a_reports_own_filters_and_filter_logic_hold_in_every_run(make_org: MakeOrg) -> None:
    emulator, connector = make_org(4500)
    report = emulator.reports.add_report(
        "Companies 1 and 2",
        "TABULAR",
        ["ACCOUNT.NAME", "ACCOUNT_ID"],
        filters=[
            {"column": "URL", "operator": "startsWith", "value": "https://www.company1"},
            {"column": "ACCOUNT.NAME", "operator": "startsWith", "value": "Company 2"},
        ],
        boolean_filter="1 OR 2",
    )
    members = list(connector.report_members(report))
    expected = [
        record_id
        for record_id, record in accounts(emulator).items()
        if record["Name"].startswith(("Company 1", "Company 2"))
    ]
    assert len(expected) > 2000
    assert [member.crm_id for member in members] == expected
    assert members[0].name == "Company 1" and members[0].website is None
    assert report_runs(emulator, report) == 2


def test_members_change_when_the_reports_rows_change(make_org: MakeOrg) -> None:
    emulator, connector = make_org(6)
    report = emulator.describe()["reports"]["accounts"]
    ids = list(accounts(emulator))
    emulator.remove_report_rows(report, ids[:2])
    [new] = emulator.add_records("Account", [{"Name": "New Co", "Website": "https://new.co"}])
    members = list(connector.report_members(report))
    assert [member.crm_id for member in members] == [*ids[2:], new]
    assert members[-1] == CrmMember(new, "https://new.co", "New Co")


def test_a_matrix_report_is_refused_naming_it(make_org: MakeOrg) -> None:
    emulator, connector = make_org(3)
    report = emulator.describe()["reports"]["matrix"]
    with pytest.raises(FatalError) as caught:
        list(connector.report_members(report))
    assert str(caught.value) == (
        f"Salesforce report 'Accounts Matrix' ({report}) is a matrix report: only tabular and "
        "summary reports can give a segment's members"
    )
    assert report_runs(emulator, report) == 0


def test_a_report_without_the_id_column_is_refused_listing_its_columns(make_org: MakeOrg) -> None:
    emulator, connector = make_org(3)
    reports = emulator.describe()["reports"]
    with pytest.raises(FatalError) as caught:
        list(connector.report_members(reports["names_only"]))
    assert str(caught.value) == (
        f"Salesforce report 'Account Names' ({reports['names_only']}) has no ACCOUNT_ID column "
        "to take Account ids from; its columns: ACCOUNT.NAME (Account Name), URL (Website)"
    )
    with pytest.raises(FatalError, match=r"column URL holds url values, not record ids"):
        list(connector.report_members(reports["accounts"], column="URL"))


def test_an_unknown_report_or_a_bad_id_is_refused_naming_it(make_org: MakeOrg) -> None:
    _, connector = make_org(1)
    with pytest.raises(FatalError) as caught:
        list(connector.report_members("00O5g00000009zzAAA"))
    assert caught.value.code == "NOT_FOUND"
    assert str(caught.value) == (
        "Salesforce has no report 00O5g00000009zzAAA (deleted, or not shared with the API user)"
    )
    with pytest.raises(FatalError, match=r"'00O/../x' is not a Salesforce report id"):
        list(connector.report_members("00O/../x"))
    with pytest.raises(FatalError, match=r"has no list view 00B5g00000009zzAAA"):
        list(connector.list_view_members("00B5g00000009zzAAA"))
    with pytest.raises(FatalError, match=r"only Account list views .* not 'Lead'"):
        list(connector.list_view_members("00B5g00000009zzAAA", "Lead"))


def test_a_refused_run_is_fatal_naming_the_report(make_org: MakeOrg) -> None:
    emulator, connector = make_org(2500)
    report = emulator.describe()["reports"]["accounts"]
    emulator.faults.inject("server_error", after=1, path="/analytics/reports/", status=403)
    members = connector.report_members(report)
    with pytest.raises(FatalError) as caught:
        list(members)
    assert str(caught.value) == (
        f"reading Salesforce report {report}: Salesforce error (HTTP 403): injected server error"
    )


def test_a_429_in_the_middle_of_a_report_is_retried(make_org: MakeOrg) -> None:
    emulator, connector = make_org(2500)
    report = emulator.describe()["reports"]["accounts"]
    emulator.faults.inject(
        "server_error", after=1, path="/analytics/reports/[^/]+$", method="POST", status=429
    )
    members = list(connector.report_members(report))
    assert len({member.crm_id for member in members}) == len(members) == 2500
    assert report_runs(emulator, report) == 3  # the second run was answered 429 once
    assert emulator.faults.pending() == []
    assert connector.throttled == 1


def test_the_list_views_query_is_read_over_several_pages(make_org: MakeOrg) -> None:
    emulator, connector = make_org(4500)
    list_view = emulator.describe()["list_views"]["accounts"]
    emulator.faults.inject("server_error", after=1, path="/query/", status=429)
    members = list(connector.list_view_members(list_view))
    stored = accounts(emulator)
    assert sorted(member.crm_id for member in members) == sorted(stored)
    by_id = {member.crm_id: member for member in members}
    some = next(iter(stored.values()))
    assert by_id[some["Id"]] == CrmMember(some["Id"], some["Website"], some["Name"])
    # The describe, the query and two more pages (the second answered 429 once, then read).
    pages = sum(count for route, count in emulator.calls.items() if "/query/" in route)
    assert pages == 3
    assert emulator.faults.pending() == []


def test_a_spent_daily_limit_stops_a_report_read(make_org: MakeOrg) -> None:
    emulator, connector = make_org(2)
    connector.check_credentials()
    emulator.daily_api_limit = emulator.api_usage
    with pytest.raises(DailyQuotaError):
        list(connector.report_members(emulator.describe()["reports"]["accounts"]))


def test_15_character_ids_become_18_character_ones_as_salesforce_computes_them() -> None:
    for id15 in ("001A0000006Vm9r", "0015g00000AbCdE", "001000000000000"):
        assert account_id_18(id15) == with_checksum(id15)
        assert account_id_18(with_checksum(id15)) == with_checksum(id15)
