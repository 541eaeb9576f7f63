"""The Salesforce side of the connector contract suite: an emulator over HTTPS and connectors."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from connectors.base import Connector
from connectors.members import CrmMember
from connectors.salesforce import SalesforceConfig, SalesforceConnector
from connectors.sandbox.salesforce import SalesforceEmulator
from connectors.sandbox.salesforce_reports import REPORT_ROW_LIMIT
from connectors.sandbox.server import EmulatorServer
from connectors.sandbox.tls import SandboxCertificates
from tests.connectors.harness import Harness, MemberSource


def connector_config(
    emulator: SalesforceEmulator,
    certificates: SandboxCertificates,
    valid: bool = True,
    **overrides: Any,
) -> SalesforceConfig:
    """A password (SOAP) login to `emulator`, verified with the run's CA; fast bulk polling."""
    info = emulator.describe()
    settings: dict[str, Any] = {
        "auth": "password",
        "username": info["username"],
        "password": info["password"] if valid else f"{info['password']}-wrong",
        "security_token": info["security_token"],
        "login_url": info["login_url"],
        "api_version": info["api_version"],
        "ca_bundle": str(certificates.ca_bundle),
        "bulk_poll_interval": 0.01,
        "bulk_timeout": 10.0,
        "timeout": 10.0,
    }
    settings.update(overrides)
    return SalesforceConfig(**settings)


@contextmanager
def running(emulator: SalesforceEmulator, certificates: SandboxCertificates) -> Iterator[str]:
    """Serve `emulator` over HTTPS while the block runs; yields its base URL."""
    server = EmulatorServer(emulator, certificates)
    server.start()
    try:
        yield emulator.base_url
    finally:
        server.stop()


@pytest.fixture
def salesforce_harness(sandbox_certificates: SandboxCertificates) -> Iterator[Harness]:
    """A Salesforce emulator serving HTTPS on 127.0.0.1, and connectors that log in to it."""
    emulator = SalesforceEmulator()
    connectors: list[SalesforceConnector] = []
    numbers = itertools.count(1)

    def make_connector(valid: bool = True, **overrides: Any) -> SalesforceConnector:
        config = connector_config(emulator, sandbox_certificates, valid, **overrides)
        connector = SalesforceConnector(config)
        connectors.append(connector)
        return connector

    def add_records(count: int) -> list[str]:
        rows = []
        for _ in range(count):
            n = next(numbers)
            rows.append(
                {
                    "FirstName": "Harness",
                    "LastName": f"Lead {n}",
                    "Email": f"lead{n}@harness{n}.example",
                    "Company": f"Harness {n}",
                    "Website": f"https://harness{n}.example",
                }
            )
        return emulator.add_records("Lead", rows)

    def stored_value(record_id: str) -> str | None:
        value: str | None = emulator.record("Lead", record_id)["Segment_Names__c"]
        return value

    def edit_records(record_ids: list[str]) -> None:
        for record_id in record_ids:
            n = next(numbers)
            emulator.edit_record("Lead", record_id, {"Email": f"moved{n}@elsewhere{n}.example"})

    with running(emulator, sandbox_certificates):
        info = emulator.describe()
        try:
            yield Harness(
                system="salesforce",
                emulator=emulator,
                object_type="Lead",
                field="Segment_Names__c",
                field_max_length=255,
                page_size=2000,
                make_connector=make_connector,
                add_records=add_records,
                stored_value=stored_value,
                edit_records=edit_records,
                secrets=[
                    info["password"],
                    info["security_token"],
                    info["client_secret"],
                    info["access_token"],
                ],
            )
        finally:
            for connector in connectors:
                connector.close()


# -- member sources: Account reports and list views ----------------------------------------------

# The rows of one REST query page the adapter reads (the emulator's default batch size).
QUERY_PAGE_SIZE = 2000
_account_numbers = itertools.count(1)


def _org(harness: Harness) -> SalesforceEmulator:
    emulator = harness.emulator
    assert isinstance(emulator, SalesforceEmulator)
    return emulator


def _salesforce(connector: Connector) -> SalesforceConnector:
    assert isinstance(connector, SalesforceConnector)
    return connector


def _add_accounts(emulator: SalesforceEmulator, prefix: str, count: int) -> list[CrmMember]:
    """`count` new Accounts named `prefix` and a number, each with a website."""
    rows = []
    for _ in range(count):
        n = next(_account_numbers)
        rows.append({"Name": f"{prefix} Account {n}", "Website": f"https://account{n}.example"})
    ids = emulator.add_records("Account", rows)
    return [
        CrmMember(record_id, row["Website"], row["Name"])
        for record_id, row in zip(ids, rows, strict=True)
    ]


def _delete_accounts(emulator: SalesforceEmulator, account_ids: list[str]) -> None:
    for account_id in account_ids:
        emulator.delete_record("Account", account_id)


def report_source(harness: Harness) -> MemberSource:
    """Tabular Accounts reports whose saved filter keeps their own Accounts (by name)."""
    emulator = _org(harness)
    prefixes: dict[str, str] = {}

    def make(count: int) -> tuple[str, list[CrmMember]]:
        prefix = f"Report {len(prefixes) + 1}"
        with emulator.lock:
            report_id = emulator.reports.add_report(
                f"Harness {prefix}",
                "TABULAR",
                ["ACCOUNT_ID", "ACCOUNT.NAME", "URL"],
                filters=[
                    {
                        "column": "ACCOUNT.NAME",
                        "operator": "startsWith",
                        "value": f"{prefix} Account",
                    }
                ],
            )
        prefixes[report_id] = prefix
        return report_id, _add_accounts(emulator, prefix, count)

    return MemberSource(
        harness=harness,
        kind="report",
        make=make,
        add=lambda report_id, count: _add_accounts(emulator, prefixes[report_id], count),
        remove=lambda _report_id, ids: _delete_accounts(emulator, ids),
        read=lambda connector, report_id: _salesforce(connector).report_members(report_id),
        missing_id="00O5g00000009zzAAA",
        page_size=REPORT_ROW_LIMIT,
        page_path=r"/analytics/reports/[^/]+$",
        page_method="POST",
    )


def list_view_source(harness: Harness) -> MemberSource:
    """The org's All Accounts list view (every Account: one source per org)."""
    emulator = _org(harness)
    list_view = emulator.describe()["list_views"]["accounts"]

    def make(count: int) -> tuple[str, list[CrmMember]]:
        _delete_accounts(emulator, list(emulator.store.records["Account"]))
        return list_view, _add_accounts(emulator, "Listed", count)

    return MemberSource(
        harness=harness,
        kind="list_view",
        make=make,
        add=lambda _list_view, count: _add_accounts(emulator, "Listed", count),
        remove=lambda _list_view, ids: _delete_accounts(emulator, ids),
        read=lambda connector, view_id: _salesforce(connector).list_view_members(view_id),
        missing_id="00B5g00000009zzAAA",
        page_size=QUERY_PAGE_SIZE,
        # The query ("query/?q=") and each next page ("query/{locator}").
        page_path=r"/query(/[^/]*)?$",
    )


# For the member contract (tests/connectors/test_member_contract.py).
MEMBER_SOURCES: dict[str, Callable[[Harness], MemberSource]] = {
    "report": report_source,
    "list_view": list_view_source,
}
