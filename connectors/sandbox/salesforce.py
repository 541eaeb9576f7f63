"""A Salesforce org emulator: SOAP and OAuth logins, REST query/describe/sObject Collections,
Bulk API 2.0, Account reports and list views (salesforce_reports), daily API limits, expiring
sessions and Salesforce's own error bodies."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections import OrderedDict
from typing import Any

from connectors.sandbox.salesforce_bulk import BulkApi
from connectors.sandbox.salesforce_login import ApiUser
from connectors.sandbox.salesforce_reports import ReportsApi
from connectors.sandbox.salesforce_store import (
    KEY_PREFIXES,
    SCHEMA,
    SEED_TIME,
    ApiError,
    FieldSpec,
    Query,
    Store,
    make_id,
    parse_soql,
    render,
)
from connectors.sandbox.seeding import (
    company_domain,
    company_name,
    company_website,
)
from connectors.sandbox.server import Emulator, Request, Response

PAGE_SIZE = 2000
COLLECTION_LIMIT = 200
# Salesforce keeps at most 10 open query cursors per user and drops the oldest.
OPEN_CURSORS = 10
_DATA = re.compile(r"^/services/data/v(?P<version>\d+\.\d)/(?P<rest>.*?)/?$")
# The REST versions an org serves: 20.0 (Summer '10) up to 63.0 (Spring '25); Winter '25 was 62.0
# and each release adds one whole version (so 59.5 or 64.0 do not exist and get 404).
OLDEST_API_VERSION = 20
NEWEST_API_VERSION = 63
SERVED_API_VERSIONS = frozenset(
    f"{number}.0" for number in range(OLDEST_API_VERSION, NEWEST_API_VERSION + 1)
)
_LOCK_MESSAGE = "unable to obtain exclusive access to this record or 1 records"
_BATCH_SIZE = re.compile(r"batchSize=(\d+)", re.IGNORECASE)
# The segment-names field every object has (a 255-character text field).
SEGMENT_FIELD = "Segment_Names__c"
_FIRST_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken")
_LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson")


class SalesforceEmulator(Emulator):
    """One Salesforce org with Lead, Contact and Account, and one API user (see ApiUser)."""

    name = "salesforce"
    settings = ("api_version", "daily_api_limit")
    # The version describe() gives a connection; every version in SERVED_API_VERSIONS works.
    api_version = "62.0"
    daily_api_limit = 1_000_000

    def _setup(self) -> None:
        if self.api_version not in SERVED_API_VERSIONS:
            raise ValueError(f"Salesforce serves no API version {self.api_version}")
        self.api_usage = 0
        self.store = Store()
        self.bulk = BulkApi(self.store, self._write_rows)
        self.user = ApiUser()
        self.reports = ReportsApi(self.store)
        self._cursors: OrderedDict[str, tuple[Query, list[str]]] = OrderedDict()
        self._cursor_numbers = itertools.count(1)

    # -- public helpers for tests and the sandbox CLI -------------------------------------------

    def add_records(self, object_type: str, rows: list[dict[str, Any]]) -> list[str]:
        """Insert records of `object_type` (fields by API name) and return their 18-char ids."""
        with self.lock:
            return self.store.add(self._object(object_type), rows, dt.datetime.now(dt.UTC))

    def _stored(self, object_type: str, record_id: str) -> dict[str, Any]:
        return dict(self.store.records[self._object(object_type)][record_id])

    def edit_record(self, object_type: str, record_id: str, values: dict[str, Any]) -> None:
        """Change fields of a record as another user would (its SystemModstamp moves to now)."""
        with self.lock:
            name = self._object(object_type)
            changes: dict[FieldSpec, str | None] = {}
            for field, value in values.items():
                spec = self.store.field(name, field)
                if spec is None:
                    raise KeyError(f"{name} has no field {field}")
                changes[spec] = value
            self.store.apply(name, record_id, changes, dt.datetime.now(dt.UTC))

    def delete_record(self, object_type: str, record_id: str) -> None:
        """Delete a record (later updates of it get ENTITY_IS_DELETED)."""
        with self.lock:
            self.store.delete(self._object(object_type), record_id)

    def add_report_rows(self, report_id: str, account_ids: list[str]) -> None:
        """Make these Accounts rows of the report (KeyError-free: 404 ApiError if no report)."""
        with self.lock:
            self.reports.add_rows(report_id, account_ids)

    def remove_report_rows(self, report_id: str, account_ids: list[str]) -> None:
        """Take these Accounts out of the report's rows (the Accounts themselves stay)."""
        with self.lock:
            self.reports.remove_rows(report_id, account_ids)

    def trust_jwt_certificate(self, pem: bytes) -> None:
        """Verify JWT bearer signatures with this X.509 certificate or PEM public key."""
        with self.lock:
            self.user.trust_jwt_certificate(pem)

    def describe(self) -> dict[str, Any]:
        """How to log in (it is both login server and instance); each object's segment field."""
        with self.lock:
            return {
                "base_url": self.base_url,
                "instance_url": self.base_url,
                "login_url": self.base_url,
                "access_token": self.user.session(),
                "api_version": self.api_version,
                "username": self.user.username,
                "password": self.user.password,
                "security_token": self.user.security_token,
                "client_id": self.user.client_id,
                "client_secret": self.user.client_secret,
                "fields": dict.fromkeys(SCHEMA, SEGMENT_FIELD),
                # The seeded Account reports and list view (salesforce_reports.ReportsApi).
                "reports": {
                    "accounts": self.reports.accounts_report,
                    "accounts_summary": self.reports.summary_report,
                    "names_only": self.reports.names_report,
                    "matrix": self.reports.matrix_report,
                },
                "list_views": {"accounts": self.reports.accounts_list_view},
            }

    def forget_usage(self) -> None:
        """Start a new API usage day."""
        self.api_usage = 0

    def route_name(self, request: Request) -> str:
        """Group paths that carry query locators and job ids."""
        path = request.path.rstrip("/") or "/"
        path = re.sub(r"^(/services/data/v[\d.]+/query/)[^/]+$", r"\1{locator}", path)
        return re.sub(r"^(/services/data/v[\d.]+/jobs/(?:query|ingest)/)[^/]+", r"\1{id}", path)

    # -- request handling ------------------------------------------------------------------------

    def handle(self, request: Request, call: int) -> Response:
        """Answer one request the way Salesforce does."""
        with self.lock:
            if request.method == "POST" and request.path.startswith("/services/Soap/u/"):
                return self.user.soap_login(request, self.base_url)
            if request.method == "POST" and request.path.rstrip("/") == "/services/oauth2/token":
                return self.user.oauth_token(request, self.base_url)
            match = _DATA.match(request.path)
            if match is None:
                return _error(404, "NOT_FOUND", "The requested resource does not exist")
            if self.faults.take("expire_token") is not None:
                self.user.expire_sessions()
            if not self.user.authorized(request.headers.get("authorization", "")):
                return _error(401, "INVALID_SESSION_ID", "Session expired or invalid")
            if self.faults.take("rate_limit") is not None:
                return self._limited(
                    _error(403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.")
                )
            if (
                self.faults.take("daily_limit") is not None
                or self.api_usage >= self.daily_api_limit
            ):
                response = _error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
                response.headers["Sforce-Limit-Info"] = (
                    f"api-usage={self.daily_api_limit}/{self.daily_api_limit}"
                )
                return response
            self.api_usage += 1
            try:
                response = self._route(request, match["version"], match["rest"], call)
            except ApiError as error:
                response = Response(error.status, error.body())
            return self._limited(response)

    def _limited(self, response: Response) -> Response:
        response.headers["Sforce-Limit-Info"] = f"api-usage={self.api_usage}/{self.daily_api_limit}"
        return response

    def _route(self, request: Request, version: str, rest: str, call: int) -> Response:
        if version not in SERVED_API_VERSIONS:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        parts = rest.split("/")
        method = request.method
        if parts == ["limits"] and method == "GET":
            remaining = self.daily_api_limit - self.api_usage
            return Response(
                200, {"DailyApiRequests": {"Max": self.daily_api_limit, "Remaining": remaining}}
            )
        if len(parts) == 3 and parts[0] == "sobjects" and parts[2] == "describe":
            _allow(method, "GET")
            return self._describe(parts[1])
        if parts[:2] == ["analytics", "reports"] and len(parts) > 2:
            body = request.json_or_none() if request.body else None
            answer = self.reports.route_reports(method, parts[2:], request.query, body)
            return Response(200, answer)
        if len(parts) >= 4 and parts[0] == "sobjects" and parts[2] == "listviews":
            return Response(200, self.reports.route_list_views(method, parts[1], parts[3:]))
        if parts[0] == "query" and len(parts) <= 2:
            _allow(method, "GET")
            return self._query(request, version, parts[1] if len(parts) == 2 else None)
        if parts == ["composite", "sobjects"]:
            _allow(method, "PATCH")
            return self._update_collection(request, call)
        if parts[0] == "jobs":
            return self.bulk.route(request, version, parts[1:], call)
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")

    # -- REST resources --------------------------------------------------------------------------

    def _describe(self, name: str) -> Response:
        object_type = Store.object_name(name)
        if object_type is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        fields = [spec.describe() for spec in SCHEMA[object_type].values()]
        return Response(
            200,
            {
                "name": object_type,
                "label": object_type,
                "keyPrefix": KEY_PREFIXES[object_type],
                "updateable": True,
                "queryable": True,
                "fields": fields,
            },
        )

    def _query(self, request: Request, version: str, locator: str | None) -> Response:
        size = PAGE_SIZE
        options = _BATCH_SIZE.search(request.headers.get("sforce-query-options", ""))
        if options:
            size = max(200, min(PAGE_SIZE, int(options[1])))
        if locator is None:
            query = parse_soql(request.param("q") or "")
            rows = query.run(self.store)
            if query.count:
                return Response(200, {"totalSize": len(rows), "done": True, "records": []})
            cursor = make_id("01g", next(self._cursor_numbers))
            ids = [row["Id"] for row in rows]
            self._cursors[cursor] = (query, ids)
            while len(self._cursors) > OPEN_CURSORS:
                self._cursors.popitem(last=False)
            start = 0
        else:
            cursor, _, offset = locator.partition("-")
            if cursor not in self._cursors or not offset.isdigit():
                raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            query, ids = self._cursors[cursor]
            start = int(offset)
        page = ids[start : start + size]
        prefix = f"/services/data/v{version}"
        records = []
        for record_id in page:
            record = self.store.records[query.object_type].get(record_id)
            if record is None:  # deleted since the query ran
                continue
            records.append(
                {
                    "attributes": {
                        "type": query.object_type,
                        "url": f"{prefix}/sobjects/{query.object_type}/{record_id}",
                    },
                    **render(record, query.fields),
                }
            )
        end = start + len(page)
        body: dict[str, Any] = {"totalSize": len(ids), "done": end >= len(ids), "records": records}
        if end < len(ids):
            body["nextRecordsUrl"] = f"/services/data/v{version}/query/{cursor}-{end}"
        else:
            self._cursors.pop(cursor, None)
        return Response(200, body)

    def _update_collection(self, request: Request, call: int) -> Response:
        try:
            body = request.json()
        except ValueError:
            raise ApiError(400, "JSON_PARSER_ERROR", "The request body is not valid JSON") from None
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list):
            raise ApiError(400, "JSON_PARSER_ERROR", "records: a list of sObjects is required")
        if len(records) > COLLECTION_LIMIT:
            raise ApiError(
                400,
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit more than 200 records into this call",
            )
        rows: list[tuple[str, str, dict[FieldSpec, str | None]]] = []
        for item in records:
            rows.append(self._parse_sobject(item))
        errors = self._check_rows(rows)
        if body.get("allOrNone") is True and any(errors):
            rolled_back = {
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": "Record rolled back because not all records were valid and the "
                "request was using AllOrNone header",
                "fields": [],
            }
            return Response(
                200, [{"success": False, "errors": [error or rolled_back]} for error in errors]
            )
        results = []
        for (object_type, record_id, values), error in zip(rows, errors, strict=True):
            if error is None:
                record_id = self._apply(object_type, record_id, values, call)
                results.append({"id": record_id, "success": True, "errors": []})
            else:
                results.append({"success": False, "errors": [error]})
        return Response(200, results)

    def _parse_sobject(self, item: Any) -> tuple[str, str, dict[FieldSpec, str | None]]:
        if not isinstance(item, dict):
            raise ApiError(400, "JSON_PARSER_ERROR", "each record must be a JSON object")
        attributes = item.get("attributes")
        type_name = attributes.get("type") if isinstance(attributes, dict) else None
        object_type = Store.object_name(str(type_name or ""))
        if object_type is None:
            raise ApiError(400, "INVALID_TYPE", f"sObject type '{type_name}' is not supported.")
        record_id = str(item.get("id") or item.get("Id") or "")
        values: dict[FieldSpec, str | None] = {}
        for name, value in item.items():
            if name in ("attributes", "id", "Id"):
                continue
            spec = Store.field(object_type, name)
            if spec is None:
                raise ApiError(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{name}' on sobject of type {object_type}",
                )
            if value is not None and not isinstance(value, str):
                raise ApiError(
                    400,
                    "JSON_PARSER_ERROR",
                    f"Cannot deserialize instance of string from {type(value).__name__} "
                    f"value for field {spec.name}",
                )
            values[spec] = value
        return object_type, record_id, values

    def _check_rows(
        self, rows: list[tuple[str, str, dict[FieldSpec, str | None]]]
    ) -> list[dict[str, Any] | None]:
        """Each row's error: validation first, then an injected record_failure (next write only)."""
        errors = [self.store.check_update(*row) for row in rows]
        fault = self.faults.take("record_failure")
        if fault is not None:
            failing = set(fault.params.get("record_ids", []))
            code = str(fault.params.get("code", "UNABLE_TO_LOCK_ROW"))
            for index, (_, record_id, _) in enumerate(rows):
                if record_id in failing and errors[index] is None:
                    default = f"{_LOCK_MESSAGE}: {record_id}"
                    message = str(fault.params.get("message", default))
                    errors[index] = {"statusCode": code, "message": message, "fields": []}
        return errors

    def _apply(
        self, object_type: str, record_id: str, values: dict[FieldSpec, str | None], call: int
    ) -> str:
        full_id = self.store.apply(object_type, record_id, values, dt.datetime.now(dt.UTC))
        for spec, value in values.items():
            self.log_write(object_type, full_id, spec.name, value or None, call)
        return full_id

    def _write_rows(
        self, object_type: str, rows: list[tuple[str, dict[FieldSpec, str | None]]], call: int
    ) -> list[dict[str, Any] | None]:
        """The Bulk API's write path: the same checks, faults and write log as REST."""
        full = [(object_type, record_id, values) for record_id, values in rows]
        errors = self._check_rows(full)
        for (_, record_id, values), error in zip(full, errors, strict=True):
            if error is None:
                self._apply(object_type, record_id, values, call)
        return errors

    # -- seeding -------------------------------------------------------------------------------

    def _object(self, object_type: str) -> str:
        known = Store.object_name(object_type)
        if known is None:
            raise KeyError(f"the Salesforce sandbox has no object {object_type!r}")
        return known

    def _seed(self, count: int) -> None:
        """`count` Accounts, Contacts and Leads; record n of each belongs to company n (1-based),
        whose Account the Contact links to."""
        accounts, contacts, leads = [], [], []
        for n in range(1, count + 1):
            first = _FIRST_NAMES[n % len(_FIRST_NAMES)]
            last = _LAST_NAMES[(n // len(_FIRST_NAMES)) % len(_LAST_NAMES)]
            domain = company_domain(n)
            email = f"{first.lower()}.{last.lower()}@{domain}"
            accounts.append({"Name": company_name(n), "Website": company_website(n)})
            contacts.append({"FirstName": first, "LastName": last, "Email": email})
            leads.append(
                {
                    "FirstName": first,
                    "LastName": last,
                    "Email": email,
                    "Company": company_name(n),
                    "Website": f"www.{domain}",
                }
            )
        account_ids = self.store.add("Account", accounts, SEED_TIME)
        for n, (contact, account_id) in enumerate(zip(contacts, account_ids, strict=True), 1):
            contact["AccountId"] = account_id
            self.seeded.add(n, {"salesforce": account_id})
        self.store.add("Contact", contacts, SEED_TIME)
        self.store.add("Lead", leads, SEED_TIME)


def _allow(method: str, allowed: str) -> None:
    if method != allowed:
        raise ApiError(
            405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are {allowed}"
        )


def _error(status: int, code: str, message: str) -> Response:
    return Response(status, ApiError(status, code, message).body())
