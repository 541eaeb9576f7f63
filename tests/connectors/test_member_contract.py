"""The contract every adapter that reads CRM members passes against its emulator over HTTPS.

Each vendor's harness module declares its member sources (`MEMBER_SOURCES`: a Salesforce report
and list view, a HubSpot company list); a vendor that declares none is not in this contract.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from importlib import import_module
from typing import Any

import pytest

from connectors.base import READ_PAGE_ATTEMPTS, Connector
from connectors.errors import DailyQuotaError, FatalError, RetryableError
from connectors.members import CrmMember
from connectors.systems import SYSTEMS
from tests.connectors.harness import Harness, MemberSource


def declared_sources() -> list[tuple[str, str]]:
    """(system, kind) of every member source the vendors' harness modules declare."""
    found: list[tuple[str, str]] = []
    for system in SYSTEMS:
        module = import_module(f"tests.connectors.harness_{system}")
        declared: dict[str, Callable[[Harness], MemberSource]] = getattr(
            module, "MEMBER_SOURCES", {}
        )
        found.extend((system, kind) for kind in declared)
    return found


@pytest.fixture(params=declared_sources(), ids="-".join)
def source(request: pytest.FixtureRequest) -> MemberSource:
    """Each declared member source in turn, on its vendor's harness (a fresh emulator)."""
    system, kind = request.param
    harness: Harness = request.getfixturevalue(f"{system}_harness")
    module = import_module(f"tests.connectors.harness_{system}")
    made: MemberSource = module.MEMBER_SOURCES[kind](harness)
    return made


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits of the adapters' read retries, recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr("connectors.base.time.sleep", recorded.append)
    return recorded


def page_calls(source: MemberSource) -> int:
    """The page requests the source's emulator has answered so far (refusals included)."""
    return sum(
        count
        for route, count in source.harness.emulator.calls.items()
        if route.startswith(f"{source.page_method} ")
        and re.search(source.page_path, route.partition(" ")[2])
    )


def inject_on_second_page(source: MemberSource, fault: str, **params: Any) -> None:
    """Make the source's next read meet `fault` on its second page request."""
    source.harness.emulator.faults.inject(
        fault, after=1, path=source.page_path, method=source.page_method, **params
    )


def logged_in(source: MemberSource) -> Connector:
    connector = source.harness.make_connector()
    connector.check_credentials()
    return connector


def test_the_member_contract_covers_every_member_reader() -> None:
    assert set(declared_sources()) >= {
        ("salesforce", "report"),
        ("salesforce", "list_view"),
        ("hubspot", "company_list"),
    }


def test_every_member_is_read_once_across_pages(source: MemberSource) -> None:
    count = source.page_size * 2 + 7
    source_id, expected = source.make(count)
    connector = logged_in(source)
    before = page_calls(source)

    members = list(source.read(connector, source_id))

    assert len(members) == count, "a member was read twice or missed"
    assert set(members) == set(expected)
    assert page_calls(source) - before == math.ceil(count / source.page_size)


def test_reading_is_lazy(source: MemberSource) -> None:
    source_id, _ = source.make(source.page_size * 2 + 1)
    connector = logged_in(source)
    before = page_calls(source)

    first = next(iter(source.read(connector, source_id)))

    assert first.crm_id
    assert page_calls(source) - before == 1, "more than the first page was fetched"


def test_members_change_when_the_crms_data_changes(source: MemberSource) -> None:
    source_id, first = source.make(6)
    connector = logged_in(source)
    assert set(source.read(connector, source_id)) == set(first)

    source.remove(source_id, [member.crm_id for member in first[:2]])
    added = source.add(source_id, 3)

    members = list(source.read(connector, source_id))
    assert len(members) == 7
    assert set(members) == {*first[2:], *added}


def test_an_unknown_source_is_fatal_naming_it(source: MemberSource) -> None:
    source.make(1)
    connector = logged_in(source)
    with pytest.raises(FatalError) as refused:
        list(source.read(connector, source.missing_id))
    assert source.missing_id in str(refused.value)
    assert page_calls(source) == 0  # nothing was run or paged for a source that is not there


RETRYABLE_FAULTS = {
    "rate_limit": ("rate_limit", {}),
    "http_429": ("server_error", {"status": 429}),
    "http_503": ("server_error", {"status": 503}),
    "dropped_connection": ("drop_connection", {}),
}


@pytest.mark.parametrize("fault", RETRYABLE_FAULTS)
def test_a_retryable_fault_mid_read_is_retried_and_the_read_completes(
    source: MemberSource, fault: str, waits: list[float]
) -> None:
    count = source.page_size + 7
    source_id, expected = source.make(count)
    clean = logged_in(source)
    before = page_calls(source)
    assert len(list(source.read(clean, source_id))) == count
    clean_pages = page_calls(source) - before
    connector = logged_in(source)
    kind, params = RETRYABLE_FAULTS[fault]
    inject_on_second_page(source, kind, **params)
    before = page_calls(source)

    members = list(source.read(connector, source_id))

    assert len(members) == count and set(members) == set(expected)
    assert source.harness.emulator.faults.pending() == [], "the fault was not met"
    assert len(waits) == 1, waits
    # Only the refused page was asked again: one page request more than a clean read.
    assert page_calls(source) - before == clean_pages + 1
    # Only "too many requests" answers count as throttling.
    assert connector.throttled == (0 if fault in ("http_503", "dropped_connection") else 1)


def test_a_fault_on_the_reads_first_call_is_retried(
    source: MemberSource, waits: list[float]
) -> None:
    source_id, expected = source.make(3)
    connector = logged_in(source)
    # The next request is the read's first: the source's describe or definition.
    source.harness.emulator.faults.inject("server_error")

    members = list(source.read(connector, source_id))

    assert set(members) == set(expected) and len(members) == 3
    assert source.harness.emulator.faults.pending() == []
    assert waits == [1.0]


def test_an_expired_session_mid_read_is_renewed_and_the_read_completes(
    source: MemberSource, waits: list[float]
) -> None:
    count = source.page_size + 7
    source_id, expected = source.make(count)
    connector = logged_in(source)
    inject_on_second_page(source, "expire_token")

    members = list(source.read(connector, source_id))

    assert len(members) == count and set(members) == set(expected)
    assert source.harness.emulator.faults.pending() == []
    assert waits == []


def test_a_page_that_keeps_failing_ends_the_read_retryable(
    source: MemberSource, waits: list[float]
) -> None:
    source_id, _ = source.make(source.page_size + 7)
    connector = logged_in(source)
    inject_on_second_page(source, "server_error", count=READ_PAGE_ATTEMPTS)
    read: list[CrmMember] = []

    with pytest.raises(RetryableError):
        read.extend(source.read(connector, source_id))

    assert len(read) == source.page_size  # the first page, then the run's own retry takes over
    assert waits == [1.0, 2.0, 4.0]


def test_a_spent_daily_limit_ends_the_read(source: MemberSource, waits: list[float]) -> None:
    source_id, _ = source.make(source.page_size + 7)
    connector = logged_in(source)
    inject_on_second_page(source, "daily_limit")
    read: list[CrmMember] = []

    with pytest.raises(DailyQuotaError):
        read.extend(source.read(connector, source_id))

    assert len(read) == source.page_size
    assert waits == [], "a spent daily limit is not waited out"


def test_no_secret_in_any_error_or_log_line(
    source: MemberSource, waits: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    source_id, _ = source.make(source.page_size + 1)
    connector = logged_in(source)
    messages = [repr(connector)]
    faults: list[tuple[str, dict[str, Any]]] = [
        ("daily_limit", {}),
        ("server_error", {"count": READ_PAGE_ATTEMPTS}),
        ("server_error", {"status": 403}),
        ("rate_limit", {}),
        ("expire_token", {}),
    ]
    for kind, params in faults:
        inject_on_second_page(source, kind, **params)
        try:
            list(source.read(connector, source_id))
        except Exception as exc:
            messages.append(f"{exc!s} {exc!r} {exc.__cause__!r} {exc.__context__!r}")
    try:
        list(source.read(connector, source.missing_id))
    except FatalError as exc:
        messages.append(f"{exc!s} {exc!r} {exc.__cause__!r} {exc.__context__!r}")
    assert len(messages) == 5  # the connector, and four failed reads

    text = caplog.text + "\n".join(messages)
    for secret in source.harness.secrets:
        assert secret and secret not in text
