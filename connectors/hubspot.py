"""HubSpot adapter: contacts, companies and leads through hubspot-api-client.

The SDK builds the CRM requests and parses their answers, but its HTTP layer is one `requests`
session (see `_SdkRestClient`), shared with the OAuth refresh call. Reads are the exception: pages
and batch reads are sent through the same session and read from their JSON directly, because the
SDK's per-record model objects (and their dateutil timestamps) cost most of a read's CPU (issue 15:
paging through 20,000 contacts and batch-reading them took 4.4 CPU seconds, now 0.45).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import requests
from hubspot import HubSpot  # type: ignore[import-untyped]
from hubspot.crm.lists.exceptions import (  # type: ignore[import-untyped]
    OpenApiException as ListsClientError,
)
from hubspot.crm.objects import (  # type: ignore[import-untyped]
    BatchInputSimplePublicObjectBatchInput,
    SimplePublicObjectBatchInput,
)
from hubspot.crm.objects.exceptions import (  # type: ignore[import-untyped]
    OpenApiException as ObjectsClientError,
)
from hubspot.crm.properties.exceptions import (  # type: ignore[import-untyped]
    OpenApiException as PropertiesClientError,
)

from connectors.base import Connector, FieldInfo, Record, Update, WriteResult
from connectors.errors import ConnectorError, DailyQuotaError, FatalError, RetryableError
from connectors.http import (
    AccessToken,
    VendorHttp,
    json_object,
    redact,
    require_one_login,
    require_web_url,
    retry_after,
)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.hubapi.com"
# HubSpot text properties hold up to 65,536 characters when written through the CRM
# (knowledge.hubspot.com, "Property field types in HubSpot"); the properties API does not say so.
STRING_MAX_LENGTH = 65_536
PAGE_SIZE = 100
# Seconds to wait for an answer.
_TIMEOUT = 60.0
# Refresh an OAuth access token this long before its expires_in runs out.
_REFRESH_MARGIN = 60.0
# The SDK's exception classes differ per API package; both derive from their own OpenApiException.
_CLIENT_ERRORS = (ObjectsClientError, PropertiesClientError, ListsClientError)
# Properties read besides the target field, per object, to match records to accounts.
_MATCH_PROPERTIES = {
    "contacts": ("email", "website"),
    "companies": ("domain", "website"),
    "leads": (),
}
_VALUES_REFUSED = "Property values were not valid:"
_ONE_LOGIN = (
    "a hubspot connection needs either access_token (private app) or "
    "client_id, client_secret and refresh_token (OAuth app)"
)
# Value errors that no record can avoid: the field itself is wrong, so the run stops.
_FIELD_ERRORS = {"PROPERTY_DOESNT_EXIST": "not found", "READ_ONLY_VALUE": "is read-only"}
# What a read's answer is parsed into.
_Parsed = TypeVar("_Parsed")
# The User-Agent the SDK's calls carry; the JSON reads send the same.
_USER_AGENT = "segsync (hubspot-api-client)"


@dataclass(frozen=True)
class HubSpotConfig:
    """One HubSpot account: a private app's access token, or an OAuth app's refresh token."""

    access_token: str | None = field(default=None, repr=False)
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    base_url: str = DEFAULT_BASE_URL
    # CA file that verifies base_url's certificate (the sandbox's); None trusts the system CAs.
    ca_bundle: str | None = None

    def __post_init__(self) -> None:
        oauth = (self.client_id, self.client_secret, self.refresh_token)
        require_one_login(self.access_token, oauth, _ONE_LOGIN)
        require_web_url("hubspot", "base_url", self.base_url)

    @property
    def oauth(self) -> bool:
        """True when tokens come from the OAuth refresh flow."""
        return not self.access_token


class _HttpError(Exception):
    """A non-2xx answer. The SDK only catches its own ApiException, so this passes through it."""

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        super().__init__(status)
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> dict[str, Any]:
        """The body as a JSON object ({} when it is not one)."""
        return json_object(self.body)


class _SdkResponse:
    """The parts of urllib3's response the SDK's ApiClient reads."""

    def __init__(self, response: requests.Response) -> None:
        self.status = response.status_code
        self.reason = response.reason
        self.data: bytes | str = response.content
        self._headers = response.headers

    def getheaders(self) -> Mapping[str, str]:
        """Every response header."""
        return self._headers

    def getheader(self, name: str, default: str | None = None) -> str | None:
        """One response header."""
        return self._headers.get(name, default)


class _SdkRestClient:
    """Stands in for the SDK's urllib3 `RESTClientObject` (`ApiClient.rest_client`).

    Why: `responses` (our unit-test tool) only intercepts requests; the OAuth refresh needs
    requests anyway, so one session holds the CA file, proxies-from-env off, connection reuse
    and the retry policy; urllib3 exceptions no longer escape the SDK untyped; and every call
    is counted, authenticated and re-authenticated in one place.
    """

    def __init__(self, send: Callable[..., requests.Response]) -> None:
        self._send = send

    def GET(self, url: str, **options: Any) -> _SdkResponse:
        """What ApiClient.request calls for GET."""
        return self._request("GET", url, **options)

    def POST(self, url: str, **options: Any) -> _SdkResponse:
        """What ApiClient.request calls for POST (a JSON body)."""
        return self._request("POST", url, **options)

    def _request(
        self,
        method: str,
        url: str,
        headers: dict[str, str] | None = None,
        query_params: list[tuple[str, Any]] | None = None,
        body: Any = None,
        # post_params, _preload_content and _request_timeout: the session decides those.
        **_ignored: Any,
    ) -> _SdkResponse:
        payload = None if body is None else json.dumps(body)
        return _SdkResponse(self._send(method, url, headers or {}, query_params, payload))


class HubSpotConnector(Connector):
    """Contacts, companies and leads of one HubSpot account, 100 records per call."""

    system = "hubspot"
    objects = ("contacts", "companies", "leads")
    batch_size = 100
    reads_modified = True

    def __init__(self, config: HubSpotConfig) -> None:
        super().__init__()
        self._config = config
        self._base_url = config.base_url.rstrip("/")
        self._token = AccessToken(
            self._refresh if config.oauth else None, given=config.access_token
        )
        self._refresh_token = config.refresh_token
        # HubSpot's rolling window, until a response says otherwise.
        self._interval = 10.0
        self._daily_seen = False
        self._http = VendorHttp(
            self,
            ca_bundle=config.ca_bundle,
            timeout=_TIMEOUT,
            on_answer=lambda response: self._note_limits(response.headers),
            proxies_from_environment=False,
        )
        client = HubSpot(api_factory=self._api_factory)
        self._batch_api = client.crm.objects.batch_api
        self._properties_api = client.crm.properties.core_api
        # Lists v3, for company lists' members (connectors/hubspot_members.py).
        self._lists_api = client.crm.lists.lists_api
        self._memberships_api = client.crm.lists.memberships_api

    def __repr__(self) -> str:
        auth = "oauth" if self._config.oauth else "private_app"
        return f"HubSpotConnector(base_url={self._base_url!r}, auth={auth!r})"

    # ---- the interface ----------------------------------------------------------------------

    def check_credentials(self) -> None:
        """Get a token (OAuth) and read the account's details with it."""
        url = f"{self._base_url}/account-info/v3/details"
        self._call(
            lambda: self._send("GET", url, {"Accept": "application/json"}, None, None),
            what="checking the credentials",
        )

    def _describe_field(self, object_type: str, field: str) -> FieldInfo:
        """The property's type; string properties hold STRING_MAX_LENGTH characters."""
        found = self._call(
            lambda: self._properties_api.get_by_name(object_type, field),
            what=f"describing {field} on {object_type}",
            object_type=object_type,
            field=field,
        )
        metadata = found.modification_metadata
        read_only = bool(metadata and metadata.read_only_value) or bool(found.calculated)
        return FieldInfo(
            object_type=object_type,
            name=str(found.name),
            type=str(found.type),
            max_length=STRING_MAX_LENGTH if found.type == "string" else None,
            writable=not read_only,
            label=found.label,
        )

    def _read_records(self, object_type: str, field: str) -> Iterator[Record]:
        """Every record of the object with the field, email/website and its company, lazily."""
        return self._pages(object_type, field)

    def _read_modified(self, object_type: str, field: str, since: dt.datetime) -> Iterator[Record]:
        """The records modified after `since`, through the CRM search API (hubspot_search)."""
        # Imported here: hubspot_search builds on this module.
        from connectors.hubspot_search import modified_records

        return modified_records(self, object_type, field, since)

    def _read_values(
        self, object_type: str, field: str, record_ids: Sequence[str]
    ) -> dict[str, str | None]:
        """One batch/read call for up to 100 ids; ids HubSpot cannot find are left out."""
        found = self._read_properties(
            object_type, record_ids, [field], what=f"reading {field} of {object_type}", field=field
        )
        return {record_id: values.get(field) or None for record_id, values in found.items()}

    def _read_properties(
        self,
        object_type: str,
        record_ids: Sequence[str],
        properties: Sequence[str],
        *,
        what: str,
        field: str | None = None,
    ) -> dict[str, dict[str, str | None]]:
        """One batch/read call for up to 100 ids: each found record's properties by its id."""
        wanted = list(dict.fromkeys(record_ids))
        batch = {
            "inputs": [{"id": record_id} for record_id in wanted],
            "properties": list(properties),
            "propertiesWithHistory": [],  # no history is wanted
        }
        path = f"/crm/v3/objects/{object_type}/batch/read"
        found: dict[str, dict[str, str | None]] = self._call(
            partial(
                self._read_json,
                "POST",
                path,
                partial(self._found_properties, object_type, set(wanted)),
                body=batch,
            ),
            what=what,
            object_type=object_type,
            field=field,
        )
        return found

    def _found_properties(
        self, object_type: str, asked: set[str], answer: Mapping[str, Any]
    ) -> dict[str, dict[str, str | None]]:
        """A batch read's answer: each record asked for, with its properties, by its id."""
        # A 207 lists the ids it could not find under OBJECT_NOT_FOUND: those are simply absent.
        # Any other error leaves a record's value unknown, and the caller would take an absent
        # record for a deleted one, so the whole read is to be tried again instead.
        for error in _objects(answer.get("errors"), "errors"):
            category = str(error.get("category") or "ERROR")
            if category != "OBJECT_NOT_FOUND":
                message = self._clean(str(error.get("message") or ""))
                raise RetryableError(
                    f"hubspot could not read some {object_type} ({category}): {message}",
                    code=category,
                )
        values: dict[str, dict[str, str | None]] = {}
        for item in _results(answer):
            record_id = str(item["id"])
            # Only ids asked for count: a merged-away id may come back as the surviving record's
            # id, which says nothing about the id asked for (it no longer exists on its own).
            if record_id in asked:
                values[record_id] = _properties(item)
        return values

    def _write_batch(
        self, object_type: str, field: str, updates: Sequence[Update]
    ) -> list[WriteResult]:
        """One batch/update call; invalid values are isolated by splitting the batch."""
        outcomes: dict[str, WriteResult] = {}
        self._write(object_type, field, list(updates), outcomes)
        return [outcomes[update.record_id] for update in updates]

    # ---- reading ----------------------------------------------------------------------------

    def _pages(self, object_type: str, field: str) -> Iterator[Record]:
        properties = sorted({field, *_MATCH_PROPERTIES[object_type]})
        # The query the SDK's get_page sends: limit, after, then each property and association.
        options: list[tuple[str, Any]] = [("properties", name) for name in properties]
        if object_type != "companies":
            options.append(("associations", "companies"))
        after: str | None = None
        while True:
            query = [("limit", PAGE_SIZE), *([("after", after)] if after else []), *options]
            records, after = self._read_page(
                partial(
                    self._call,
                    partial(
                        self._read_json,
                        "GET",
                        f"/crm/v3/objects/{object_type}",
                        partial(self._page, object_type, field),
                        params=query,
                    ),
                    what=f"reading {object_type}",
                    object_type=object_type,
                )
            )
            yield from records
            if after is None:
                return

    def _read_json(
        self,
        method: str,
        path: str,
        parse: Callable[[dict[str, Any]], _Parsed],
        *,
        params: list[tuple[str, Any]] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> _Parsed:
        """One read call, its JSON answer `parse`d; an unreadable one raises ValueError."""
        headers = {"Accept": "application/json", "User-Agent": _USER_AGENT}
        if body is not None:
            headers["Content-Type"] = "application/json"
        payload = None if body is None else json.dumps(body)
        response = self._send(method, f"{self._base_url}{path}", headers, params, payload)
        answer = json.loads(response.content)
        if not isinstance(answer, dict):
            raise ValueError("the answer is not a JSON object")
        return parse(answer)

    @classmethod
    def _page(
        cls, object_type: str, field: str, answer: Mapping[str, Any]
    ) -> tuple[list[Record], str | None]:
        """A page's records and the cursor of the next page (None after the last)."""
        records = [cls._record(object_type, field, item) for item in _results(answer)]
        following = (answer.get("paging") or {}).get("next") or {}
        after = following.get("after")
        return records, str(after) if after else None

    @staticmethod
    def _record(object_type: str, field: str, item: Mapping[str, Any]) -> Record:
        properties = _properties(item)
        record_id = str(item["id"])
        value = properties.get(field) or None  # HubSpot returns "" for a cleared value
        if object_type == "companies":
            website = properties.get("domain") or properties.get("website") or None
            return Record(record_id, value, website=website, linked_account_id=record_id)
        company = _first_company(object_type, item.get("associations"))
        if object_type == "contacts":
            return Record(
                record_id,
                value,
                email=properties.get("email") or None,
                website=properties.get("website") or None,
                linked_account_id=company,
            )
        return Record(record_id, value, linked_account_id=company)

    # ---- writing ----------------------------------------------------------------------------

    def _write(
        self,
        object_type: str,
        field: str,
        updates: list[Update],
        outcomes: dict[str, WriteResult],
    ) -> None:
        batch = BatchInputSimplePublicObjectBatchInput(
            inputs=[
                SimplePublicObjectBatchInput(id=u.record_id, properties={field: u.value})
                for u in updates
            ]
        )
        answer = self._call(
            lambda: self._batch_api.update(object_type, batch),
            what=f"updating {object_type}",
            object_type=object_type,
            field=field,
            keep=_record_level,
        )
        if isinstance(answer, _HttpError):
            # HubSpot refuses the whole batch for one bad value without saying whose it was:
            # halve the batch until the refused records stand alone (each written at most once).
            if len(updates) > 1:
                log.info("hubspot refused a value in a batch of %d; splitting it", len(updates))
                middle = len(updates) // 2
                self._write(object_type, field, updates[:middle], outcomes)
                self._write(object_type, field, updates[middle:], outcomes)
                return
            refused = _values_refused(answer) or [{}]
            code = str(refused[0].get("error") or "VALIDATION_ERROR")
            message = self._clean(str(refused[0].get("message") or "value refused"))
            outcomes[updates[0].record_id] = WriteResult(updates[0].record_id, False, code, message)
            return
        written = {str(result.id) for result in answer.results or []}
        failed: dict[str, tuple[str, str]] = {}
        unexplained: tuple[str, str] | None = None
        for error in getattr(answer, "errors", None) or []:
            reason = (str(error.category or "ERROR"), self._clean(str(error.message or "")))
            context = error.context or {}
            ids = [str(i) for i in context.get("ids") or []] or (
                [str(error.id)] if error.id else []
            )
            failed.update((record_id, reason) for record_id in ids)
            if not ids:
                unexplained = reason
        missing = unexplained or ("NO_RESULT", "hubspot reported no outcome for this record")
        for update in updates:
            record_id = update.record_id
            if record_id in failed:
                outcomes[record_id] = WriteResult(record_id, False, *failed[record_id])
            elif record_id in written:
                outcomes[record_id] = WriteResult(record_id, True)
            else:
                outcomes[record_id] = WriteResult(record_id, False, *missing)

    # ---- HTTP, tokens, errors ---------------------------------------------------------------

    def _api_factory(self, package: Any, api_name: str, config: Any) -> Any:
        """Build an SDK API object whose HTTP goes through this connector's session."""
        configuration = package.Configuration(
            host=self._base_url, ssl_ca_cert=self._config.ca_bundle
        )
        api_client = package.ApiClient(configuration=configuration)
        api_client.user_agent = "segsync (hubspot-api-client)"
        api_client.rest_client = _SdkRestClient(self._send)
        return getattr(package, api_name)(api_client=api_client)

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        params: list[tuple[str, Any]] | None,
        body: str | None,
    ) -> requests.Response:
        """One authenticated call; an OAuth token HubSpot refuses is refreshed once."""

        def attempt() -> requests.Response:
            sent = {**headers, "Authorization": f"Bearer {self._token.value()}"}
            return self._http.request(method, url, headers=sent, params=params, data=body)

        response = self._token.send(attempt, lambda answer: answer.status_code == 401)
        if not 200 <= response.status_code < 300:
            raise _HttpError(response.status_code, response.headers, response.content)
        return response

    def _refresh(self) -> tuple[str, float]:
        """Trade the refresh token for an access token at /oauth/v1/token."""
        form = {
            "grant_type": "refresh_token",
            "client_id": self._config.client_id,
            "client_secret": self._config.client_secret,
            "refresh_token": self._refresh_token,
        }
        response = self._http.request(
            "POST",
            f"{self._base_url}/oauth/v1/token",
            data=form,
            headers={"Accept": "application/json"},
        )
        answer = json_object(response.content)
        if response.status_code == 200 and answer.get("access_token"):
            self._refresh_token = str(answer.get("refresh_token") or self._refresh_token)
            lifetime = float(answer.get("expires_in") or 1800)
            log.debug("hubspot access token refreshed, valid %.0f s", lifetime)
            return str(answer["access_token"]), max(lifetime - _REFRESH_MARGIN, lifetime / 2)
        status = self._clean(str(answer.get("status") or response.status_code))
        message = self._clean(str(answer.get("message") or response.reason))
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableError(
                f"hubspot could not refresh the OAuth token ({status}): {message}",
                code=status,
                retry_after=retry_after(response.headers),
            )
        raise FatalError(f"hubspot refused the OAuth refresh ({status}): {message}", code=status)

    def _note_limits(self, headers: Mapping[str, str]) -> None:
        """Report HubSpot's daily usage (private apps), else the ten-second window's."""
        interval = _number(headers.get("X-HubSpot-RateLimit-Interval-Milliseconds"))
        if interval:
            self._interval = interval / 1000
        daily = _number(headers.get("X-HubSpot-RateLimit-Daily"))
        left = _number(headers.get("X-HubSpot-RateLimit-Daily-Remaining"))
        if daily and left is not None:
            self._daily_seen = True
            self._report_quota(int(max(daily - left, 0)), int(daily), "daily")
            return
        most = _number(headers.get("X-HubSpot-RateLimit-Max"))
        left = _number(headers.get("X-HubSpot-RateLimit-Remaining"))
        if most and left is not None and not self._daily_seen:
            self._report_quota(int(max(most - left, 0)), int(most), "ten_seconds")

    def _call(
        self,
        action: Callable[[], Any],
        *,
        what: str,
        object_type: str | None = None,
        field: str | None = None,
        keep: Callable[[_HttpError], object] | None = None,
    ) -> Any:
        """Run one SDK call; HTTP failures become connector errors (or come back, if `keep`)."""
        try:
            return action()
        except _HttpError as exc:
            failure: _HttpError | str = exc
        except _CLIENT_ERRORS as exc:
            failure = f"the client refused the request ({type(exc).__name__})"
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            # The SDK could not read an answer: its exception must not leave the adapter.
            failure = f"the answer could not be read ({type(exc).__name__})"
        if isinstance(failure, str):
            raise FatalError(f"hubspot failed while {what}: {failure}")
        if keep is not None and keep(failure):
            return failure
        raise self._classify(failure, what, object_type, field)

    def _classify(
        self, failure: _HttpError, what: str, object_type: str | None, field: str | None
    ) -> ConnectorError:
        """Map HubSpot's status and body to retryable, daily-quota or fatal."""
        body = failure.json()
        status = failure.status
        category = str(body.get("category") or body.get("errorType") or status)
        message = self._clean(str(body.get("message") or f"HTTP {status}"))
        if status == 429:
            policy = _rate_policy(body)
            if policy == "DAILY":
                return DailyQuotaError(
                    f"hubspot's daily API limit is spent ({message})", code="DAILY"
                )
            wait = retry_after(failure.headers) or (1.0 if policy == "SECONDLY" else self._interval)
            return RetryableError(
                f"hubspot rate limit {policy} reached while {what}; retry in {wait:g} s",
                code=policy,
                retry_after=wait,
            )
        if status >= 500 or status == 408:
            return RetryableError(
                f"hubspot answered {status} while {what}: {message}",
                code=category,
                retry_after=retry_after(failure.headers),
            )
        if status == 401:
            return FatalError(
                f"hubspot refused the credentials ({category}): {message}", code=category
            )
        if status == 403:
            return FatalError(
                f"hubspot denied access while {what} ({category}): {message}", code=category
            )
        if object_type and message.startswith("Unable to infer object type"):
            return FatalError(
                f"this hubspot account has no {object_type} object (the Leads object needs "
                "Sales Hub Professional or Enterprise)",
                code=category,
            )
        refused = _values_refused(failure)
        for error, wording in _FIELD_ERRORS.items():
            if any(item.get("error") == error for item in refused):
                return FatalError(f"field {field} {wording} on {object_type}", code=error)
        if status == 404 and field is not None:
            return FatalError(f"field {field} not found on {object_type}", code=category)
        return FatalError(f"hubspot refused {what} ({status} {category}): {message}", code=category)

    def _clean(self, text: str) -> str:
        """`text` clipped, with any of this connection's secrets blanked out."""
        secrets = (self._token.current, self._refresh_token, self._config.client_secret)
        return redact(text, secrets)


def _values_refused(failure: _HttpError) -> list[dict[str, Any]]:
    """The items of a 400 "Property values were not valid: [...]" answer ([] for other errors)."""
    message = str(failure.json().get("message") or "")
    if failure.status != 400 or not message.startswith(_VALUES_REFUSED):
        return []
    try:
        items = json.loads(message[len(_VALUES_REFUSED) :])
    except ValueError:
        return [{"error": "VALIDATION_ERROR", "message": message}]
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _record_level(failure: _HttpError) -> bool:
    """A refused value that only its record can fix (not an unknown or read-only field)."""
    refused = _values_refused(failure)
    return bool(refused) and not any(item.get("error") in _FIELD_ERRORS for item in refused)


def _first_company(object_type: str, associations: Any) -> str | None:
    """The primary associated company's id (HubSpot lists one company once per label)."""
    linked = (associations or {}).get("companies") or {}
    results = _objects(linked.get("results"), "associations")
    if not results:
        return None
    primary = f"{object_type[:-1]}_to_company"
    chosen = next((r for r in results if r.get("type") == primary), results[0])
    return str(chosen["id"])


def _objects(items: Any, what: str) -> list[dict[str, Any]]:
    """A JSON list of objects ([] for null); any other shape raises ValueError."""
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ValueError(f"{what} is not a list of objects")
    return items


def _results(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    """An answer's records: objects that each have an id (as the SDK's models require)."""
    results = _objects(answer.get("results"), "results")
    if any(item.get("id") is None for item in results):
        raise ValueError("a record has no id")
    return results


def _properties(item: Mapping[str, Any]) -> dict[str, str | None]:
    """A record's properties ({} when it has none), as text like the SDK's `dict[str, str]`."""
    properties = item.get("properties") or {}
    if not isinstance(properties, dict):
        raise ValueError("properties is not an object")
    return {name: None if value is None else str(value) for name, value in properties.items()}


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _rate_policy(body: Mapping[str, Any]) -> str:
    """Which limit a 429 names: real ones carry `"category": "RATE_LIMITS"` and a message such as
    "You have reached your secondly limit.", often without `policyName`
    (developers.hubspot.com/docs/api/usage-details; recorded traffic, issue 11)."""
    message = str(body.get("message") or "").lower()
    if body.get("policyName"):
        return str(body["policyName"])
    if "daily" in message:
        return "DAILY"
    if "ten_secondly" in message:
        return "TEN_SECONDLY_ROLLING"
    if "secondly" in message or body.get("category") == "RATE_LIMITS":
        return "SECONDLY"
    return "RATE_LIMIT"
