"""The Salesforce adapter: Lead, Contact and Account through simple-salesforce and Bulk API 2.0."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession
from simple_salesforce.format import format_soql

from connectors.base import Connector, FieldInfo, Record, Update, WriteResult
from connectors.errors import ConnectorError, FatalError
from connectors.http import VendorHttp
from connectors.members import CrmMember
from connectors.salesforce_auth import LoginResult, SalesforceConfig, login
from connectors.salesforce_bulk import BulkClient
from connectors.salesforce_http import classify, parse_limit_info, record_failure, throttling
from connectors.salesforce_members import MembersReader

__all__ = ["SalesforceConfig", "SalesforceConnector"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

# An API name: letters, digits and single underscores, optionally namespaced (ns__) and custom
# (__c). Nothing else can reach a SOQL statement, so identifiers need no quoting.
_API_NAME = re.compile(
    r"^(?:[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*__)?[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*"
    r"(?:__c)?$"
)
# The fields that match a record to an account, per object (Record attribute -> field).
_MATCH_FIELDS: dict[str, dict[str, str]] = {
    "Lead": {"email": "Email", "website": "Website"},
    "Contact": {"email": "Email", "linked_account_id": "AccountId"},
    "Account": {"website": "Website", "linked_account_id": "Id"},
}
_TEXT_TYPES = {"string", "textarea", "email", "url", "phone", "picklist", "multipicklist"}
# A record id: 15 case-sensitive characters, optionally followed by the 3-character checksum
# that makes it case-insensitive. Ids reach SOQL escaped by format_soql; this check refuses
# anything that cannot be an id before it costs a call.
_RECORD_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")


def check_field_name(field: str) -> str:
    """`field` if it is a valid Salesforce API name, else FatalError."""
    if len(field) > 120 or not _API_NAME.match(field):
        raise FatalError(f"{field!r} is not a valid Salesforce field name")
    return field


def _select(object_type: str, field: str) -> str:
    """SELECT the id, the fields that match a record to an account, and `field`."""
    columns = ["Id", *(name for name in _MATCH_FIELDS[object_type].values() if name != "Id")]
    if field.lower() not in {name.lower() for name in columns}:
        columns.append(field)
    return format_soql("SELECT {:literal} FROM {:literal}", ", ".join(columns), object_type)


def _query_more(url: str) -> Callable[[Salesforce], Any]:
    return lambda client: client.query_more(url, identifier_is_url=True)


def _lowered(row: Mapping[str, Any]) -> dict[str, Any]:
    # Salesforce field names are case-insensitive; the configured spelling may differ.
    return {str(key).lower(): value for key, value in row.items()}


def _text(value: Any) -> str | None:
    # Salesforce stores "" as null; both mean an empty field.
    return None if value is None or value == "" else str(value)


class _TooManyForRest(Exception):
    """A query matches more rows than are worth reading page by page: read it in bulk."""


class SalesforceConnector(Connector):
    """One Salesforce org, logged in lazily; re-logs in once when a session expires."""

    system = "salesforce"
    objects = ("Lead", "Contact", "Account")
    batch_size = 200
    # One Bulk API 2.0 ingest job per planned batch: large enough to be cheap in calls (a job costs
    # about five), small enough to finish well inside a worker task's time limit.
    bulk_batch_size = 10_000
    reads_modified = True

    def __init__(self, config: SalesforceConfig) -> None:
        super().__init__()
        self.config = config
        # simple-salesforce sends through this session too, so its calls are counted alike.
        self._http = VendorHttp(
            self, ca_bundle=config.ca_bundle, timeout=config.timeout, on_answer=self._seen
        )
        self._session: LoginResult | None = None
        self._client: Salesforce | None = None
        self._last_headers: Mapping[str, str] = {}
        self._bulk = BulkClient(
            self._call,
            config.bulk_poll_interval,
            config.bulk_timeout,
            config.bulk_page_size,
            self._secrets,
            lambda fetch: self._read_page(fetch, "bulk query results"),
        )
        self._members = MembersReader(
            self._call,
            lambda fetch: self._read_page(fetch, "report or list view"),
            self._query_rows,
        )

    def __repr__(self) -> str:
        return f"SalesforceConnector({self.config!r})"

    # -- the Connector interface -----------------------------------------------------------------

    def check_credentials(self) -> None:
        """Log in afresh and read the org's API limits (also reported as quota)."""
        self._session = self._client = None
        limits = self._rest(lambda client: client.limits())
        daily = limits.get("DailyApiRequests") if isinstance(limits, dict) else None
        if isinstance(daily, dict) and {"Max", "Remaining"} <= daily.keys():
            self._report_quota(
                int(daily["Max"]) - int(daily["Remaining"]), int(daily["Max"]), "daily"
            )

    def _describe_field(self, object_type: str, field: str) -> FieldInfo:
        """The field as `sobjects/{object}/describe` reports it."""
        described = self._rest(lambda client: client.restful(f"sobjects/{object_type}/describe"))
        for spec in (described or {}).get("fields", []):
            if str(spec.get("name", "")).lower() == field.lower():
                kind = str(spec.get("type", ""))
                length = int(spec.get("length") or 0)
                return FieldInfo(
                    object_type=object_type,
                    name=str(spec["name"]),
                    type=kind,
                    max_length=length if kind in _TEXT_TYPES and length > 0 else None,
                    writable=bool(spec.get("updateable")),
                    label=spec.get("label"),
                )
        raise FatalError(f"field {field} not found on {object_type}")

    def _read_records(self, object_type: str, field: str) -> Iterator[Record]:
        """Every record, lazily, page by page."""
        # SOQL query/queryMore (2,000 a page), or a Bulk API 2.0 query job when SELECT COUNT()
        # finds more than bulk_read_threshold records.
        return self._records(object_type, field, _select(object_type, field))

    def _read_modified(self, object_type: str, field: str, since: dt.datetime) -> Iterator[Record]:
        """The records whose SystemModstamp is after `since`, as _read_records reads them."""
        soql = _select(object_type, field) + format_soql(" WHERE SystemModstamp > {}", since)
        return self._records(object_type, field, soql)

    def _read_values(
        self, object_type: str, field: str, record_ids: Sequence[str]
    ) -> dict[str, str | None]:
        """One SOQL `WHERE Id IN (...)` query for up to 200 ids (a page holds 2,000 rows)."""
        for record_id in record_ids:
            if not _RECORD_ID.match(record_id):
                raise ValueError(f"{record_id!r} is not a Salesforce record id")
        # Salesforce answers with 18-character ids whatever length was asked for. The first 15
        # characters are the id itself (the last 3 only encode its case), so they lead an
        # answer back to the id as given, in either length.
        given: dict[str, list[str]] = {}
        for record_id in dict.fromkeys(record_ids):
            given.setdefault(record_id[:15], []).append(record_id)
        columns = "Id" if field.lower() == "id" else f"Id, {field}"
        soql = format_soql(
            "SELECT {:literal} FROM {:literal} WHERE Id IN {}",
            columns,
            object_type,
            list(dict.fromkeys(record_ids)),
        )
        values: dict[str, str | None] = {}
        for row in self._query_rows(soql):
            record = _lowered(row)
            for record_id in given.get(str(record.get("id") or "")[:15], []):
                values[record_id] = _text(record.get(field.lower()))
        return values

    def _write_batch(
        self, object_type: str, field: str, updates: Sequence[Update]
    ) -> list[WriteResult]:
        """One `PATCH composite/sobjects` call (allOrNone false) for up to 200 updates."""
        body = {
            "allOrNone": False,
            "records": [
                {
                    "attributes": {"type": object_type},
                    "id": update.record_id,
                    field: update.value or None,
                }
                for update in updates
            ],
        }
        results = self._rest(
            lambda client: client.restful("composite/sobjects", method="PATCH", json=body)
        )
        if not isinstance(results, list) or len(results) != len(updates):
            raise FatalError(
                f"Salesforce answered {len(results) if isinstance(results, list) else 'no'} "
                f"results for {len(updates)} records"
            )
        outcomes = []
        for update, result in zip(updates, results, strict=True):
            if isinstance(result, dict) and result.get("success") is True:
                outcomes.append(WriteResult(update.record_id, ok=True))
                continue
            errors = result.get("errors") if isinstance(result, dict) else None
            first = errors[0] if isinstance(errors, list) and errors else {}
            outcomes.append(
                record_failure(
                    update.record_id,
                    first.get("statusCode"),
                    str(first.get("message") or ""),
                    self._secrets(),
                )
            )
        return outcomes

    def _write_bulk(
        self, object_type: str, field: str, updates: Sequence[Update]
    ) -> list[WriteResult]:
        """Any number of updates in one Bulk API 2.0 job (see `prefers_bulk`), with results."""
        return self._bulk.update(object_type, field, updates)

    def prefers_bulk(self, count: int) -> bool:
        """Whether `count` updates are better written with `write_bulk` than in batches."""
        return count > self.config.bulk_write_threshold

    def _check_field(self, field: str) -> None:
        """Only an API name can reach a SOQL statement."""
        check_field_name(field)

    def _record_key(self, record_id: str) -> str:
        """The 15 characters that are the id (the 18-character form adds a case checksum)."""
        return record_id[:15]

    # -- segment members (salesforce_members) ----------------------------------------------------

    def report_members(self, report_id: str, column: str = "ACCOUNT_ID") -> Iterator[CrmMember]:
        """Every Account row of a tabular or summary report, past the 2,000-row cap, lazily."""
        return self._members.report_members(report_id, column)

    def list_view_members(
        self, list_view_id: str, object_type: str = "Account"
    ) -> Iterator[CrmMember]:
        """Every row of an Account list view's own query, paged, lazily."""
        return self._members.list_view_members(list_view_id, object_type)

    # -- reading -----------------------------------------------------------------------------------

    def _records(self, object_type: str, field: str, soql: str) -> Iterator[Record]:
        # A REST query (2,000 rows a page), or a Bulk API 2.0 query job when its first page says
        # more than bulk_read_threshold rows match: that page costs what a COUNT() would, and
        # a small read (an incremental one, mostly) needs no second call.
        threshold = self.config.bulk_read_threshold
        if threshold != 0:
            rows = self._query_rows(soql + " ORDER BY Id", bulk_above=threshold)
            try:
                for found in rows:
                    yield self._record(object_type, field, found)
                return
            except _TooManyForRest:
                pass
        for row in self._bulk.query(soql):
            yield self._record(object_type, field, {k: v or None for k, v in row.items()})

    def _query_rows(self, soql: str, bulk_above: int | None = None) -> Iterator[Mapping[str, Any]]:
        """The rows of a REST query, following nextRecordsUrl page by page, lazily;
        _TooManyForRest, before any row, when more than `bulk_above` rows match."""
        page = self._read_page(lambda: self._rest(lambda client: client.query(soql)))
        if bulk_above is not None and int(page.get("totalSize", 0)) > bulk_above:
            raise _TooManyForRest
        while True:
            yield from page.get("records", [])
            next_url = page.get("nextRecordsUrl")
            if page.get("done", True) or not isinstance(next_url, str):
                return
            if not next_url.startswith("/services/data/"):
                raise FatalError("Salesforce sent a nextRecordsUrl outside the REST API")
            more = _query_more(next_url)
            page = self._read_page(partial(self._rest, more))

    @staticmethod
    def _record(object_type: str, field: str, row: Mapping[str, Any]) -> Record:
        values = _lowered(row)
        matched = {
            attribute: _text(values.get(name.lower()))
            for attribute, name in _MATCH_FIELDS[object_type].items()
        }
        return Record(id=str(values["id"]), value=_text(values.get(field.lower())), **matched)

    # -- calls, logins and errors ----------------------------------------------------------------

    def _secrets(self) -> Iterable[str | None]:
        token = self._session.access_token if self._session else None
        return (*self.config.secrets, token)

    def _seen(self, response: requests.Response) -> None:
        # Every answer passes here, logins and Bulk API calls included.
        if throttling(response):  # a 429 is counted by VendorHttp
            self._note_throttled()
        self._last_headers = response.headers
        usage = parse_limit_info(response.headers.get("Sforce-Limit-Info"))
        if usage is not None:
            self._report_quota(usage[0], usage[1], "daily")

    def _login(self) -> LoginResult:
        if self._session is None:
            self._session = login(self._http, self.config)
            self._client = None
        return self._session

    def _salesforce(self) -> Salesforce:
        session = self._login()
        if self._client is None:
            self._client = Salesforce(
                instance_url=session.instance_url,
                session_id=session.access_token,
                session=self._http.session,
                version=self.config.api_version,
            )
        return self._client

    def _expired(self, attempt: int) -> ConnectorError | None:
        """After a 401: forget the session and return None to retry, or the error to raise."""
        if self.config.auth == "session":
            return FatalError(
                "Salesforce refused the access token (INVALID_SESSION_ID): it expired or was "
                "revoked, and a session login cannot renew it",
                code="INVALID_SESSION_ID",
            )
        if attempt > 0:
            return FatalError(
                "Salesforce refused a freshly issued session (INVALID_SESSION_ID)",
                code="INVALID_SESSION_ID",
            )
        logger.info("Salesforce session expired; logging in again")
        self._session = self._client = None
        return None

    def _rest(self, action: Callable[[Salesforce], T]) -> T:
        """Run a simple-salesforce call, re-logging in once on an expired session."""
        for attempt in range(2):
            client = self._salesforce()
            error: ConnectorError | None
            try:
                return action(client)
            except SalesforceExpiredSession:
                error = self._expired(attempt)
            except SalesforceError as exc:
                error = classify(exc.status, exc.content, self._last_headers, self._secrets())
            except requests.RequestException as exc:
                error = self._http.connection_error(exc)
            # Raised outside the except clauses so no simple-salesforce or requests exception
            # travels along as __context__.
            if error is not None:
                raise error
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A direct REST call under /services/data/vXX.X/, with the same re-login and errors."""
        extra_headers = kwargs.pop("headers", {})
        for attempt in range(2):
            session = self._login()
            headers = {**extra_headers, "Authorization": f"Bearer {session.access_token}"}
            url = f"{session.instance_url}/services/data/v{self.config.api_version}/{path}"
            response = self._http.request(method, url, headers=headers, **kwargs)
            if response.status_code < 300:
                return response
            error: ConnectorError | None
            if response.status_code == 401:
                error = self._expired(attempt)
            else:
                error = classify(
                    response.status_code, response.content, response.headers, self._secrets()
                )
            if error is not None:
                raise error
        raise AssertionError("unreachable: the second attempt returns or raises")
