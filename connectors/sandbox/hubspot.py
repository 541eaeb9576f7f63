"""A HubSpot CRM v3 emulator: objects list, batch read and update, search, properties, lists,
OAuth, limits.

The objects API lives in hubspot_objects, the search and associations reads in hubspot_search and
the Lists API in hubspot_lists (this emulator's base classes); this module authenticates, applies
the rate limits, issues OAuth tokens and seeds records and lists. Every record carries its
modification time (lastmodifieddate on contacts, hs_lastmodifieddate on the others), moved to now
by creation, batch updates and `edit_record`, to the millisecond as HubSpot keeps it.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from connectors.sandbox.hubspot_lists import CrmList, HubSpotLists
from connectors.sandbox.hubspot_objects import (
    BUILTIN_PROPERTIES,
    OBJECT_TYPES,
    CrmObject,
    error,
    stamp,
)

# Re-exported: tests, the demo and the registry know them from this module.
from connectors.sandbox.hubspot_objects import SEGMENT_PROPERTY as SEGMENT_PROPERTY
from connectors.sandbox.hubspot_objects import TEXT_MAX_LENGTH as TEXT_MAX_LENGTH
from connectors.sandbox.hubspot_search import SEARCH_RESULT_CAP, HubSpotSearch
from connectors.sandbox.seeding import (
    company_domain,
    company_name,
    company_website,
)
from connectors.sandbox.server import CallCounts, Request, Response

ACCESS_TOKEN_SECONDS = 1800
_FIRST = ("ada", "brook", "cyrus", "dana", "emil", "freya", "gus", "hana", "ivo", "jun")
_LAST = ("archer", "bell", "costa", "diaz", "ek", "fox", "gray", "hale", "ito", "jones")
# A 429's policyName -> the word its message uses ("You have reached your secondly limit.").
_POLICY_WORDS = {
    "SECONDLY": "secondly",
    "TEN_SECONDLY_ROLLING": "ten_secondly_rolling",
    "DAILY": "daily",
}


@dataclass(frozen=True)
class _RateRefusal:
    """One 429 as HubSpot sends it: `"category": "RATE_LIMITS"` and no `errorType`; the
    `policyName` is there in some real answers and missing in others (`named`)."""

    policy: str
    named: bool = True

    def body(self) -> dict[str, Any]:
        """The answer's JSON body."""
        body: dict[str, Any] = {
            "status": "error",
            "message": f"You have reached your {_POLICY_WORDS[self.policy]} limit.",
            "category": "RATE_LIMITS",
            "correlationId": str(uuid.uuid4()),
        }
        if self.named:
            body["policyName"] = self.policy
        return body


class HubSpotEmulator(HubSpotLists, HubSpotSearch):
    """HubSpot's CRM objects, properties, lists and OAuth endpoints, with its limits and error
    bodies.

    Faults: rate_limit and daily_limit answer the next request(s) with the TEN_SECONDLY_ROLLING
    or DAILY 429 (params: policy=SECONDLY|TEN_SECONDLY_ROLLING|DAILY picks another one, and
    policy_name=False leaves policyName out, as some real 429s do); expire_token makes every
    OAuth access token issued so far expire (private-app tokens never expire in HubSpot, so
    they keep working); record_failure (record_ids=[...], code=category) fails those ids in the
    next batch update with a 207. As in HubSpot, the daily limit and its
    X-HubSpot-RateLimit-Daily* headers apply to the private-app token only; the search endpoints
    have a per-second limit of their own besides (search_requests_per_second).
    """

    name = "hubspot"
    settings = (
        "requests_per_ten_seconds",
        "requests_per_second",
        "daily_limit",
        "window_seconds",
        "leads_enabled",
        "search_requests_per_second",
        "search_result_cap",
        "search_index_seconds",
    )
    requests_per_ten_seconds = 100
    # None: the per-second limit never binds before the ten-second one does.
    requests_per_second: int | None = None
    daily_limit = 250_000
    # The rolling window is 10 s in HubSpot; tests shorten it rather than wait.
    window_seconds = 10.0
    # Whether the portal has the leads object (not every portal does).
    leads_enabled = True
    # HubSpot's search endpoints: five requests per second per account, counted apart from (and
    # besides) the other limits, and at most 10,000 results per query (developers.hubspot.com,
    # "Search the CRM", Limitations).
    search_requests_per_second = 5
    search_result_cap = SEARCH_RESULT_CAP
    # HubSpot's search index follows changes by some seconds (third-party connector docs: Okta
    # Workflows' HubSpot search cards advise waiting 10 s after a create, 60 s after an update);
    # 0 here unless a test sets it, so that reads see what was just written.
    search_index_seconds = 0.0

    def _setup(self) -> None:
        self.private_app_token = f"pat-na1-{uuid.uuid4()}"
        self.client_id = str(uuid.uuid4())
        self.client_secret = str(uuid.uuid4())
        self.refresh_token = f"na1-{secrets.token_hex(16)}"
        self.portal_id = 2_519_445
        self._access_tokens: dict[str, float] = {}  # OAuth token -> monotonic expiry
        self._calls = CallCounts()
        self._searches = CallCounts()  # the search endpoints' own per-second window
        self._objects: dict[str, dict[str, CrmObject]] = {name: {} for name in OBJECT_TYPES}
        # Deleted records: HubSpot archives them, and only `archived=true` reads still see them.
        self._archived: dict[str, dict[str, CrmObject]] = {name: {} for name in OBJECT_TYPES}
        self._next_id = 1001
        self._lists: dict[str, CrmList] = {}
        self._next_list_id = 1
        # What the seed made: "companies" -> the seeded company list, "contacts" -> a contact list.
        self.seeded_lists: dict[str, str] = {}
        self._properties = {
            object_type: {name: self._property(object_type, name) for name in names}
            | {SEGMENT_PROPERTY: self._property(object_type, SEGMENT_PROPERTY, custom=True)}
            for object_type, names in BUILTIN_PROPERTIES.items()
        }

    @property
    def secondly_limit(self) -> int:
        """Requests allowed per second."""
        return self.requests_per_second or self.requests_per_ten_seconds

    # ---- public helpers for tests, the demo and benchmarks ---------------------------------

    def add_records(
        self,
        object_type: str,
        rows: list[dict[str, Any]],
        *,
        created_at: dt.datetime | None = None,
    ) -> list[str]:
        """Create records of `object_type` with these properties, created (and so last modified)
        now or at `created_at`; returns their ids."""
        moment = None if created_at is None else _stamp_of(created_at)
        return self._create(object_type, rows, lambda _: moment or stamp())

    def edit_record(self, object_type: str, record_id: str, properties: dict[str, Any]) -> None:
        """Someone edits the record in HubSpot: these properties change and so does its last
        modification time (KeyError for an unknown record)."""
        with self.lock:
            found = self._objects[object_type][record_id]
            found.properties.update(
                {k: None if v is None else str(v) for k, v in properties.items()}
            )
            found.updated_at = stamp()

    def _create(
        self, object_type: str, rows: list[dict[str, Any]], created: Callable[[int], str]
    ) -> list[str]:
        """The records made, each stamped `created(its number)`."""
        with self.lock:
            ids = []
            for row in rows:
                record_id = str(self._next_id)
                self._next_id += 1
                moment = created(self._next_id)
                properties = {key: None if v is None else str(v) for key, v in row.items()}
                self._objects[object_type][record_id] = CrmObject(
                    record_id, properties, moment, moment
                )
                ids.append(record_id)
            return ids

    def _stored(self, object_type: str, record_id: str) -> dict[str, Any]:
        # With every property and association.
        found = self._objects[object_type][record_id]
        return self._render(object_type, found, None, list(found.links))

    def delete_record(self, object_type: str, record_id: str) -> None:
        """Delete (archive) a record: lists, reads and updates no longer find it."""
        with self.lock:
            self._archived[object_type][record_id] = self._objects[object_type].pop(record_id)

    def associate(self, contact_id: str, company_id: str, object_type: str = "contacts") -> None:
        """Associate a contact (or a record of `object_type`) with a company."""
        with self.lock:
            if company_id not in self._objects["companies"]:
                raise KeyError(f"no company {company_id}")
            links = self._objects[object_type][contact_id].links.setdefault("companies", [])
            if company_id not in links:
                links.append(company_id)

    def add_sample_records(self, object_type: str, rows: list[dict[str, Any]]) -> list[str]:
        """Create the records; a row's `associatedcompanyid` associates it with that company.

        An association is a link between records, not a property: `associate` makes it.
        """
        links = [row.get("associatedcompanyid") for row in rows]
        properties = [{k: v for k, v in row.items() if k != "associatedcompanyid"} for row in rows]
        ids = self.add_records(object_type, properties)
        for record_id, company_id in zip(ids, links, strict=True):
            if company_id:
                self.associate(record_id, company_id, object_type)
        return ids

    def expire_tokens(self) -> None:
        """Make every OAuth access token issued so far expire now."""
        with self.lock:
            now = time.monotonic()
            self._access_tokens = {token: now for token in self._access_tokens}

    def describe(self) -> dict[str, Any]:
        """base_url, a private-app access_token, the OAuth app, each object's segment property."""
        objects = [name for name in OBJECT_TYPES if self._object_type(name)]
        return {
            "base_url": self.base_url,
            "access_token": self.private_app_token,
            "oauth": {
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "refresh_token": self.refresh_token,
            },
            "fields": dict.fromkeys(objects, SEGMENT_PROPERTY),
            # The seeded lists' ids by object ({} when nothing was seeded).
            "lists": dict(self.seeded_lists),
        }

    def forget_usage(self) -> None:
        """Forget the rate-limit usage."""
        self._calls.clear()
        self._searches.clear()

    def route_name(self, request: Request) -> str:
        """Group paths by shape: record ids and property names become placeholders."""
        path = re.sub(r"/\d+(?=/|$)", "/{id}", request.path)
        return re.sub(r"^(/crm/v3/properties/[^/]+)/[^/]+$", r"\1/{propertyName}", path)

    # ---- request handling -------------------------------------------------------------------

    def handle(self, request: Request, call: int) -> Response:
        """Authenticate, apply faults and rate limits, then route."""
        if self.faults.take("expire_token") is not None:
            self.expire_tokens()
        if request.method == "POST" and request.path == "/oauth/v1/token":
            return self._token(request)
        private, denied = self._authenticate(request)
        if denied is not None:
            return denied
        limited, headers = self._rate_limit(private, searching=_is_search(request))
        response = limited or self._route(request, call)
        response.headers.update(headers)
        return response

    def _route(self, request: Request, call: int) -> Response:
        parts = [part for part in request.path.split("/") if part]
        if request.method == "GET" and parts == ["account-info", "v3", "details"]:
            return Response(body=self._account())
        if len(parts) >= 4 and parts[:3] == ["crm", "v3", "objects"]:
            object_type = self._object_type(parts[3])
            if object_type is None:
                return error(400, f"Unable to infer object type from: {parts[3]}", None)
            if request.method == "GET" and len(parts) == 4:
                return self._list(request, object_type)
            if request.method == "POST" and parts[4:] == ["batch", "update"]:
                return self._batch_update(request, object_type, call)
            if request.method == "POST" and parts[4:] == ["batch", "read"]:
                return self._batch_read(request, object_type)
            if request.method == "POST" and parts[4:] == ["search"]:
                return self._search(request, object_type)
        if (
            request.method == "POST"
            and parts[:3] == ["crm", "v4", "associations"]
            and parts[5:] == ["batch", "read"]
        ):
            from_type, to_type = self._object_type(parts[3]), self._object_type(parts[4])
            if from_type is None or to_type is None:
                unknown = parts[3] if from_type is None else parts[4]
                return error(400, f"Unable to infer object type from: {unknown}", None)
            return self._batch_associations(request, from_type, to_type)
        if parts[:3] == ["crm", "v3", "lists"]:
            answer = self._route_lists(request, parts)
            if answer is not None:
                return answer
        if request.method == "GET" and len(parts) == 5 and parts[:3] == ["crm", "v3", "properties"]:
            object_type = self._object_type(parts[3])
            if object_type is None:
                return error(400, f"Unable to infer object type from: {parts[3]}", None)
            found = self._properties[object_type].get(parts[4])
            if found is None:
                message = f"Unable to find property {parts[4]} on object type {object_type}"
                return error(404, message, "OBJECT_NOT_FOUND")
            return Response(body=found)
        return error(404, f"No route for {request.method} {request.path}", "OBJECT_NOT_FOUND")

    def _authenticate(self, request: Request) -> tuple[bool, Response | None]:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        if token and secrets.compare_digest(token, self.private_app_token):
            return True, None
        with self.lock:
            expires = self._access_tokens.get(token) if token else None
        if expires is not None and time.monotonic() < expires:
            return False, None
        if expires is not None:
            ago = int(time.monotonic() - expires)
            message = f"The OAuth token used to make this call expired {ago} second(s) ago."
            return False, error(401, message, "EXPIRED_AUTHENTICATION")
        message = (
            "Authentication credentials not found. This API supports OAuth 2.0 authentication "
            "and you can find more details at https://developers.hubspot.com/docs/methods/auth/"
            "oauth-overview"
        )
        return False, error(401, message, "INVALID_AUTHENTICATION")

    def _rate_limit(
        self, private: bool, searching: bool = False
    ) -> tuple[Response | None, dict[str, str]]:
        """HubSpot's per-second and rolling ten-second limits for every app, the daily one for
        private apps, and the search endpoints' own per-second one; the headers of every answer
        report the first three."""
        now = time.monotonic()
        with self.lock:
            self._calls.forget_before(now - self.window_seconds)
            self._searches.forget_before(now - 1.0)
            last_second = sum(1 for moment in self._calls.moments if moment > now - 1.0)
            refusal = self._injected_refusal() or self._spent(private, last_second)
            if refusal is None and searching:
                refusal = self._searches_spent()
            if refusal is None:
                self._calls.moments.append(now)
                self._calls.daily += int(private)
                last_second += 1
                if searching:
                    self._searches.moments.append(now)
            headers = {
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(self.window_seconds * 1000)),
                "X-HubSpot-RateLimit-Max": str(self.requests_per_ten_seconds),
                "X-HubSpot-RateLimit-Remaining": str(
                    max(0, self.requests_per_ten_seconds - len(self._calls.moments))
                ),
                # The per-second pair (developers.hubspot.com changelog 2018-11-06, "Rate limit
                # information headers"; developers.hubspot.com/docs/api/usage-details).
                "X-HubSpot-RateLimit-Secondly": str(self.secondly_limit),
                "X-HubSpot-RateLimit-Secondly-Remaining": str(
                    max(0, self.secondly_limit - last_second)
                ),
            }
            # HubSpot sends the daily pair only to private apps: OAuth apps have no daily limit.
            if private:
                headers["X-HubSpot-RateLimit-Daily"] = str(self.daily_limit)
                headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(
                    max(0, self.daily_limit - self._calls.daily)
                )
        if refusal is None:
            return None, headers
        return Response(429, refusal.body()), headers

    def _spent(self, private: bool, last_second: int) -> _RateRefusal | None:
        if private and self._calls.daily >= self.daily_limit:
            return _RateRefusal("DAILY")
        if len(self._calls.moments) >= self.requests_per_ten_seconds:
            return _RateRefusal("TEN_SECONDLY_ROLLING")
        if last_second >= self.secondly_limit:
            # Recorded real secondly 429s carry no policyName, only the category.
            return _RateRefusal("SECONDLY", named=False)
        return None

    def _searches_spent(self) -> _RateRefusal | None:
        # HubSpot documents the limit, not its 429's body: the secondly one's is assumed.
        if len(self._searches.moments) >= self.search_requests_per_second:
            return _RateRefusal("SECONDLY", named=False)
        return None

    def _injected_refusal(self) -> _RateRefusal | None:
        """The 429 a daily_limit or rate_limit fault asks for, if one is due."""
        daily = self.faults.take("daily_limit")
        fault = daily or self.faults.take("rate_limit")
        if fault is None:
            return None
        default = "DAILY" if daily is not None else "TEN_SECONDLY_ROLLING"
        policy = str(fault.params.get("policy", default)).upper()
        if policy not in _POLICY_WORDS:
            policy = default
        return _RateRefusal(policy, named=bool(fault.params.get("policy_name", True)))

    def _token(self, request: Request) -> Response:
        form = {key: values[0] for key, values in parse_qs(request.body.decode()).items()}
        if form.get("grant_type") != "refresh_token":
            return Response(400, {"status": "BAD_GRANT_TYPE", "message": "unsupported grant"})
        if form.get("client_id") != self.client_id or not secrets.compare_digest(
            form.get("client_secret", ""), self.client_secret
        ):
            return Response(
                400, {"status": "BAD_CLIENT_ID", "message": "missing or invalid client id"}
            )
        if not secrets.compare_digest(form.get("refresh_token", ""), self.refresh_token):
            message = "missing or invalid refresh token"
            return Response(400, {"status": "BAD_REFRESH_TOKEN", "message": message})
        token = f"CN{secrets.token_urlsafe(48)}"
        with self.lock:
            self._access_tokens[token] = time.monotonic() + ACCESS_TOKEN_SECONDS
        body = {
            "token_type": "bearer",
            "refresh_token": self.refresh_token,
            "access_token": token,
            "expires_in": ACCESS_TOKEN_SECONDS,
        }
        return Response(body=body)

    def _account(self) -> dict[str, Any]:
        return {
            "portalId": self.portal_id,
            "accountType": "SANDBOX",
            "timeZone": "US/Eastern",
            "companyCurrency": "USD",
            "additionalCurrencies": [],
            "utcOffset": "-05:00",
            "utcOffsetMilliseconds": -18_000_000,
            "uiDomain": "app.hubspot.com",
            "dataHostingLocation": "na1",
        }

    # ---- seed data and definitions ----------------------------------------------------------

    def _seed(self, records: int) -> None:
        """Company n (from 0); contact n works at company n//2, and every third is associated
        with it; with leads, lead n (every fourth n) is associated with company n//2. Lists: a
        MANUAL company list of every third company (n = 0, 3, 6, ...) and a DYNAMIC contact list
        of the contacts associated with a company (`seeded_lists`)."""
        # Seeded records were made long ago, one second apart from the sandbox's epoch on.
        long_ago: Callable[[int], str] = stamp
        companies = self._create(
            "companies",
            [
                {"name": company_name(n), "domain": company_domain(n)}
                | ({"website": company_website(n)} if n % 2 else {})
                for n in range(records)
            ],
            long_ago,
        )
        for n, company_id in enumerate(companies):
            self.seeded.add(n, {"hubspot": company_id})
        rows = []
        for n in range(records):
            first, last = _FIRST[n % len(_FIRST)], _LAST[n // len(_FIRST) % len(_LAST)]
            # Every tenth person uses a free-mail address, which must never match an account.
            domain = "gmail.com" if n % 10 == 9 else company_domain(n // 2)
            rows.append(
                {
                    "email": f"{first}.{last}{n}@{domain}",
                    "firstname": first.title(),
                    "lastname": last.title(),
                    "company": company_name(n // 2),
                }
            )
        contacts = self._create("contacts", rows, long_ago)
        for n, contact_id in enumerate(contacts):
            if n % 3 == 0:
                self.associate(contact_id, companies[n // 2])
        self.seeded_lists["companies"] = self.add_list(
            "Target accounts", "companies", companies[::3]
        )
        self.seeded_lists["contacts"] = self.add_list(
            "Associated contacts", "contacts", contacts[::3], processing_type="DYNAMIC"
        )
        if self.leads_enabled:
            leads = self._create(
                "leads",
                [{"hs_lead_name": f"Lead {n}"} for n in range(0, records, 4)],
                long_ago,
            )
            for lead_id, n in zip(leads, range(0, records, 4), strict=True):
                self.associate(lead_id, companies[n // 2], object_type="leads")


def _is_search(request: Request) -> bool:
    """A call to a search endpoint (`POST /crm/v3/objects/{objectType}/search`)."""
    return (
        request.method == "POST"
        and re.fullmatch(r"/crm/v3/objects/[^/]+/search", request.path) is not None
    )


def _stamp_of(moment: dt.datetime) -> str:
    """`moment` as HubSpot writes a timestamp (UTC, milliseconds)."""
    utc = moment.astimezone(dt.UTC)
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")
