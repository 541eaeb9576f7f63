"""The Marketo emulator's lead database API: the lead fields (describe), Get Leads by Filter
Type and Sync Leads, and the answer shapes every part of the emulator uses (`{"requestId",
"success", "result" | "errors"}`, paging tokens).

`MarketoLeads` is the base of `MarketoEmulator` (connectors/sandbox/marketo.py), which adds the
identity service, the limits, activities, usage and the bulk lead extract.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from connectors.sandbox.server import Emulator, Request, Response

if TYPE_CHECKING:
    from connectors.sandbox.marketo_activities import ActivityLog

# Marketo string fields hold 255 characters (describe reports `"length": 255`).
STRING_MAX_LENGTH = 255
# Get Leads by Filter Type: up to 300 filterValues and 300 records a page; Sync Leads: 300 inputs.
FILTER_VALUES_MAX = 300
PAGE_SIZE_MAX = 300
SYNC_INPUT_MAX = 300
# "If the number of leads matching the lead filter is greater than 1,000 an error is returned".
FILTER_RESULTS_MAX = 1000
# The custom string field the sandbox's leads carry for segment names.
SEGMENT_FIELD = "segmentNames"

DEFAULT_FIELDS = ("id", "email", "updatedAt", "createdAt", "firstName", "lastName")
FILTER_TYPES = ("id", "email", "company", "website", SEGMENT_FIELD)
MESSAGES = {
    "600": "Access token not specified",
    "601": "Access token invalid",
    "602": "Access token expired",
    "607": "Daily quota reached",
    "609": "Invalid JSON",
    "610": "Requested resource not found",
    "615": "Concurrent access limit reached",
}


@dataclass(frozen=True)
class LeadField:
    """One lead field as leads/describe.json lists it."""

    id: int
    name: str
    display_name: str
    data_type: str
    length: int | None
    read_only: bool = False

    def describe(self) -> dict[str, Any]:
        """The field's entry in leads/describe.json."""
        entry: dict[str, Any] = {
            "id": self.id,
            "displayName": self.display_name,
            "dataType": self.data_type,
        }
        if self.length is not None:
            entry["length"] = self.length
        entry["rest"] = {"name": self.name, "readOnly": self.read_only}
        entry["soap"] = {"name": self.name[:1].upper() + self.name[1:], "readOnly": self.read_only}
        return entry


FIELDS = {
    spec.name: spec
    for spec in (
        LeadField(1, "id", "Id", "integer", None, read_only=True),
        LeadField(2, "company", "Company Name", "string", STRING_MAX_LENGTH),
        LeadField(3, "website", "Website", "url", STRING_MAX_LENGTH),
        LeadField(31, "firstName", "First Name", "string", STRING_MAX_LENGTH),
        LeadField(33, "lastName", "Last Name", "string", STRING_MAX_LENGTH),
        LeadField(48, "email", "Email Address", "email", STRING_MAX_LENGTH),
        LeadField(27, "createdAt", "Created At", "datetime", None, read_only=True),
        LeadField(28, "updatedAt", "Updated At", "datetime", None, read_only=True),
        LeadField(1001, SEGMENT_FIELD, "Segment Names", "string", STRING_MAX_LENGTH),
    )
}
_STRING_TYPES = ("string", "email", "url")


class Refused(Exception):
    """A response-level error: `{"success": false, "errors": [{code, message}]}`."""

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.message = message or MESSAGES.get(code, "Invalid request")


def marketo_time(moment: dt.datetime) -> str:
    """A moment as Marketo writes it (UTC, to the second)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _request_id() -> str:
    # Marketo's requestIds look like "e42b#14272d07d78".
    return f"{secrets.token_hex(2)}#{int(time.time() * 1000):x}"


def ok(**body: Any) -> Response:
    """A successful answer carrying `body` (result, nextPageToken, ...)."""
    return Response(body={"requestId": _request_id(), "success": True} | body)


def failed(code: str, message: str) -> Response:
    """A response-level error: HTTP 200 with success false and one error."""
    errors = [{"code": code, "message": message}]
    return Response(body={"requestId": _request_id(), "success": False, "errors": errors})


def page_token(**state: Any) -> str:
    """An opaque paging token (Marketo's are base32 too)."""
    return base64.b32encode(json.dumps(state, sort_keys=True).encode()).decode()


def read_page_token(token: str) -> dict[str, Any]:
    """The state a paging token carries (1001 when it is not one of ours)."""
    try:
        state = json.loads(base64.b32decode(token.encode()))
    except ValueError:
        raise Refused(
            "1001", f"Invalid value '{token}'. Required of type 'nextPageToken'"
        ) from None
    if not isinstance(state, dict):
        raise Refused("1001", f"Invalid value '{token}'. Required of type 'nextPageToken'")
    return state


def listed(request: Request, name: str) -> list[str]:
    """A query parameter's comma-separated values."""
    return [part.strip() for value in request.query.get(name, []) for part in value.split(",")]


class MarketoLeads(Emulator):
    """Get Leads by Filter Type and Sync Leads over the leads a subclass holds."""

    # Kept by the subclass: leads by id, each with every field of FIELDS, and their activities
    # (every value a sync changes is a Change Data Value activity, as in Marketo).
    _leads: dict[int, dict[str, Any]]
    _log: ActivityLog

    def _read(self, request: Request) -> Response:
        """Get Leads by Filter Type: filterType, up to 300 filterValues, fields, paging."""
        filter_type = request.param("filterType") or ""
        if not filter_type:
            raise Refused("1003", "filterType cannot be blank")
        if filter_type not in FILTER_TYPES:
            raise Refused("1011", f"Field '{filter_type}' not supported")
        values = [v for v in listed(request, "filterValues") if v]
        if not values:
            raise Refused("1003", "filterValues cannot be blank")
        if len(values) > FILTER_VALUES_MAX:
            raise Refused("1003", f"Too many filterValues, the maximum is {FILTER_VALUES_MAX}")
        fields = [f for f in listed(request, "fields") if f] or list(DEFAULT_FIELDS)
        unknown = [f for f in fields if f not in FIELDS]
        if unknown:
            raise Refused("1006", f"Field '{unknown[0]}' not found")
        try:
            size = int(request.param("batchSize") or PAGE_SIZE_MAX)
        except ValueError:
            raise Refused(
                "1001", "Invalid value for batchSize. Required of type 'integer'"
            ) from None
        size = min(max(size, 1), PAGE_SIZE_MAX)
        token = request.param("nextPageToken")
        offset = int(read_page_token(token).get("offset", 0)) if token else 0
        if filter_type == "id":
            bad = next((value for value in values if not value.isdigit()), None)
            if bad is not None:
                raise Refused("1001", f"Invalid value '{bad}'. Required of type 'integer'")
            keys = {str(int(value)) for value in values}
        else:
            keys = {value.lower() for value in values}

        def matches(lead: dict[str, Any]) -> bool:
            if filter_type == "id":
                return str(lead["id"]) in keys
            return str(lead.get(filter_type) or "").lower() in keys

        with self.lock:
            found = [lead for lead in sorted(self._leads.values(), key=by_id) if matches(lead)]
            if len(found) > FILTER_RESULTS_MAX:
                raise Refused("1003", "Too many results match the filter")
            page = [{name: lead.get(name) for name in ["id", *fields]} for lead in found]
        body: dict[str, Any] = {"result": page[offset : offset + size]}
        if offset + size < len(page):
            body |= {"nextPageToken": page_token(offset=offset + size), "moreResult": True}
        return ok(**body)

    def _sync(self, request: Request, call: int) -> Response:
        """Sync Leads: updateOnly by id or email; each input gets a status, in input order."""
        body = json_body(request)
        if not isinstance(body, dict):
            raise Refused("609")
        action = body.get("action", "createOrUpdate")
        lookup = body.get("lookupField", "email")
        inputs = body.get("input")
        if not isinstance(inputs, list) or not inputs:
            raise Refused("1003", "input cannot be blank")
        if len(inputs) > SYNC_INPUT_MAX:
            raise Refused("1003", f"Too many records in input, the maximum is {SYNC_INPUT_MAX}")
        if action != "updateOnly":
            raise Refused("1003", f"The sandbox syncs leads with action updateOnly, not {action}")
        if lookup not in ("id", "email"):
            raise Refused("1011", f"Field '{lookup}' not supported")
        injected = self.faults.take("record_failure")
        failing = {str(i) for i in (injected.params.get("record_ids", []) if injected else [])}
        code = str(injected.params.get("code", "1003")) if injected else ""
        now = dt.datetime.now(dt.UTC)
        stamp = marketo_time(now)
        results = []
        with self.lock:
            for item in inputs:
                lead, reason = self._target(item, lookup)
                if lead is None:
                    results.append(_skipped(*reason))
                elif str(lead["id"]) in failing:
                    results.append(_skipped(code, "Invalid data (injected failure)"))
                elif (problem := _invalid(item, lookup)) is not None:
                    results.append(_skipped(*problem))
                else:
                    for name, value in item.items():
                        if name == lookup:
                            continue
                        stored = None if value is None or value == "" else str(value)
                        self._log.changed(lead["id"], name, lead.get(name), stored, now)
                        lead[name] = stored
                        self.log_write("leads", str(lead["id"]), name, stored, call)
                    lead["updatedAt"] = stamp
                    results.append({"id": lead["id"], "status": "updated"})
        return ok(result=results)

    def _target(self, item: Any, lookup: str) -> tuple[dict[str, Any] | None, tuple[str, str]]:
        """The lead an input names by its lookup field, or the reason it names none."""
        if not isinstance(item, dict) or item.get(lookup) in (None, ""):
            return None, ("1002", f"Missing value for the required parameter '{lookup}'")
        key = item[lookup]
        if lookup == "id":
            if isinstance(key, bool) or not str(key).isdigit():
                return None, ("1001", f"Invalid value '{key}'. Required of type 'integer'")
            lead = self._leads.get(int(key))
            return lead, ("1004", "Lead not found")
        matching = [
            lead
            for lead in self._leads.values()
            if str(lead.get("email") or "").lower() == str(key).lower()
        ]
        if len(matching) > 1:
            return None, ("1007", "Multiple leads match the lookup criteria")
        return (matching[0] if matching else None), ("1004", "Lead not found")


def json_body(request: Request) -> Any:
    """The request's JSON body (609 when it is not JSON)."""
    try:
        return request.json()
    except ValueError:
        raise Refused("609") from None


def by_id(lead: dict[str, Any]) -> int:
    """Sort key: the lead's id."""
    return int(lead["id"])


def _skipped(code: str, message: str) -> dict[str, Any]:
    return {"status": "skipped", "reasons": [{"code": code, "message": message}]}


def _invalid(item: dict[str, Any], lookup: str) -> tuple[str, str] | None:
    """Why Marketo would skip this input's values (unknown field, read-only, too long)."""
    for name, value in item.items():
        if name == lookup:
            continue
        spec = FIELDS.get(name)
        if spec is None:
            return "1006", f"Field '{name}' not found"
        if spec.read_only:
            return "1003", f"Invalid data: field '{name}' is read-only"
        if (
            spec.data_type in _STRING_TYPES
            and spec.length is not None
            and value is not None
            and len(str(value)) > spec.length
        ):
            return (
                "1003",
                f"Invalid data: value for field '{name}' is {len(str(value))} characters long; "
                f"the field holds {spec.length}",
            )
    return None
