"""The HubSpot emulator's Lists v3 API: a list's definition, its memberships paged with `after`,
and the manual add/remove of members.

Shapes followed (developers.hubspot.com, "CRM Lists" v3 reference, and hubspot-api-client 12's
crm.lists models):
- `GET /crm/v3/lists/{listId}` answers `{"list": {listId, listVersion, name, objectTypeId,
  processingStatus, processingType, size, createdAt, updatedAt, ...}}` (ListFetchResponse,
  PublicObjectList); objectTypeId is "0-1" for contacts and "0-2" for companies.
- `GET /crm/v3/lists/{listId}/memberships?after=&limit=` ("Fetch List Memberships Ordered by
  ID") answers `{"results": [{"recordId", "membershipTimestamp"}], "paging": {"next": {"after",
  "link"}}, "total"}`, record ids ascending; limit defaults to 100 and is at most 250.
- `PUT /crm/v3/lists/{listId}/memberships/add` and `/remove` take a JSON array of record ids, for
  MANUAL and SNAPSHOT lists only, and answer `recordsIdsAdded` (sic, as the SDK maps it) or
  `recordIdsRemoved`, with `recordIdsMissing`.
An unknown list is a 404 in HubSpot's error body, category OBJECT_NOT_FOUND (the message's
wording is the sandbox's: HubSpot does not document it).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from connectors.sandbox.hubspot_objects import OBJECT_TYPES, HubSpotObjects, error, stamp
from connectors.sandbox.server import Request, Response

MEMBERSHIPS_LIMIT_DEFAULT = 100
MEMBERSHIPS_LIMIT_MAX = 250
PROCESSING_TYPES = ("MANUAL", "DYNAMIC", "SNAPSHOT")
# Lists whose members only API calls and users change (DYNAMIC ones follow their filters).
_MANUAL_TYPES = ("MANUAL", "SNAPSHOT")
# The user id the sandbox's lists say created and updated them.
_SANDBOX_USER = "7001"


@dataclass
class CrmList:
    """One list: its definition and its members (record id -> membership timestamp)."""

    list_id: str
    name: str
    object_type: str
    processing_type: str
    created_at: str
    updated_at: str
    version: int = 1
    members: dict[str, str] = field(default_factory=dict)


class HubSpotLists(HubSpotObjects):
    """HubSpot's Lists v3 over the lists a subclass holds in `_lists`."""

    _lists: dict[str, CrmList]
    _next_list_id: int

    # ---- public helpers for tests, the demo and the sandbox's seed -------------------------

    def add_list(
        self,
        name: str,
        object_type: str,
        record_ids: list[str] | tuple[str, ...] = (),
        processing_type: str = "MANUAL",
    ) -> str:
        """Create a list of `object_type` records holding these members; its listId."""
        if object_type not in OBJECT_TYPES:
            raise ValueError(f"no object type {object_type!r} (known: {', '.join(OBJECT_TYPES)})")
        if processing_type not in PROCESSING_TYPES:
            raise ValueError(f"processing_type must be one of {', '.join(PROCESSING_TYPES)}")
        with self.lock:
            list_id = str(self._next_list_id)
            self._next_list_id += 1
            created = stamp()
            self._lists[list_id] = CrmList(
                list_id, name, object_type, processing_type, created, created
            )
            self._change_members(list_id, add=list(record_ids))
            self._lists[list_id].version = 1
            return list_id

    def add_list_members(self, list_id: str, record_ids: list[str]) -> None:
        """Make these records members of the list (KeyError for an unknown list or record)."""
        with self.lock:
            self._change_members(list_id, add=record_ids)

    def remove_list_members(self, list_id: str, record_ids: list[str]) -> None:
        """Take these records out of the list (KeyError for an unknown list)."""
        with self.lock:
            self._change_members(list_id, remove=record_ids)

    def list_members(self, list_id: str) -> list[str]:
        """The list's current members, ids ascending (KeyError for an unknown list)."""
        with self.lock:
            return self._current_members(self._lists[list_id])

    def _change_members(
        self, list_id: str, add: list[str] | None = None, remove: list[str] | None = None
    ) -> None:
        found = self._lists[list_id]
        held = self._objects[found.object_type]
        unknown = [record_id for record_id in add or [] if record_id not in held]
        if unknown:
            raise KeyError(f"no {found.object_type} {', '.join(unknown)}")
        now = stamp()
        for record_id in add or []:
            found.members.setdefault(record_id, now)
        for record_id in remove or []:
            found.members.pop(record_id, None)
        found.updated_at = now
        found.version += 1

    def _current_members(self, found: CrmList) -> list[str]:
        # HubSpot drops a deleted (archived) record from every list it was in.
        held = self._objects[found.object_type]
        return sorted((i for i in found.members if i in held), key=int)

    # ---- request handling ------------------------------------------------------------------

    def _route_lists(self, request: Request, parts: list[str]) -> Response | None:
        """Answer a /crm/v3/lists request (`parts`: the path's segments); None: no such route."""
        if len(parts) < 4:
            return None
        list_id, rest = parts[3], parts[4:]
        if request.method == "GET" and rest == []:
            return self._list_answer(list_id)
        if request.method == "GET" and rest == ["memberships"]:
            return self._memberships(request, list_id)
        if request.method == "PUT" and rest in (["memberships", "add"], ["memberships", "remove"]):
            return self._manual_change(request, list_id, adding=rest[1] == "add")
        return None

    def _not_found(self, list_id: str) -> Response:
        return error(404, f"List does not exist with listId {list_id}.", "OBJECT_NOT_FOUND")

    def _list_answer(self, list_id: str) -> Response:
        with self.lock:
            found = self._lists.get(list_id)
            if found is None:
                return self._not_found(list_id)
            size = len(self._current_members(found))
            body = {
                "listId": found.list_id,
                "listVersion": found.version,
                "name": found.name,
                "objectTypeId": OBJECT_TYPES[found.object_type][0],
                "processingStatus": "COMPLETE",
                "processingType": found.processing_type,
                "size": size,
                "createdAt": found.created_at,
                "createdById": _SANDBOX_USER,
                "updatedAt": found.updated_at,
                "updatedById": _SANDBOX_USER,
                "filtersUpdatedAt": found.created_at,
            }
        return Response(body={"list": body})

    def _memberships(self, request: Request, list_id: str) -> Response:
        try:
            limit = int(request.param("limit") or MEMBERSHIPS_LIMIT_DEFAULT)
        except ValueError:
            return error(400, "limit must be an integer", "VALIDATION_ERROR")
        # The documented maximum; a larger limit is served as the maximum, as the objects API does.
        limit = min(max(limit, 1), MEMBERSHIPS_LIMIT_MAX)
        after = request.param("after")
        start = _cursor_id(after) if after else 0
        if start is None:
            return error(400, f"Invalid paging cursor: {after}", "VALIDATION_ERROR")
        with self.lock:
            found = self._lists.get(list_id)
            if found is None:
                return self._not_found(list_id)
            members = self._current_members(found)
            following = [i for i in members if int(i) > start]
            page = following[:limit]
            results = [{"recordId": i, "membershipTimestamp": found.members[i]} for i in page]
        body: dict[str, Any] = {"results": results, "total": len(members)}
        if len(following) > limit:
            cursor = _cursor(page[-1])
            query = urlencode([("limit", str(limit)), ("after", cursor)])
            link = f"{self.base_url}{request.path}?{query}"
            body["paging"] = {"next": {"after": cursor, "link": link}}
        return Response(body=body)

    def _manual_change(self, request: Request, list_id: str, adding: bool) -> Response:
        ids = request.json_or_none()
        if not isinstance(ids, list) or not all(isinstance(i, str | int) for i in ids):
            return error(
                400, "Invalid input JSON: expected an array of record ids", "VALIDATION_ERROR"
            )
        wanted = [str(i) for i in dict.fromkeys(ids)]
        with self.lock:
            found = self._lists.get(list_id)
            if found is None:
                return self._not_found(list_id)
            if found.processing_type not in _MANUAL_TYPES:
                message = (
                    f"List {list_id} is a {found.processing_type} list: only MANUAL and "
                    "SNAPSHOT lists take members by API"
                )
                return error(400, message, "VALIDATION_ERROR")
            held = self._objects[found.object_type]
            missing = [i for i in wanted if i not in held]
            present = [i for i in wanted if i in held]
            if adding:
                changed = [i for i in present if i not in found.members]
                self._change_members(list_id, add=changed)
                return Response(body={"recordsIdsAdded": changed, "recordIdsMissing": missing})
            changed = [i for i in present if i in found.members]
            self._change_members(list_id, remove=changed)
        return Response(body={"recordIdsRemoved": changed, "recordIdsMissing": missing})


def _cursor(record_id: str) -> str:
    """An opaque `after` token (HubSpot's are opaque too): the last record id served, encoded."""
    return base64.urlsafe_b64encode(f"m:{record_id}".encode()).decode().rstrip("=")


def _cursor_id(token: str) -> int | None:
    """The record id an `after` token carries; None when it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    prefix, _, record_id = text.partition(":")
    return int(record_id) if prefix == "m" and record_id.isdigit() else None
