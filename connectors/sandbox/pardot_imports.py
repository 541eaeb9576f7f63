"""The Pardot emulator's Import API (`/api/v5/imports`): create an import with its first CSV
batch or none, add batches, submit it, poll it until Pardot has applied every row, and read the
rows it refused as CSV (`errorsRef`).

`PardotImports` is the base of `PardotEmulator` (connectors/sandbox/pardot.py), which holds the
prospects and the field rules the rows are checked and written with. It also defines the error
answer (`ApiError`) both halves raise.
"""

from __future__ import annotations

import csv
import datetime as dt
import email.policy
import io
import json
from abc import abstractmethod
from dataclasses import dataclass, field
from email.parser import BytesParser
from typing import Any

from connectors.sandbox.server import Emulator, Request, Response

API_PREFIX = "/api/v5/"
IMPORT_FILE_MAX_BYTES = 10 * 1024 * 1024
IMPORT_BATCHES_MAX = 10
# The column Pardot adds to an import's error CSV, after the batch's own columns.
ERROR_COLUMN = "Error"
# What GET /imports/{id}?fields=... may ask for.
IMPORT_FIELDS = (
    "id",
    "status",
    "operation",
    "object",
    "isExpired",
    "createdCount",
    "updatedCount",
    "errorCount",
    "errorsRef",
    "createdAt",
    "updatedAt",
)
_MATCH_COLUMNS = ("matchId", "matchEmail", "matchSalesforceId")


class ApiError(Exception):
    """An answer with Pardot's error body: HTTP status, numeric code and message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message

    def response(self) -> Response:
        """The error as Pardot sends it."""
        return Response(self.status, {"code": self.code, "message": self.message})


def stamp(moment: dt.datetime | None = None) -> str:
    """A moment (now by default) as Pardot writes it: ISO 8601 to the second, with its offset."""
    return (moment or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")


def requested_fields(request: Request, known: tuple[str, ...]) -> list[str]:
    """The names in the request's required `fields` parameter, each one of `known` (else 400)."""
    text = request.param("fields")
    if not text:
        raise ApiError(400, 13, "One or more required parameters are missing: fields")
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        message = f"One or more of the specified fields are invalid: {', '.join(unknown)}"
        raise ApiError(400, 180, message)
    return names


@dataclass
class PardotImport:
    """One import: its options, the rows of its batches until processed, and its counts."""

    id: int
    status: str  # Open, Waiting, Processing, Complete
    fields: dict[str, dict[str, bool]]
    create_on_no_match: bool
    restore_deleted: bool
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    batches: int = 0
    polls_left: int = 0
    created: int = 0
    updated: int = 0
    errors: list[list[str]] = field(default_factory=list)
    created_at: str = field(default_factory=stamp)
    updated_at: str = field(default_factory=stamp)


class PardotImports(Emulator):
    """Pardot's Import API over the prospects a subclass holds (see PardotEmulator)."""

    # Kept by the subclass: prospects by id, and the record failures armed for their next write.
    _prospects: dict[int, dict[str, Any]]
    _failing: dict[str, int]

    # Status reads of a submitted import that answer "Processing" before it completes.
    import_polls = 1
    import_batches_per_day = 1_000

    def _setup(self) -> None:
        self._import_batches_today = 0
        self._imports: dict[int, PardotImport] = {}
        self._next_import = 1

    @abstractmethod
    def add_records(self, object_type: str, rows: list[dict[str, Any]]) -> list[str]:
        """Create records of `object_type`; returns their ids."""

    @abstractmethod
    def _writable(self, name: str) -> bool:
        """Whether a prospect field may be written."""

    @abstractmethod
    def _invalid_value(self, name: str, value: Any) -> str | None:
        """Why `value` cannot go into field `name`, or None."""

    @abstractmethod
    def _arm_failures(self) -> None:
        """Take the pending record_failure faults."""

    def _imports_route(self, request: Request, rest: list[str], call: int) -> Response:
        method = request.method
        if rest == [""] or not rest:
            if method == "POST":
                return self._create_import(request)
        elif rest[0].isdigit():
            found = self._import(int(rest[0]))
            if len(rest) == 1 and method == "GET":
                return self._read_import(request, found, call)
            if len(rest) == 1 and method == "PATCH":
                return self._submit_import(request, found)
            if rest[1:] == ["batches"] and method == "POST":
                return self._add_batch(request, found)
            if rest[1:] == ["errors"] and method == "GET":
                return self._import_errors(found)
        raise ApiError(405, 60, f"Invalid HTTP request method {method} for {request.path}")

    def _create_import(self, request: Request) -> Response:
        """POST /imports: an `input` JSON part (and optionally the first `file`)."""
        parts = _multipart(request)
        if parts is None:
            raw, file = request.body, None
        else:
            raw, file = parts.get("input", b""), parts.get("file")
        try:
            spec = json.loads(raw) if raw else {}
        except ValueError:
            spec = None
        if not isinstance(spec, dict):
            raise ApiError(400, 166, "The input is not in the required format")
        if spec.get("operation") != "Upsert" or spec.get("object", "Prospect") != "Prospect":
            raise ApiError(400, 154, "Invalid property in request: operation must be Upsert")
        state = str(spec.get("status", spec.get("state", "Open"))).lower()
        if state not in ("open", "ready"):
            raise ApiError(400, 154, "Requested state must be open or ready")
        options = spec.get("fields") or {}
        if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
            raise ApiError(400, 165, "column options is invalid")
        if state == "ready" and file is None:
            raise ApiError(400, 162, "No file was specified or uploaded")
        found = PardotImport(
            id=0,
            status="Open",
            fields={name: dict(value) for name, value in options.items()},
            create_on_no_match=bool(spec.get("createOnNoMatch", False)),
            restore_deleted=bool(spec.get("restoreDeleted", False)),
            header=[],
        )
        if file is not None:
            self._accept_file(found, file)
        with self.lock:
            found.id = self._next_import
            self._next_import += 1
            self._imports[found.id] = found
            if state == "ready":
                self._ready(found)
            return Response(201, self._render_import(found, list(IMPORT_FIELDS)))

    def _add_batch(self, request: Request, found: PardotImport) -> Response:
        file = (_multipart(request) or {}).get("file")
        if file is None:
            raise ApiError(400, 162, "No file was specified or uploaded")
        with self.lock:
            if found.status != "Open":
                message = "The current state of the import does not allow the operation"
                raise ApiError(400, 161, message)
        self._accept_file(found, file)
        with self.lock:
            return Response(201, self._render_import(found, list(IMPORT_FIELDS)))

    def _submit_import(self, request: Request, found: PardotImport) -> Response:
        body = request.json_or_none()
        state = str((body or {}).get("status", (body or {}).get("state", ""))).lower()
        if state != "ready":
            raise ApiError(400, 154, 'Invalid property in request: state must be "Ready"')
        with self.lock:
            if found.status != "Open":
                raise ApiError(400, 155, 'Can\'t update. Import must be in "Open" state.')
            if not found.batches:
                raise ApiError(400, 156, "Can't start processing. Import has no associated data.")
            self._ready(found)
            return Response(body=self._render_import(found, list(IMPORT_FIELDS)))

    def _read_import(self, request: Request, found: PardotImport, call: int) -> Response:
        names = requested_fields(request, IMPORT_FIELDS)
        with self.lock:
            if found.status in ("Waiting", "Processing"):
                if found.polls_left > 0:
                    found.polls_left -= 1
                    found.status = "Processing"
                else:
                    self._process(found, call)
            return Response(body=self._render_import(found, names))

    def _import_errors(self, found: PardotImport) -> Response:
        with self.lock:
            if found.status != "Complete":
                message = "The current state of the import does not allow the operation"
                raise ApiError(400, 161, message)
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\r\n")
            writer.writerow([*found.header, ERROR_COLUMN])
            writer.writerows(found.errors)
        return Response(body=out.getvalue(), content_type="text/csv")

    def _import(self, import_id: int) -> PardotImport:
        with self.lock:
            found = self._imports.get(import_id)
        if found is None:
            raise ApiError(404, 109, "The requested record was not found.")
        return found

    def _render_import(self, found: PardotImport, names: list[str]) -> dict[str, Any]:
        errors_ref = (
            f"{self.base_url}{API_PREFIX}imports/{found.id}/errors" if found.errors else None
        )
        rendered = {
            "id": found.id,
            "status": found.status,
            "operation": "Upsert",
            "object": "Prospect",
            "isExpired": False,
            "createdCount": found.created,
            "updatedCount": found.updated,
            "errorCount": len(found.errors),
            "errorsRef": errors_ref,
            "createdAt": found.created_at,
            "updatedAt": found.updated_at,
        }
        return {"id": found.id} | {name: rendered[name] for name in names}

    def _accept_file(self, found: PardotImport, file: bytes) -> None:
        """Check one CSV batch like Pardot does before taking it."""
        if len(file) > IMPORT_FILE_MAX_BYTES:
            raise ApiError(413, 204, "File size exceeds the max post size")
        try:
            rows = list(csv.reader(io.StringIO(file.decode("utf-8-sig"))))
        except (UnicodeDecodeError, csv.Error):
            rows = []
        if len(rows) < 2:
            raise ApiError(400, 159, "The file is not in a valid CSV format")
        header = [name.strip() for name in rows[0]]
        if len({name.lower() for name in header}) != len(header):
            raise ApiError(400, 159, "CSV header contains the same field multiple times")
        if any(len(row) != len(header) for row in rows[1:]):
            raise ApiError(400, 159, "The file is not in a valid CSV format")
        matches = [name for name in header if name in _MATCH_COLUMNS]
        if len(matches) > 1:
            message = "Only one of 'matchId', 'matchEmail', and 'matchSalesforceId' may appear"
            raise ApiError(400, 159, message + " in import column headers.")
        invalid = [n for n in header if n not in _MATCH_COLUMNS and not self._writable(n)]
        if invalid:
            message = f"One or more of the specified fields are invalid: {', '.join(invalid)}"
            raise ApiError(400, 130, message)
        if found.create_on_no_match or not matches:
            missing = [n for n in ("email", "campaignId") if n not in header]
            if missing:
                raise ApiError(400, 13, f"Missing required columns: {', '.join(missing)}")
        stray = sorted(set(found.fields) - set(header))
        if stray:
            raise ApiError(400, 227, f"Mismatched CSV headers and field options: {stray}")
        with self.lock:
            if found.batches and header != found.header:
                raise ApiError(400, 159, "Every batch must have the first batch's columns")
            if found.batches >= IMPORT_BATCHES_MAX:
                raise ApiError(400, 160, "The limit of batches per import has been reached")
            if self._import_batches_today >= self.import_batches_per_day:
                raise ApiError(400, 164, "Daily limit of import batches has been reached")
            self._import_batches_today += 1
            found.header = header
            found.rows.extend(rows[1:])
            found.batches += 1
            found.updated_at = stamp()

    def _ready(self, found: PardotImport) -> None:
        found.status = "Waiting"
        found.polls_left = self.import_polls
        found.updated_at = stamp()

    def _process(self, found: PardotImport, call: int) -> None:
        """Apply every row: blanks overwrite only fields whose nullOverwrite is true."""
        self._arm_failures()
        match = next((name for name in found.header if name in _MATCH_COLUMNS), None)
        for row in found.rows:
            values = dict(zip(found.header, row, strict=True))
            problem = self._import_row(found, match, values, call)
            if problem:
                found.errors.append([*row, problem])
        found.rows = []
        found.status = "Complete"
        found.updated_at = stamp()

    def _import_row(
        self, found: PardotImport, match: str | None, values: dict[str, str], call: int
    ) -> str | None:
        key = values.pop(match, "") if match else ""
        prospect = self._match(match, key) if key else None
        if prospect is not None and prospect["isDeleted"] and not found.restore_deleted:
            return f"The prospect matching {match} {key} is in the recycle bin"
        if prospect is None and not found.create_on_no_match:
            return f"No prospect matches {match} {key}" if key else f"The {match} value is empty"
        for name, value in values.items():
            problem = self._invalid_value(name, value if name != "campaignId" else None)
            if problem:
                return problem
        if prospect is not None:
            code = self._failing.pop(str(prospect["id"]), None)
            if code is not None:
                return f"Unable to save the prospect ({code})"
        if prospect is None:
            [new_id] = self.add_records("prospects", [{}])
            prospect = self._prospects[int(new_id)]
            found.created += 1
        else:
            found.updated += 1
        prospect["isDeleted"] = False
        for name, value in values.items():
            option = found.fields.get(name, {})
            if value == "" and not option.get("nullOverwrite", False):
                continue  # Pardot's default: a blank cell leaves the field as it is
            if value != "" and not option.get("overwrite", True) and prospect[name]:
                continue
            stored: Any = (int(value) if name == "campaignId" else value) if value else None
            prospect[name] = stored
            self.log_write("prospects", str(prospect["id"]), name, stored, call)
        prospect["updatedAt"] = stamp()
        return None

    def _match(self, match: str | None, key: str) -> dict[str, Any] | None:
        if match == "matchId":
            return self._prospects.get(int(key)) if key.isdigit() else None
        column = "email" if match == "matchEmail" else "salesforceId"
        found = [p for p in self._prospects.values() if p[column] == key]
        return max(found, key=lambda p: p["updatedAt"]) if found else None


def _multipart(request: Request) -> dict[str, bytes] | None:
    """The parts of a multipart/form-data body by name (None when the body is not multipart)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        return None
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
    parts: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            parts[name] = payload
    return parts
