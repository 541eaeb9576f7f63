"""The contract of incremental reads (`read_records(modified_since=...)`), which every adapter
passes against its emulator over real HTTPS on 127.0.0.1.

An incremental run reads only what the vendor changed since the orchestration's watermark, so a
change this read misses is a change segsync never writes: records created, edited by someone
else, and written by segsync itself must all come back, each once, and nothing older.
"""

from __future__ import annotations

import datetime as dt
import math
import time

import pytest

from connectors.base import Connector, Update
from tests.connectors.harness import Harness
from tests.connectors.test_contract import harness, logged_in

__all__ = ["harness"]

# Vendors stamp modifications to the second (Pardot, Eloqua, Marketo's activities): a moment
# taken between two pauses of this long is strictly after what came before and before what
# comes after.
_STAMP_RESOLUTION = 1.1


def _moment() -> dt.datetime:
    """A moment strictly between every change before this call and every change after it."""
    time.sleep(_STAMP_RESOLUTION)
    moment = dt.datetime.now(dt.UTC)
    time.sleep(_STAMP_RESOLUTION)
    return moment


def _an_hour_ago() -> dt.datetime:
    """A moment before every record a test adds (and after the emulators' seeds), where what
    is read after it matters, not what is left out before it."""
    return dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)


def _modified(connector: Connector, harness: Harness, since: dt.datetime) -> list[str]:
    return [
        record.id
        for record in connector.read_records(
            harness.object_type, harness.field, modified_since=since
        )
    ]


def test_every_adapter_reads_modified_records(harness: Harness) -> None:
    assert harness.make_connector().reads_modified, f"{harness.system} cannot read increments"


def test_reads_what_was_created_edited_or_written_since_and_nothing_older(
    harness: Harness,
) -> None:
    old = harness.add_records(6)
    since = _moment()
    harness.edit_records(old[:2])
    created = harness.add_records(2)
    connector = logged_in(harness)
    [written] = connector.write_batch(harness.object_type, harness.field, [Update(old[2], "Ours")])
    assert written.ok

    records = {
        record.id: record
        for record in connector.read_records(
            harness.object_type, harness.field, modified_since=since
        )
    }

    assert set(records) == {*old[:3], *created}
    assert records[old[2]].value == "Ours"
    for edited in old[:2]:
        email = records[edited].email or ""
        assert email.startswith("moved"), f"{edited} was read as it was before the edit: {email}"


def test_reads_every_modified_record_once_across_many_pages(harness: Harness) -> None:
    since = _an_hour_ago()
    ids = harness.add_records(harness.page_size * 2 + 7)
    connector = logged_in(harness)
    before = connector.api_calls

    seen = _modified(connector, harness, since)

    assert len(seen) == len(set(seen)), "a record was read twice"
    assert set(seen) == set(ids)
    assert connector.api_calls - before >= math.ceil(len(ids) / harness.page_size)


def test_nothing_modified_reads_nothing(harness: Harness) -> None:
    harness.add_records(harness.page_size + 1)
    since = _moment()
    connector = logged_in(harness)
    before = connector.api_calls

    assert _modified(connector, harness, since) == []
    # An unchanged CRM costs a call or two, not a page per record.
    assert connector.api_calls - before <= 3


def test_a_modified_read_is_lazy(harness: Harness) -> None:
    since = _an_hour_ago()
    harness.add_records(harness.page_size * 3)
    connector = logged_in(harness)
    before = connector.api_calls
    list(connector.read_records(harness.object_type, harness.field, modified_since=since))
    whole = connector.api_calls - before

    before = connector.api_calls
    records = connector.read_records(harness.object_type, harness.field, modified_since=since)
    assert next(records).id
    assert connector.api_calls - before < whole, "the whole read was fetched for one record"


def test_a_failing_page_of_a_modified_read_is_read_again(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    since = _an_hour_ago()
    ids = harness.add_records(harness.page_size + 5)
    connector = logged_in(harness)
    records = connector.read_records(harness.object_type, harness.field, modified_since=since)
    first = next(records)
    waits: list[float] = []
    monkeypatch.setattr("connectors.base.time.sleep", waits.append)
    harness.emulator.faults.inject("server_error")  # the next call fails once

    seen = [first.id, *(record.id for record in records)]

    assert len(seen) == len(set(seen)) and set(seen) == set(ids)
    assert waits == [1.0]


def test_a_naive_moment_is_refused_before_any_call(harness: Harness) -> None:
    connector = harness.make_connector()
    with pytest.raises(ValueError, match="timezone-aware"):
        connector.read_records(
            harness.object_type, harness.field, modified_since=dt.datetime(2026, 1, 1)
        )
    assert connector.api_calls == 0
