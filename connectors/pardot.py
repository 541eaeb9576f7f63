"""Pardot (Marketing Cloud Account Engagement) adapter: prospects through the v5 REST API.

Reads page through `GET /api/v5/objects/prospects` (1,000 a page, `nextPageUrl`); incremental
reads are the same query filtered on the prospect's `updatedAt` (see `_read_modified`). Pardot
v5 has no batch update: `write_batch` sends one `PATCH /objects/prospects/{id}` per record, so a
batch of n records costs n calls, each with its own outcome. Large sets go through the v5 Import
API instead (`write_bulk`, see `prefers_bulk`): one CSV of `matchId` and the field, a few calls
for any number of records. Every call carries a Salesforce OAuth access token and the
`Pardot-Business-Unit-Id` header; errors come as `{"code", "message"}`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import requests

from connectors.base import Connector, FieldInfo, Record, Update, WriteResult
from connectors.errors import (
    ConnectorError,
    DailyQuotaError,
    FatalError,
    RecordError,
    RetryableError,
)
from connectors.http import AccessToken, VendorHttp, json_object, redact, require_one_login

log = logging.getLogger(__name__)

PRODUCTION_URL = "https://pi.pardot.com"
DEMO_URL = "https://pi.demo.pardot.com"
TOKEN_URL = "https://login.salesforce.com/services/oauth2/token"
PAGE_SIZE = 1000
# Pardot's custom field object reports no length, so segsync assumes one per type: 255 for Text
# and Hidden (the length of Pardot's standard text fields), 65,535 for a Textarea. The sandbox
# enforces the same numbers; an orchestration's own max_length can only lower them.
TEXT_MAX_LENGTH = 255
TEXTAREA_MAX_LENGTH = 65_535
_MAX_LENGTHS = {"Text": TEXT_MAX_LENGTH, "Hidden": TEXT_MAX_LENGTH, "Textarea": TEXTAREA_MAX_LENGTH}
# The Import API takes at most 10 files ("batches") of at most 10 MB per import. A file is cut
# once it passes 9 MB, so the row that crosses the line still fits.
_IMPORT_FILE_BYTES = 9_000_000
_IMPORT_FILES = 10
_CUSTOM_SUFFIX = "__c"
# Request-level codes: try again (66 concurrency, 183 internal error, 214 timed out, 62 conflicting
# update, 202 minute limit, 210/211 page token expired or invalid: the read restarts).
_RETRYABLE_CODES = frozenset({66, 62, 183, 202, 210, 211, 214})
# Among them, "too many requests": the concurrent-call limit (66) and the minute limit (202).
_THROTTLING_CODES = frozenset({66, 202})
# The daily API allocation (122) and the daily number of import batches (164).
_DAILY_CODES = frozenset({122, 164})
# The request names a field the business unit does not have (or cannot write).
_FIELD_CODES = frozenset({180, 224})
# The header or business unit is wrong: no new token helps.
_BUSINESS_UNIT_CODES = frozenset({181, 182, 201})
_JSON = {"Accept": "application/json"}
_ONE_LOGIN = (
    "a pardot connection needs either access_token or client_id, client_secret and "
    "refresh_token (a Salesforce connected app with the pardot_api scope)"
)
# A v5 field name: it goes into `fields=` lists and CSV headers, where a comma would split it.
_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")


@dataclass(frozen=True)
class PardotConfig:
    """One Pardot business unit: an access token given outright, or Salesforce OAuth refresh.

    base_url is https://pi.pardot.com, or https://pi.demo.pardot.com for developer and demo
    orgs. More than import_threshold updates go through the Import API (`prefers_bulk`).
    """

    business_unit_id: str
    access_token: str | None = field(default=None, repr=False)
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    token_url: str = TOKEN_URL
    base_url: str = PRODUCTION_URL
    # CA file that verifies base_url and token_url (the sandbox's); None trusts the system CAs.
    ca_bundle: str | None = None
    timeout: float = 60.0
    import_threshold: int = 500
    import_poll_interval: float = 5.0
    import_timeout: float = 600.0

    def __post_init__(self) -> None:
        unit = self.business_unit_id.strip()
        if not unit.isalnum() or len(unit) not in (15, 18):
            raise FatalError(
                "pardot business_unit_id must be the 18-character id from Account Engagement "
                f"setup (it starts with 0Uv), got {self.business_unit_id!r}"
            )
        oauth = (self.client_id, self.client_secret, self.refresh_token)
        require_one_login(self.access_token, oauth, _ONE_LOGIN)
        for name in ("base_url", "token_url"):
            value = getattr(self, name)
            if urlsplit(value).scheme not in ("https", "http") or not urlsplit(value).netloc:
                raise FatalError(f"pardot {name} must be an https:// URL, got {value!r}")
        if self.timeout <= 0 or self.import_threshold < 0 or self.import_poll_interval < 0:
            raise FatalError("pardot timeout must be positive and import settings not negative")

    @property
    def oauth(self) -> bool:
        """True when access tokens come from the Salesforce refresh-token flow."""
        return not self.access_token


class _Answer:
    """A response read once: status, headers and the JSON body (or {})."""

    def __init__(self, response: requests.Response) -> None:
        self.status = response.status_code
        self.headers = response.headers
        self.content = response.content
        self.body = json_object(response.content)

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return 200 <= self.status < 300

    @property
    def code(self) -> int | None:
        """Pardot's numeric error code, when the body has one."""
        return _int(self.body.get("code"))


class PardotConnector(Connector):
    """The prospects of one Pardot business unit: PATCH per record, the Import API in bulk."""

    system = "pardot"
    objects = ("prospects",)
    reads_modified = True
    # Pardot's own batch size (its v3/v4 batch endpoints take 50 prospects, error 70); v5 writes
    # one record per call, so a batch is a unit of work and retry, not one request.
    batch_size = 50
    # One import (up to 10 CSV files) per planned batch for large runs; kept well inside a worker
    # task's time limit.
    bulk_batch_size = 5_000

    def __init__(self, config: PardotConfig) -> None:
        super().__init__()
        self._config = config
        self._base_url = config.base_url.rstrip("/")
        self._unit = config.business_unit_id.strip()
        self._token = AccessToken(self._renew if config.oauth else None, given=config.access_token)
        self._http = VendorHttp(
            self,
            ca_bundle=config.ca_bundle,
            timeout=config.timeout,
            on_answer=lambda response: self._note_usage(response.headers),
        )

    def __repr__(self) -> str:
        auth = "oauth" if self._config.oauth else "access_token"
        return f"PardotConnector(base_url={self._base_url!r}, auth={auth!r})"

    # ---- the interface ----------------------------------------------------------------------

    def check_credentials(self) -> None:
        """Get a token (OAuth) and read one prospect id with it."""
        self._api(
            "GET", "objects/prospects", "checking the credentials", {"fields": "id", "limit": 1}
        )

    def _describe_field(self, object_type: str, field: str) -> FieldInfo:
        """The custom field (API name ending in __c) as the custom-fields query reports it."""
        if not field.endswith(_CUSTOM_SUFFIX):
            raise FatalError(
                f"field {field} on {object_type} is a standard Pardot field; segsync writes a "
                f"custom field, named by its API name ending in {_CUSTOM_SUFFIX}"
            )
        params = {"fields": "id,name,fieldId,type,isRecordMultipleResponses", "limit": PAGE_SIZE}
        for spec in self._values("objects/custom-fields", params, f"describing {field}"):
            if f"{spec.get('fieldId')}{_CUSTOM_SUFFIX}".lower() != field.lower():
                continue
            kind = str(spec.get("type") or "")
            # A field that records multiple responses keeps every value written, so a write
            # adds a name instead of replacing the list.
            single = not spec.get("isRecordMultipleResponses")
            return FieldInfo(
                object_type=object_type,
                name=f"{spec['fieldId']}{_CUSTOM_SUFFIX}",
                type=kind,
                max_length=_MAX_LENGTHS.get(kind),
                writable=kind in _MAX_LENGTHS and single,
                label=spec.get("name"),
            )
        raise FatalError(f"field {field} not found on {object_type}")

    def _read_records(self, object_type: str, field: str) -> Iterator[Record]:
        """Every live prospect with the field, email, website and Salesforce account, lazily."""
        return self._records(field)

    def _read_modified(self, object_type: str, field: str, since: dt.datetime) -> Iterator[Record]:
        """The prospects updated after `since`, as _read_records reads them.

        Pardot stamps `updatedAt` to the second and its `updatedAtAfter` is strictly after: a
        change at 12:00:00.7 is stamped 12:00:00, so a read since 12:00:00.5 asks for
        `updatedAtAfterOrEqualTo` the second `since` falls in. A change in that same second
        before `since` is read once more, never a later one missed.
        """
        return self._records(field, {"updatedAtAfterOrEqualTo": _second(since)})

    def _read_values(
        self, object_type: str, field: str, record_ids: Sequence[str]
    ) -> dict[str, str | None]:
        """One id-range query (idGreaterThan/idLessThan) per run of ids less than a page apart:
        one call for a batch of neighbouring ids, where a read per id would cost a call per
        record. Deleted prospects are left out, as the query leaves them out."""
        given: dict[int, list[str]] = {}
        for record_id in record_ids:
            given.setdefault(_prospect_id(record_id), []).append(record_id)
        values: dict[str, str | None] = {}
        for low, high in _ranges(sorted(given)):
            params = {
                "fields": f"id,{field}",
                "idGreaterThan": low - 1,
                "idLessThan": high + 1,
                "orderBy": "id ASC",
                "limit": PAGE_SIZE,
            }
            answer = self._api("GET", "objects/prospects", f"reading {field}", params, field=field)
            for item in _list(answer.body.get("values")):
                for record_id in given.get(_int(item.get("id")) or 0, []):
                    values[record_id] = _text(item.get(field))
        return values

    def _write_batch(
        self, object_type: str, field: str, updates: Sequence[Update]
    ) -> list[WriteResult]:
        """One PATCH per record (v5 updates a single prospect per call), each its own result.

        A request-level failure (a limit, a 5xx, a token that cannot be renewed) raises after
        the records before it were written: the worker's retry reads the batch back first
        (`read_values`), so none of them is written twice.
        """
        results = []
        for update in updates:
            try:
                self._patch(field, update)
            except RecordError as refused:
                results.append(WriteResult.refused(update.record_id, refused))
            else:
                results.append(WriteResult(update.record_id, True))
        return results

    def _write_bulk(
        self, object_type: str, field: str, updates: Sequence[Update]
    ) -> list[WriteResult]:
        """Any number of updates through Import API imports of up to 10 CSV files each."""
        results: dict[str, WriteResult] = {}
        for files in _chunks(_csv_files(field, updates), _IMPORT_FILES):
            results.update(self._import(field, files))
        return [results[u.record_id] for u in updates]

    def prefers_bulk(self, count: int) -> bool:
        """Whether `count` updates are better written with `write_bulk` than in batches."""
        return count > self._config.import_threshold

    def _check_field(self, field: str) -> None:
        """A v5 field name: it goes into `fields=` lists and CSV headers."""
        if not _FIELD_NAME.match(field):
            raise FatalError(f"{field!r} is not a valid Pardot field name")

    def _record_key(self, record_id: str) -> int:
        """The prospect id as a number ("007" and "7" are one prospect)."""
        return _prospect_id(record_id)

    # ---- reading ----------------------------------------------------------------------------

    def _records(self, field: str, filters: Mapping[str, str] | None = None) -> Iterator[Record]:
        """Every live prospect the query's `filters` select, page by page in id order.

        Id order keeps each prospect in one place while the read pages, even one updated
        meanwhile, and lets a read past the page-token ceiling go on after the last id.
        """
        names = ["id", "email", "website", "salesforceAccountId"]
        fields = ",".join([*names, field] if field not in names else names)
        params: dict[str, Any] = {"fields": fields, "orderBy": "id ASC", "limit": PAGE_SIZE}
        params |= filters or {}
        last_id: int | None = None
        answer = self._read_page(
            lambda: self._api("GET", "objects/prospects", "reading prospects", params, field=field)
        )
        while True:
            values = _list(answer.body.get("values"))
            for item in values:
                last_id = _int(item.get("id"))
                yield Record(
                    id=str(item.get("id")),
                    value=_text(item.get(field)),
                    email=_text(item.get("email")),
                    website=_text(item.get("website")),
                    linked_account_id=_text(item.get("salesforceAccountId")),
                )
            following = answer.body.get("nextPageUrl")
            if isinstance(following, str) and following:
                url = self._own_url(following)
                answer = self._read_page(partial(self._api, "GET", url, "reading prospects", None))
            elif (
                values
                and last_id is not None
                and answer.headers.get("Pardot-Warning", "")[:4] == "203;"
            ):
                # A page-token sequence stops after 100,000 records: go on after the last id.
                restart = params | {"idGreaterThan": last_id}
                answer = self._read_page(
                    partial(self._api, "GET", "objects/prospects", "reading prospects", restart)
                )
            else:
                return

    def _values(self, path: str, params: dict[str, Any], what: str) -> Iterator[dict[str, Any]]:
        answer = self._api("GET", path, what, params)
        while True:
            yield from _list(answer.body.get("values"))
            following = answer.body.get("nextPageUrl")
            if not isinstance(following, str) or not following:
                return
            answer = self._api("GET", self._own_url(following), what, None)

    def _own_url(self, url: str) -> str:
        """`url` if it is under base_url: the token is never sent anywhere else."""
        if not url.startswith(f"{self._base_url}/"):
            raise FatalError("pardot sent a link outside its API host")
        return url

    # ---- writing ----------------------------------------------------------------------------

    def _patch(self, field: str, update: Update) -> None:
        """Write one prospect's field; RecordError when Pardot refuses only this record."""
        path = f"objects/prospects/{_prospect_id(update.record_id)}"
        answer = self._api(
            "PATCH",
            path,
            "updating a prospect",
            {"fields": f"id,{field}"},
            json_body={field: update.value or None},
            field=field,
            keep=_record_level,
        )
        if not answer.ok:
            code = str(answer.code if answer.code is not None else answer.status)
            message = self._clean(str(answer.body.get("message") or f"HTTP {answer.status}"))
            raise RecordError(message, code=code)

    def _import(self, field: str, files: list[bytes]) -> dict[str, WriteResult]:
        """One import: create it with the first file, add the rest, submit, poll, read errors."""
        spec = {
            "operation": "Upsert",
            "object": "Prospect",
            "status": "Ready" if len(files) == 1 else "Open",
            # Never create a prospect for an id that no longer matches, nor restore a deleted one.
            "createOnNoMatch": False,
            "restoreDeleted": False,
            # A blank cell clears the field (Pardot's default leaves it); the CSV holds no other
            # field, so nothing else of the prospect can be overwritten.
            "fields": {field: {"overwrite": True, "nullOverwrite": True}},
        }
        created = self._api(
            "POST",
            "imports",
            "creating an import",
            None,
            form={"input": json.dumps(spec)},
            file=files[0],
            field=field,
        )
        import_id = _int(created.body.get("id"))
        if import_id is None:
            raise FatalError("pardot created an import without an id")
        for extra in files[1:]:
            self._api("POST", f"imports/{import_id}/batches", "adding a batch", None, file=extra)
        if len(files) > 1:
            ready = {"status": "Ready"}
            self._api(
                "PATCH", f"imports/{import_id}", "submitting an import", None, json_body=ready
            )
        status = self._wait(import_id)
        failed = self._import_errors(import_id, status) if _int(status.get("errorCount")) else {}
        outcomes: dict[str, WriteResult] = {}
        for content in files:
            for row in csv.DictReader(io.StringIO(content.decode())):
                record_id = row["matchId"]
                outcomes[record_id] = failed.get(record_id) or WriteResult(record_id, True)
        return outcomes

    def _wait(self, import_id: int) -> dict[str, Any]:
        fields = "id,status,isExpired,createdCount,updatedCount,errorCount,errorsRef"
        deadline = time.monotonic() + self._config.import_timeout
        while True:
            answer = self._api(
                "GET", f"imports/{import_id}", "reading an import", {"fields": fields}
            )
            if answer.body.get("status") == "Complete":
                return answer.body
            if time.monotonic() >= deadline:
                raise RetryableError(
                    f"pardot import {import_id} is still {answer.body.get('status')} after "
                    f"{self._config.import_timeout:g} s",
                    code="IMPORT_RUNNING",
                )
            time.sleep(self._config.import_poll_interval)

    def _import_errors(self, import_id: int, status: Mapping[str, Any]) -> dict[str, WriteResult]:
        reference = status.get("errorsRef")
        where = f"imports/{import_id}/errors"
        if isinstance(reference, str) and reference:
            where = self._own_url(reference)
        answer = self._api("GET", where, "reading import errors", None)
        failed = {}
        for row in csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))):
            lowered = {str(key).strip().lower(): value for key, value in row.items()}
            record_id = str(lowered.get("matchid") or "")
            message = self._clean(str(lowered.get("error") or lowered.get("errors") or ""))
            if record_id:
                failed[record_id] = WriteResult(record_id, False, "IMPORT_ERROR", message)
        return failed

    # ---- HTTP, tokens, errors ---------------------------------------------------------------

    def _api(
        self,
        method: str,
        path: str,
        what: str,
        params: Mapping[str, Any] | None,
        *,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        file: bytes | None = None,
        field: str | None = None,
        keep: Callable[[_Answer], bool] | None = None,
    ) -> _Answer:
        """One authenticated v5 call; an OAuth token Pardot refuses is renewed once."""
        url = path if "://" in path else f"{self._base_url}/api/v5/{path}"

        def attempt() -> _Answer:
            headers = {
                "Authorization": f"Bearer {self._token.value()}",
                "Pardot-Business-Unit-Id": self._unit,
                # Ask for x-api-usage, the day's calls over the allowance, on every answer.
                "X-Return-Api-Usage": "1",
            } | _JSON
            options: dict[str, Any] = {"headers": headers, "params": params}
            if json_body is not None:
                options["json"] = json_body
            if file is not None:
                options["data"] = dict(form or {})
                options["files"] = {"file": ("segsync.csv", file, "text/csv")}
            return _Answer(self._http.request(method, url, what=what, **options))

        answer = self._token.send(attempt, _token_refused)
        if answer.ok or (keep is not None and keep(answer)):
            return answer
        raise self._classify(answer, what, field)

    def _renew(self) -> tuple[str, float]:
        """Trade the refresh token for an access token at the Salesforce token endpoint."""
        form = {
            "grant_type": "refresh_token",
            "client_id": self._config.client_id,
            "client_secret": self._config.client_secret,
            "refresh_token": self._config.refresh_token,
        }
        answer = _Answer(
            self._http.request(
                "POST", self._config.token_url, what="renewing the token", data=form, headers=_JSON
            )
        )
        token = answer.body.get("access_token")
        if answer.ok and isinstance(token, str) and token:
            # Salesforce says nothing of its lifetime: it is used until Pardot refuses it.
            return token, math.inf
        error = self._clean(str(answer.body.get("error") or answer.status))
        text = self._clean(str(answer.body.get("error_description") or f"HTTP {answer.status}"))
        if answer.status >= 500 or answer.status == 429:
            raise RetryableError(
                f"salesforce could not renew the token ({error}): {text}", code=error
            )
        raise FatalError(f"salesforce refused the OAuth refresh ({error}): {text}", code=error)

    def _note_usage(self, headers: Mapping[str, str]) -> None:
        """x-api-usage is "used/allowed" for the business unit's day."""
        used, _, allowed = (headers.get("x-api-usage") or "").partition("/")
        if used.strip().isdigit() and allowed.strip().isdigit() and int(allowed) > 0:
            self._report_quota(min(int(used), int(allowed)), int(allowed), "daily")

    def _classify(self, answer: _Answer, what: str, field: str | None) -> ConnectorError:
        """Map Pardot's status and body code to retryable, daily-quota or fatal."""
        code = answer.code
        label = str(code if code is not None else answer.status)
        message = self._clean(str(answer.body.get("message") or f"HTTP {answer.status}"))
        if answer.status != 429 and code in _THROTTLING_CODES:
            # An HTTP 429 is counted as it arrives (VendorHttp); these codes come in a 400.
            self._note_throttled()
        if code in _DAILY_CODES:
            return DailyQuotaError(
                f"pardot's daily limit is spent ({label}): {message}", code=label
            )
        if code in _RETRYABLE_CODES or answer.status in (408, 429) or answer.status >= 500:
            wait = 60.0 if code == 202 else 1.0 if code == 66 else None
            return RetryableError(
                f"pardot answered {answer.status} ({label}) while {what}: {message}",
                code=label,
                retry_after=wait,
            )
        if code in _BUSINESS_UNIT_CODES:
            return FatalError(f"pardot refused the business unit ({label}): {message}", code=label)
        if answer.status == 401:
            renewal = "" if self._config.oauth else "; a token given outright cannot be renewed"
            return FatalError(
                f"pardot refused the access token ({label}): {message}{renewal}", code=label
            )
        # Every call that names `field` asks only for it besides standard fields.
        if code in _FIELD_CODES and field is not None:
            return FatalError(f"field {field} not found on prospects ({message})", code=label)
        return FatalError(f"pardot refused {what} ({answer.status} {label}): {message}", code=label)

    def _clean(self, text: str) -> str:
        """`text` clipped, with this connection's secrets blanked out."""
        secrets = (self._token.current, self._config.client_secret, self._config.refresh_token)
        return redact(text, secrets)


def _token_refused(answer: _Answer) -> bool:
    """A 401 that a new token may cure (not a wrong business unit)."""
    return answer.status == 401 and answer.code not in _BUSINESS_UNIT_CODES


def _record_level(answer: _Answer) -> bool:
    """A PATCH refusal only that record can have: deleted or unknown, or a value refused.

    A 404 without a Pardot code is a wrong URL, not a missing prospect: that stops the run.
    """
    if answer.status == 404:
        return answer.code is not None
    return answer.status == 400 and answer.code not in (
        _FIELD_CODES | _DAILY_CODES | _RETRYABLE_CODES | _BUSINESS_UNIT_CODES
    )


def _second(moment: dt.datetime) -> str:
    """An aware moment as a v5 filter takes it: UTC, to the second it falls in, with its offset
    (`+00:00`, whose `+` the query string carries as %2B)."""
    return moment.astimezone(dt.UTC).replace(microsecond=0).isoformat()


def _prospect_id(record_id: str) -> int:
    if not record_id.isdigit():
        raise ValueError(f"{record_id!r} is not a pardot prospect id")
    return int(record_id)


def _ranges(ids: list[int]) -> Iterator[tuple[int, int]]:
    """Runs of sorted ids spanning at most PAGE_SIZE ids: each fits one page of a range query."""
    start = 0
    for index in range(1, len(ids) + 1):
        if index == len(ids) or ids[index] - ids[start] >= PAGE_SIZE:
            yield ids[start], ids[index - 1]
            start = index


def _csv_files(field: str, updates: Sequence[Update]) -> list[bytes]:
    """`matchId,<field>` CSV files of at most _IMPORT_FILE_BYTES each."""
    files: list[bytes] = []
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    header_size = 0
    for update in updates:
        if out.tell() == 0:
            writer.writerow(["matchId", field])
            header_size = out.tell()
        writer.writerow([update.record_id, update.value])
        if out.tell() >= _IMPORT_FILE_BYTES:
            files.append(out.getvalue().encode())
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\r\n")
    if out.tell() > header_size:
        files.append(out.getvalue().encode())
    return files


def _chunks(items: list[bytes], size: int) -> Iterator[list[bytes]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _list(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _int(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _text(value: Any) -> str | None:
    """A field value as text; "" and null are None, a multi-response list is joined."""
    if isinstance(value, list):
        value = ";".join(str(item) for item in value if item not in (None, ""))
    return None if value is None or value == "" else str(value)
