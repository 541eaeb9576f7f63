"""A Marketo REST API emulator: identity, lead describe, read and sync, activities, usage.

Marketo answers nearly every API error with HTTP 200 and `{"success": false, "errors": [...]}`;
record-level outcomes of a sync are `status` plus `reasons` per input, in input order. The
identity endpoint is the exception: bad client credentials are an HTTP 401 with an OAuth body.
experienceleague.adobe.com/en/docs/marketo-developer/marketo/rest/ (authentication, error-codes,
lead-database/leads, paging-tokens, activities, usage).

What the adapter uses to read every lead, since Marketo has no "list all leads" call: lead ids
are assigned in sequence, so it reads id windows of 300 with `GET /rest/v1/leads.json?
filterType=id`, and past an empty window asks the "New Lead" activities (type 12, kept for the
life of the lead) created after the newest lead it read whether any lead lies further on
(`GET /rest/v1/activities/pagingtoken.json`, `GET /rest/v1/activities.json`). To read only what
changed since a moment it pages `GET /rest/v1/activities/leadchanges.json` (New Lead and Change
Data Value activities of the fields it reads). Activities live in marketo_activities: every
creation, every value a sync changes and every edit through `edit_lead` (someone else in
Marketo's screens) is one, stamped to the second. The Bulk Lead Extract it uses for large sets is
connectors/sandbox/marketo_extract.py; lead fields, reads and syncs live in marketo_leads (this
emulator's base class).
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

from connectors.sandbox.marketo_activities import USER_CHANGE, ActivityLog
from connectors.sandbox.marketo_extract import ExportRefused, LeadExports
from connectors.sandbox.marketo_leads import (
    FIELDS,
    MESSAGES,
    MarketoLeads,
    Refused,
    by_id,
    failed,
    json_body,
    marketo_time,
    ok,
)

# Re-exported: tests, the demo and the registry know them from this module.
from connectors.sandbox.marketo_leads import SEGMENT_FIELD as SEGMENT_FIELD
from connectors.sandbox.marketo_leads import STRING_MAX_LENGTH as STRING_MAX_LENGTH
from connectors.sandbox.seeding import (
    CAMEL_CASE_FIELDS,
    SamplePeople,
    company_domain,
    company_name,
    company_website,
)
from connectors.sandbox.server import CallCounts, Request, Response

# Access tokens live 3,600 s; the identity endpoint hands out the same token until it expires.
ACCESS_TOKEN_SECONDS = 3600
# GET URIs longer than 8 KB are refused with HTTP 414.
URI_MAX = 8192

_FIRST = ("ada", "brook", "cyrus", "dana", "emil", "freya", "gus", "hana", "ivo", "jun")
_LAST = ("archer", "bell", "costa", "diaz", "ek", "fox", "gray", "hale", "ito", "jones")


class MarketoEmulator(MarketoLeads):
    """One Marketo instance's lead database, identity service and API limits.

    Limits, as Marketo documents them: 100 calls per 20 s (606), 10 calls in flight (615) and a
    daily quota (607), all counted over successful calls only ("An API call that returns this
    response code is not counted against your daily quota, or your rate limit"). `latency` is
    spent while a call is in flight, so it counts toward the concurrency limit.

    Faults: rate_limit (606) and daily_limit (607) answer the next call(s); expire_token makes
    every token issued so far expire (602 on its next use; the identity endpoint then issues a
    new one); record_failure (record_ids=[...], code="1003") skips those leads in the next sync;
    export_failed makes the next enqueued lead export job end Failed.
    """

    name = "marketo"
    settings = ("calls_per_twenty_seconds", "max_concurrent", "daily_quota", "window_seconds")
    calls_per_twenty_seconds = 100
    max_concurrent = 10
    daily_quota = 50_000
    # The rate window is 20 s in Marketo; tests shorten it rather than wait.
    window_seconds = 20.0

    def _setup(self) -> None:
        # The server's own pre-request sleep would happen outside the concurrency count.
        self.response_seconds, self.latency = self.latency, 0.0
        self.token_seconds = ACCESS_TOKEN_SECONDS
        self.client_id = str(uuid.uuid4())
        self.client_secret = secrets.token_urlsafe(24)
        self.api_user = "segsync-api@sandbox.example"
        self._pod = "sj"
        self._tokens: dict[str, float] = {}  # access token -> monotonic expiry
        self._current: str | None = None
        self._in_flight = 0
        self._flight_lock = threading.Lock()
        self._calls = CallCounts()
        self._leads: dict[int, dict[str, Any]] = {}
        self._log = ActivityLog()
        self._next_id = 1
        self.exports = LeadExports(lambda: set(FIELDS))

    # ---- public helpers for tests, the demo and benchmarks ---------------------------------

    # The demo's sample people are leads; leads have a website field.
    sample_people = SamplePeople(
        "leads",
        SEGMENT_FIELD,
        CAMEL_CASE_FIELDS,
        first_id=1,
    )
    # Minutes between the creation of two of the demo's leads (see add_sample_records).
    sample_lead_minutes = 30

    def add_records(self, object_type: str, rows: list[dict[str, Any]]) -> list[str]:
        """Create leads with these fields (created now, or at a row's createdAt datetime).

        Returns their ids as strings, in row order.
        """
        return self._create(object_type, rows, dt.datetime.now(dt.UTC).replace(microsecond=0))

    def add_sample_records(self, object_type: str, rows: list[dict[str, Any]]) -> list[str]:
        """Create the leads as created over time, `sample_lead_minutes` apart, the last now.

        A live instance's leads were created over time, the newest recently (their New Lead
        activities are dated so too).
        """
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        last = len(rows) - 1
        step = dt.timedelta(minutes=self.sample_lead_minutes)
        created = [{**row, "createdAt": now - step * (last - n)} for n, row in enumerate(rows)]
        return self.add_records(object_type, created)

    def _stored(self, object_type: str, record_id: str) -> dict[str, Any]:
        # Every field of the lead, None where unset.
        self._check_object(object_type)
        return dict(self._leads[int(record_id)])

    def delete_record(self, object_type: str, record_id: str) -> None:
        """Delete a lead: reads and syncs no longer find it, and its activities go with it."""
        self._check_object(object_type)
        lead_id = int(record_id)
        with self.lock:
            del self._leads[lead_id]
            self._log.forget_lead(lead_id)

    def edit_lead(self, lead_id: str | int, fields: dict[str, Any]) -> None:
        """Someone else edits a lead in Marketo's screens: each value that changes is a Change
        Data Value activity stamped now, and updatedAt moves to now."""
        changes = {
            name: None if value in (None, "") else str(value) for name, value in fields.items()
        }
        wrong = sorted(name for name in changes if name not in FIELDS or FIELDS[name].read_only)
        if wrong:
            raise ValueError(f"leads have no editable field {wrong[0]!r}")
        now = dt.datetime.now(dt.UTC)
        with self.lock:
            lead = self._leads[int(lead_id)]
            for name, value in changes.items():
                self._log.changed(lead["id"], name, lead.get(name), value, now, USER_CHANGE)
                lead[name] = value
            lead["updatedAt"] = marketo_time(now)

    def activities(self) -> list[dict[str, Any]]:
        """Every activity as the activities endpoints list it, oldest first."""
        with self.lock:
            return [activity.answer() for activity in self._log.all()]

    def expire_tokens(self) -> None:
        """Make every access token issued so far expire now."""
        with self.lock:
            now = time.monotonic()
            self._tokens = {token: min(expiry, now) for token, expiry in self._tokens.items()}

    def describe(self) -> dict[str, Any]:
        """base_url (root of /rest and /identity), the service's credentials, the lead field."""
        return {
            "base_url": self.base_url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "fields": {"leads": SEGMENT_FIELD},
        }

    def forget_usage(self) -> None:
        """Forget the limit usage."""
        self._calls.clear()

    def route_name(self, request: Request) -> str:
        """Group paths by shape: an export job's id becomes {id}."""
        if request.path.startswith(_EXPORTS) and request.path.count("/") == 6:
            head, _, action = request.path[len(_EXPORTS) :].partition("/")
            return f"{_EXPORTS}{{id}}/{action}" if head else request.path
        return request.path

    # ---- request handling -------------------------------------------------------------------

    def handle(self, request: Request, call: int) -> Response:
        """Identity, then authentication, limits and routing, in Marketo's order."""
        if self.faults.take("expire_token") is not None:
            self.expire_tokens()
        if request.path == "/identity/oauth/token" and request.method in ("GET", "POST"):
            return self._identity(request)
        if request.method == "GET" and len(request.path) + len(_raw_query(request)) > URI_MAX:
            return Response(414, "Request-URI Too Long", content_type="text/plain")
        with self._flight_lock:
            busy = self._in_flight >= self.max_concurrent
            if not busy:
                self._in_flight += 1
        try:
            if busy:
                # Checked before the token: the subscription refuses the call before any work.
                return failed("615", MESSAGES["615"])
            if self.response_seconds:
                time.sleep(self.response_seconds)
            try:
                self._authenticate(request)
                self._limit()
                return self._route(request, call)
            except Refused as refused:
                return failed(refused.code, refused.message)
        finally:
            if not busy:
                with self._flight_lock:
                    self._in_flight -= 1

    def _route(self, request: Request, call: int) -> Response:
        method, path = request.method, request.path
        if method == "GET" and path == "/rest/v1/leads/describe.json":
            return ok(result=[spec.describe() for spec in FIELDS.values()])
        if path == "/rest/v1/leads.json" and method == "GET":
            return self._read(request)
        if path == "/rest/v1/leads.json" and method == "POST":
            return self._sync(request, call)
        if method == "GET" and path == "/rest/v1/stats/usage.json":
            return self._usage()
        if method == "GET" and path == "/rest/v1/activities/pagingtoken.json":
            return self._log.paging_token(request)
        if method == "GET" and path == "/rest/v1/activities.json":
            with self.lock:
                return self._log.activities_page(request)
        if method == "GET" and path == "/rest/v1/activities/leadchanges.json":
            with self.lock:
                return self._log.lead_changes_page(request)
        if path.startswith(_EXPORTS):
            return self._export(request)
        raise Refused("610")

    def _export(self, request: Request) -> Response:
        """Bulk Lead Extract: create, enqueue, status, cancel and file of export jobs."""
        method, rest = request.method, request.path[len(_EXPORTS) :]
        try:
            with self.lock:
                if method == "POST" and rest == "create.json":
                    return ok(result=[self.exports.create(json_body(request))])
                export_id, _, action = rest.partition("/")
                if method == "POST" and action == "enqueue.json":
                    fail = self.faults.take("export_failed") is not None
                    leads = [dict(lead) for lead in sorted(self._leads.values(), key=by_id)]
                    return ok(result=[self.exports.enqueue(export_id, leads, fail=fail)])
                if method == "GET" and action == "status.json":
                    return ok(result=[self.exports.status(export_id)])
                if method == "POST" and action == "cancel.json":
                    return ok(result=[self.exports.cancel(export_id)])
                if method == "GET" and action == "file.json":
                    status, content, headers = self.exports.file(
                        export_id, request.headers.get("range")
                    )
                    kind = "text/csv" if status in (200, 206) else "text/plain"
                    return Response(status, content, headers=headers, content_type=kind)
        except ExportRefused as refused:
            raise Refused(refused.code, refused.message) from None
        raise Refused("610")

    def _identity(self, request: Request) -> Response:
        """GET (query) or POST (form) /identity/oauth/token with the client credentials."""
        form = dict(request.query)
        if request.method == "POST" and request.body:
            form |= parse_qs(request.body.decode(), keep_blank_values=True)
        given = {key: values[0] for key, values in form.items() if values}
        if given.get("grant_type") != "client_credentials":
            refusal = {"error": "unsupported_grant_type", "error_description": "Unsupported grant"}
            return Response(400, refusal)
        if given.get("client_id") != self.client_id or not secrets.compare_digest(
            given.get("client_secret", ""), self.client_secret
        ):
            return Response(
                401, {"error": "invalid_client", "error_description": "Bad client credentials"}
            )
        now = time.monotonic()
        with self.lock:
            # "If you call the Identity endpoint before your token has expired, the same token
            # and the remaining lifespan will be returned in the response."
            token = self._current
            if token is None or self._tokens.get(token, 0.0) <= now:
                token = f"{uuid.uuid4()}:{self._pod}"
                self._tokens[token] = now + self.token_seconds
                self._current = token
            remaining = max(int(self._tokens[token] - now), 0)
        body: dict[str, Any] = {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": remaining,
            "scope": self.api_user,
        }
        return Response(body=body)

    def _authenticate(self, request: Request) -> None:
        # Only the Authorization header: Marketo is removing the access_token query parameter.
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        if not token:
            raise Refused("600")
        with self.lock:
            expiry = self._tokens.get(token)
        if expiry is None:
            raise Refused("601")
        if expiry <= time.monotonic():
            raise Refused("602")

    def _limit(self) -> None:
        """The 20-second rate, then the daily quota; a call that passes is counted in both."""
        if self.faults.take("daily_limit") is not None:
            raise Refused("607")
        if self.faults.take("rate_limit") is not None:
            raise Refused("606", self._rate_message())
        now = time.monotonic()
        with self.lock:
            self._calls.forget_before(now - self.window_seconds)
            if self._calls.daily >= self.daily_quota:
                raise Refused("607")
            if len(self._calls.moments) >= self.calls_per_twenty_seconds:
                raise Refused("606", self._rate_message())
            self._calls.moments.append(now)
            self._calls.daily += 1

    def _rate_message(self) -> str:
        return (
            f"Max rate limit '{self.calls_per_twenty_seconds}' exceeded with in "
            f"'{self.window_seconds:g}' secs"
        )

    # ---- usage ------------------------------------------------------------------------------

    def _usage(self) -> Response:
        """Today's API call count for the subscription, as Get Daily Usage reports it."""
        with self.lock:
            used, day = self._calls.daily, self._calls.day
        users = [{"userId": self.api_user, "count": used}] if used else []
        return ok(result=[{"date": day.isoformat(), "total": used, "users": users}])

    # ---- seed data --------------------------------------------------------------------------

    def _create(
        self, object_type: str, rows: list[dict[str, Any]], created: dt.datetime
    ) -> list[str]:
        self._check_object(object_type)
        for row in rows:
            unknown = sorted(set(row) - set(FIELDS) - {"createdAt"})
            if unknown or "id" in row:
                raise ValueError(f"leads have no settable field {(unknown or ['id'])[0]!r}")
        ids = []
        with self.lock:
            for row in rows:
                lead_id = self._next_id
                self._next_id += 1
                moment = row.get("createdAt") or created
                stamp = marketo_time(moment) if isinstance(moment, dt.datetime) else str(moment)
                lead: dict[str, Any] = dict.fromkeys(FIELDS)
                lead |= {k: None if v in (None, "") else str(v) for k, v in row.items()}
                lead |= {"id": lead_id, "createdAt": stamp, "updatedAt": stamp}
                self._leads[lead_id] = lead
                when = moment if isinstance(moment, dt.datetime) else created
                self._log.new_lead(lead_id, when)
                ids.append(str(lead_id))
        return ids

    def _seed(self, records: int) -> None:
        # Created a minute apart up to today's midnight (UTC), like a live instance's leads (and
        # their New Lead activities).
        newest = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        rows = []
        # Lead n works at company n//2 (from 0).
        for n in range(records):
            first, last = _FIRST[n % len(_FIRST)], _LAST[n // len(_FIRST) % len(_LAST)]
            rows.append(
                {
                    "email": f"{first}.{last}@{company_domain(n // 2)}",
                    "firstName": first.title(),
                    "lastName": last.title(),
                    "company": company_name(n // 2),
                    "website": company_website(n // 2) if n % 2 else None,
                    "createdAt": newest - dt.timedelta(minutes=records - 1 - n),
                }
            )
            self.seeded.add(n // 2)
        self._create("leads", rows, newest)

    @staticmethod
    def _check_object(object_type: str) -> None:
        if object_type != "leads":
            raise KeyError(f"the marketo sandbox holds leads, not {object_type!r}")


_EXPORTS = "/bulk/v1/leads/export/"


def _raw_query(request: Request) -> str:
    return "&".join(f"{key}={value}" for key, values in request.query.items() for value in values)
