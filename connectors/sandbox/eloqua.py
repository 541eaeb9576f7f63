"""An Oracle Eloqua emulator: /id discovery, REST 1.0 contacts and contact fields, Bulk 2.0 imports
(those in eloqua_bulk, this emulator's base class; fields and contacts in eloqua_model).

What it follows (docs.oracle.com/cloud/latest/marketingcs_gs/OMCAC and .../OMCAB):
- `GET /id` ("Determining base URLs") answers site, user and urls (base, apis.rest.standard/bulk)
  for Basic ("Site\\User:password") or Bearer credentials, and "Not authenticated." otherwise.
- `GET /api/REST/1.0/data/contacts` and `/assets/contact/fields` page with count (1-1000), page
  and depth, answering {"elements", "page", "pageSize", "total"}; custom field values come in
  `fieldValues` keyed by the field's id, not its internal name. A contacts search that matches
  nothing answers 204 with no body ("No matching contacts were found in the search").
- Contacts carry `createdAt` / `updatedAt` as epoch seconds in strings; the system fields
  C_DateCreated / C_DateModified hold the same moments. C_DateModified moves on creation, on an
  edit by someone else (`edit_contact`) and on every row an import sync writes.
- `search={term}{operator}{value}` ("Using the search URL parameter"): `id`, a text field (= or
  != with `*` wildcards), or C_DateCreated / C_DateModified compared (=, !=, >, <, >=, <=) with
  'YYYY-MM-DD HH:MM:SS' or 'YYYY-MM-DD'. The emulator reads those moments as US Eastern wall
  time, Eloqua's server time (Oracle's pages do not say which zone a search means; see
  connectors/eloqua_time.py), and refuses any other term (the `updatedAt` property is
  searchable on /assets endpoints, not on this /data one) or value with a 400.
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
import operator
import re
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from connectors.sandbox.eloqua_bulk import EloquaBulk
from connectors.sandbox.eloqua_model import (
    CREATED_FIELD,
    FIELDS,
    MODIFIED_FIELD,
    PAGE_MAX,
    Contact,
    Field,
    field_named,
    now_stamp,
    search_moment,
)

# Re-exported: tests, the demo and the registry know them from this module.
from connectors.sandbox.eloqua_model import LARGE_TEXT_MAX as LARGE_TEXT_MAX
from connectors.sandbox.eloqua_model import SEGMENT_FIELD as SEGMENT_FIELD
from connectors.sandbox.eloqua_model import SEGMENT_FIELD_LONG as SEGMENT_FIELD_LONG
from connectors.sandbox.eloqua_model import SMALL_TEXT_MAX as SMALL_TEXT_MAX
from connectors.sandbox.seeding import SamplePeople, company_domain, company_name
from connectors.sandbox.server import Request, Response

NOT_AUTHENTICATED = '"Not authenticated."'
_REST = "/api/rest/1.0"
_SEARCH = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|!=|=|>|<)\s*'?(.*?)'?\s*$")
# The date fields a search compares, and which stamp of a contact each one holds.
_DATE_TERMS: dict[str, Callable[[Contact], int]] = {
    CREATED_FIELD.lower(): lambda contact: contact.created_at,
    MODIFIED_FIELD.lower(): lambda contact: contact.updated_at,
}
_FIRST = ("ada", "brook", "cyrus", "dana", "emil", "freya", "gus", "hana", "ivo", "jun")
_LAST = ("archer", "bell", "costa", "diaz", "ek", "fox", "gray", "hale", "ito", "jones")
_EPOCH = 1_704_067_200  # 2024-01-01T00:00:00Z
# What a list endpoint pages through: contacts or contact fields.
_Item = TypeVar("_Item")
_COMPARISONS: dict[str, Callable[[int, int], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
}


def _render_field(known: Field, depth: str) -> dict[str, Any]:
    # A contact field as Eloqua's field list renders it; partial and complete add its details.
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
    return item


def _writable_field(name: str) -> Field:
    """The contact field a person or seed can set; KeyError for unknown and system fields."""
    known = field_named(name)
    if known is None:
        raise KeyError(f"no contact field {name}")
    if known.read_only:
        raise KeyError(f"contact field {known.internal_name} is set by Eloqua itself")
    return known


def _parameter_error(parameter: str, requirement: str, value: str | None) -> Response:
    """An application API 400: the typed validation error naming the parameter."""
    body = {
        "type": "EndpointParameterError",
        "parameter": parameter,
        "requirement": {"type": requirement},
        "value": value,
    }
    return Response(400, [body])


class EloquaEmulator(EloquaBulk):
    """One Eloqua instance: discovery, contacts, contact fields and Bulk 2.0 contact imports."""

    name = "eloqua"
    settings = ("sync_seconds",)

    def _setup(self) -> None:
        super()._setup()
        self.site = "SegsyncSandbox"
        self.site_id = 42
        self.username = "api.user"
        self.password = secrets.token_urlsafe(18)
        self.access_token = secrets.token_urlsafe(48)
        self._fields = {f.internal_name.lower(): f for f in FIELDS}
        self._contacts: dict[str, Contact] = {}
        self._next_contact = 1001
        self._session_expired = False

    # ---- public helpers for tests, the demo and benchmarks ---------------------------------

    # The demo's sample people are contacts: one per email address, and with no website field.
    sample_people = SamplePeople(
        "contacts",
        SEGMENT_FIELD,
        {
            "email": "C_EmailAddress",
            "first": "C_FirstName",
            "last": "C_LastName",
            "company": "C_Company",
        },
        first_id=1001,
        unique_emails=True,
    )

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
                    known = _writable_field(key)
                    if value not in (None, ""):
                        values[known.internal_name] = str(value)
                stamp = now_stamp()
                self._contacts[contact_id] = Contact(contact_id, values, account_id, stamp, stamp)
                ids.append(contact_id)
        return ids

    def edit_contact(self, contact_id: str, fields: dict[str, str | None]) -> None:
        """Change fields of a contact (REST or internal names) as a user of Eloqua's screens
        would: C_DateModified / updatedAt moves to now. KeyError for an unknown contact or field."""
        with self.lock:
            contact = self._contacts[contact_id]
            changes = {_writable_field(name).internal_name: value for name, value in fields.items()}
            for internal, value in changes.items():
                if value in (None, ""):
                    contact.fields.pop(internal, None)
                else:
                    contact.fields[internal] = str(value)
            contact.updated_at = now_stamp()

    def _stored(self, object_type: str, record_id: str) -> dict[str, Any]:
        # id, accountId and every field by internal name (None when blank).
        self._check_object(object_type)
        contact = self._contacts[record_id]
        fields = {f.internal_name: contact.fields.get(f.internal_name) for f in FIELDS}
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
        credentials = ("site", "username", "password", "access_token")
        return {
            "base_url": self.base_url,
            "login_url": self.base_url,
            **{name: getattr(self, name) for name in credentials},
            "fields": {"contacts": SEGMENT_FIELD},
        }

    def forget_usage(self) -> None:
        """Forget an expired session."""
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
        answer = self._bulk_route(request, path, call)
        if answer is not None:
            return answer
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

    def _listed(
        self,
        request: Request,
        chosen: Callable[[], list[_Item] | Response],
        render: Callable[[_Item, str], dict[str, Any]],
    ) -> Response:
        """The requested page of `chosen()`, each rendered at the requested depth, as Eloqua's
        list endpoints answer (a bad count, page or search gets its parameter error)."""
        paging = self._paging(request)
        if isinstance(paging, Response):
            return paging
        count, page = paging
        depth = (request.param("depth") or "minimal").lower()
        with self.lock:
            items = chosen()
            if isinstance(items, Response):
                return items
            elements = [render(item, depth) for item in items[(page - 1) * count :][:count]]
        body = {"elements": elements, "page": page, "pageSize": count, "total": len(items)}
        return Response(body=body)

    def _list_contacts(self, request: Request) -> Response:
        search = request.param("search")

        def chosen() -> list[Contact] | Response:
            contacts = sorted(self._contacts.values(), key=lambda c: int(c.id))
            if not search:
                return contacts
            matcher = self._contact_matcher(search)
            if isinstance(matcher, Response):
                return matcher
            return [c for c in contacts if matcher(c)]

        answer = self._listed(request, chosen, self._render_contact)
        if search and answer.status == 200 and answer.body["total"] == 0:
            return Response(204)
        return answer

    def _contact_matcher(self, search: str) -> Callable[[Contact], bool] | Response:
        match = _SEARCH.match(search)
        if match is None:
            return _parameter_error("search", "SyntaxRequirement", search)
        term, comparison, wanted = match.groups()
        if term.lower() == "id":
            if not wanted.isdigit():
                return _parameter_error("search", "IdRequirement", search)
            number, compare = int(wanted), _COMPARISONS[comparison]
            return lambda contact: compare(int(contact.id), number)
        stamp = _DATE_TERMS.get(term.lower())
        if stamp is not None:
            moment = search_moment(wanted)
            if moment is None:
                return _parameter_error("search", "DateRequirement", search)
            compare_stamps = _COMPARISONS[comparison]
            return lambda contact: compare_stamps(stamp(contact), moment)
        known = field_named(term)
        if known is None or comparison not in ("=", "!="):
            return _parameter_error("search", "SyntaxRequirement", search)
        pattern = re.compile(
            "^" + ".*".join(re.escape(part) for part in wanted.split("*")) + "$", re.IGNORECASE
        )

        def matches(contact: Contact) -> bool:
            found = bool(pattern.match(contact.fields.get(known.internal_name, "")))
            return found if comparison == "=" else not found

        return matches

    def _render_contact(self, contact: Contact, depth: str) -> dict[str, Any]:
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
        for known in FIELDS:
            if known.rest_name and known.internal_name in contact.fields:
                rendered[known.rest_name] = contact.fields[known.internal_name]
        if contact.account_id:
            rendered["accountId"] = contact.account_id
        if rendered["depth"] == "complete":
            values = []
            for known in FIELDS:
                if known.standard:
                    continue
                item = {"type": "FieldValue", "id": known.id}
                if known.internal_name in contact.fields:
                    item["value"] = contact.fields[known.internal_name]
                values.append(item)
            rendered["fieldValues"] = values
        return rendered

    def _list_fields(self, request: Request) -> Response:
        return self._listed(request, lambda: list(FIELDS), _render_field)

    # ---- seed data --------------------------------------------------------------------------

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
