"""The Eloqua emulator's Bulk API 2.0 contact imports: definitions, staged rows, syncs that
apply them (with their logs and rejected rows), and its `{"failures": [...]}` validation errors.

`EloquaBulk` is the base of `EloquaEmulator` (connectors/sandbox/eloqua.py), which holds the
contacts these imports write.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connectors.sandbox.eloqua_model import (
    PAGE_MAX,
    STATEMENT,
    Contact,
    Field,
    field_named,
    iso,
    now_stamp,
)
from connectors.sandbox.server import Emulator, Request, Response

BULK = "/api/bulk/2.0"
# Oracle's import definition limit ("Bulk API limits": at most 100 fields).
IMPORT_FIELDS_MAX = 100
_UPDATE_RULES = ("always", "ifNewIsNotNull", "ifExistingIsNull", "useFieldRule")


@dataclass
class _Import:
    id: int
    body: dict[str, Any]
    staged: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Sync:
    id: int
    import_id: int
    rows: list[dict[str, Any]]
    created_at: str
    ready_at: float
    status: str = "pending"
    started_at: str | None = None
    ended_at: str | None = None
    logs: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)


def _failure(status: int, field_name: str, constraint: str, value: Any = None) -> Response:
    """A Bulk API validation failure, as in `{"failures": [...]}`."""
    item: dict[str, Any] = {"field": field_name, "constraint": constraint}
    if value is not None:
        item["value"] = value
    return Response(status, {"failures": [item]})


class EloquaBulk(Emulator):
    """Bulk API 2.0 contact imports over the contacts a subclass holds (see EloquaEmulator)."""

    # Kept by the subclass: contacts by id, fields by lower-cased internal name, the API user.
    _contacts: dict[str, Contact]
    _fields: dict[str, Field]
    username: str

    # How long a sync stays pending/active before it is processed; 0 processes it at once.
    sync_seconds = 0.0

    def _setup(self) -> None:
        self._imports: dict[int, _Import] = {}
        self._syncs: dict[int, _Sync] = {}
        # Syncs not yet processed, so a request does not look through every sync ever made.
        self._unfinished: set[int] = set()
        self._next_import = 1180
        self._next_sync = 1190

    def _bulk_route(self, request: Request, path: str, call: int) -> Response | None:
        """Answer a Bulk API request (None: not one of its routes)."""
        method = request.method
        if method == "POST" and path == f"{BULK}/contacts/imports":
            return self._create_import(request)
        if match := re.fullmatch(rf"{BULK}/contacts/imports/(\d+)(/data)?", path):
            found = self._imports.get(int(match.group(1)))
            if found is None:
                return Response(404, {"failures": [{"constraint": "Not found."}]})
            if method == "GET" and not match.group(2):
                return Response(body=found.body)
            if method == "POST" and match.group(2):
                return self._post_data(request, found, call)
        if method == "POST" and path == f"{BULK}/syncs":
            return self._create_sync(request, call)
        if match := re.fullmatch(rf"{BULK}/syncs/(\d+)(/logs|/rejects)?", path):
            sync = self._syncs.get(int(match.group(1)))
            if sync is None or method != "GET":
                return Response(404, {"failures": [{"constraint": "Not found."}]})
            if match.group(2) is None:
                return Response(body=self._render_sync(sync))
            items = sync.logs if match.group(2) == "/logs" else sync.rejects
            return self._page_items(request, items)
        return None

    def _create_import(self, request: Request) -> Response:
        body = request.json_or_none()
        if not isinstance(body, dict):
            return _failure(400, "body", "Must be a JSON object.")
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            return _failure(
                400,
                "name",
                "Must be a string value, at least 1 character and at most 100 characters long.",
                name,
            )
        fields = body.get("fields")
        if not isinstance(fields, dict) or not 1 <= len(fields) <= IMPORT_FIELDS_MAX:
            return _failure(
                400, "fields", f"Must contain between 1 and {IMPORT_FIELDS_MAX} fields."
            )
        for statement in fields.values():
            match = STATEMENT.match(str(statement))
            internal = match.group(1) if match else None
            known = field_named(internal) if internal else None
            if match is None or (internal is not None and known is None):
                return _failure(
                    400,
                    "fields",
                    "Must be a valid Eloqua markup statement for an existing contact field.",
                    statement,
                )
            if known is not None and known.read_only:
                return _failure(
                    400, "fields", "The field is read-only and cannot be imported.", statement
                )
        identifier = body.get("identifierFieldName")
        if identifier not in fields:
            return _failure(
                400,
                "identifierFieldName",
                f"{identifier} must be contained within Fields, if specified.",
                identifier,
            )
        rule = body.get("updateRule", "always")
        if rule not in _UPDATE_RULES:
            return _failure(400, "updateRule", f"Must be one of {', '.join(_UPDATE_RULES)}.", rule)
        with self.lock:
            number = self._next_import
            self._next_import += 1
            stamp = iso()
            stored = {
                "name": name,
                "fields": dict(fields),
                "identifierFieldName": identifier,
                "isSyncTriggeredOnImport": bool(body.get("isSyncTriggeredOnImport", False)),
                "isUpdatingMultipleMatchedRecords": False,
                "updateRule": rule,
                "dataRetentionDuration": body.get("dataRetentionDuration", "P7D"),
                "uri": f"/contacts/imports/{number}",
                "createdBy": self.username,
                "createdAt": stamp,
                "updatedBy": self.username,
                "updatedAt": stamp,
                "kbUsed": 0,
            }
            if "autoDeleteDuration" in body:
                stored["autoDeleteDuration"] = body["autoDeleteDuration"]
            self._imports[number] = _Import(number, stored)
        return Response(201, stored)

    def _post_data(self, request: Request, found: _Import, call: int) -> Response:
        rows = request.json_or_none()
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            return _failure(400, "data", "Must be a JSON array of objects.")
        with self.lock:
            if self._busy(found.id):
                return _failure(
                    409,
                    "uri",
                    "There was a conflict: a sync of this definition is in progress.",
                    found.body["uri"],
                )
            found.staged.extend(rows)
            if not found.body["isSyncTriggeredOnImport"]:
                return Response(204)
            sync = self._start_sync(found)
        self._settle(call)
        return Response(201, self._render_sync(sync, pending=True))

    def _create_sync(self, request: Request, call: int) -> Response:
        body = request.json_or_none()
        uri = body.get("syncedInstanceUri") if isinstance(body, dict) else None
        match = re.fullmatch(r"/contacts/imports/(\d+)", str(uri or ""), re.IGNORECASE)
        with self.lock:
            found = self._imports.get(int(match.group(1))) if match else None
            if found is None:
                return _failure(
                    400, "syncedInstanceUri", "Must reference an existing definition.", uri
                )
            if self._busy(found.id):
                return _failure(
                    409,
                    "syncedInstanceUri",
                    "There was a conflict: a sync of this definition is in progress.",
                    uri,
                )
            sync = self._start_sync(found)
        self._settle(call)
        return Response(201, self._render_sync(sync, pending=True))

    def _busy(self, import_id: int) -> bool:
        return any(self._syncs[n].import_id == import_id for n in self._unfinished)

    def _start_sync(self, found: _Import) -> _Sync:
        number = self._next_sync
        self._next_sync += 1
        sync = _Sync(number, found.id, found.staged, iso(), time.monotonic() + self.sync_seconds)
        found.staged = []
        self._syncs[number] = sync
        self._unfinished.add(number)
        return sync

    def _render_sync(self, sync: _Sync, pending: bool = False) -> dict[str, Any]:
        with self.lock:
            status = "pending" if pending else sync.status
            body: dict[str, Any] = {
                "syncedInstanceUri": f"/contacts/imports/{sync.import_id}",
                "status": status,
                "createdAt": sync.created_at,
                "createdBy": self.username,
                "uri": f"/syncs/{sync.id}",
            }
            if sync.started_at and not pending:
                body["syncStartedAt"] = sync.started_at
            if sync.ended_at and not pending:
                body["syncEndedAt"] = sync.ended_at
            return body

    def _page_items(self, request: Request, items: list[dict[str, Any]]) -> Response:
        limit_text, offset_text = request.param("limit") or "1000", request.param("offset") or "0"
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= PAGE_MAX:
            return _failure(400, "limit", "Must be an integer between 1 and 1000.", limit_text)
        if not offset_text.isdigit():
            return _failure(400, "offset", "Must be a positive integer.", offset_text)
        limit, offset = int(limit_text), int(offset_text)
        with self.lock:
            chosen = items[offset : offset + limit]
            body = {
                "totalResults": len(items),
                "limit": limit,
                "offset": offset,
                "count": len(chosen),
                "hasMore": offset + len(chosen) < len(items),
                "items": [dict(item) for item in chosen],
            }
        return Response(body=body)

    def _settle(self, call: int) -> None:
        """Process every sync whose time has come (a sync runs once, all its rows together)."""
        now = time.monotonic()
        with self.lock:
            for number in sorted(self._unfinished):
                sync = self._syncs[number]
                if now >= sync.ready_at:
                    self._unfinished.discard(number)
                    self._process(sync, call)
                elif sync.status == "pending":
                    sync.status, sync.started_at = "active", iso()

    def _process(self, sync: _Sync, call: int) -> None:
        definition = self._imports[sync.import_id].body
        sync.started_at = sync.started_at or iso()
        uri = f"/syncs/{sync.id}"
        if self.faults.take("sync_error") is not None:
            sync.status, sync.ended_at = "error", iso()
            sync.logs.append(
                self._log(
                    uri, "ELQ-00146", "The sync failed because of a temporary error.", 0, "error"
                )
            )
            return
        injected = self.faults.take("record_failure")
        failing = {str(i) for i in injected.params.get("record_ids", [])} if injected else set()
        failure_code = str(injected.params.get("code", "ELQ-00107")) if injected else ""
        fields: dict[str, str] = definition["fields"]
        identifier = definition["identifierFieldName"]
        find = self._finder(fields[identifier])
        updated = 0
        for index, row in enumerate(sync.rows, start=1):
            contact = find(str(row.get(identifier) or ""))
            reject: tuple[str, str, list[str]] | None
            if contact is None:
                reject = ("ELQ-00085", "Contact does not exist.", [identifier])
            elif contact.id in failing:
                reject = (failure_code, "There was an error processing the record (injected).", [])
            else:
                reject = self._apply(
                    contact, row, fields, identifier, definition["updateRule"], call
                )
            if reject is not None:
                code, message, invalid = reject
                sync.rejects.append(
                    {
                        "fieldValues": {key: "" if v is None else str(v) for key, v in row.items()},
                        "invalidFields": invalid,
                        "message": message,
                        "recordIndex": index,
                        "statusCode": code,
                    }
                )
            else:
                updated += 1
        sync.logs.append(self._log(uri, "ELQ-00001", "Total records processed.", len(sync.rows)))
        sync.logs.append(self._log(uri, "ELQ-00022", "Contacts updated.", updated))
        if sync.rejects:
            sync.logs.append(
                self._log(uri, "ELQ-00060", "Total rejected records.", len(sync.rejects), "warning")
            )
        warned = self.faults.take("sync_warning")
        if warned is not None:
            # Recorded real syncs often end `warning` with nothing rejected (issue 11): the
            # warning is a log entry only (by default Oracle's "ELQ-00026 Duplicate identifier.").
            code = str(warned.params.get("code", "ELQ-00026"))
            message = str(warned.params.get("message", "Duplicate identifier."))
            count = int(warned.params.get("count", 0))
            sync.logs.append(self._log(uri, code, message, count, "warning"))
        sync.status = "warning" if sync.rejects or warned is not None else "success"
        sync.logs.append(
            self._log(
                uri,
                "ELQ-00101",
                f"Sync processed for sync {sync.id}, resulting in {sync.status} status.",
                0,
            )
        )
        sync.ended_at = iso()

    def _finder(self, statement: str) -> Callable[[str], Contact | None]:
        """How rows name their contact: by id, or by a field's value (case-insensitive)."""
        match = STATEMENT.match(statement)
        if match is None or match.group(1) is None:
            return self._contacts.get
        internal = self._fields[match.group(1).lower()].internal_name
        index = {
            c.fields[internal].lower(): c for c in self._contacts.values() if internal in c.fields
        }
        return lambda key: index.get(key.lower())

    def _apply(
        self,
        contact: Contact,
        row: dict[str, Any],
        fields: dict[str, str],
        identifier: str,
        rule: str,
        call: int,
    ) -> tuple[str, str, list[str]] | None:
        """Write one row, or say why it is rejected: (statusCode, message, invalid fields)."""
        changes: dict[str, str] = {}
        for name, statement in fields.items():
            match = STATEMENT.match(statement)
            if name == identifier or match is None or match.group(1) is None or name not in row:
                continue
            known = self._fields[match.group(1).lower()]
            value = "" if row[name] is None else str(row[name])
            if known.max_length is not None and len(value) > known.max_length:
                message = (
                    f"Value for field {known.internal_name} is {len(value)} characters long; "
                    f"the limit is {known.max_length}."
                )
                return "ELQ-00144", message, [name]
            changes[known.internal_name] = value
        for internal, value in changes.items():
            current = contact.fields.get(internal)
            if (rule == "ifNewIsNotNull" and value == "") or (
                rule == "ifExistingIsNull" and current
            ):
                continue
            if value == "":
                contact.fields.pop(internal, None)
            else:
                contact.fields[internal] = value
            # Every row written moves the contact's C_DateModified (its REST `updatedAt`).
            contact.updated_at = now_stamp()
            self.log_write("contacts", contact.id, internal, value, call)
        return None

    @staticmethod
    def _log(
        uri: str, code: str, message: str, count: int, severity: str = "information"
    ) -> dict[str, Any]:
        return {
            "count": count,
            "createdAt": iso(),
            "message": message,
            "severity": severity,
            "statusCode": code,
            "syncUri": uri,
        }
