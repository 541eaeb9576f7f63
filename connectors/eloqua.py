"""Oracle Eloqua adapter: contacts read through the REST API, written through Bulk API 2.0 imports.

Calls go to the instance's base URL, discovered once at `login.eloqua.com/id` (connectors/
eloqua_http.py); writes are import syncs (connectors/eloqua_bulk.py). Eloqua reports no API
quota, so `quota` stays None.

Incremental reads page the same REST list with a search on the contact's system field
C_DateModified ("Using the search URL parameter": /data endpoints search on fields, as
`{term}{operator}'{value}'`), which Eloqua moves on every change: creation, an edit in its
screens, an import sync. The moment is written "YYYY-MM-DD HH:MM:SS" in Eloqua's server time,
US Eastern (connectors/eloqua_time.py says why).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from connectors.base import Connector, FieldInfo, Record, Update, WriteResult
from connectors.eloqua_bulk import BulkImporter
from connectors.eloqua_http import Credentials, EloquaHttp, json_object
from connectors.eloqua_time import search_wall
from connectors.errors import FatalError
from connectors.http import require_one_login, require_web_url

DEFAULT_LOGIN_URL = "https://login.eloqua.com"
REST = "/api/REST/1.0"
# The application API's largest page ("count: any whole number between 1 and 1000").
PAGE_SIZE = 1000
# "Bulk API data types": small text holds 100 characters on contacts, large text 32,000.
TEXT_MAX_LENGTH = {"text": 100, "largeText": 32_000}
_ONE_LOGIN = (
    "an eloqua connection needs either site, username and password (Basic) or access_token (OAuth)"
)
# Contact field internal names are letters, digits and underscores (C_Segment_Names1): anything
# else could break out of the `{{Contact.Field(...)}}` statement an import definition maps.
_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,99}$")
# The system field holding a contact's last modification (Eloqua keeps it to the second).
MODIFIED_FIELD = "C_DateModified"
# Standard fields the REST contact carries as properties rather than in fieldValues.
_STANDARD_PROPERTIES = {
    "c_emailaddress": "emailAddress",
    "c_firstname": "firstName",
    "c_lastname": "lastName",
    "c_company": "accountName",
}


@dataclass(frozen=True)
class EloquaConfig:
    """One Eloqua instance: Basic credentials (site, username, password) or an OAuth token."""

    site: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)
    # Where the base URL is discovered (`{login_url}/id`); the sandbox serves it too.
    login_url: str = DEFAULT_LOGIN_URL
    # CA file that verifies the certificates (the sandbox's); None trusts the system CAs.
    ca_bundle: str | None = None
    # Seconds to wait for one answer.
    timeout: float = 60.0
    # First wait between import sync status polls (it grows to 10 s); tests shorten it.
    poll_interval: float = 1.0
    # Longest wait for one import sync, well under the worker's task time limit (900 s soft).
    sync_timeout: float = 600.0

    def __post_init__(self) -> None:
        basic = (self.site, self.username, self.password)
        require_one_login(self.access_token, basic, _ONE_LOGIN)
        require_web_url("eloqua", "login_url", self.login_url)
        for name in ("timeout", "poll_interval", "sync_timeout"):
            if not getattr(self, name) > 0:
                raise FatalError(f"eloqua {name} must be positive")


@dataclass(frozen=True)
class _ContactField:
    id: str
    internal_name: str
    data_type: str
    read_only: bool
    label: str | None


class EloquaConnector(Connector):
    """The contacts of one Eloqua instance; a batch is one Bulk API import sync."""

    system = "eloqua"
    objects = ("contacts",)
    # One import sync takes the whole batch. Oracle's soft limit is 2,000 import syncs an hour
    # per instance ("Bulk API limits"), shared with every other integration, and each sync has a
    # fixed queueing cost; 5,000 rows of 100-character values upload in well under 1 MB (the hard
    # limit is 32 MB a request, above which the upload is split).
    batch_size = 5000
    reads_modified = True

    def __init__(self, config: EloquaConfig) -> None:
        super().__init__()
        self._config = config
        self._http = EloquaHttp(
            Credentials(config.site, config.username, config.password, config.access_token),
            login_url=config.login_url,
            ca_bundle=config.ca_bundle,
            timeout=config.timeout,
            connector=self,
        )
        self._bulk = BulkImporter(
            self._http, poll_interval=config.poll_interval, sync_timeout=config.sync_timeout
        )
        self._fields_lock = threading.Lock()
        self._fields: dict[str, _ContactField] | None = None

    def __repr__(self) -> str:
        auth = "oauth" if self._config.access_token else "basic"
        return f"EloquaConnector(site={self._config.site!r}, auth={auth!r})"

    # ---- the interface ----------------------------------------------------------------------

    def check_credentials(self) -> None:
        """Discover the base URL at /id, which refuses bad credentials."""
        self._http.discover()

    def _describe_field(self, object_type: str, field: str) -> FieldInfo:
        """The contact field by internal name; text holds 100 characters, large text 32,000."""
        found = self._field(field, fresh=True)
        return FieldInfo(
            object_type=object_type,
            name=found.internal_name,
            type=found.data_type,
            max_length=TEXT_MAX_LENGTH.get(found.data_type),
            writable=not found.read_only,
            label=found.label,
        )

    def _read_records(self, object_type: str, field: str) -> Iterator[Record]:
        """Every contact with the field, email address and linked account, 1,000 per call."""
        return self._records(field, {})

    def _read_modified(self, object_type: str, field: str, since: dt.datetime) -> Iterator[Record]:
        """The contacts modified at or after `since`, as _read_records reads them.

        The search compares whole seconds, so it asks from the second `since` falls in: a
        contact changed earlier in that same second is read again, none changed after it is
        missed. The full read takes no Bulk export at any size, so neither does this one.
        """
        return self._records(field, {"search": modified_search(since)})

    def _read_values(
        self, object_type: str, field: str, record_ids: Sequence[str]
    ) -> dict[str, str | None]:
        """The field of each id: contacts listed from the lowest id asked for, until all are seen.

        Eloqua's search takes one criterion, not a list of ids, so this pages through contacts
        with `id >= the lowest id asked for` (1,000 per call) and stops once every id was seen:
        ids written together are close together, so that is usually a few pages.
        """
        wanted = {record_id for record_id in record_ids if record_id.isdigit()}
        if not wanted:
            return {}
        values: dict[str, str | None] = {}
        search = {"search": f"id>='{min(wanted, key=int)}'"}
        for record in self._records(field, search, until_seen=wanted):
            if record.id in wanted:
                values[record.id] = record.value
        return values

    def _write_batch(
        self, object_type: str, field: str, updates: Sequence[Update]
    ) -> list[WriteResult]:
        """One import sync for the batch; rows Eloqua rejects come back as failed results."""
        if not _FIELD_NAME.match(field):
            raise FatalError(f"field {field} not found on contacts (not an Eloqua internal name)")
        return self._bulk.write(field, updates)

    # ---- reading ----------------------------------------------------------------------------

    def _records(
        self, field: str, extra: dict[str, str], until_seen: set[str] | None = None
    ) -> Iterator[Record]:
        found = self._field(field)
        remaining = set(until_seen) if until_seen is not None else None
        seen: set[str] = set()
        page = 1
        while True:
            params: dict[str, str | int] = {"depth": "complete", "count": PAGE_SIZE, "page": page}
            answer = json_object(
                self._read_page(
                    partial(
                        self._http.call,
                        "GET",
                        f"{REST}/data/contacts",
                        what="reading contacts",
                        params=params | extra,
                    ),
                    f"contacts page {page}",
                )
            )
            elements = [e for e in answer.get("elements") or [] if isinstance(e, dict)]
            for element in elements:
                record = _record(element, found)
                # Pages are offsets in id order: a contact created meanwhile (or, in a search by
                # modification date, edited meanwhile) joins the list and shifts one onto the
                # next page, read twice and kept once. Edits never take one out of the list.
                if record.id and record.id not in seen:
                    seen.add(record.id)
                    if remaining is not None:
                        remaining.discard(record.id)
                    yield record
            total = int(answer.get("total") or 0)
            if not elements or page * PAGE_SIZE >= total or remaining == set():
                return
            page += 1

    def _field(self, name: str, *, fresh: bool = False) -> _ContactField:
        """The contact field `name` (by internal name); the list is fetched again on a miss."""
        with self._fields_lock:
            cached = self._fields
        if cached is not None and not fresh and name.lower() in cached:
            return cached[name.lower()]
        fields = self._load_fields()
        with self._fields_lock:
            self._fields = fields
        if name.lower() not in fields:
            raise FatalError(f"field {name} not found on contacts", code="UNKNOWN_FIELD")
        return fields[name.lower()]

    def _load_fields(self) -> dict[str, _ContactField]:
        fields: dict[str, _ContactField] = {}
        page = 1
        while True:
            params: dict[str, str | int] = {"depth": "complete", "count": PAGE_SIZE, "page": page}
            answer = json_object(
                self._http.call(
                    "GET",
                    f"{REST}/assets/contact/fields",
                    what="listing contact fields",
                    params=params,
                )
            )
            elements = [e for e in answer.get("elements") or [] if isinstance(e, dict)]
            for element in elements:
                internal = str(element.get("internalName") or "")
                if internal:
                    fields[internal.lower()] = _ContactField(
                        id=str(element.get("id") or ""),
                        internal_name=internal,
                        data_type=str(element.get("dataType") or ""),
                        read_only=str(element.get("isReadOnly")).lower() == "true",
                        label=element.get("name"),
                    )
            if not elements or page * PAGE_SIZE >= int(answer.get("total") or 0):
                return fields
            page += 1


def modified_search(since: dt.datetime) -> str:
    """The contact search for modifications at or after `since` (aware), written as Eloqua's
    server time (US Eastern, to the second: connectors/eloqua_time.py)."""
    return f"{MODIFIED_FIELD}>='{search_wall(since)}'"


def _record(element: dict[str, Any], found: _ContactField) -> Record:
    """A REST contact (depth complete) as a Record: the field's value, email, linked account."""
    value: Any = None
    for item in element.get("fieldValues") or []:
        if isinstance(item, dict) and str(item.get("id")) == found.id:
            value = item.get("value")
            break
    else:
        standard = _STANDARD_PROPERTIES.get(found.internal_name.lower())
        if standard:
            value = element.get(standard)
    return Record(
        id=str(element.get("id") or ""),
        # Eloqua leaves a blank field out (or sends ""): both read as unset.
        value=str(value) if value not in (None, "") else None,
        email=element.get("emailAddress") or None,
        linked_account_id=str(element["accountId"]) if element.get("accountId") else None,
    )
