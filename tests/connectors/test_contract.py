"""The contract every connector passes against its emulator, over real HTTPS on 127.0.0.1.

Adapters that read CRM members (reports, list views, lists) are held to test_member_contract.py.
"""

from __future__ import annotations

import logging
import math
from typing import Protocol, runtime_checkable

import pytest

from connectors.base import READ_PAGE_ATTEMPTS, Connector, Update
from connectors.errors import DailyQuotaError, FatalError, RetryableError
from connectors.systems import SYSTEMS
from tests.connectors.harness import Harness


@pytest.fixture(params=SYSTEMS)
def harness(request: pytest.FixtureRequest) -> Harness:
    """Each registered vendor's harness (the `<system>_harness` fixture) in turn."""
    found: Harness = request.getfixturevalue(f"{request.param}_harness")
    return found


def logged_in(harness: Harness) -> Connector:
    connector = harness.make_connector()
    connector.check_credentials()
    return connector


def writes_of(harness: Harness, record_id: str) -> list[str | None]:
    return [w.value for w in harness.emulator.writes if w.record_id == record_id]


def test_reads_every_record_once_across_many_pages(harness: Harness) -> None:
    ids = harness.add_records(harness.page_size * 2 + 7)
    connector = harness.make_connector()
    records = list(connector.read_records(harness.object_type, harness.field))
    seen = [record.id for record in records]
    assert len(seen) == len(set(seen)), "a record was read twice"
    assert set(ids) <= set(seen)
    assert connector.api_calls >= math.ceil(len(seen) / harness.page_size)


def test_reading_is_lazy(harness: Harness) -> None:
    harness.add_records(harness.page_size * 3)
    connector = logged_in(harness)
    before = connector.api_calls
    records = connector.read_records(harness.object_type, harness.field)
    first = next(records)
    assert first.id
    assert connector.api_calls - before <= 2, "more than the first page was fetched"


@pytest.mark.parametrize("fault", ["server_error", "drop_connection"])
def test_a_page_that_fails_briefly_is_read_again_where_the_read_stands(
    harness: Harness, fault: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = harness.add_records(harness.page_size + 5)
    clean = logged_in(harness)
    before = clean.api_calls
    list(clean.read_records(harness.object_type, harness.field))
    clean_calls = clean.api_calls - before
    connector = logged_in(harness)
    waits: list[float] = []
    monkeypatch.setattr("connectors.base.time.sleep", waits.append)
    before = connector.api_calls
    records = connector.read_records(harness.object_type, harness.field)
    first = next(records)  # the first page is read
    harness.emulator.faults.inject(fault)  # the next page's call fails once

    rest = list(records)

    seen = [first.id, *(record.id for record in rest)]
    assert len(seen) == len(set(seen)) and set(ids) <= set(seen)
    assert waits == [1.0]
    # One call more than a read without the fault: the failed one, not the pages before it.
    assert connector.api_calls - before == clean_calls + 1


def test_a_page_that_keeps_failing_ends_the_read_retryable(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.add_records(harness.page_size + 5)
    connector = logged_in(harness)
    waits: list[float] = []
    monkeypatch.setattr("connectors.base.time.sleep", waits.append)
    records = connector.read_records(harness.object_type, harness.field)
    next(records)
    harness.emulator.faults.inject("server_error", count=READ_PAGE_ATTEMPTS)

    with pytest.raises(RetryableError):
        list(records)

    assert waits == [1.0, 2.0, 4.0]  # then the run's own retry takes over


def test_writes_a_full_batch_in_one_call_each_record_once(harness: Harness) -> None:
    connector = logged_in(harness)
    ids = harness.add_records(connector.batch_size)
    updates = [Update(record_id, f"Segment {n}; Tier {n % 3}") for n, record_id in enumerate(ids)]
    before = connector.api_calls
    results = connector.write_batch(harness.object_type, harness.field, updates)
    assert connector.api_calls - before == harness.calls_per_full_batch
    assert [r.record_id for r in results] == ids
    assert all(r.ok for r in results), [r for r in results if not r.ok][:3]
    for update in updates:
        assert harness.stored_value(update.record_id) == update.value
        assert writes_of(harness, update.record_id) == [update.value]


def test_more_than_a_batch_is_refused_before_any_call(harness: Harness) -> None:
    connector = logged_in(harness)
    ids = harness.add_records(connector.batch_size + 1)
    before = connector.api_calls
    with pytest.raises(ValueError, match="batch"):
        connector.write_batch(harness.object_type, harness.field, [Update(i, "x") for i in ids])
    assert connector.api_calls == before


def test_clearing_writes_an_empty_value(harness: Harness) -> None:
    connector = logged_in(harness)
    [record_id] = harness.add_records(1)
    connector.write_batch(harness.object_type, harness.field, [Update(record_id, "A;B")])
    [result] = connector.write_batch(harness.object_type, harness.field, [Update(record_id, "")])
    assert result.ok
    assert harness.stored_value(record_id) in ("", None)


def test_record_failures_are_kept_apart_from_successes(harness: Harness) -> None:
    connector = logged_in(harness)
    ids = harness.add_records(5)
    harness.emulator.faults.inject("record_failure", record_ids=[ids[1], ids[3]])
    results = connector.write_batch(
        harness.object_type, harness.field, [Update(i, "ICP") for i in ids]
    )
    assert [r.ok for r in results] == [True, False, True, False, True]
    for failed in (results[1], results[3]):
        assert failed.code and failed.message
        assert harness.stored_value(failed.record_id) in ("", None)
    assert harness.stored_value(ids[0]) == "ICP"


def test_a_value_longer_than_the_field_fails_that_record_only(harness: Harness) -> None:
    connector = logged_in(harness)
    long_id, short_id = harness.add_records(2)
    too_long = "x" * (harness.field_max_length + 1)
    results = connector.write_batch(
        harness.object_type,
        harness.field,
        [Update(long_id, too_long), Update(short_id, "fits")],
    )
    assert not results[0].ok and results[0].code
    assert results[1].ok
    assert harness.stored_value(long_id) in ("", None)
    assert harness.stored_value(short_id) == "fits"


@pytest.mark.parametrize("fault", ["rate_limit", "server_error", "drop_connection"])
def test_transient_faults_are_retryable_and_the_next_call_works(
    harness: Harness, fault: str
) -> None:
    connector = logged_in(harness)
    [record_id] = harness.add_records(1)
    harness.emulator.faults.inject(fault)
    with pytest.raises(RetryableError):
        connector.write_batch(harness.object_type, harness.field, [Update(record_id, "v1")])
    [result] = connector.write_batch(harness.object_type, harness.field, [Update(record_id, "v1")])
    assert result.ok
    assert harness.stored_value(record_id) == "v1"
    # Only the vendor's "too many requests" answer is counted as throttling.
    assert connector.throttled == (1 if fault == "rate_limit" else 0)


def test_spent_daily_quota_is_its_own_kind(harness: Harness) -> None:
    connector = logged_in(harness)
    [record_id] = harness.add_records(1)
    harness.emulator.faults.inject("daily_limit")
    with pytest.raises(DailyQuotaError):
        connector.write_batch(harness.object_type, harness.field, [Update(record_id, "v")])


def test_expired_token_is_recovered(harness: Harness) -> None:
    connector = logged_in(harness)
    ids = harness.add_records(3)
    harness.emulator.faults.inject("expire_token")
    results = connector.write_batch(
        harness.object_type, harness.field, [Update(i, "renewed") for i in ids]
    )
    assert all(r.ok for r in results)
    assert [writes_of(harness, i) for i in ids] == [["renewed"]] * 3
    harness.emulator.faults.inject("expire_token")
    assert any(r.id == ids[0] for r in connector.read_records(harness.object_type, harness.field))


def test_bad_credentials_are_fatal(harness: Harness) -> None:
    with pytest.raises(FatalError):
        harness.make_connector(valid=False).check_credentials()


def test_describe_reports_the_field_and_refuses_a_missing_one(harness: Harness) -> None:
    connector = harness.make_connector()
    described = connector.describe_field(harness.object_type, harness.field)
    assert described.max_length == harness.field_max_length
    assert described.writable
    with pytest.raises(
        FatalError, match=f"field No_Such_Field__c not found on {harness.object_type}"
    ):
        connector.describe_field(harness.object_type, "No_Such_Field__c")


def test_unknown_object_is_fatal(harness: Harness) -> None:
    with pytest.raises(FatalError, match="supported"):
        harness.make_connector().describe_field("Opportunity", harness.field)


def test_calls_are_counted_and_quota_reported(harness: Harness) -> None:
    connector = harness.make_connector()
    assert connector.api_calls == 0
    harness.add_records(3)
    list(connector.read_records(harness.object_type, harness.field))
    assert connector.api_calls >= 1
    quota = connector.quota
    if not harness.reports_quota:
        assert quota is None
        return
    assert quota is not None and quota.limit > 0 and 0 <= quota.used <= quota.limit


def test_no_secret_in_any_log_line_or_error(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    messages: list[str] = []
    try:
        harness.make_connector(valid=False).check_credentials()
    except FatalError as exc:
        messages.append(f"{exc!s} {exc!r}")
    connector = logged_in(harness)
    messages.append(repr(connector))
    ids = harness.add_records(2)
    for fault in ("rate_limit", "expire_token", "server_error", "daily_limit"):
        harness.emulator.faults.inject(fault)
        try:
            connector.write_batch(harness.object_type, harness.field, [Update(ids[0], "v")])
        except Exception as exc:
            messages.append(f"{exc!s} {exc!r} {exc.__cause__!r} {exc.__context__!r}")
    harness.emulator.faults.inject("record_failure", record_ids=[ids[1]])
    results = connector.write_batch(harness.object_type, harness.field, [Update(ids[1], "v")])
    messages.extend(f"{r.code} {r.message}" for r in results)
    text = caplog.text + "\n".join(messages)
    for secret in harness.secrets:
        assert secret and secret not in text


# -- read_values: what a retried batch reads back before it writes ------------------------------


@runtime_checkable
class DeletesRecords(Protocol):
    """An emulator that can delete a record (every emulator of the suite can)."""

    def delete_record(self, object_type: str, record_id: str) -> None: ...


def delete(harness: Harness, record_id: str) -> None:
    emulator = harness.emulator
    assert isinstance(emulator, DeletesRecords), f"{harness.system}'s emulator cannot delete"
    emulator.delete_record(harness.object_type, record_id)


def test_read_values_of_a_full_batch_is_one_call_with_the_values_just_written(
    harness: Harness,
) -> None:
    connector = logged_in(harness)
    ids = harness.add_records(connector.batch_size)
    # Every fifth record is written and then cleared; the last ten are never written.
    updates = [Update(i, "" if n % 5 == 0 else f"Segment {n}") for n, i in enumerate(ids[:-10])]
    connector.write_batch(harness.object_type, harness.field, [Update(i, "x") for i in ids[:-10:5]])
    connector.write_batch(harness.object_type, harness.field, updates)
    before = connector.api_calls

    values = connector.read_values(harness.object_type, harness.field, ids)

    assert connector.api_calls - before == harness.calls_per_full_read
    assert values == {u.record_id: u.value or None for u in updates} | dict.fromkeys(ids[-10:])


def test_read_values_leaves_out_records_that_no_longer_exist(harness: Harness) -> None:
    connector = logged_in(harness)
    kept, deleted = harness.add_records(2)
    connector.write_batch(harness.object_type, harness.field, [Update(kept, "ICP")])
    delete(harness, deleted)
    harness.emulator.faults.inject("expire_token")

    values = connector.read_values(harness.object_type, harness.field, [deleted, kept])

    assert values == {kept: "ICP"}


def test_read_values_of_more_than_a_batch_is_refused_before_any_call(harness: Harness) -> None:
    connector = logged_in(harness)
    ids = harness.add_records(connector.batch_size + 1)
    before = connector.api_calls
    with pytest.raises(ValueError, match="batch"):
        connector.read_values(harness.object_type, harness.field, ids)
    assert connector.read_values(harness.object_type, harness.field, []) == {}
    assert connector.api_calls == before


def test_a_retried_batch_writes_only_what_the_first_attempt_did_not(harness: Harness) -> None:
    connector = logged_in(harness)
    ids = harness.add_records(6)
    desired = {record_id: f"Tier {n % 2}" for n, record_id in enumerate(ids)}
    # The first attempt got three records written, then its worker was killed.
    connector.write_batch(
        harness.object_type, harness.field, [Update(i, desired[i]) for i in ids[:3]]
    )

    current = connector.read_values(harness.object_type, harness.field, ids)
    retry = [Update(i, v) for i, v in desired.items() if current.get(i) != v]
    connector.write_batch(harness.object_type, harness.field, retry)

    assert [u.record_id for u in retry] == ids[3:]
    for record_id in ids:
        assert writes_of(harness, record_id) == [desired[record_id]]
