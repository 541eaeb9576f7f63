"""A Pardot (Account Engagement) API v5 emulator: prospects, custom fields, the Import API, the
Salesforce OAuth refresh that issues its tokens, and its limits and `{"code","message"}` errors.

Paths live under `base_url` exactly as under https://pi.pardot.com: `/api/v5/objects/prospects`,
`/api/v5/objects/custom-fields`, `/api/v5/imports`; the token endpoint stands in for
https://login.salesforce.com at `/services/oauth2/token`. The Import API lives in pardot_imports
(this emulator's base class), the token grant in pardot_login.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from connectors.sandbox.pardot_imports import (
    API_PREFIX,
    ApiError,
    PardotImports,
    requested_fields,
    stamp,
)
from connectors.sandbox.pardot_login import TOKEN_PATH as TOKEN_PATH
from connectors.sandbox.pardot_login import new_token, refused_grant, token_answer
from connectors.sandbox.salesforce_store import make_id
from connectors.sandbox.seeding import (
    CAMEL_CASE_FIELDS,
    SamplePeople,
    company_domain,
    company_name,
    company_website,
)
from connectors.sandbox.server import Request, Response

# The sandbox's custom text field, as v5 names it (custom field id + "__c").
SEGMENT_FIELD = "Segment_Names__c"
# The most a custom Text field holds in the sandbox; Pardot's custom field object reports no
# length, so the adapter knows the same number (connectors/pardot.py TEXT_MAX_LENGTH).
TEXT_MAX_LENGTH = 255
TEXTAREA_MAX_LENGTH = 65_535
PAGE_LIMIT_DEFAULT = 200
PAGE_LIMIT_MAX = 1000
# A nextPageToken sequence stops after this many records (Pardot-Warning 203).
PAGE_TOKEN_RECORD_LIMIT = 100_000
BUSINESS_UNIT_ID = "0Uv5g000000TESTEAA"
# Seconds of disuse after which a Salesforce session times out (an org's default is 2 hours).
SESSION_SECONDS = 7200.0
# How long a nextPageToken can be used (210 after that).
PAGE_TOKEN_SECONDS = 4 * 3600.0
# A request that got a generic fault instead of an answer leaves its concurrency slot this long
# after its latency has passed (the emulator never sees it finish).
_SLOT_GRACE = 0.05

# Standard prospect fields the sandbox knows: name -> (type, writable).
_STANDARD_FIELDS: dict[str, tuple[str, bool]] = {
    "id": ("Integer", False),
    "email": ("String", True),
    "firstName": ("String", True),
    "lastName": ("String", True),
    "company": ("String", True),
    "website": ("String", True),
    "jobTitle": ("String", True),
    "campaignId": ("Integer", True),
    "salesforceId": ("String", False),
    "salesforceAccountId": ("String", False),
    "salesforceContactId": ("String", False),
    "salesforceLeadId": ("String", False),
    "isDeleted": ("Boolean", False),
    "createdAt": ("DateTime", False),
    "updatedAt": ("DateTime", False),
}
_TEXT_LIMITS = {"String": 255, "Text": TEXT_MAX_LENGTH, "Hidden": TEXT_MAX_LENGTH}
_TEXT_LIMITS["Textarea"] = TEXTAREA_MAX_LENGTH
_CUSTOM_FIELD_FIELDS = (
    "id",
    "name",
    "fieldId",
    "type",
    "isRecordMultipleResponses",
    "isRequired",
    "isUseValues",
    "salesforceId",
    "createdAt",
    "updatedAt",
)
_ID_FILTERS = {
    "idGreaterThan": lambda value, bound: value > bound,
    "idGreaterThanOrEqualTo": lambda value, bound: value >= bound,
    "idLessThan": lambda value, bound: value < bound,
    "idLessThanOrEqualTo": lambda value, bound: value <= bound,
}
# v5's filters on a prospect's DateTime fields: After and Before are strict, OrEqualTo not.
_COMPARISONS: dict[str, Callable[[dt.datetime, dt.datetime], bool]] = {
    "After": lambda value, bound: value > bound,
    "AfterOrEqualTo": lambda value, bound: value >= bound,
    "Before": lambda value, bound: value < bound,
    "BeforeOrEqualTo": lambda value, bound: value <= bound,
}
_TIME_FILTERS = {
    f"{name}{suffix}": (name, compare)
    for name in ("createdAt", "updatedAt")
    for suffix, compare in _COMPARISONS.items()
}
# What a DateTime filter takes: ISO 8601 to the second (a fraction allowed) with an offset, or
# without one in the business unit's time zone (UTC in the sandbox). An offset's `+` must come
# URL-encoded (%2B): a bare one arrives as a space, and the value is refused.
_FILTER_MOMENT = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})?$"
)
_FIRST = ("ada", "brook", "cyrus", "dana", "emil", "freya", "gus", "hana", "ivo", "jun")
_LAST = ("archer", "bell", "costa", "diaz", "ek", "fox", "gray", "hale", "ito", "jones")
_EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


@dataclass
class _Cursor:
    """Where a nextPageToken sequence stands."""

    fields: list[str]
    limit: int
    descending: bool
    bounds: dict[str, int]
    deleted: str
    after: int | None
    served: int
    issued: float = 0.0
    # DateTime filters: name -> the moment it compares with.
    moments: dict[str, dt.datetime] = field(default_factory=dict)


class PardotEmulator(PardotImports):
    """Pardot v5 prospects, custom fields and imports, with Pardot's limits and error codes.

    Faults: rate_limit answers the next request(s) with the concurrency error (66), daily_limit
    with the daily-limit error (122); expire_token expires every access token issued so far,
    the describe() token included (reset() issues that one again); record_failure
    (record_ids=[...], code=85) fails the next write of each of those prospects, by PATCH or by
    import, with a record-level error. At most `max_concurrent` calls may be in flight (66) and
    `daily_limit` calls answered per day (122); X-Return-Api-Usage: 1 returns x-api-usage.

    Each prospect's `updatedAt` (UTC, to the second, as Pardot stamps it) moves when it is
    created, written by PATCH or an import, or edited by someone else (`edit_prospect`); queries
    filter on it and on `createdAt` (`updatedAtAfter` and its kin), a malformed moment refused
    with Pardot's invalid-timestamp error (7).
    """

    name = "pardot"
    settings = (
        "max_concurrent",
        "daily_limit",
        "page_token_record_limit",
        "import_polls",
        "import_batches_per_day",
    )
    max_concurrent = 5
    daily_limit = 100_000
    page_token_record_limit = PAGE_TOKEN_RECORD_LIMIT

    def _setup(self) -> None:
        super()._setup()
        self.business_unit_id = BUSINESS_UNIT_ID
        self.client_id = f"3MVG9{secrets.token_urlsafe(24)}"
        self.client_secret = secrets.token_hex(32)
        self.refresh_token = f"5Aep861{secrets.token_urlsafe(40)}"
        self.access_token = new_token()
        self._tokens: dict[str, float] = {self.access_token: time.monotonic() + SESSION_SECONDS}
        self._prospects: dict[int, dict[str, Any]] = {}
        self._order: list[int] = []  # every prospect id, ascending (ids only ever grow)
        self._next_id = 1001
        self._custom: dict[str, dict[str, Any]] = {}
        self._cursors: dict[str, _Cursor] = {}
        self._failing: dict[str, int] = {}  # prospect id -> code of its armed record failure
        self._slots: dict[int, float] = {}  # thread -> when its call stops counting as in flight
        self._refused: dict[int, bool] = {}
        self._day = dt.datetime.now(dt.UTC).date()
        self._daily_used = 0
        self.add_custom_field("Segment_Names", "Text", name="Segment Names")

    # ---- public helpers for tests, the demo and benchmarks ---------------------------------

    # The demo's sample people are prospects; synced with Salesforce, they carry the Salesforce
    # id of their contact's account.
    sample_people = SamplePeople(
        "prospects",
        SEGMENT_FIELD,
        {**CAMEL_CASE_FIELDS, "salesforce_account_id": "salesforceAccountId"},
        first_id=1001,
    )

    def add_records(self, object_type: str, rows: list[dict[str, Any]]) -> list[str]:
        """Create prospects with these fields (v5 names), created and updated now; returns
        their ids as strings."""
        return self._create(object_type, rows, seeded=False)

    def _create(self, object_type: str, rows: list[dict[str, Any]], *, seeded: bool) -> list[str]:
        # Seeded prospects predate the sandbox, on fixed moments, so a seed is the same every
        # time; prospects added later are created (and so updated) as they are added.
        self._check_object(object_type)
        with self.lock:
            ids = []
            now = stamp()
            for row in rows:
                prospect_id = self._next_id
                self._next_id += 1
                created = stamp(_EPOCH + dt.timedelta(seconds=prospect_id)) if seeded else now
                prospect: dict[str, Any] = dict.fromkeys(self._field_names())
                prospect.update(id=prospect_id, isDeleted=False, createdAt=created)
                prospect["updatedAt"] = created
                for name, value in row.items():
                    if name not in prospect:
                        raise KeyError(f"prospects have no field {name}")
                    prospect[name] = value
                self._prospects[prospect_id] = prospect
                self._order.append(prospect_id)
                ids.append(str(prospect_id))
            return ids

    def _stored(self, object_type: str, record_id: str) -> dict[str, Any]:
        # Deleted prospects too, with isDeleted true.
        self._check_object(object_type)
        return dict(self._prospects[int(record_id)])

    def edit_prospect(self, prospect_id: str | int, fields: dict[str, Any]) -> None:
        """Change fields of a prospect as a Pardot user would; its updatedAt moves to now."""
        with self.lock:
            prospect = self._prospects[int(prospect_id)]
            unknown = [name for name in fields if not self._writable(name)]
            if unknown:
                raise KeyError(f"prospects have no writable field {', '.join(unknown)}")
            prospect.update(fields)
            prospect["updatedAt"] = stamp()

    def delete_record(self, object_type: str, record_id: str) -> None:
        """Move a prospect to the recycle bin: reads, queries and writes no longer find it."""
        self._check_object(object_type)
        with self.lock:
            self._prospects[int(record_id)]["isDeleted"] = True

    def add_custom_field(
        self,
        field_id: str,
        field_type: str = "Text",
        *,
        name: str | None = None,
        multiple_responses: bool = False,
    ) -> str:
        """Define a custom prospect field; returns its v5 API name (`field_id` + "__c")."""
        with self.lock:
            api_name = f"{field_id}__c"
            self._custom[api_name] = {
                "id": 7000 + len(self._custom),
                "name": name or field_id.replace("_", " "),
                "fieldId": field_id,
                "type": field_type,
                "isRecordMultipleResponses": multiple_responses,
                "isRequired": False,
                "isUseValues": False,
                "salesforceId": None,
                "createdAt": stamp(_EPOCH),
                "updatedAt": stamp(_EPOCH),
            }
            for prospect in self._prospects.values():
                prospect.setdefault(api_name, None)
            return api_name

    def expire_tokens(self) -> None:
        """Make every access token issued so far stop working."""
        with self.lock:
            self._tokens.clear()

    def describe(self) -> dict[str, Any]:
        """base_url, access_token, business_unit_id, the OAuth client, the prospect field."""
        return {
            "base_url": self.base_url,
            "access_token": self.access_token,
            "business_unit_id": self.business_unit_id,
            "oauth": {
                "token_url": f"{self.base_url}{TOKEN_PATH}",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "refresh_token": self.refresh_token,
            },
            "fields": {"prospects": SEGMENT_FIELD},
        }

    def forget_usage(self) -> None:
        """Forget usage and armed failures; the describe() token works again."""
        self._daily_used = self._import_batches_today = 0
        self._failing.clear()
        self._slots.clear()
        self._tokens[self.access_token] = time.monotonic() + SESSION_SECONDS

    def route_name(self, request: Request) -> str:
        """Group paths by shape: prospect and import ids become {id}."""
        return re.sub(r"/\d+(?=/|$)", "/{id}", request.path)

    def next_call(self, request: Request) -> int:
        """Count the call and decide, as it arrives, whether a concurrency slot is free."""
        call = super().next_call(request)
        if request.path == TOKEN_PATH:
            return call  # Salesforce's login server, not Pardot's API
        me, now = threading.get_ident(), time.monotonic()
        with self.lock:
            self._slots = {thread: until for thread, until in self._slots.items() if until >= now}
            self._slots.pop(me, None)
            refused = len(self._slots) >= self.max_concurrent
            self._refused[me] = refused
            if not refused:
                self._slots[me] = now + self.latency + _SLOT_GRACE
        return call

    # ---- request handling -------------------------------------------------------------------

    def handle(self, request: Request, call: int) -> Response:
        """Authenticate, apply faults and limits, then route; errors as {"code","message"}."""
        if request.method == "POST" and request.path == TOKEN_PATH:
            return self._token(request)
        me = threading.get_ident()
        with self.lock:
            refused = self._refused.pop(me, False)
            if me in self._slots:
                self._slots[me] = float("inf")  # in flight until this answer is built
        try:
            if self.faults.take("expire_token") is not None:
                self.expire_tokens()
            self._authenticate(request)
            if self.faults.take("rate_limit") is not None or refused:
                message = "You have exceeded your concurrent request limit. Please wait, before "
                raise ApiError(429, 66, message + "trying again")
            self._count_usage()
            response = self._route(request, call)
        except ApiError as error:
            response = error.response()
        finally:
            with self.lock:
                self._slots.pop(me, None)
        if request.headers.get("x-return-api-usage", "").lower() in ("1", "true"):
            with self.lock:
                response.headers["x-api-usage"] = f"{self._daily_used}/{self.daily_limit}"
        return response

    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        with self.lock:
            expires = self._tokens.get(token) if token else None
        now = time.monotonic()
        if expires is None or now >= expires:
            raise ApiError(401, 184, "access_token is invalid, unknown, or malformed")
        with self.lock:
            if token in self._tokens:
                self._tokens[token] = now + SESSION_SECONDS  # the timeout counts from last use
        unit = request.headers.get("pardot-business-unit-id")
        if not unit:
            raise ApiError(400, 181, "A required header is missing: Pardot-Business-Unit-Id")
        if unit != self.business_unit_id:
            message = "Business Unit specified in Pardot-Business-Unit-Id header not found or "
            raise ApiError(400, 201, message + "inactive.")

    def _count_usage(self) -> None:
        with self.lock:
            today = dt.datetime.now(dt.UTC).date()
            if today != self._day:
                self._day, self._daily_used, self._import_batches_today = today, 0, 0
            spent = self.faults.take("daily_limit") is not None
            if spent or self._daily_used >= self.daily_limit:
                raise ApiError(429, 122, "Daily API rate limit met.")
            self._daily_used += 1

    def _route(self, request: Request, call: int) -> Response:
        if not request.path.startswith(API_PREFIX):
            raise ApiError(404, 198, f"Endpoint not found: {request.path}")
        parts = request.path[len(API_PREFIX) :].strip("/").split("/")
        method = request.method
        if parts[:2] == ["objects", "prospects"]:
            if len(parts) == 2 and method == "GET":
                return self._query_prospects(request)
            if len(parts) == 3 and method == "GET":
                return self._read_prospect(request, parts[2])
            if len(parts) == 3 and method == "PATCH":
                return self._update_prospect(request, parts[2], call)
        elif parts == ["objects", "custom-fields"] and method == "GET":
            return self._query_custom_fields(request)
        elif parts[0] == "imports":
            return self._imports_route(request, parts[1:], call)
        if parts[:2] in (["objects", "prospects"], ["objects", "custom-fields"]):
            raise ApiError(405, 60, f"Invalid HTTP request method {method} for {request.path}")
        raise ApiError(404, 198, f"Endpoint not found: {request.path}")

    # ---- OAuth ------------------------------------------------------------------------------

    def _token(self, request: Request) -> Response:
        """Salesforce's refresh-token grant, with its error bodies (see pardot_login)."""
        refused = refused_grant(request, self.client_id, self.client_secret, self.refresh_token)
        if refused is not None:
            return refused
        token = new_token()
        with self.lock:
            self._tokens[token] = time.monotonic() + SESSION_SECONDS
        return token_answer(token, self.base_url)

    # ---- prospects --------------------------------------------------------------------------

    def _query_prospects(self, request: Request) -> Response:
        """The v5 query: fields, limit, orderBy by id, id filters, deleted; nextPageToken paging."""
        token = request.param("nextPageToken")
        if token is not None:
            extra = sorted(set(request.query) - {"nextPageToken", "fields"})
            if extra:
                message = f"Only fields may accompany nextPageToken, not {', '.join(extra)}"
                raise ApiError(400, 5, message)
            with self.lock:
                cursor = self._cursors.pop(token, None)
            if cursor is None:
                raise ApiError(400, 211, "Page token is invalid.")
            if time.monotonic() - cursor.issued > PAGE_TOKEN_SECONDS:
                raise ApiError(400, 210, "Page token has expired.")
            if request.param("fields"):
                cursor.fields = self._fields(request)
        else:
            cursor = self._new_cursor(request)
        return self._page(request, cursor)

    def _new_cursor(self, request: Request) -> _Cursor:
        known = {"fields", "limit", "orderBy", "deleted", *_ID_FILTERS, *_TIME_FILTERS}
        unknown = sorted(set(request.query) - known)
        if unknown:
            raise ApiError(400, 5, f"Invalid query parameters: {', '.join(unknown)}")
        limit_text = request.param("limit") or str(PAGE_LIMIT_DEFAULT)
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= PAGE_LIMIT_MAX:
            message = f"Invalid value specified for limit. Must be 1 to {PAGE_LIMIT_MAX}."
            raise ApiError(400, 23, message)
        order = (request.param("orderBy") or "id").strip().split()
        if order[0] != "id" or len(order) > 2 or order[1:] not in ([], ["ASC"], ["DESC"]):
            raise ApiError(400, 19, f"Invalid value specified for orderBy: {' '.join(order)}")
        bounds = {}
        for name in _ID_FILTERS:
            value = request.param(name)
            if value is not None:
                if not value.lstrip("-").isdigit():
                    raise ApiError(400, 16, f"Invalid ID: {name}={value}")
                bounds[name] = int(value)
        deleted = (request.param("deleted") or "false").lower()
        if deleted not in ("true", "false", "all"):
            raise ApiError(400, 27, "Parameter deleted must be true, false or all")
        moments = {}
        for name in _TIME_FILTERS:
            value = request.param(name)
            if value is not None:
                moments[name] = _filter_moment(name, value)
        return _Cursor(
            self._fields(request),
            int(limit_text),
            order[1:] == ["DESC"],
            bounds,
            deleted,
            None,
            0,
            moments=moments,
        )

    def _page(self, request: Request, cursor: _Cursor) -> Response:
        with self.lock:
            order = self._order
            if cursor.descending:
                stop = len(order) if cursor.after is None else bisect_left(order, cursor.after)
                candidates = (order[i] for i in range(stop - 1, -1, -1))
            else:
                start = 0 if cursor.after is None else bisect_right(order, cursor.after)
                candidates = (order[i] for i in range(start, len(order)))
            picked: list[dict[str, Any]] = []
            more = False
            for prospect_id in candidates:
                prospect = self._prospects[prospect_id]
                if not self._selected(prospect, cursor):
                    continue
                if len(picked) == cursor.limit:
                    more = True
                    break
                picked.append(prospect)
            values = [self._render(prospect, cursor.fields) for prospect in picked]
        cursor.served += len(picked)
        body: dict[str, Any] = {"nextPageToken": None, "nextPageUrl": None, "values": values}
        headers = {}
        if more and cursor.served >= self.page_token_record_limit:
            headers["Pardot-Warning"] = (
                "203;Record count for nextPageToken sequence has been exceeded. "
                "No page token returned."
            )
        elif more:
            cursor.after = picked[-1]["id"]
            cursor.issued = now = time.monotonic()
            token = secrets.token_urlsafe(24)
            with self.lock:
                # Tokens a client never came back for are dropped once they could not be used.
                self._cursors = {
                    key: kept
                    for key, kept in self._cursors.items()
                    if now - kept.issued <= PAGE_TOKEN_SECONDS
                }
                self._cursors[token] = cursor
            body["nextPageToken"] = token
            query = urlencode({"nextPageToken": token})
            body["nextPageUrl"] = f"{self.base_url}{request.path}?{query}"
        return Response(body=body, headers=headers)

    @staticmethod
    def _selected(prospect: dict[str, Any], cursor: _Cursor) -> bool:
        if cursor.deleted != "all" and prospect["isDeleted"] != (cursor.deleted == "true"):
            return False
        if not all(
            _ID_FILTERS[name](prospect["id"], bound) for name, bound in cursor.bounds.items()
        ):
            return False
        for name, bound in cursor.moments.items():
            stamped, compare = _TIME_FILTERS[name]
            if not compare(dt.datetime.fromisoformat(prospect[stamped]), bound):
                return False
        return True

    def _read_prospect(self, request: Request, id_text: str) -> Response:
        prospect = self._find(id_text, for_update=False)
        with self.lock:
            return Response(body=self._render(prospect, self._fields(request)))

    def _update_prospect(self, request: Request, id_text: str, call: int) -> Response:
        """PATCH: the body's fields are set, the others left alone; answers the fields asked for."""
        body = request.json_or_none()
        if not isinstance(body, dict) or not body:
            raise ApiError(400, 150, "Input needs to be valid JSON")
        wanted = self._fields(request) if request.param("fields") else None
        invalid = [name for name in body if not self._writable(name)]
        if invalid:
            message = f"One or more of the specified fields are invalid: {', '.join(invalid)}"
            raise ApiError(400, 180, message)
        prospect = self._find(id_text, for_update=True)
        with self.lock:
            for name, value in body.items():
                problem = self._invalid_value(name, value)
                if problem:
                    raise ApiError(400, 154, f"Invalid property in request: {problem}")
            code = self._failing.pop(str(prospect["id"]), None)
            if code is not None:
                raise ApiError(400, code, "Unable to save the prospect")
            for name, value in body.items():
                prospect[name] = value if value != "" else None
                self.log_write("prospects", str(prospect["id"]), name, prospect[name], call)
            prospect["updatedAt"] = stamp()
            if wanted is None:
                return Response(204)
            return Response(body=self._render(prospect, wanted))

    def _find(self, id_text: str, *, for_update: bool) -> dict[str, Any]:
        """The live prospect `id_text`; 404 when unknown or in the recycle bin."""
        if not id_text.isdigit():
            raise ApiError(400, 16, f"Invalid ID: {id_text}")
        self._arm_failures()
        with self.lock:
            prospect = self._prospects.get(int(id_text))
        if prospect is None:
            raise ApiError(404, 192, "Object specified does not exist")
        if prospect["isDeleted"] and for_update:
            message = "Deleted records can't be updated. Please undelete before updating."
            raise ApiError(404, 219, message)
        if prospect["isDeleted"]:
            raise ApiError(404, 192, "Object specified does not exist")
        return prospect

    def _fields(self, request: Request) -> list[str]:
        text = request.param("fields")
        if not text:
            raise ApiError(400, 13, "One or more required parameters are missing: fields")
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in self._field_names()]
        if unknown:
            message = f"One or more of the specified fields are invalid: {', '.join(unknown)}"
            raise ApiError(400, 180, message)
        return names

    def _field_names(self) -> list[str]:
        return [*_STANDARD_FIELDS, *self._custom]

    def _writable(self, name: str) -> bool:
        if name in self._custom:
            return True
        return _STANDARD_FIELDS.get(name, ("", False))[1]

    def _invalid_value(self, name: str, value: Any) -> str | None:
        kind = self._custom[name]["type"] if name in self._custom else _STANDARD_FIELDS[name][0]
        if kind == "Integer":
            return None if value is None or isinstance(value, int) else f"{name} must be a number"
        if value is not None and not isinstance(value, str):
            return f"{name} must be a string"
        limit = _TEXT_LIMITS.get(kind)
        if limit is not None and value is not None and len(value) > limit:
            return f"{name} is {len(value)} characters long; the maximum is {limit}"
        return None

    def _render(self, prospect: dict[str, Any], fields: list[str]) -> dict[str, Any]:
        return {"id": prospect["id"]} | {name: prospect.get(name) for name in fields}

    def _arm_failures(self) -> None:
        # record_failure faults wait for their records' next write, however many calls away.
        while (fault := self.faults.take("record_failure")) is not None:
            code = int(fault.params.get("code", 85))
            with self.lock:
                for record_id in fault.params.get("record_ids", []):
                    self._failing[str(record_id)] = code

    # ---- custom fields ----------------------------------------------------------------------

    def _query_custom_fields(self, request: Request) -> Response:
        names = requested_fields(request, _CUSTOM_FIELD_FIELDS)
        with self.lock:
            values = [
                {"id": spec["id"]} | {name: spec[name] for name in names}
                for spec in self._custom.values()
            ]
        return Response(body={"nextPageToken": None, "nextPageUrl": None, "values": values})

    # ---- seed data --------------------------------------------------------------------------

    @staticmethod
    def _check_object(object_type: str) -> None:
        if object_type != "prospects":
            raise KeyError(f"the Pardot sandbox has no object {object_type!r}")

    def _seed(self, records: int) -> None:
        """Prospect n works at company n//2 + 1; every third is synced to a Salesforce contact
        whose account is that company's in the Salesforce sandbox."""
        rows = []
        for n in range(records):
            first, last = _FIRST[n % len(_FIRST)], _LAST[n // len(_FIRST) % len(_LAST)]
            company = n // 2 + 1
            # Every tenth prospect signed up with a free-mail address, which never matches.
            domain = "gmail.com" if n % 10 == 9 else company_domain(company)
            row: dict[str, Any] = {
                "email": f"{first}.{last}@{domain}",
                "firstName": first.title(),
                "lastName": last.title(),
                "company": company_name(company),
                "campaignId": 1,
            }
            if n % 4 == 1:
                row["website"] = company_website(company)
            if n % 3 == 0:
                row["salesforceAccountId"] = make_id("001", company)
                row["salesforceContactId"] = make_id("003", company)
                row["salesforceId"] = row["salesforceContactId"]
                self.seeded.add(company, {"salesforce": row["salesforceAccountId"]})
            self.seeded.add(company)
            rows.append(row)
        self._create("prospects", rows, seeded=True)


def _filter_moment(name: str, value: str) -> dt.datetime:
    """The moment a DateTime filter names; Pardot's invalid-timestamp error (7) if none."""
    if not _FILTER_MOMENT.match(value):
        raise ApiError(400, 7, f"Invalid timestamp: {name}={value}")
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(400, 7, f"Invalid timestamp: {name}={value}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
