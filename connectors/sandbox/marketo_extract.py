"""Bulk Lead Extract jobs for the Marketo emulator.

experienceleague.adobe.com/en/docs/marketo-developer/marketo/rest/bulk-extract/ (bulk-extract,
bulk-lead-extract): create a job (fields, format, one filter), enqueue it, poll its status, then
GET its file. Emulated as documented:
- only the createdAt filter (a range of 31 days or fewer, ISO 8601 without milliseconds);
- CSV with a header row of the fields' REST names; an empty field is written as `null`;
- at most 10 jobs queued or processing ("1029, Too many jobs in queue") and a daily export
  allocation in bytes ("1029, Export daily quota exceeded");
- status Created, Queued, Processing, Cancelled, Completed or Failed; when Completed it carries
  numberOfRecords, fileSize and fileChecksum ("sha256:" + the file's SHA-256);
- the file endpoint answers 404 with a plain-text message until the job is Completed, and
  honours `Range: bytes=a-b` with a 206.
The records a job returns are those present when it was enqueued (Marketo takes them when the
job starts processing); it completes `export_seconds` after being enqueued.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_RANGE = dt.timedelta(days=31)
QUEUE_MAX = 10
DAILY_ALLOCATION_BYTES = 500 * 1024 * 1024
FORMATS = ("CSV",)
_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")


class ExportRefused(Exception):
    """A response-level error of the export endpoints (HTTP 200, success false)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code = code
        self.message = message


@dataclass
class _Job:
    export_id: str
    fields: list[str]
    start: dt.datetime
    end: dt.datetime
    created: dt.datetime
    status: str = "Created"
    queued: dt.datetime | None = None
    done_at: float = 0.0  # monotonic moment the job completes
    fail: bool = False
    content: bytes = b""
    records: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _moment(value: Any, name: str) -> dt.datetime:
    if not isinstance(value, str) or not value:
        raise ExportRefused("1003", f"filter createdAt.{name} is required")
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        message = f"Invalid value '{value}'. Required of type 'datetime'"
        raise ExportRefused("1001", message) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


class LeadExports:
    """The export jobs of one emulated Marketo instance (one API user)."""

    def __init__(self, known_fields: Callable[[], set[str]]) -> None:
        self._known_fields = known_fields
        self.jobs: dict[str, _Job] = {}
        # Seconds from enqueue to Completed; a real instance takes minutes.
        self.export_seconds = 0.0
        self.daily_allocation = DAILY_ALLOCATION_BYTES
        self._exported_bytes = 0
        self._day = dt.datetime.now(dt.UTC).date()

    def create(self, body: Any) -> dict[str, Any]:
        """Create Export Lead Job: fields, format and a createdAt filter."""
        if not isinstance(body, dict):
            raise ExportRefused("609", "Invalid JSON")
        fields = body.get("fields")
        if not (isinstance(fields, list) and fields and all(isinstance(f, str) for f in fields)):
            raise ExportRefused("1003", "fields must be a non-empty array of field names")
        unknown = [name for name in fields if name not in self._known_fields()]
        if unknown:
            raise ExportRefused("1006", f"Field '{unknown[0]}' not found")
        if str(body.get("format") or "CSV") not in FORMATS:
            raise ExportRefused("1003", f"format must be one of {', '.join(FORMATS)} here")
        given = body.get("filter")
        if not isinstance(given, dict) or len(given) != 1:
            raise ExportRefused("1003", "exactly one filter type is required")
        kind, spec = next(iter(given.items()))
        if kind != "createdAt":
            raise ExportRefused("1035", "Unsupported filter type for target subscription")
        if not isinstance(spec, dict):
            raise ExportRefused("1003", "filter createdAt takes startAt and endAt")
        start, end = _moment(spec.get("startAt"), "startAt"), _moment(spec.get("endAt"), "endAt")
        if end < start or end - start > MAX_RANGE:
            raise ExportRefused("1003", "createdAt range must be 31 days or fewer")
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        job = _Job(str(uuid.uuid4()), list(fields), start, end, now)
        self.jobs[job.export_id] = job
        return self._status(job)

    def enqueue(self, export_id: str, leads: list[dict[str, Any]], *, fail: bool) -> dict[str, Any]:
        """Enqueue a Created job; `leads` are the records as they are now."""
        job = self._job(export_id)
        if job.status != "Created":
            raise ExportRefused("1029", f"Job {export_id} is {job.status}, not Created")
        self._new_day()
        if self._exported_bytes >= self.daily_allocation:
            raise ExportRefused("1029", "Export daily quota exceeded")
        waiting = sum(1 for j in self.jobs.values() if j.status in ("Queued", "Processing"))
        if waiting >= QUEUE_MAX:
            raise ExportRefused("1029", "Too many jobs in queue")
        job.status = "Queued"
        job.queued = dt.datetime.now(dt.UTC).replace(microsecond=0)
        job.done_at = time.monotonic() + self.export_seconds
        job.fail = fail
        job.content, job.records = self._file(job, leads)
        return self._status(job, advance=False)

    def status(self, export_id: str) -> dict[str, Any]:
        """Get Export Lead Job Status."""
        return self._status(self._job(export_id))

    def cancel(self, export_id: str) -> dict[str, Any]:
        """Cancel Export Lead Job (a finished job stays as it is)."""
        job = self._job(export_id)
        self._advance(job)
        if job.status in ("Created", "Queued", "Processing"):
            job.status = "Cancelled"
        return self._status(job)

    def file(self, export_id: str, byte_range: str | None) -> tuple[int, bytes, dict[str, str]]:
        """Get Export Lead File: (HTTP status, content, headers); 404 until Completed."""
        job = self.jobs.get(export_id)
        if job is not None:
            self._advance(job)
        if job is None or job.status != "Completed":
            return 404, b"Export job not found or not completed", {}
        content, size = job.content, len(job.content)
        if not byte_range:
            return 200, content, {"Accept-Ranges": "bytes"}
        match = _RANGE.match(byte_range.strip())
        first = int(match.group(1)) if match else size
        if first >= size:
            return 416, b"Requested range not satisfiable", {"Content-Range": f"bytes */{size}"}
        assert match is not None
        last = min(int(match.group(2)) if match.group(2) else size - 1, size - 1)
        headers = {"Accept-Ranges": "bytes", "Content-Range": f"bytes {first}-{last}/{size}"}
        return 206, content[first : last + 1], headers

    # ---- internals ------------------------------------------------------------------------

    def _job(self, export_id: str) -> _Job:
        job = self.jobs.get(export_id)
        if job is None:
            raise ExportRefused("1003", f"Export id {export_id} not found")
        return job

    def _advance(self, job: _Job) -> None:
        """Queued jobs whose time has come are Completed (or Failed), their bytes counted."""
        if job.status in ("Queued", "Processing") and time.monotonic() >= job.done_at:
            if job.fail:
                job.status = "Failed"
                job.extra["errorMsg"] = "Export failed: an internal error occurred"
                return
            job.status = "Completed"
            self._new_day()
            self._exported_bytes += len(job.content)
            job.extra |= {
                "numberOfRecords": job.records,
                "fileSize": len(job.content),
                "fileChecksum": "sha256:" + hashlib.sha256(job.content).hexdigest(),
            }
        elif job.status == "Queued":
            job.status = "Processing"

    def _status(self, job: _Job, *, advance: bool = True) -> dict[str, Any]:
        if advance:
            self._advance(job)
        answer: dict[str, Any] = {
            "exportId": job.export_id,
            "format": "CSV",
            "status": job.status,
            "createdAt": _stamp(job.created),
        }
        if job.queued is not None:
            answer["queuedAt"] = _stamp(job.queued)
        if job.status in ("Completed", "Failed"):
            answer["finishedAt"] = _stamp(dt.datetime.now(dt.UTC))
        return answer | job.extra

    def _file(self, job: _Job, leads: list[dict[str, Any]]) -> tuple[bytes, int]:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(job.fields)
        count = 0
        for lead in leads:
            created = dt.datetime.fromisoformat(str(lead["createdAt"]).replace("Z", "+00:00"))
            if job.start <= created <= job.end:
                count += 1
                writer.writerow(["null" if lead.get(n) is None else lead[n] for n in job.fields])
        return out.getvalue().encode(), count

    def _new_day(self) -> None:
        today = dt.datetime.now(dt.UTC).date()
        if today != self._day:
            self._day, self._exported_bytes = today, 0
