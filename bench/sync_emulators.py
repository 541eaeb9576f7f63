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

Both also count answers by HTTP status (429s included), which the sandbox's stats do not.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.sandbox.hubspot import HubSpotEmulator
from connectors.sandbox.salesforce import SalesforceEmulator
from connectors.sandbox.salesforce_store import ApiError, Store
from connectors.sandbox.server import EmulatorServer, Request, Response
from connectors.sandbox.tls import make_certificates


class BenchSalesforce(SalesforceEmulator):
    """The Salesforce emulator with single-record updates and answers counted by status."""

    def __init__(self, latency: float) -> None:
        super().__init__(latency=latency)
        self.statuses: Counter[int] = Counter()

    def handle(self, request: Request, call: int) -> Response:
        """Answer as the sandbox does, counting the status."""
        response = super().handle(request, call)
        with self.lock:
            self.statuses[response.status] += 1
        return response

    def reset(self) -> None:
        """Forget writes, call counts, statuses and the day's API usage."""
        with self.lock:
            super().reset()
            self.statuses.clear()

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


class BenchHubSpot(HubSpotEmulator):
    """The HubSpot emulator with single-object updates and answers counted by status."""

    def __init__(self, latency: float) -> None:
        super().__init__(latency=latency)
        self.statuses: Counter[int] = Counter()

    def handle(self, request: Request, call: int) -> Response:
        """Answer as the sandbox does (auth, rate limit, routes), counting the status."""
        response = super().handle(request, call)
        with self.lock:
            self.statuses[response.status] += 1
        return response

    def reset(self) -> None:
        """Forget writes, call counts, statuses and rate-limit usage."""
        with self.lock:
            super().reset()
            self.statuses.clear()

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


@dataclass
class Emulators:
    """Running emulators: by system, with the CA file that verifies them."""

    salesforce: BenchSalesforce | None
    hubspot: BenchHubSpot | None
    ca_bundle: Path

    def describe(self, system: str) -> dict[str, Any]:
        """The emulator's base URL and credentials."""
        emulator = self.salesforce if system == "salesforce" else self.hubspot
        assert emulator is not None
        return emulator.describe()


@contextmanager
def running_emulators(systems: list[str], latency: float, folder: Path) -> Iterator[Emulators]:
    """HTTPS emulators on 127.0.0.1 for `systems`, each answering after `latency` seconds."""
    certificates = make_certificates(folder / "tls")
    with ExitStack() as stack:
        salesforce = BenchSalesforce(latency) if "salesforce" in systems else None
        hubspot = BenchHubSpot(latency) if "hubspot" in systems else None
        for emulator in (salesforce, hubspot):
            if emulator is not None:
                server = EmulatorServer(emulator, certificates)
                server.start()
                stack.callback(server.stop)
        yield Emulators(salesforce, hubspot, certificates.ca_bundle)
