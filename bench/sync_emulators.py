"""The emulators bench/sync.py runs: the sandbox's, plus what the plain scripts call.

The sandbox emulators answer the calls segsync makes (paged reads, batch updates). A user's plain
script updates one record per call, with endpoints the sandbox does not serve yet, so the
subclasses here add them, following the vendors' documented behaviour:

- Salesforce `PATCH /services/data/vXX.X/sobjects/{object}/{id}` (what simple-salesforce's
  `sf.Lead.update(id, {...})` sends): 204 with no body; 404 NOT_FOUND for an unknown id;
  400 with `[{"message", "errorCode", "fields"}]` for a refused value.
- HubSpot `PATCH /crm/v3/objects/{objectType}/{id}` (hubspot-api-client's
  `basic_api.update(id, SimplePublicObjectInput(...))`): 200 with the object; 404
  OBJECT_NOT_FOUND; 400 VALIDATION_ERROR for a refused value. It passes through the same
  authentication and the same ten-second rate limit as every other call.

- Eloqua `PUT /api/REST/1.0/data/contact/{id}` ("Update a contact", REST 1.0): the body is the
  contact, custom fields in `fieldValues` as `[{"id": field id, "value": ...}]` (standard ones by
  their REST names, e.g. emailAddress); 200 with the contact (depth complete); 404 for an unknown
  id; 400 with `{"failures": [...]}` for a value longer than its field (100 characters for small
  text) or an unknown field id. An empty value clears the field, as the emulator stores blanks.

Marketo (`POST /rest/v1/leads.json`, one input) and Pardot (`PATCH /api/v5/objects/prospects/
{id}`) already serve what a one-record script calls.

All of them also count answers by HTTP status (429s included), which the sandbox's stats do not;
Marketo answers its limits with HTTP 200 and `success: false`, so its 606 (rate) and 615
(concurrency) refusals are counted under those codes instead of 200.
"""

from __future__ import annotations

import json
import re
import time
from abc import abstractmethod
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.sandbox.eloqua import EloquaEmulator
from connectors.sandbox.hubspot import HubSpotEmulator
from connectors.sandbox.marketo import MarketoEmulator
from connectors.sandbox.pardot import PardotEmulator
from connectors.sandbox.salesforce import SalesforceEmulator
from connectors.sandbox.salesforce_store import ApiError, Store
from connectors.sandbox.server import Emulator, EmulatorServer, Request, Response
from connectors.sandbox.tls import make_certificates


class BenchEmulator(Emulator):
    """What every bench emulator adds to the sandbox's: answers counted by status, and a record's
    field read and put back directly (no call, no write logged)."""

    def __init__(self, latency: float) -> None:
        super().__init__(latency=latency)
        self.statuses: Counter[int] = Counter()

    def handle(self, request: Request, call: int) -> Response:
        """Answer as the sandbox does, counting the status."""
        # Every bench emulator puts this class before a sandbox emulator, whose handle this is.
        response = super().handle(request, call)  # type: ignore[safe-super]
        with self.lock:
            self.statuses[self.status_of(response)] += 1
        return response

    def status_of(self, response: Response) -> int:
        """The code an answer is counted under: its HTTP status."""
        return response.status

    def forget_usage(self) -> None:
        """Forget the vendor's usage, as the sandbox does, and the statuses counted."""
        super().forget_usage()
        self.statuses.clear()

    def plain_field(self, name: str) -> str:
        """How a plain script's one-record update names the field `name`."""
        return name

    @abstractmethod
    def set_value(self, object_type: str, record_id: str, name: str, value: str | None) -> None:
        """Put `value` straight into a record's field (no call, no write logged)."""

    @abstractmethod
    def value(self, object_type: str, record_id: str, name: str) -> str | None:
        """A record's field as stored."""

    @abstractmethod
    def edit(self, object_type: str, record_id: str, name: str, value: str | None) -> None:
        """Someone else edits the record's field in the CRM (its modification time moves)."""


class BenchSalesforce(BenchEmulator, SalesforceEmulator):
    """The Salesforce emulator with single-record updates and answers counted by status."""

    def edit(self, object_type: str, record_id: str, name: str, value: str | None) -> None:
        """Another user edits the record (SystemModstamp moves)."""
        self.edit_record(object_type, record_id, {name: value})

    def set_value(self, object_type: str, record_id: str, name: str, value: str | None) -> None:
        """Put `value` straight into a record's field (no call, no write logged)."""
        with self.lock:
            self.store.records[object_type][record_id][name] = value

    def value(self, object_type: str, record_id: str, name: str) -> str | None:
        """A record's field as stored."""
        with self.lock:
            found = self.store.records[object_type][record_id][name]
            return None if found is None else str(found)

    def route_name(self, request: Request) -> str:
        """As the sandbox groups paths, with record ids of single-record calls as {id}."""
        path = super().route_name(request)
        return re.sub(
            r"^(/services/data/v[\d.]+/sobjects/\w+/)[A-Za-z0-9]{15,18}$", r"\1{id}", path
        )

    def _route(self, request: Request, version: str, rest: str, call: int) -> Response:
        parts = rest.split("/")
        if len(parts) == 3 and parts[0] == "sobjects" and request.method == "PATCH":
            return self._update_one(request, parts[1], parts[2], call)
        return super()._route(request, version, rest, call)

    def _update_one(self, request: Request, name: str, record_id: str, call: int) -> Response:
        object_type = Store.object_name(name)
        if object_type is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        try:
            body = request.json()
        except ValueError:
            raise ApiError(400, "JSON_PARSER_ERROR", "The request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        item = {**body, "attributes": {"type": object_type}, "id": record_id}
        _, record_id, values = self._parse_sobject(item)
        error = self.store.check_update(object_type, record_id, values)
        if error is not None:
            code = str(error["statusCode"])
            if code in ("INVALID_CROSS_REFERENCE_KEY", "MALFORMED_ID"):
                raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
            status = 404 if code == "ENTITY_IS_DELETED" else 400
            return Response(status, [{"errorCode": code, **error}])
        self._apply(object_type, record_id, values, call)
        return Response(204, None)


class BenchHubSpot(BenchEmulator, HubSpotEmulator):
    """The HubSpot emulator with single-object updates and answers counted by status."""

    def edit(self, object_type: str, record_id: str, name: str, value: str | None) -> None:
        """Someone edits the record in HubSpot (lastmodifieddate moves)."""
        self.edit_record(object_type, record_id, {name: value})

    def set_value(self, object_type: str, record_id: str, name: str, value: str | None) -> None:
        """Put `value` straight into a record's property (no call, no write logged)."""
        with self.lock:
            self._objects[object_type][record_id].properties[name] = value

    def value(self, object_type: str, record_id: str, name: str) -> str | None:
        """A record's property as stored."""
        with self.lock:
            return self._objects[object_type][record_id].properties.get(name)

    def _route(self, request: Request, call: int) -> Response:
        parts = [part for part in request.path.split("/") if part]
        if request.method == "PATCH" and len(parts) == 5 and parts[:3] == ["crm", "v3", "objects"]:
            object_type = self._object_type(parts[3])
            if object_type is not None:
                return self._update_one(request, object_type, parts[4], call)
        return super()._route(request, call)

    def _update_one(
        self, request: Request, object_type: str, record_id: str, call: int
    ) -> Response:
        try:
            body = request.json()
        except ValueError:
            body = None
        properties = body.get("properties") if isinstance(body, dict) else None
        if not isinstance(properties, dict):
            return _hubspot_error(400, "Invalid input JSON on line 1", "VALIDATION_ERROR")
        invalid = self._invalid_values(object_type, [{"id": record_id, "properties": properties}])
        if invalid:
            message = f"Property values were not valid: {json.dumps(invalid)}"
            return _hubspot_error(400, message, "VALIDATION_ERROR")
        with self.lock:
            found = self._objects[object_type].get(record_id)
            if found is None:
                return _hubspot_error(404, "resource not found", "OBJECT_NOT_FOUND")
            values = {k: None if v is None else str(v) for k, v in properties.items()}
            found.properties.update(values)
            for name, value in values.items():
                self.log_write(object_type, record_id, name, value, call)
            return Response(body=self._render(object_type, found, list(values), []))


def _hubspot_error(status: int, message: str, category: str) -> Response:
    body = {"status": "error", "message": message, "category": category}
    return Response(status, body | {"correlationId": "00000000-0000-0000-0000-000000000000"})


class BenchMarketo(BenchEmulator, MarketoEmulator):
    """The Marketo emulator with answers counted by status (606/615 refusals by their code)."""

    def edit(self, object_type: str, record_id: str, name: str, value: str | None) -> None:
        """Someone edits the lead in Marketo (a Change Data Value activity, updatedAt moves)."""
        self.edit_lead(record_id, {name: value})

    def status_of(self, response: Response) -> int:
        """The HTTP status, or the 606/615 refusal code an HTTP 200 carries."""
        body = response.body
        if isinstance(body, dict) and body.get("success") is False:
            codes = [str(e.get("code")) for e in body.get("errors") or [] if isinstance(e, dict)]
            return next((int(c) for c in codes if c in ("606", "615")), response.status)
        return response.status

    def set_value(self, object_type: str, record_id: str, name: str, value: str | None) -> None:
        """Put `value` straight into a lead's field (no call, no write logged)."""
        with self.lock:
            self._leads[int(record_id)][name] = value or None

    def value(self, object_type: str, record_id: str, name: str) -> str | None:
        """A lead's field as stored."""
        with self.lock:
            found = self._leads[int(record_id)].get(name)
            return None if found is None else str(found)


class BenchPardot(BenchEmulator, PardotEmulator):
    """The Pardot emulator with answers counted by status."""

    def edit(self, object_type: str, record_id: str, name: str, value: str | None) -> None:
        """A Pardot user edits the prospect (updatedAt moves)."""
        self.edit_prospect(record_id, {name: value})

    def set_value(self, object_type: str, record_id: str, name: str, value: str | None) -> None:
        """Put `value` straight into a prospect's field (no call, no write logged)."""
        with self.lock:
            self._prospects[int(record_id)][name] = value or None

    def value(self, object_type: str, record_id: str, name: str) -> str | None:
        """A prospect's field as stored."""
        with self.lock:
            found = self._prospects[int(record_id)].get(name)
            return None if found is None else str(found)


_CONTACT_PUT = re.compile(r"/api/rest/1\.0/data/contact/(\d+)")


class BenchEloqua(BenchEmulator, EloquaEmulator):
    """The Eloqua emulator with REST single-contact updates and answers counted by status."""

    def edit(self, object_type: str, record_id: str, name: str, value: str | None) -> None:
        """An Eloqua user edits the contact (C_DateModified moves)."""
        self.edit_contact(record_id, {name: value})

    def plain_field(self, name: str) -> str:
        """The id of a contact field (what a REST update's fieldValues name it by)."""
        return self._fields[name.lower()].id

    def set_value(self, object_type: str, record_id: str, name: str, value: str | None) -> None:
        """Put `value` straight into a contact's field (no call, no write logged)."""
        with self.lock:
            fields = self._contacts[record_id].fields
            if value:
                fields[name] = value
            else:
                fields.pop(name, None)

    def value(self, object_type: str, record_id: str, name: str) -> str | None:
        """A contact's field as stored."""
        with self.lock:
            return self._contacts[record_id].fields.get(name)

    def _route(self, request: Request, path: str, call: int) -> Response:
        match = _CONTACT_PUT.fullmatch(path)
        if request.method == "PUT" and match is not None:
            return self._update_contact(request, match.group(1), call)
        return super()._route(request, path, call)

    def _update_contact(self, request: Request, contact_id: str, call: int) -> Response:
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _eloqua_failure(400, "body", "Must be a valid Contact.")
        changes: dict[str, str] = {}
        by_id = {known.id: known for known in self._fields.values()}
        for item in body.get("fieldValues") or []:
            known = by_id.get(str(item.get("id"))) if isinstance(item, dict) else None
            if known is None or known.read_only:
                return _eloqua_failure(400, "fieldValues", "Must reference a writable field.")
            value = "" if item.get("value") is None else str(item["value"])
            if known.max_length is not None and len(value) > known.max_length:
                constraint = f"Must be a string of at most {known.max_length} characters."
                return _eloqua_failure(400, known.internal_name, constraint)
            changes[known.internal_name] = value
        for known in self._fields.values():
            if known.rest_name and known.rest_name in body and not known.read_only:
                changes[known.internal_name] = str(body[known.rest_name] or "")
        with self.lock:
            contact = self._contacts.get(contact_id)
            if contact is None:
                return Response(404, {"failures": [{"constraint": "Not found."}]})
            for internal, value in changes.items():
                if value:
                    contact.fields[internal] = value
                else:
                    contact.fields.pop(internal, None)
                self.log_write("contacts", contact_id, internal, value or None, call)
            contact.updated_at = int(time.time())
            return Response(body=self._render_contact(contact, "complete"))


def _eloqua_failure(status: int, field_name: str, constraint: str) -> Response:
    return Response(status, {"failures": [{"field": field_name, "constraint": constraint}]})


@dataclass
class Emulators:
    """Running emulators: by system, with the CA file that verifies them."""

    running: dict[str, BenchEmulator]
    ca_bundle: Path

    @property
    def hubspot(self) -> BenchHubSpot | None:
        """The HubSpot emulator, if running."""
        found = self.running.get("hubspot")
        return found if isinstance(found, BenchHubSpot) else None

    def describe(self, system: str) -> dict[str, Any]:
        """The emulator's base URL and credentials."""
        return self.running[system].describe()


@contextmanager
def running_emulators(
    classes: Mapping[str, type[BenchEmulator]], latency: float, folder: Path
) -> Iterator[Emulators]:
    """HTTPS emulators on 127.0.0.1, one of each class by system, each answering after
    `latency` seconds."""
    certificates = make_certificates(folder / "tls")
    with ExitStack() as stack:
        running: dict[str, BenchEmulator] = {}
        for system, emulator_class in classes.items():
            emulator = emulator_class(latency)
            server = EmulatorServer(emulator, certificates)
            server.start()
            stack.callback(server.stop)
            running[system] = emulator
        yield Emulators(running, certificates.ca_bundle)
