"""The one interface every CRM/MAP adapter implements, and the values that cross it."""

from __future__ import annotations

import datetime as dt
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterator, Sequence, Sized
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import ClassVar, TypeVar, final

from connectors.errors import FatalError, RecordError, RetryableError

log = logging.getLogger(__name__)

# Makes the context one vendor call is sent in (see Connector.set_call_slot).
CallSlot = Callable[[], AbstractContextManager[None]]
# A page of a read that meets a retryable error is asked for again where the read stands, up to
# this many times in all, when the vendor's wait is at most READ_RETRY_WAIT_MAX seconds: the
# error would otherwise end the read, and the next attempt would read every page again.
READ_PAGE_ATTEMPTS = 4
READ_RETRY_WAIT_MAX = 60.0
# Waits when the vendor names none: 1, 2, then 4 s.
_READ_RETRY_FIRST_WAIT = 1.0
Page = TypeVar("Page")


@dataclass(frozen=True)
class Record:
    """A target record as read: its id, what matches it to an account, the field's current value."""

    id: str
    value: str | None
    email: str | None = None
    # The record's website or company domain, as the vendor holds it (not normalised).
    website: str | None = None
    # An explicit link to the account: Salesforce AccountId, HubSpot associated company id, ...
    linked_account_id: str | None = None


@dataclass(frozen=True)
class FieldInfo:
    """The target field as the vendor describes it."""

    object_type: str
    name: str
    type: str
    max_length: int | None
    writable: bool
    label: str | None = None


@dataclass(frozen=True)
class Update:
    """Set the target field of record `record_id` to `value` ("" clears it)."""

    record_id: str
    value: str


@dataclass(frozen=True)
class WriteResult:
    """The outcome of writing one record: written, or failed with the vendor's code and message."""

    record_id: str
    ok: bool
    code: str | None = None
    message: str | None = None

    @classmethod
    def refused(cls, record_id: str, error: RecordError) -> WriteResult:
        """The failed result of a record the vendor refused alone (the others go on)."""
        return cls(record_id, False, error.code, str(error))


@dataclass(frozen=True)
class QuotaUsage:
    """The vendor's own count of API use against its limit, as last reported."""

    used: int
    limit: int
    period: str  # "daily", "ten_seconds", ...


class Connector(ABC):
    """One CRM/MAP account: describe the target field, read records, write batches of updates.

    Adapters raise only `connectors.errors` exceptions; no vendor SDK object or exception leaves
    them. Each counts its HTTP calls in `api_calls`, and the vendor's "too many requests" answers
    among them in `throttled`. The public methods are final: they check the object, the field,
    the batch size and duplicate ids once, here, then call the adapter's `_describe_field`,
    `_read_records`, `_read_values`, `_write_batch` (and `_write_bulk`, `_read_modified`).
    """

    system: ClassVar[str]
    objects: ClassVar[tuple[str, ...]]
    # The most records one write call takes (the vendor's documented maximum).
    batch_size: ClassVar[int]
    # The most records one bulk job takes, for vendors whose bulk path is cheaper for large sets
    # (Salesforce Bulk API 2.0, Pardot imports); None when the batch endpoint is all there is.
    bulk_batch_size: ClassVar[int | None] = None
    # Whether read_records(modified_since=...) reads only the records the vendor changed since a
    # moment (created, edited by anyone, segsync's own writes included): what incremental runs
    # read. An adapter that sets it overrides _read_modified.
    reads_modified: ClassVar[bool] = False

    def __init__(self) -> None:
        self._api_calls = 0
        self._throttled = 0
        self._quota: QuotaUsage | None = None
        self._call_slot: CallSlot | None = None
        self._closers: list[Callable[[], None]] = []

    @final
    def close(self) -> None:
        """Release the connector's HTTP connections (a later call opens new ones)."""
        for close in self._closers:
            close()

    @final
    def _close_with(self, close: Callable[[], None]) -> None:
        """Have `close` called by close(): each VendorHttp registers its session here."""
        self._closers.append(close)

    @final
    def set_call_slot(self, slot: CallSlot | None) -> None:
        """Hold `slot()` around every vendor call: the worker waits there for the vendor's rate
        and keeps one of its concurrent-call places, shared by every worker, while it lasts."""
        self._call_slot = slot

    @final
    @property
    def api_calls(self) -> int:
        """HTTP calls made to the vendor by this connector so far (logins included)."""
        return self._api_calls

    @final
    @property
    def throttled(self) -> int:
        """Answers of too many requests (HTTP 429, the vendor's rate-limit code) met so far."""
        return self._throttled

    @final
    @property
    def quota(self) -> QuotaUsage | None:
        """The vendor's last reported quota usage, where the vendor reports it."""
        return self._quota

    @final
    @contextmanager
    def _vendor_call(self) -> Iterator[None]:
        """Around each HTTP request an adapter sends: the call slot is held, the call counted."""
        with self._call_slot() if self._call_slot is not None else nullcontext():
            self._api_calls += 1
            yield

    @final
    def _read_page(self, fetch: Callable[[], Page], what: str = "a page") -> Page:
        """`fetch()` one page of a read, asked again in place after a short retryable error."""
        for attempt in range(1, READ_PAGE_ATTEMPTS + 1):
            try:
                return fetch()
            except RetryableError as exc:
                wait = exc.retry_after
                if wait is None:
                    wait = _READ_RETRY_FIRST_WAIT * 2 ** (attempt - 1)
                if attempt == READ_PAGE_ATTEMPTS or wait > READ_RETRY_WAIT_MAX:
                    raise
                log.info("%s: reading %s again in %.1f s: %s", self.system, what, wait, exc)
                time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    @final
    def _note_throttled(self) -> None:
        """Count one "too many requests" answer: adapters call it where they map one to an error."""
        self._throttled += 1

    @final
    def _report_quota(self, used: int, limit: int, period: str) -> None:
        self._quota = QuotaUsage(used, limit, period)

    @final
    def check_batch(self, items: Sized, what: str = "updates") -> None:
        """Refuse, before any call, more items than one batch call takes (a caller's bug)."""
        if len(items) > self.batch_size:
            raise ValueError(
                f"a {self.system} batch takes at most {self.batch_size} {what}, got {len(items)}"
            )

    @final
    def check_object(self, object_type: str) -> str:
        """`object_type` in the adapter's spelling, or FatalError naming the supported ones."""
        for known in self.objects:
            if known.lower() == object_type.strip().lower():
                return known
        raise FatalError(
            f"{self.system} has no supported object {object_type!r} "
            f"(supported: {', '.join(self.objects)})"
        )

    @final
    def check_distinct(self, updates: Sequence[Update]) -> None:
        """Refuse, before any call, a batch that updates one record twice (a caller's bug)."""
        keys = [self._record_key(update.record_id) for update in updates]
        if len(set(keys)) != len(keys):
            raise ValueError(f"a {self.system} batch cannot update one record twice")

    def _check_field(self, field: str) -> None:
        """Refuse a field name the vendor cannot have (FatalError); adapters say which."""
        return None

    def _record_key(self, record_id: str) -> Hashable:
        """What makes two ids the same record (ValueError for one that cannot be an id)."""
        return record_id

    @abstractmethod
    def check_credentials(self) -> None:
        """Log in (or call a cheap endpoint) and raise FatalError when the credentials fail."""

    @final
    def describe_field(self, object_type: str, field: str) -> FieldInfo:
        """The target field's type and length; FatalError 'field F not found on OBJ' if absent."""
        object_type = self.check_object(object_type)
        self._check_field(field)
        return self._describe_field(object_type, field)

    @final
    def read_records(
        self, object_type: str, field: str, *, modified_since: dt.datetime | None = None
    ) -> Iterator[Record]:
        """Every record of `object_type` (or those modified after `modified_since`, where the
        vendor can tell), page by page, lazily, with the field's current value."""
        object_type = self.check_object(object_type)
        self._check_field(field)
        if modified_since is None:
            return self._read_records(object_type, field)
        if modified_since.utcoffset() is None:
            raise ValueError("modified_since must be a timezone-aware datetime")
        return self._read_modified(object_type, field, modified_since)

    @final
    def read_values(
        self, object_type: str, field: str, record_ids: Sequence[str]
    ) -> dict[str, str | None]:
        """The field's current value of each of `record_ids` (at most batch_size), in as few
        calls as the vendor allows; ids that no longer exist are absent from the result.

        Keys are the ids as given; an empty or unset value is None, as in read_records. More
        than batch_size ids raise ValueError before any call. A retried batch reads its records
        back with this, so a write the vendor applied before the worker died is not sent again.
        """
        object_type = self.check_object(object_type)
        self._check_field(field)
        self.check_batch(record_ids, "ids")
        if not record_ids:
            return {}
        return self._read_values(object_type, field, record_ids)

    @final
    def write_batch(
        self, object_type: str, field: str, updates: Sequence[Update]
    ) -> list[WriteResult]:
        """Write up to `batch_size` updates in as few calls as the vendor allows.

        Returns one WriteResult per update, in order. Raises RetryableError / DailyQuotaError /
        FatalError when the whole call fails; record-level failures are results, not raises.
        """
        object_type = self.check_object(object_type)
        self._check_field(field)
        self.check_batch(updates)
        self.check_distinct(updates)
        if not updates:
            return []
        return self._write_batch(object_type, field, updates)

    @final
    def write_bulk(
        self, object_type: str, field: str, updates: Sequence[Update]
    ) -> list[WriteResult]:
        """Write more than `batch_size` updates: the vendor's bulk path, else batch by batch."""
        object_type = self.check_object(object_type)
        self._check_field(field)
        self.check_distinct(updates)
        if not updates:
            return []
        return self._write_bulk(object_type, field, updates)

    def prefers_bulk(self, count: int) -> bool:
        """Whether `count` updates are better written in bulk jobs than in batches."""
        return False

    @abstractmethod
    def _describe_field(self, object_type: str, field: str) -> FieldInfo:
        """describe_field for a checked object and field."""

    @abstractmethod
    def _read_records(self, object_type: str, field: str) -> Iterator[Record]:
        """read_records for a checked object and field."""

    def _read_modified(self, object_type: str, field: str, since: dt.datetime) -> Iterator[Record]:
        """read_records(modified_since=...); vendors that can filter by it override this."""
        raise ValueError(f"{self.system} cannot read only the records modified since a moment")

    @abstractmethod
    def _read_values(
        self, object_type: str, field: str, record_ids: Sequence[str]
    ) -> dict[str, str | None]:
        """read_values for a checked object and field and 1..batch_size ids."""

    @abstractmethod
    def _write_batch(
        self, object_type: str, field: str, updates: Sequence[Update]
    ) -> list[WriteResult]:
        """write_batch for a checked object and field and 1..batch_size distinct updates."""

    def _write_bulk(
        self, object_type: str, field: str, updates: Sequence[Update]
    ) -> list[WriteResult]:
        """write_bulk for checked, distinct updates; adapters with a bulk API override this."""
        results: list[WriteResult] = []
        for start in range(0, len(updates), self.batch_size):
            results.extend(
                self._write_batch(object_type, field, updates[start : start + self.batch_size])
            )
        return results

    @final
    def planned_batch_size(self, total: int) -> int:
        """Updates per planned batch when `total` records are to be written in one run."""
        if self.bulk_batch_size is not None and self.prefers_bulk(total):
            return self.bulk_batch_size
        return self.batch_size

    @final
    def write_planned(
        self, object_type: str, field: str, updates: Sequence[Update]
    ) -> list[WriteResult]:
        """Write one planned batch: the batch endpoint, or the bulk path for a larger one."""
        if len(updates) > self.batch_size:
            return self.write_bulk(object_type, field, updates)
        return self.write_batch(object_type, field, updates)
