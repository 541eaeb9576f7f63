"""connectors.base: the public methods check the object, the field, the batch size and duplicate
ids once, before the adapter's own method is called."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

import pytest

from connectors.base import Connector, FieldInfo, Record, Update, WriteResult
from connectors.errors import FatalError, RecordError


class Recording(Connector):
    """An adapter that records what reaches its own methods."""

    system = "recording"
    objects = ("Contacts",)
    batch_size = 3

    def __init__(self) -> None:
        super().__init__()
        self.reached: list[tuple[str, str, object]] = []

    def check_credentials(self) -> None:
        """Nothing to check."""

    def _check_field(self, field: str) -> None:
        if not field.isidentifier():
            raise FatalError(f"{field!r} is not a field name")

    def _record_key(self, record_id: str) -> int:
        return int(record_id)

    def _describe_field(self, object_type: str, field: str) -> FieldInfo:
        self.reached.append(("describe", object_type, field))
        return FieldInfo(object_type, field, "string", 10, True)

    def _read_records(self, object_type: str, field: str) -> Iterator[Record]:
        self.reached.append(("read", object_type, field))
        return iter([Record("1", None)])

    def _read_values(
        self, object_type: str, field: str, record_ids: Sequence[str]
    ) -> dict[str, str | None]:
        self.reached.append(("values", object_type, list(record_ids)))
        return dict.fromkeys(record_ids)

    def _write_batch(
        self, object_type: str, field: str, updates: Sequence[Update]
    ) -> list[WriteResult]:
        self.reached.append(("write", object_type, [u.record_id for u in updates]))
        return [
            WriteResult.refused(u.record_id, RecordError("refused", code="BAD"))
            if u.value == "bad"
            else WriteResult(u.record_id, True)
            for u in updates
        ]


def updates(*ids: str) -> list[Update]:
    return [Update(record_id, "v") for record_id in ids]


def every_public_call(
    connector: Connector, object_type: str, field: str
) -> list[Callable[[], Any]]:
    """Each public method of `connector`, called for one record of `object_type` and `field`."""
    return [
        partial(connector.describe_field, object_type, field),
        partial(connector.read_records, object_type, field),
        partial(connector.read_values, object_type, field, ["1"]),
        partial(connector.write_batch, object_type, field, updates("1")),
        partial(connector.write_bulk, object_type, field, updates("1")),
    ]


def test_the_object_is_checked_and_given_in_the_adapters_spelling() -> None:
    connector = Recording()
    connector.describe_field(" contacts ", "Segment")
    list(connector.read_records("CONTACTS", "Segment"))
    assert [entry[1] for entry in connector.reached] == ["Contacts", "Contacts"]
    for call in every_public_call(connector, "Leads", "Segment"):
        with pytest.raises(FatalError, match=r"no supported object 'Leads' \(supported: Contacts"):
            call()
    assert len(connector.reached) == 2


def test_the_adapters_field_check_runs_before_every_call() -> None:
    connector = Recording()
    for call in every_public_call(connector, "Contacts", "no-field"):
        with pytest.raises(FatalError, match="is not a field name"):
            call()
    assert connector.reached == []


def test_too_many_ids_or_updates_are_refused_and_empty_calls_cost_nothing() -> None:
    connector = Recording()
    with pytest.raises(ValueError, match="a recording batch takes at most 3 ids, got 4"):
        connector.read_values("Contacts", "Segment", ["1", "2", "3", "4"])
    with pytest.raises(ValueError, match="at most 3 updates, got 4"):
        connector.write_batch("Contacts", "Segment", updates("1", "2", "3", "4"))
    assert connector.read_values("Contacts", "Segment", []) == {}
    assert connector.write_batch("Contacts", "Segment", []) == []
    assert connector.write_bulk("Contacts", "Segment", []) == []
    assert connector.reached == []


def test_one_record_twice_is_refused_by_the_adapters_idea_of_an_id() -> None:
    connector = Recording()
    with pytest.raises(ValueError, match="a recording batch cannot update one record twice"):
        connector.write_batch("Contacts", "Segment", updates("7", "007"))
    with pytest.raises(ValueError, match="twice"):
        connector.write_bulk("Contacts", "Segment", updates("1", "2", "3", "4", "1"))
    with pytest.raises(ValueError, match="invalid literal"):
        connector.write_batch("Contacts", "Segment", updates("x"))
    assert connector.reached == []


def test_write_bulk_goes_batch_by_batch_where_the_vendor_has_no_bulk_path() -> None:
    connector = Recording()
    results = connector.write_bulk(
        "Contacts", "Segment", [*updates("1", "2", "3", "4"), Update("5", "bad")]
    )
    assert connector.reached == [
        ("write", "Contacts", ["1", "2", "3"]),
        ("write", "Contacts", ["4", "5"]),
    ]
    assert results[-1] == WriteResult("5", False, "BAD", "refused")
    assert all(result.ok for result in results[:-1])


def test_reading_by_modification_time_needs_an_aware_moment_and_a_vendor_that_can() -> None:
    connector = Recording()
    with pytest.raises(ValueError, match="timezone-aware"):
        connector.read_records("Contacts", "Segment", modified_since=dt.datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="recording cannot read only the records modified"):
        connector.read_records(
            "Contacts", "Segment", modified_since=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        )
    assert connector.reached == []


def test_close_closes_what_the_adapters_http_registered() -> None:
    connector = Recording()
    closed: list[str] = []
    connector._close_with(lambda: closed.append("session"))
    connector.close()
    connector.close()
    assert closed == ["session", "session"]
