"""Bulk API 2.0 query and ingest jobs of the Salesforce emulator (CSV in, CSV out)."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from connectors.sandbox.salesforce_store import (
    ApiError,
    FieldSpec,
    Query,
    Store,
    format_datetime,
    make_id,
    parse_soql,
)
from connectors.sandbox.server import Request, Response

_DELIMITERS = {
    "COMMA": ",",
    "TAB": "\t",
    "SEMICOLON": ";",
    "PIPE": "|",
    "CARET": "^",
    "BACKQUOTE": "`",
}
_LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
# Bulk API 2.0 CSV sets a field to null with this marker; an empty cell leaves it unchanged.
NULL_MARKER = "#N/A"
_RESULT_CAP = 100_000

# (object_type, [(record_id, {field: value})], call) -> one per-record error or None per row
WriteRows = Callable[
    [str, list[tuple[str, dict[FieldSpec, str | None]]], int], list[dict[str, Any] | None]
]


@dataclass
class Job:
    """One Bulk API 2.0 job and what it produced."""

    id: str
    kind: str  # "query" or "ingest"
    operation: str
    object_type: str
    api_version: str
    delimiter: str
    line_ending: str
    created: dt.datetime
    state: str
    polls_left: int
    # The state the job reaches once its status has been polled `polls_left` more times.
    final_state: str = "JobComplete"
    data: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    succeeded: list[list[str]] = field(default_factory=list)
    failed: list[list[str]] = field(default_factory=list)
    error_message: str | None = None

    def info(self) -> dict[str, Any]:
        """The job's JSON representation."""
        stamp = format_datetime(self.created)
        info: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.object_type,
            "createdById": "005000000000001AAA",
            "createdDate": stamp,
            "systemModstamp": stamp,
            "state": self.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.api_version),
            "lineEnding": next(k for k, v in _LINE_ENDINGS.items() if v == self.line_ending),
            "columnDelimiter": next(k for k, v in _DELIMITERS.items() if v == self.delimiter),
        }
        if self.kind == "ingest":
            info["jobType"] = "V2Ingest"
            info["contentUrl"] = f"services/data/v{self.api_version}/jobs/ingest/{self.id}/batches"
        if self.kind == "ingest":
            done = self.state == "JobComplete"
            info["numberRecordsProcessed"] = len(self.succeeded) + len(self.failed) if done else 0
            info["numberRecordsFailed"] = len(self.failed) if done else 0
        elif self.state == "JobComplete":
            info["numberRecordsProcessed"] = len(self.rows)
        if self.error_message:
            info["errorMessage"] = self.error_message
        return info


class BulkApi:
    """The `jobs/query` and `jobs/ingest` resources over one Store."""

    def __init__(self, store: Store, write_rows: WriteRows) -> None:
        self.store = store
        self.write_rows = write_rows
        self.jobs: dict[str, Job] = {}
        # Status polls that still see InProgress before a job completes (clients must poll).
        self.polls_before_complete = 1
        self._numbers = itertools.count(1)

    def route(self, request: Request, version: str, parts: list[str], call: int) -> Response:
        """Answer `jobs/...` (parts are the path segments after `jobs`)."""
        if not parts or parts[0] not in ("query", "ingest"):
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        kind, rest = parts[0], parts[1:]
        if not rest:
            if request.method != "POST":
                raise ApiError(
                    405,
                    "METHOD_NOT_ALLOWED",
                    f"HTTP Method '{request.method}' not allowed. Allowed are POST",
                )
            return self._create(kind, request, version)
        job = self.jobs.get(rest[0])
        if job is None or job.kind != kind:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        action = rest[1] if len(rest) > 1 else ""
        if action == "" and request.method == "GET":
            return self._status(job)
        if action == "" and request.method == "PATCH":
            return self._set_state(job, request, call)
        if kind == "query" and action == "results" and request.method == "GET":
            return self._results(job, request)
        if kind == "ingest" and action == "batches" and request.method == "PUT":
            return self._upload(job, request)
        if kind == "ingest" and request.method == "GET":
            if action == "successfulResults":
                return _csv(job, ["sf__Id", "sf__Created", *job.header], job.succeeded)
            if action == "failedResults":
                return _csv(job, ["sf__Id", "sf__Error", *job.header], job.failed)
            if action == "unprocessedrecords":
                unprocessed = job.rows if job.state != "JobComplete" else []
                return _csv(job, job.header, unprocessed)
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")

    def _create(self, kind: str, request: Request, version: str) -> Response:
        spec = request.json() or {}
        if not isinstance(spec, dict):
            raise ApiError(400, "JSON_PARSER_ERROR", "the job definition must be a JSON object")
        delimiter = _DELIMITERS.get(str(spec.get("columnDelimiter", "COMMA")))
        line_ending = _LINE_ENDINGS.get(str(spec.get("lineEnding", "LF")))
        if delimiter is None or line_ending is None:
            raise ApiError(400, "INVALIDJOB", "unsupported columnDelimiter or lineEnding")
        # What both kinds of job share; a query job's rows are read at once, an ingest job opens.
        new_job = partial(
            Job,
            id=make_id("750", next(self._numbers)),
            kind=kind,
            api_version=version,
            delimiter=delimiter,
            line_ending=line_ending,
            created=dt.datetime.now(dt.UTC),
            polls_left=self.polls_before_complete,
        )
        if kind == "query":
            operation = str(spec.get("operation", ""))
            if operation not in ("query", "queryAll"):
                raise ApiError(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
            query = parse_soql(str(spec.get("query", "")))
            _check_bulk_query(query, str(spec.get("query", "")))
            job = new_job(
                object_type=query.object_type, operation=operation, state="UploadComplete"
            )
            job.header = [f.name for f in query.fields]
            for record in query.run(self.store):
                job.rows.append([_cell(record[f.name]) for f in query.fields])
        else:
            object_type = Store.object_name(str(spec.get("object", "")))
            if object_type is None:
                raise ApiError(
                    400, "INVALIDJOB", f"InvalidJob : Invalid object: {spec.get('object')}"
                )
            if spec.get("operation") != "update":
                raise ApiError(
                    400,
                    "FEATURENOTENABLED",
                    f"the sandbox's Bulk API 2.0 ingest supports operation 'update' only, "
                    f"not {spec.get('operation')!r}",
                )
            job = new_job(object_type=object_type, operation="update", state="Open")
        self.jobs[job.id] = job
        return Response(200, job.info())

    def _status(self, job: Job) -> Response:
        if job.state in ("UploadComplete", "InProgress"):
            if job.polls_left > 0:
                job.polls_left -= 1
                job.state = "InProgress"
            else:
                job.state = job.final_state
        return Response(200, job.info())

    def _set_state(self, job: Job, request: Request, call: int) -> Response:
        wanted = (request.json() or {}).get("state")
        if wanted == "Aborted" and job.state in ("Open", "UploadComplete", "InProgress"):
            job.state = "Aborted"
        elif wanted == "UploadComplete" and job.kind == "ingest" and job.state == "Open":
            job.state = "UploadComplete"
            self._process(job, call)
        else:
            raise ApiError(400, "INVALIDJOBSTATE", f"cannot change a {job.state} job to {wanted}")
        return Response(200, job.info())

    def _upload(self, job: Job, request: Request) -> Response:
        if job.state != "Open":
            raise ApiError(409, "INVALIDJOBSTATE", "Job is not open for uploads")
        job.data.append(request.body.decode("utf-8"))
        return Response(201, None)

    def _process(self, job: Job, call: int) -> None:
        """Run an uploaded ingest job now; results become visible once polled to completion."""
        reader = csv.reader(io.StringIO("".join(job.data)), delimiter=job.delimiter)
        table = [row for row in reader if row]
        if not table:
            job.header, job.rows = [], []
            return
        job.header, job.rows = table[0], table[1:]
        specs: list[FieldSpec] = []
        for name in job.header:
            spec = Store.field(job.object_type, name)
            if spec is None:
                job.final_state = "Failed"
                job.error_message = f"InvalidBatch : Field name not found : {name}"
                return
            specs.append(spec)
        id_column = next((i for i, spec in enumerate(specs) if spec.name == "Id"), None)
        if id_column is None:
            job.final_state = "Failed"
            job.error_message = "InvalidBatch : Id not specified in an update call"
            return
        updates = []
        for row in job.rows:
            values = {
                spec: (None if cell == NULL_MARKER else cell)
                for spec, cell in zip(specs, row, strict=False)
                if spec.name != "Id" and cell != ""
            }
            updates.append((row[id_column], values))
        for row, (record_id, _), error in zip(
            job.rows, updates, self.write_rows(job.object_type, updates, call), strict=True
        ):
            if error is None:
                job.succeeded.append([record_id, "false", *row])
            else:
                text = f"{error['statusCode']}:{error['message']}:{','.join(error['fields'])} --"
                job.failed.append([record_id, text, *row])

    def _results(self, job: Job, request: Request) -> Response:
        if job.state != "JobComplete":
            raise ApiError(400, "INVALIDJOBSTATE", f"the job is {job.state}, not JobComplete")
        start = 0
        locator = request.param("locator")
        if locator:
            try:
                start = int(base64.b64decode(locator + "=" * (-len(locator) % 4)).decode())
            except ValueError:
                raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid locator") from None
        try:
            size = int(request.param("maxRecords") or _RESULT_CAP)
        except ValueError:
            raise ApiError(400, "INVALIDPARAMETER", "maxRecords must be a number") from None
        if size <= 0:
            raise ApiError(400, "INVALIDPARAMETER", "maxRecords must be greater than 0")
        page = job.rows[start : start + size]
        end = start + len(page)
        response = _csv(job, job.header, page)
        response.headers["Sforce-NumberOfRecords"] = str(len(page))
        # Salesforce locators are the next offset, base64-encoded without padding ("MjAwMA").
        response.headers["Sforce-Locator"] = (
            base64.b64encode(str(end).encode()).decode().rstrip("=")
            if end < len(job.rows)
            else "null"
        )
        return response


def _check_bulk_query(query: Query, text: str) -> None:
    # Bulk API 2.0 refuses aggregates, ORDER BY and LIMIT (they disable PK chunking).
    if query.count or query.order is not None or query.limit is not None:
        raise ApiError(
            400, "API_ERROR", f"Bulk API 2.0 does not support this query: {text.strip()[:80]}"
        )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    return str(value)


def _csv(job: Job, header: list[str], rows: list[list[str]]) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(
        buffer, delimiter=job.delimiter, lineterminator=job.line_ending, quoting=csv.QUOTE_ALL
    )
    writer.writerow(header)
    writer.writerows(rows)
    return Response(200, buffer.getvalue(), content_type="text/csv")
