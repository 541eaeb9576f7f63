"""The HubSpot emulator's CRM objects API: list with paging and associations, batch read and
batch update (200 or 207 with per-record errors), the property definitions, and HubSpot's
`{"status": "error", "message", "category"}` error bodies.

`HubSpotObjects` is the base of `HubSpotEmulator` (connectors/sandbox/hubspot.py), which adds
authentication, the rate limits, OAuth and the seed data.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from connectors.sandbox.server import Emulator, Request, Response

# HubSpot's CRM limit for single- and multi-line text property values (knowledge.hubspot.com,
# "Property field types in HubSpot": 65,536 characters when the value comes through the CRM).
TEXT_MAX_LENGTH = 65_536
PAGE_LIMIT_MAX = 100
BATCH_MAX = 100
# The custom property every object type carries in the sandbox.
SEGMENT_PROPERTY = "segment_names"

# Object type -> (objectTypeId, name in messages, singular aliases).
OBJECT_TYPES = {
    "contacts": ("0-1", "CONTACT", ("contact",)),
    "companies": ("0-2", "COMPANY", ("company",)),
    "leads": ("0-136", "LEAD", ("lead",)),
}
# The properties each object type has besides SEGMENT_PROPERTY.
BUILTIN_PROPERTIES = {
    "contacts": ("email", "firstname", "lastname", "company", "website"),
    "companies": ("name", "domain", "website"),
    "leads": ("hs_lead_name",),
}
_EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def stamp(seconds: float = 0.0) -> str:
    """HubSpot's timestamp: now, or `seconds` after the sandbox's epoch (for seeded records)."""
    moment = _EPOCH + dt.timedelta(seconds=seconds) if seconds else dt.datetime.now(dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def modified_property(object_type: str) -> str:
    """The property holding a record's last modification: HubSpot names it lastmodifieddate on
    contacts and hs_lastmodifieddate on companies and the other objects."""
    return "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"


def error(status: int, message: str, category: str | None, **extra: Any) -> Response:
    """HubSpot's error answer: status "error", message, correlationId and category."""
    body: dict[str, Any] = {"status": "error", "message": message}
    body["correlationId"] = str(uuid.uuid4())
    if category:
        body["category"] = category
    body.update(extra)
    return Response(status, body)


@dataclass
class CrmObject:
    """One CRM record: its properties, timestamps and associations."""

    id: str
    properties: dict[str, str | None]
    created_at: str
    updated_at: str
    # associated object type -> ids, in the order they were associated
    links: dict[str, list[str]] = field(default_factory=dict)


class HubSpotObjects(Emulator):
    """HubSpot's CRM objects and properties over the records a subclass holds."""

    # Kept by the subclass: records (and archived ones) and property definitions per object.
    _objects: dict[str, dict[str, CrmObject]]
    _archived: dict[str, dict[str, CrmObject]]
    _properties: dict[str, dict[str, dict[str, Any]]]
    leads_enabled: bool

    def _object_type(self, spelled: str) -> str | None:
        for name, (type_id, _, aliases) in OBJECT_TYPES.items():
            if spelled.lower() in (name, type_id, *aliases):
                return None if name == "leads" and not self.leads_enabled else name
        return None

    def _list(self, request: Request, object_type: str) -> Response:
        try:
            limit = min(max(int(request.param("limit") or 10), 1), PAGE_LIMIT_MAX)
            after = int(request.param("after") or 0)
        except ValueError:
            return error(400, "limit and after must be integers", "VALIDATION_ERROR")
        wanted = listed(request.query.get("properties", []))
        associations = [self._object_type(a) for a in listed(request.query.get("associations", []))]
        with self.lock:
            ordered = sorted(
                (o for o in self._objects[object_type].values() if int(o.id) >= after),
                key=lambda o: int(o.id),
            )
            page = ordered[: limit + 1]
            results = [
                self._render(object_type, o, wanted, [a for a in associations if a])
                for o in page[:limit]
            ]
        body: dict[str, Any] = {"results": results}
        if len(page) > limit:
            following = [
                (key, value)
                for key, values in request.query.items()
                if key not in ("after", "limit")
                for value in values
            ]
            following += [("limit", str(limit)), ("after", page[limit].id)]
            link = f"{self.base_url}{request.path}?{urlencode(following)}"
            body["paging"] = {"next": {"after": page[limit].id, "link": link}}
        return Response(body=body)

    def _render(
        self, object_type: str, found: CrmObject, wanted: list[str] | None, associations: list[str]
    ) -> dict[str, Any]:
        defaults = {"contacts": ["email", "firstname", "lastname"], "companies": ["name", "domain"]}
        names = wanted if wanted is not None else list(found.properties)
        if wanted == []:
            names = defaults.get(object_type, [])
        known = self._properties[object_type]
        properties = {name: found.properties.get(name) for name in names if name in known}
        properties |= {
            "hs_object_id": found.id,
            "createdate": found.created_at,
            modified_property(object_type): found.updated_at,
        }
        rendered: dict[str, Any] = {
            "id": found.id,
            "properties": properties,
            "createdAt": found.created_at,
            "updatedAt": found.updated_at,
            "archived": False,
        }
        singular = OBJECT_TYPES[object_type][2][0]
        linked = {}
        for other in associations:
            ids = found.links.get(other, [])
            if ids:
                # HubSpot lists a labelled company once per label: primary and unlabelled.
                kind = f"{singular}_to_{OBJECT_TYPES[other][2][0]}"
                results = [{"id": i, "type": kind} for i in ids]
                results += [{"id": i, "type": f"{kind}_unlabeled"} for i in ids]
                linked[other] = {"results": results}
        if linked:
            rendered["associations"] = linked
        return rendered

    def _batch_read(self, request: Request, object_type: str) -> Response:
        """Records by id: 200 when every id was found, else 207 naming the missing ids."""
        body = request.json_or_none()
        inputs = body.get("inputs") if isinstance(body, dict) else None
        properties = body.get("properties", []) if isinstance(body, dict) else None
        if (
            not isinstance(inputs, list)
            or not all(isinstance(i, dict) and isinstance(i.get("id"), str | int) for i in inputs)
            or not isinstance(properties, list)
        ):
            return error(400, "Invalid input JSON on line 1", "VALIDATION_ERROR")
        if len(inputs) > BATCH_MAX:
            message = f"Batch input size {len(inputs)} exceeds the maximum of {BATCH_MAX}"
            return error(400, message, "VALIDATION_ERROR")
        if isinstance(body, dict) and body.get("idProperty"):
            # HubSpot reads by any unique property; the sandbox holds none besides the id.
            message = f"idProperty {body['idProperty']} is not a unique property in the sandbox"
            return error(400, message, "VALIDATION_ERROR")
        archived = (request.param("archived") or "false").lower() == "true"
        wanted = [str(name) for name in properties]
        started, results, missing = stamp(), [], []
        with self.lock:
            held = (self._archived if archived else self._objects)[object_type]
            for record_id in dict.fromkeys(str(i["id"]) for i in inputs):
                found = held.get(record_id)
                if found is None:
                    missing.append(record_id)
                    continue
                rendered = self._render(object_type, found, wanted, [])
                if archived:
                    rendered |= {"archived": True, "archivedAt": found.updated_at}
                results.append(rendered)
        answer: dict[str, Any] = {"status": "COMPLETE", "results": results}
        answer |= {"startedAt": started, "completedAt": stamp()}
        if not missing:
            return Response(body=answer)
        message = (
            f"Could not get some {OBJECT_TYPES[object_type][1]} objects, they may be deleted "
            "or not exist. Check that ids are valid."
        )
        # One error entry lists every missing id, and numErrors counts entries, not ids.
        answer |= {"numErrors": 1, "errors": [_record_error("OBJECT_NOT_FOUND", message, missing)]}
        return Response(207, answer)

    def _batch_update(self, request: Request, object_type: str, call: int) -> Response:
        try:
            inputs = (request.json() or {}).get("inputs")
        except (ValueError, AttributeError):
            inputs = None
        if not isinstance(inputs, list) or not all(
            isinstance(i, dict) and isinstance(i.get("properties"), dict) for i in inputs
        ):
            return error(400, "Invalid input JSON on line 1", "VALIDATION_ERROR")
        if len(inputs) > BATCH_MAX:
            message = f"Batch input size {len(inputs)} exceeds the maximum of {BATCH_MAX}"
            return error(400, message, "VALIDATION_ERROR")
        ids = [str(i.get("id")) for i in inputs]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            return error(
                400, f"Duplicate IDs found in batch input: {duplicates}", "VALIDATION_ERROR"
            )
        invalid = self._invalid_values(object_type, inputs)
        if invalid:
            # HubSpot refuses the whole batch when any value is invalid, without naming the input.
            message = f"Property values were not valid: {json.dumps(invalid)}"
            return error(400, message, "VALIDATION_ERROR")
        injected = self.faults.take("record_failure")
        failing = {str(i) for i in (injected.params.get("record_ids", []) if injected else [])}
        category = str(injected.params.get("code", "OBJECT_NOT_FOUND")) if injected else ""
        started, results = stamp(), []
        missing, refused = [], []
        with self.lock:
            for record_id, item in zip(ids, inputs, strict=True):
                found = self._objects[object_type].get(record_id)
                if found is None:
                    missing.append(record_id)
                    continue
                if record_id in failing:
                    refused.append(record_id)
                    continue
                values = {k: None if v is None else str(v) for k, v in item["properties"].items()}
                found.properties.update(values)
                found.updated_at = stamp()
                for name, value in values.items():
                    self.log_write(object_type, record_id, name, value, call)
                results.append(self._render(object_type, found, list(values), []))
        kind = OBJECT_TYPES[object_type][1]
        errors = []
        if missing:
            message = (
                f"Could not get some {kind} objects, they may be deleted or not exist. "
                "Check that ids are valid."
            )
            errors.append(_record_error("OBJECT_NOT_FOUND", message, missing))
        if refused:
            errors.append(_record_error(category, f"Injected failure updating {kind}", refused))
        body: dict[str, Any] = {"status": "COMPLETE", "results": results}
        body |= {"startedAt": started, "completedAt": stamp()}
        if errors:
            body |= {"numErrors": len(missing) + len(refused), "errors": errors}
        return Response(207 if errors else 200, body)

    def _invalid_values(self, object_type: str, inputs: list[dict[str, Any]]) -> list[Any]:
        invalid: list[dict[str, Any]] = []
        known = self._properties[object_type]
        for item in inputs:
            for name, value in item["properties"].items():
                definition = known.get(name)
                problem = None
                if definition is None:
                    problem = ("PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
                elif definition["modificationMetadata"]["readOnlyValue"]:
                    problem = ("READ_ONLY_VALUE", f'Property "{name}" is read-only')
                elif value is not None and len(str(value)) > TEXT_MAX_LENGTH:
                    problem = (
                        "INVALID_STRING_LENGTH",
                        f'Value for "{name}" is {len(str(value))} characters long; '
                        f"the limit is {TEXT_MAX_LENGTH}",
                    )
                if problem and all(i["name"] != name or i["error"] != problem[0] for i in invalid):
                    invalid.append(
                        {"isValid": False, "message": problem[1], "error": problem[0], "name": name}
                    )
        return invalid

    def _property(self, object_type: str, name: str, custom: bool = False) -> dict[str, Any]:
        return {
            "name": name,
            "label": name.replace("_", " ").title(),
            "type": "string",
            "fieldType": "text",
            "description": "Published segments of the record's account" if custom else "",
            "groupName": f"{OBJECT_TYPES[object_type][2][0]}information",
            "options": [],
            "displayOrder": -1,
            "calculated": False,
            "externalOptions": False,
            "hasUniqueValue": False,
            "hidden": False,
            "hubspotDefined": not custom,
            "modificationMetadata": {
                "archivable": custom,
                "readOnlyDefinition": not custom,
                "readOnlyValue": False,
            },
            "formField": True,
            "createdAt": stamp(1),
            "updatedAt": stamp(1),
            "archived": False,
        }


def listed(values: list[str]) -> list[str]:
    """Query values given repeated or comma-separated, as HubSpot accepts both."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _record_error(category: str, message: str, ids: list[str]) -> dict[str, Any]:
    return {"status": "error", "category": category, "message": message, "context": {"ids": ids}}
