"""Marketo's Bulk Lead Extract, for reading large sets of leads in a few calls.

experienceleague.adobe.com/en/docs/marketo-developer/marketo/rest/bulk-extract/ (bulk-extract,
bulk-lead-extract). One export is: Create Export Lead Job (fields, CSV, a createdAt filter of at
most 31 days), Enqueue, Get Status until Completed (Marketo updates a job's status at most once
a minute, so polling more often only spends calls), then Get File. The file is checked against
the status's `fileChecksum` (SHA-256) before any row of it is used, since a cut download would
otherwise look like fewer leads. Marketo writes an empty field as `null`.

Exports share a queue of 10 jobs and a daily allocation of 500 MB with every integration of the
instance; when either is full (1029), or a job fails, is cancelled or takes longer than the
connection allows, `ExportUnavailable` says so and the caller reads by id windows instead.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import logging
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

import requests

from connectors.errors import ConnectorError, RetryableError

log = logging.getLogger(__name__)

EXPORTS = "/bulk/v1/leads/export"
# Marketo allows 31 days per createdAt filter; a day less leaves room for time zone slips.
MAX_SPAN = dt.timedelta(days=30)
# 1029: the queue of 10 jobs or the day's export allocation is full; 1035: filter not offered.
_UNAVAILABLE_CODES = frozenset({"1029", "1035"})
# Files past this size are spooled to disk rather than held in memory.
_SPOOL_BYTES = 8 * 1024 * 1024
_CHUNK_BYTES = 256 * 1024

ApiCall = Callable[..., dict[str, Any]]
Download = Callable[[str], requests.Response]


class ExportUnavailable(Exception):
    """No export this time (queue or allocation full, job failed or too slow): read otherwise."""


class LeadExporter:
    """Runs one lead export at a time through the adapter's REST call and file download."""

    def __init__(
        self, api: ApiCall, download: Download, *, poll_interval: float, timeout: float
    ) -> None:
        self._api = api
        self._download = download
        self._poll_interval = poll_interval
        self._timeout = timeout

    def export(self, fields: Sequence[str], start: dt.datetime, end: dt.datetime) -> IO[bytes]:
        """The verified CSV file of leads created in [start, end], positioned at its start."""
        body = {
            "fields": list(fields),
            "format": "CSV",
            "filter": {"createdAt": {"startAt": _stamp(start), "endAt": _stamp(end)}},
        }
        job = self._job_call("POST", "create.json", body=body, what="creating a lead export")
        export_id = str(job.get("exportId") or "")
        if not export_id:
            raise RetryableError("marketo created a lead export without an exportId", code="EXPORT")
        self._job_call(
            "POST", f"{export_id}/enqueue.json", what="enqueuing a lead export", export_id=export_id
        )
        status = self._wait(export_id)
        return self._file(export_id, status)

    # ---- internals ------------------------------------------------------------------------

    def _job_call(
        self, method: str, action: str, *, what: str, body: Any = None, export_id: str = ""
    ) -> dict[str, Any]:
        try:
            answer = self._api(method, f"{EXPORTS}/{action}", body=body, what=what)
        except ConnectorError as exc:
            if exc.code in _UNAVAILABLE_CODES:
                if export_id:
                    self._cancel(export_id)
                raise ExportUnavailable(str(exc)) from None
            raise
        jobs = [item for item in answer.get("result") or [] if isinstance(item, dict)]
        return jobs[0] if jobs else {}

    def _wait(self, export_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + self._timeout
        while True:
            time.sleep(self._poll_interval)
            job = self._job_call("GET", f"{export_id}/status.json", what="polling a lead export")
            status = str(job.get("status") or "")
            if status == "Completed":
                return job
            if status in ("Failed", "Cancelled", "Canceled"):
                reason = str(job.get("errorMsg") or "no reason given")[:200]
                raise ExportUnavailable(f"marketo lead export {status.lower()} ({reason})")
            if time.monotonic() >= deadline:
                self._cancel(export_id)
                raise ExportUnavailable(
                    f"marketo lead export still {status or 'unknown'} after {self._timeout:g} s"
                )

    def _cancel(self, export_id: str) -> None:
        """Best effort: give the queue place back to the instance's other integrations."""
        try:
            self._api("POST", f"{EXPORTS}/{export_id}/cancel.json", what="cancelling an export")
        except ConnectorError as exc:
            log.info("marketo lead export %s not cancelled: %s", export_id, exc)

    def _file(self, export_id: str, status: dict[str, Any]) -> IO[bytes]:
        expected = str(status.get("fileChecksum") or "").removeprefix("sha256:").lower()
        response = self._download(f"{EXPORTS}/{export_id}/file.json")
        spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115 (returned)
        digest = hashlib.sha256()
        try:
            with response:
                for chunk in response.iter_content(chunk_size=_CHUNK_BYTES):
                    digest.update(chunk)
                    spool.write(chunk)
        except requests.RequestException as exc:
            spool.close()
            raise RetryableError(
                f"marketo lead export download broke off ({type(exc).__name__})", code="CONNECTION"
            ) from None
        if expected and digest.hexdigest() != expected:
            spool.close()
            raise RetryableError(
                "marketo lead export file does not match its checksum (cut short?)",
                code="CHECKSUM",
            )
        spool.seek(0)
        return spool


def export_rows(file: IO[bytes]) -> Iterator[dict[str, str | None]]:
    """The rows of an export file by column name; Marketo's `null` (empty) becomes None."""
    text = io.TextIOWrapper(file, encoding="utf-8", newline="")
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None:
        return
    for line, row in enumerate(reader, start=2):
        if len(row) != len(header):
            raise RetryableError(
                f"marketo lead export row {line} has {len(row)} columns, not {len(header)}",
                code="EXPORT",
            )
        yield {
            name: None if value in ("null", "") else value
            for name, value in zip(header, row, strict=True)
        }


def _stamp(moment: dt.datetime) -> str:
    # ISO 8601 without milliseconds, as the filter requires.
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
