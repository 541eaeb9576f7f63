"""Writing one contact field through an Eloqua Bulk API 2.0 import (definition, data, sync).

One batch: take an idle import definition (or create one: `{{Contact.Id}}` identifies the row,
`{{Contact.Field(X)}}` takes the value, `isSyncTriggeredOnImport` makes the data upload start the
sync), post the rows, poll `/syncs/{id}` until it ends, and read `/syncs/{id}/rejects` when it ends
in `warning`. The least a batch costs is two calls (upload, one status poll), three on a
definition's first use; rejects add one call per 1,000 rejected rows.

A definition is reused only after its sync ended well: Oracle warns that syncing a definition that
is still in an active sync can fail ("Bulk API Best Practices"), and data left staged by a failed
attempt must not be synced by the next one. After any failure its definition is dropped (Eloqua
deletes it after `autoDeleteDuration`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.base import Update, WriteResult
from connectors.eloqua_http import EloquaHttp, json_object
from connectors.errors import FatalError, RetryableError

log = logging.getLogger(__name__)

BULK = "/api/bulk/2.0"
# Oracle: "a hard limit of 32 MB per request when posting data to an import sync's staging
# area"; larger uploads are split, keeping a margin for the JSON around the rows.
UPLOAD_LIMIT_BYTES = 31 * 1024 * 1024
REJECTS_PAGE = 1000
# The statement that identifies a row: the contact's id (a row for a deleted contact is rejected).
_ID_NAME = "ContactId"
_VALUE_NAME = "Value"
# A definition is reused for this long; Eloqua deletes it a day after creation.
_DEFINITION_REUSE_SECONDS = 12 * 3600.0
_AUTO_DELETE = "P1D"
# Staged rows a failed sync left behind are dropped after an hour (the minimum Oracle allows).
_DATA_RETENTION = "PT1H"
_FINISHED = ("success", "warning", "error")
# The longest wait between two status polls, however long the sync takes.
_POLL_CAP_SECONDS = 10.0
# "Validation errors found on sync ... Sync will NOT proceed": the definition itself is wrong.
_VALIDATION_FAILED = "ELQ-00122"


@dataclass(frozen=True)
class _Definition:
    uri: str
    field: str
    created: float


class BulkImporter:
    """Writes batches of one field's values through contact import definitions."""

    def __init__(
        self,
        http: EloquaHttp,
        *,
        poll_interval: float,
        sync_timeout: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._http = http
        self._poll_interval = poll_interval
        self._sync_timeout = sync_timeout
        self._sleep = sleep
        self._lock = threading.Lock()
        self._idle: list[_Definition] = []

    def write(self, field: str, updates: Sequence[Update]) -> list[WriteResult]:
        """Import `updates` into `field`; one result per update, in order."""
        definition = self._take(field)
        outcomes: dict[str, tuple[str, str]] = {}
        try:
            for rows in _chunks([{_ID_NAME: u.record_id, _VALUE_NAME: u.value} for u in updates]):
                sync_uri = self._upload(definition, rows)
                status = self._wait(sync_uri)
                if status == "error":
                    raise self._sync_failed(sync_uri)
                if status == "warning":
                    outcomes.update(self._rejects(sync_uri))
        except BaseException:
            log.info("eloqua import definition %s dropped after a failure", definition.uri)
            raise
        self._give_back(definition)
        return [
            WriteResult(u.record_id, False, *outcomes[u.record_id])
            if u.record_id in outcomes
            else WriteResult(u.record_id, True)
            for u in updates
        ]

    # ---- definitions ------------------------------------------------------------------------

    def _take(self, field: str) -> _Definition:
        with self._lock:
            now = time.monotonic()
            self._idle = [d for d in self._idle if now - d.created < _DEFINITION_REUSE_SECONDS]
            for definition in self._idle:
                if definition.field == field:
                    self._idle.remove(definition)
                    return definition
        return self._create(field)

    def _give_back(self, definition: _Definition) -> None:
        with self._lock:
            self._idle.append(definition)

    def _create(self, field: str) -> _Definition:
        statement = f"{{{{Contact.Field({field})}}}}"
        body = {
            "name": f"segsync {field} {uuid.uuid4().hex[:8]}",
            "fields": {_ID_NAME: "{{Contact.Id}}", _VALUE_NAME: statement},
            "identifierFieldName": _ID_NAME,
            "isSyncTriggeredOnImport": True,
            # "always": an empty value clears the field (ifNewIsNotNull would keep stale names).
            "updateRule": "always",
            "autoDeleteDuration": _AUTO_DELETE,
            "dataRetentionDuration": _DATA_RETENTION,
        }
        response = self._http.call(
            "POST",
            f"{BULK}/contacts/imports",
            what=f"creating an import definition for {field}",
            body=json.dumps(body).encode(),
            keep=(400,),
        )
        answer = json_object(response)
        if response.status_code == 400:
            raise _definition_refused(answer, field, statement, self._http.clean)
        uri = answer.get("uri")
        if not isinstance(uri, str) or not uri.startswith("/"):
            raise FatalError("eloqua created an import definition without a uri", code="NO_URI")
        return _Definition(uri, field, time.monotonic())

    # ---- one upload and its sync ------------------------------------------------------------

    def _upload(self, definition: _Definition, rows: bytes) -> str:
        """Post the rows (which starts the sync); the sync's uri."""
        response = self._http.call(
            "POST", f"{BULK}{definition.uri}/data", what="uploading import data", body=rows
        )
        if response.status_code == 204:
            # The definition did not start the sync itself: start it.
            sync = json.dumps({"syncedInstanceUri": definition.uri}).encode()
            response = self._http.call("POST", f"{BULK}/syncs", what="starting a sync", body=sync)
        uri = json_object(response).get("uri")
        if not isinstance(uri, str) or not uri.startswith("/syncs/"):
            raise RetryableError("eloqua started a sync without a uri", code="NO_SYNC_URI")
        return uri

    def _wait(self, sync_uri: str) -> str:
        """Poll the sync until it ends (short waits growing to a cap); its final status."""
        deadline = time.monotonic() + self._sync_timeout
        wait = self._poll_interval
        while True:
            self._sleep(wait)
            answer = json_object(
                self._http.call("GET", f"{BULK}{sync_uri}", what="checking the import sync")
            )
            status = str(answer.get("status") or "")
            if status in _FINISHED:
                return status
            if time.monotonic() + wait > deadline:
                raise RetryableError(
                    f"eloqua import sync {sync_uri} still {status or 'unknown'} after "
                    f"{self._sync_timeout:g} s",
                    code="SYNC_TIMEOUT",
                )
            wait = min(wait * 1.5, max(_POLL_CAP_SECONDS, self._poll_interval))

    def _rejects(self, sync_uri: str) -> dict[str, tuple[str, str]]:
        """Rejected contact id -> (Eloqua status code, message), all pages."""
        rejected: dict[str, tuple[str, str]] = {}
        offset = 0
        while True:
            answer = json_object(
                self._http.call(
                    "GET",
                    f"{BULK}{sync_uri}/rejects",
                    what="reading the import's rejected rows",
                    params={"limit": REJECTS_PAGE, "offset": offset},
                )
            )
            items = [i for i in answer.get("items") or [] if isinstance(i, dict)]
            for item in items:
                values = item.get("fieldValues") or {}
                record_id = str(values.get(_ID_NAME) or "")
                if not record_id:
                    log.warning("eloqua rejected a row of %s without its contact id", sync_uri)
                    continue
                code = str(item.get("statusCode") or "REJECTED")
                message = self._http.clean(str(item.get("message") or "row rejected"))
                rejected[record_id] = (code, message)
            offset += len(items)
            if not items or not answer.get("hasMore"):
                return rejected

    def _sync_failed(self, sync_uri: str) -> FatalError | RetryableError:
        """The reason an import sync ended in `error`, from its logs."""
        answer = json_object(
            self._http.call(
                "GET",
                f"{BULK}{sync_uri}/logs",
                what="reading the failed sync's logs",
                params={"limit": REJECTS_PAGE},
            )
        )
        logs = [i for i in answer.get("items") or [] if isinstance(i, dict)]
        worst = next((i for i in logs if i.get("severity") == "error"), logs[-1] if logs else {})
        code = str(worst.get("statusCode") or "SYNC_ERROR")
        message = self._http.clean(str(worst.get("message") or "no log entry"))
        text = f"eloqua import sync {sync_uri} failed ({code}): {message}"
        if code == _VALIDATION_FAILED:
            return FatalError(text, code=code)
        return RetryableError(text, code=code)


def _chunks(rows: list[dict[str, Any]]) -> list[bytes]:
    """The rows as JSON arrays of at most UPLOAD_LIMIT_BYTES each (one row never splits)."""
    chunks: list[bytes] = []
    current: list[bytes] = []
    size = 2
    for row in rows:
        encoded = json.dumps(row, ensure_ascii=False).encode()
        if current and size + len(encoded) + 1 > UPLOAD_LIMIT_BYTES:
            chunks.append(b"[" + b",".join(current) + b"]")
            current, size = [], 2
        current.append(encoded)
        size += len(encoded) + 1
    if current:
        chunks.append(b"[" + b",".join(current) + b"]")
    return chunks


def _definition_refused(
    answer: dict[str, Any], field: str, statement: str, clean: Callable[[str], str]
) -> FatalError:
    """A 400 for the definition: an unknown or read-only field, or something else about it."""
    failures = [f for f in answer.get("failures") or [] if isinstance(f, dict)]
    for failure in failures:
        if str(failure.get("value") or "") == statement:
            constraint = str(failure.get("constraint") or "")
            if "read-only" in constraint.lower() or "read only" in constraint.lower():
                return FatalError(f"field {field} is read-only on contacts", code="READ_ONLY")
            return FatalError(f"field {field} not found on contacts", code="UNKNOWN_FIELD")
    reasons = "; ".join(f"{f.get('field')}: {f.get('constraint')}" for f in failures)
    return FatalError(
        f"eloqua refused the import definition for {field}: {clean(reasons) or 'no reason'}",
        code="DEFINITION_REFUSED",
    )
