"""An Oracle Eloqua emulator: /id discovery, REST 1.0 contacts and contact fields, Bulk 2.0 imports.

What it follows (docs.oracle.com/cloud/latest/marketingcs_gs/OMCAC and .../OMCAB):
- `GET /id` ("Determining base URLs") answers site, user and urls (base, apis.rest.standard/bulk)
  for Basic ("Site\\User:password") or Bearer credentials, and "Not authenticated." otherwise.
- `GET /api/REST/1.0/data/contacts` and `/assets/contact/fields` page with count (1-1000), page
  and depth, answering {"elements", "page", "pageSize", "total"}; custom field values come in
  `fieldValues` keyed by the field's id, not its internal name.
- Bulk 2.0: a contact import definition maps names to `{{Contact.Id}}` / `{{Contact.Field(X)}}`
  statements; rows posted to `{uri}/data` are synced (at once when `isSyncTriggeredOnImport`, or
  by `POST /syncs {"syncedInstanceUri"}`); `GET /syncs/{id}` goes pending -> active -> success,
  warning (some rows rejected) or error; `/syncs/{id}/logs` and `/rejects` page with limit/offset.
  Small text fields hold 100 characters, large text 32,000 ("Bulk API data types").

Where Oracle documents nothing the emulator chooses, and says so: a value longer than its field
and an unknown contact id reject that row (ELQ-00144 / ELQ-00085) rather than being truncated or
created; a definition with an unfinished sync refuses more data with 409.

Faults (besides the generic ones): rate_limit -> 429 "Too Many Requests" (Oracle publishes no
numeric rate and no Retry-After; param retry_after adds the header); daily_limit -> Eloqua has no
daily API quota, so this is a 429 whose body says the daily limit is spent (a sandbox convention
the adapter maps to DailyQuotaError); expire_token -> the API session is invalidated: every call
but /id gets 401 until the client authenticates at /id again; record_failure (record_ids=[...],
code=...) -> the next import sync rejects those ids; sync_error -> the next sync ends in `error`
with ELQ-00146 ("temporary error"); sync_warning (code=, message=, count=) -> the next sync ends
in `warning` with a warning log entry and no rejected row, as real syncs often do.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import operator
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connectors.sandbox.seeding import SeededCompanies, company_domain, company_name
from connectors.sandbox.server import Emulator, Request, Response

SMALL_TEXT_MAX = 100
LARGE_TEXT_MAX = 32_000
PAGE_MAX = 1000
SEGMENT_FIELD = "C_Segment_Names1"
SEGMENT_FIELD_LONG = "C_Segment_Names_Long1"
NOT_AUTHENTICATED = '"Not authenticated."'
# Oracle's import definition limit ("Bulk API limits": at most 100 fields).
IMPORT_FIELDS_MAX = 100

_REST = "/api/rest/1.0"
_BULK = "/api/bulk/2.0"
_STATEMENT = re.compile(r"^\{\{Contact\.(?:Id|Field\(([A-Za-z0-9_]+)\))\}\}$")
_SEARCH = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|!=|=|>|<)\s*'?(.*?)'?\s*$")
_FIRST = ("ada", "brook", "cyrus", "dana", "emil", "freya", "gus", "hana", "ivo", "jun")
_LAST = ("archer", "bell", "costa", "diaz", "ek", "fox", "gray", "hale", "ito", "jones")
_EPOCH = 1_704_067_200  # 2024-01-01T00:00:00Z
_COMPARISONS: dict[str, Callable[[int, int], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
}
_UPDATE_RULES = ("always", "ifNewIsNotNull", "ifExistingIsNull", "useFieldRule")


@dataclass(frozen=True)
class _Field:
    id: str
    internal_name: str
    name: str
    data_type: str  # "text", "largeText", "date"
    read_only: bool = False
    standard: bool = False
    # The REST contact property that carries a standard field, if any.
    rest_name: str | None = None

    @property
    def max_length(self) -> int | None:
        return {"text": SMALL_TEXT_MAX, "largeText": LARGE_TEXT_MAX}.get(self.data_type)


_FIELDS = (
    _Field(
        "100001", "C_EmailAddress", "Email Address", "text", standard=True, rest_name="emailAddress"
    ),
    _Field("100002", "C_FirstName", "First Name", "text", standard=True, rest_name="firstName"),
    _Field("100003", "C_LastName", "Last Name", "text", standard=True, rest_name="lastName"),
    _Field("100004", "C_Company", "Company", "text", standard=True, rest_name="accountName"),
    _Field("100005", "C_DateCreated", "Date Created", "date", read_only=True, standard=True),
    _Field("100200", SEGMENT_FIELD, "Segment Names", "text"),
    _Field("100201", SEGMENT_FIELD_LONG, "Segment Names (long)", "largeText"),
)


@dataclass
class _Contact:
    id: str
    fields: dict[str, str]  # internal name -> value (absent when blank)
    account_id: str | None
    created_at: int
    updated_at: int


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


def _iso(moment: float | None = None) -> str:
    when = dt.datetime.fromtimestamp(time.time() if moment is None else moment, dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def _failure(status: int, field_name: str, constraint: str, value: Any = None) -> Response:
    """A Bulk API validation failure, as in `{"failures": [...]}`."""
    item: dict[str, Any] = {"field": field_name, "constraint": constraint}
    if value is not None:
        item["value"] = value
    return Response(status, {"failures": [item]})


def _parameter_error(parameter: str, requirement: str, value: str | None) -> Response:
    """An application API 400: the typed validation error naming the parameter."""
    body = {
        "type": "EndpointParameterError",
        "parameter": parameter,
        "requirement": {"type": requirement},
        "value": value,
    }
    return Response(400, [body])


class EloquaEmulator(Emulator):
    """One Eloqua instance: discovery, contacts, contact fields and Bulk 2.0 contact imports."""

    name = "eloqua"

    def __init__(
        self, records: int = 0, latency: float = 0.0, *, sync_seconds: float = 0.0
    ) -> None:
        super().__init__(latency)
        # How long a sync stays pending/active before it is processed; 0 processes it at once.
        self.sync_seconds = sync_seconds
        self.site = "SegsyncSandbox"
        self.site_id = 42
        self.username = "api.user"
        self.password = secrets.token_urlsafe(18)
        self.access_token = secrets.token_urlsafe(48)
        self._fields = {f.internal_name.lower(): f for f in _FIELDS}
        self._contacts: dict[str, _Contact] = {}
        self._imports: dict[int, _Import] = {}
        self._syncs: dict[int, _Sync] = {}
        # Syncs not yet processed, so a request does not look through every sync ever made.
        self._unfinished: set[int] = set()
        self._next_contact = 1001
        self._next_import = 1180
        self._next_sync = 1190
        self._session_expired = False
        self.seeded = SeededCompanies()
        if records > 0:
            self._seed(records)

    # ---- public helpers for tests, the demo and benchmarks ---------------------------------

    def add_records(self, object_type: str, rows: list[dict[str, Any]]) -> list[str]:
        """Create contacts from REST names (emailAddress, accountName, accountId) or C_ fields."""
        self._check_object(object_type)
        ids = []
        with self.lock:
            for row in rows:
                contact_id = str(self._next_contact)
                self._next_contact += 1
                values: dict[str, str] = {}
                account_id = None
                for key, value in row.items():
                    if key == "accountId":
                        account_id = None if value is None else str(value)
                        continue
                    known = self._field_for(key)
                    if known is None:
                        raise KeyError(f"no contact field {key}")
                    if value not in (None, ""):
                        values[known.internal_name] = str(value)
                stamp = _EPOCH + int(contact_id)
                self._contacts[contact_id] = _Contact(contact_id, values, account_id, stamp, stamp)
                ids.append(contact_id)
        return ids

    def record(self, object_type: str, record_id: str) -> dict[str, Any]:
        """One contact: id, accountId and every field by internal name (None when blank)."""
        self._check_object(object_type)
        with self.lock:
            contact = self._contacts[record_id]
            fields = {f.internal_name: contact.fields.get(f.internal_name) for f in _FIELDS}
            return {"id": contact.id, "accountId": contact.account_id, "fields": fields}

    def delete_record(self, object_type: str, record_id: str) -> None:
        """Delete a contact: lists, searches and imports no longer find it."""
        self._check_object(object_type)
        with self.lock:
            del self._contacts[record_id]

    def expire_tokens(self) -> None:
        """Invalidate the API session: calls get 401 until the client authenticates at /id."""
        with self.lock:
            self._session_expired = True

    def describe(self) -> dict[str, Any]:
        """base_url, login_url (it serves /id too), credentials, a token, the contact field."""
        return {
            "base_url": self.base_url,
            "login_url": self.base_url,
            "site": self.site,
            "username": self.username,
            "password": self.password,
            "access_token": self.access_token,
            "fields": {"contacts": SEGMENT_FIELD},
        }

    def reset(self) -> None:
        """Forget the write log, counts, faults and an expired session (records stay)."""
        with self.lock:
            super().reset()
            self._session_expired = False

    def route_name(self, request: Request) -> str:
        """Paths lower-cased (Eloqua's are case-insensitive), with numeric ids as {id}."""
        return re.sub(r"/\d+(?=/|$)", "/{id}", request.path.lower())

    # ---- request handling -------------------------------------------------------------------

    def handle(self, request: Request, call: int) -> Response:
        """Apply faults, authenticate, settle due syncs, then route."""
        if self.faults.take("expire_token") is not None:
            self.expire_tokens()
        throttled = self._throttled()
        if throttled is not None:
            return throttled
        path = request.path.lower().rstrip("/")
        if request.method == "GET" and path == "/id":
            return self._identify(request)
        if not self._authenticated(request):
            return Response(401, NOT_AUTHENTICATED)
        with self.lock:
            if self._session_expired:
                return Response(401, NOT_AUTHENTICATED)
        self._settle(call)
        return self._route(request, path, call)

    def _throttled(self) -> Response | None:
        if self.faults.take("daily_limit") is not None:
            message = "Too Many Requests: the daily API call limit of this instance is spent."
            return Response(429, message, content_type="text/plain")
        limited = self.faults.take("rate_limit")
        if limited is None:
            return None
        headers = {}
        if "retry_after" in limited.params:
            headers["Retry-After"] = str(limited.params["retry_after"])
        return Response(429, "Too Many Requests", headers, content_type="text/plain")

    def _route(self, request: Request, path: str, call: int) -> Response:
        method = request.method
        if method == "GET" and path == f"{_REST}/data/contacts":
            return self._list_contacts(request)
        if method == "GET" and path == f"{_REST}/assets/contact/fields":
            return self._list_fields(request)
        if method == "POST" and path == f"{_BULK}/contacts/imports":
            return self._create_import(request)
        if match := re.fullmatch(rf"{_BULK}/contacts/imports/(\d+)(/data)?", path):
            found = self._imports.get(int(match.group(1)))
            if found is None:
                return Response(404, {"failures": [{"constraint": "Not found."}]})
            if method == "GET" and not match.group(2):
                return Response(body=found.body)
            if method == "POST" and match.group(2):
                return self._post_data(request, found, call)
        if method == "POST" and path == f"{_BULK}/syncs":
            return self._create_sync(request, call)
        if match := re.fullmatch(rf"{_BULK}/syncs/(\d+)(/logs|/rejects)?", path):
            sync = self._syncs.get(int(match.group(1)))
            if sync is None or method != "GET":
                return Response(404, {"failures": [{"constraint": "Not found."}]})
            if match.group(2) is None:
                return Response(body=self._render_sync(sync))
            items = sync.logs if match.group(2) == "/logs" else sync.rejects
            return self._page_items(request, items)
        return Response(
            404, f"No route for {request.method} {request.path}", content_type="text/plain"
        )

    # ---- authentication and discovery -------------------------------------------------------

    def _authenticated(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer":
            return secrets.compare_digest(credentials.strip(), self.access_token)
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, _, password = decoded.partition(":")
        expected_user = f"{self.site}\\{self.username}"
        # Site and user names are case-insensitive in Eloqua; the password is not.
        return user.lower() == expected_user.lower() and secrets.compare_digest(
            password, self.password
        )

    def _identify(self, request: Request) -> Response:
        if not self._authenticated(request):
            return Response(401, NOT_AUTHENTICATED)
        with self.lock:
            self._session_expired = False  # a fresh authentication re-establishes the session
        base = self.base_url
        body = {
            "site": {"id": self.site_id, "name": self.site},
            "user": {
                "id": 314,
                "username": self.username,
                "displayName": "API User",
                "firstName": "API",
                "lastName": "User",
                "emailAddress": "api.user@segsync.example",
            },
            "urls": {
                "base": base,
                "apis": {
                    "soap": {"standard": f"{base}/API/{{version}}/Service.svc"},
                    "rest": {
                        "standard": f"{base}/API/REST/{{version}}/",
                        "data": f"{base}/API/REST/{{version}}/data/",
                        "bulk": f"{base}/API/Bulk/{{version}}/",
                    },
                },
            },
        }
        return Response(body=body)

    # ---- application API --------------------------------------------------------------------

    def _paging(self, request: Request) -> tuple[int, int] | Response:
        count_text, page_text = request.param("count") or "1000", request.param("page") or "1"
        if not count_text.isdigit() or not 1 <= int(count_text) <= PAGE_MAX:
            return _parameter_error("count", "IntegerRequirement", count_text)
        if not page_text.isdigit() or int(page_text) < 1:
            return _parameter_error("page", "IntegerRequirement", page_text)
        return int(count_text), int(page_text)

    def _list_contacts(self, request: Request) -> Response:
        paging = self._paging(request)
        if isinstance(paging, Response):
            return paging
        count, page = paging
        depth = (request.param("depth") or "minimal").lower()
        search = request.param("search")
        with self.lock:
            chosen = sorted(self._contacts.values(), key=lambda c: int(c.id))
            if search:
                matcher = self._contact_matcher(search)
                if isinstance(matcher, Response):
                    return matcher
                chosen = [c for c in chosen if matcher(c)]
            elements = [
                self._render_contact(c, depth) for c in chosen[(page - 1) * count :][:count]
            ]
        body = {"elements": elements, "page": page, "pageSize": count, "total": len(chosen)}
        return Response(body=body)

    def _contact_matcher(self, search: str) -> Callable[[_Contact], bool] | Response:
        match = _SEARCH.match(search)
        if match is None:
            return _parameter_error("search", "SyntaxRequirement", search)
        term, comparison, wanted = match.groups()
        if term.lower() == "id":
            if not wanted.isdigit():
                return _parameter_error("search", "IdRequirement", search)
            number, compare = int(wanted), _COMPARISONS[comparison]
            return lambda contact: compare(int(contact.id), number)
        known = self._field_for(term)
        if known is None or comparison not in ("=", "!="):
            return _parameter_error("search", "SyntaxRequirement", search)
        pattern = re.compile(
            "^" + ".*".join(re.escape(part) for part in wanted.split("*")) + "$", re.IGNORECASE
        )

        def matches(contact: _Contact) -> bool:
            found = bool(pattern.match(contact.fields.get(known.internal_name, "")))
            return found if comparison == "=" else not found

        return matches

    def _render_contact(self, contact: _Contact, depth: str) -> dict[str, Any]:
        email = contact.fields.get("C_EmailAddress", "")
        rendered: dict[str, Any] = {
            "type": "Contact",
            "id": contact.id,
            "createdAt": str(contact.created_at),
            "depth": depth if depth in ("minimal", "partial", "complete") else "minimal",
            "name": email,
            "updatedAt": str(contact.updated_at),
        }
        if rendered["depth"] == "minimal":
            return rendered
        rendered |= {"currentStatus": "Awaiting action", "isSubscribed": "true"}
        rendered |= {"isBounceback": "false", "emailFormatPreference": "unspecified"}
        for known in _FIELDS:
            if known.rest_name and known.internal_name in contact.fields:
                rendered[known.rest_name] = contact.fields[known.internal_name]
        if contact.account_id:
            rendered["accountId"] = contact.account_id
        if rendered["depth"] == "complete":
            values = []
            for known in _FIELDS:
                if known.standard:
                    continue
                item = {"type": "FieldValue", "id": known.id}
                if known.internal_name in contact.fields:
                    item["value"] = contact.fields[known.internal_name]
                values.append(item)
            rendered["fieldValues"] = values
        return rendered

    def _list_fields(self, request: Request) -> Response:
        paging = self._paging(request)
        if isinstance(paging, Response):
            return paging
        count, page = paging
        depth = (request.param("depth") or "minimal").lower()
        chosen = list(_FIELDS)
        elements = []
        for known in chosen[(page - 1) * count :][:count]:
            item: dict[str, Any] = {
                "type": "ContactField",
                "id": known.id,
                "createdAt": str(_EPOCH),
                "depth": depth,
                "name": known.name,
                "updatedAt": str(_EPOCH),
            }
            if depth in ("partial", "complete"):
                item |= {
                    "dataType": known.data_type,
                    "displayType": "textArea" if known.data_type == "largeText" else "text",
                    "internalName": known.internal_name,
                    "isReadOnly": str(known.read_only).lower(),
                    "isRequired": "false",
                    "isStandard": str(known.standard).lower(),
                    "updateType": "always",
                }
            elements.append(item)
        return Response(
            body={"elements": elements, "page": page, "pageSize": count, "total": len(chosen)}
        )

    # ---- Bulk API 2.0 imports ---------------------------------------------------------------

    def _create_import(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            body = None
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
            match = _STATEMENT.match(str(statement))
            internal = match.group(1) if match else None
            known = self._field_for(internal) if internal else None
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
            stamp = _iso()
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
        try:
            rows = request.json()
        except ValueError:
            rows = None
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
        try:
            body = request.json()
        except ValueError:
            body = None
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
        sync = _Sync(number, found.id, found.staged, _iso(), time.monotonic() + self.sync_seconds)
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
                    sync.status, sync.started_at = "active", _iso()

    def _process(self, sync: _Sync, call: int) -> None:
        definition = self._imports[sync.import_id].body
        sync.started_at = sync.started_at or _iso()
        uri = f"/syncs/{sync.id}"
        if self.faults.take("sync_error") is not None:
            sync.status, sync.ended_at = "error", _iso()
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
        sync.ended_at = _iso()

    def _finder(self, statement: str) -> Callable[[str], _Contact | None]:
        """How rows name their contact: by id, or by a field's value (case-insensitive)."""
        match = _STATEMENT.match(statement)
        if match is None or match.group(1) is None:
            return self._contacts.get
        internal = self._fields[match.group(1).lower()].internal_name
        index = {
            c.fields[internal].lower(): c for c in self._contacts.values() if internal in c.fields
        }
        return lambda key: index.get(key.lower())

    def _apply(
        self,
        contact: _Contact,
        row: dict[str, Any],
        fields: dict[str, str],
        identifier: str,
        rule: str,
        call: int,
    ) -> tuple[str, str, list[str]] | None:
        """Write one row, or say why it is rejected: (statusCode, message, invalid fields)."""
        changes: dict[str, str] = {}
        for name, statement in fields.items():
            match = _STATEMENT.match(statement)
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
            contact.updated_at = int(time.time())
            self.log_write("contacts", contact.id, internal, value, call)
        return None

    @staticmethod
    def _log(
        uri: str, code: str, message: str, count: int, severity: str = "information"
    ) -> dict[str, Any]:
        return {
            "count": count,
            "createdAt": _iso(),
            "message": message,
            "severity": severity,
            "statusCode": code,
            "syncUri": uri,
        }

    # ---- seed data --------------------------------------------------------------------------

    def _field_for(self, name: str | None) -> _Field | None:
        if not name:
            return None
        for known in _FIELDS:
            if name.lower() in (known.internal_name.lower(), (known.rest_name or "").lower()):
                return known
        return None

    @staticmethod
    def _check_object(object_type: str) -> None:
        if object_type.lower() != "contacts":
            raise KeyError(f"the eloqua sandbox holds contacts only, not {object_type}")

    def _seed(self, records: int) -> None:
        rows = []
        for n in range(records):
            first, last = _FIRST[n % len(_FIRST)], _LAST[n // len(_FIRST) % len(_LAST)]
            # Every tenth person uses a free-mail address, which must never match an account.
            domain = "gmail.com" if n % 10 == 9 else company_domain(n // 2)
            row: dict[str, Any] = {
                "emailAddress": f"{first}.{last}{n}@{domain}",
                "firstName": first.title(),
                "lastName": last.title(),
                "accountName": company_name(n // 2),
            }
            self.seeded.add(n // 2)
            # Every third contact is linked to its company's Eloqua account.
            if n % 3 == 0:
                row["accountId"] = str(5001 + n // 2)
            rows.append(row)
        self.add_records("contacts", rows)
