"""Bulk API 2.0 for the Salesforce adapter: query jobs read in CSV pages, update jobs, results."""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import requests

from connectors.base import Update, WriteResult
from connectors.errors import FatalError, RetryableError
from connectors.http import redact
from connectors.salesforce_http import record_failure

# Bulk API 2.0 CSV sets a field to null with this marker; an empty cell leaves a field unchanged.
NULL_MARKER = "#N/A"
# Ingest files may hold up to 150 MB; stay well under it.
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
_JOB_ID = re.compile(r"^[A-Za-z0-9]{15,18}$")
_DONE = ("JobComplete", "Failed", "Aborted")

# call(method, path under /services/data/vXX.X/, **requests kwargs) -> a 2xx response
Call = Callable[..., requests.Response]
# Runs the fetch of one result page, asking again after a short retryable error.
PageFetch = Callable[[Callable[[], requests.Response]], requests.Response]


@dataclass(frozen=True)
class BulkClient:
    """Runs Bulk API 2.0 jobs through `call`, which handles login, errors and counting.

    Spoken over HTTP rather than through simple-salesforce's bulk2, so that each step (not the
    whole job) is retried after a re-login, and polling keeps our interval and deadline.
    """

    call: Call
    poll_interval: float
    timeout: float
    page_size: int
    # The secrets the adapter holds, which no error message may repeat.
    secrets: Callable[[], Iterable[str | None]]
    read_page: PageFetch

    def query(self, soql: str) -> Iterator[dict[str, str]]:
        """Rows of a query job (column name -> text; "" for null), page by page as consumed."""
        job = self._json(
            "POST",
            "jobs/query",
            json={
                "operation": "query",
                "query": soql,
                "contentType": "CSV",
                "columnDelimiter": "COMMA",
                "lineEnding": "LF",
            },
        )
        job_id = _job_id(job)
        self._wait("query", job_id)
        locator = ""
        while True:
            params: dict[str, Any] = {"maxRecords": self.page_size}
            if locator:
                params["locator"] = locator
            # A page that fails is asked for again by its locator: the job's results stay.
            response = self.read_page(
                partial(
                    self.call,
                    "GET",
                    f"jobs/query/{job_id}/results",
                    params=params,
                    headers={"Accept": "text/csv"},
                )
            )
            yield from csv.DictReader(io.StringIO(response.content.decode("utf-8")))
            locator = response.headers.get("Sforce-Locator", "null")
            if not locator or locator == "null":
                return

    def update(self, object_type: str, field: str, updates: Sequence[Update]) -> list[WriteResult]:
        """Set `field` on every record in one update job; one WriteResult per update, in order."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["Id", field])
        for update in updates:
            writer.writerow([update.record_id, update.value or NULL_MARKER])
        payload = buffer.getvalue().encode("utf-8")
        if len(payload) > MAX_UPLOAD_BYTES:
            raise ValueError("a Bulk API 2.0 update job takes at most 100 MB of CSV: split it")
        job_id = _job_id(
            self._json(
                "POST",
                "jobs/ingest",
                json={
                    "object": object_type,
                    "operation": "update",
                    "contentType": "CSV",
                    "columnDelimiter": "COMMA",
                    "lineEnding": "LF",
                },
            )
        )
        self.call(
            "PUT",
            f"jobs/ingest/{job_id}/batches",
            data=payload,
            headers={"Content-Type": "text/csv"},
        )
        self.call("PATCH", f"jobs/ingest/{job_id}", json={"state": "UploadComplete"})
        self._wait("ingest", job_id)
        outcomes: dict[str, WriteResult] = {}
        for row in self._rows(f"jobs/ingest/{job_id}/successfulResults/"):
            record_id = row.get("Id") or row.get("sf__Id") or ""
            outcomes[record_id] = WriteResult(record_id, ok=True)
        for row in self._rows(f"jobs/ingest/{job_id}/failedResults/"):
            record_id = row.get("Id") or row.get("sf__Id") or ""
            # sf__Error reads "CODE:message:fields --".
            code, _, message = (row.get("sf__Error") or "").partition(":")
            message = message.rstrip(" -").rstrip(":")
            outcomes[record_id] = record_failure(
                record_id, code.strip() or None, message, self.secrets()
            )
        return [
            outcomes.get(update.record_id)
            or WriteResult(
                update.record_id,
                ok=False,
                code="UNPROCESSED",
                message="the Bulk API job did not process this record",
            )
            for update in updates
        ]

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self.call(method, path, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise RetryableError("Salesforce sent an unreadable Bulk API job description")
        return body

    def _rows(self, path: str) -> list[dict[str, str]]:
        response = self.call("GET", path, headers={"Accept": "text/csv"})
        return list(csv.DictReader(io.StringIO(response.content.decode("utf-8"))))

    def _wait(self, kind: str, job_id: str) -> None:
        """Poll until the job is done; raise unless it completed."""
        deadline = time.monotonic() + self.timeout
        while True:
            info = self._json("GET", f"jobs/{kind}/{job_id}")
            state = info.get("state")
            if state in _DONE:
                break
            if time.monotonic() >= deadline:
                raise RetryableError(
                    f"the Salesforce Bulk API {kind} job {job_id} did not finish within "
                    f"{self.timeout:g} s (state {state})"
                )
            time.sleep(self.poll_interval)
        if state == "JobComplete":
            return
        message = redact(str(info.get("errorMessage") or state), self.secrets())
        text = f"the Salesforce Bulk API {kind} job {job_id} ended {state}: {message}"
        # InvalidBatch / InvalidJob mean the job itself is wrong (unknown field, bad object).
        if state == "Failed" and message.lower().startswith(("invalidbatch", "invalidjob")):
            raise FatalError(text)
        raise RetryableError(text)


def _job_id(job: dict[str, Any]) -> str:
    job_id = str(job.get("id", ""))
    if not _JOB_ID.match(job_id):
        raise RetryableError("Salesforce sent a Bulk API job without a valid id")
    return job_id
