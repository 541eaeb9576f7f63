"""The HubSpot emulator's CRM search (`POST /crm/v3/objects/{objectType}/search`) and v4 batch
associations read (`POST /crm/v4/associations/{from}/{to}/batch/read`).

Followed from developers.hubspot.com "Search the CRM" (filterGroups ORed, the filters of a group
ANDed; sorts; `limit` at most 200; `after` an offset; at most 10,000 results per query, and a 400
for paging past them, i.e. from an `after` of 10,000 on; datetime values as epoch milliseconds;
the default properties of contacts and companies) and its 2024 changelog (5 filter groups, 10
filters per group, 25 in all); the search rate limit itself is applied by `HubSpotEmulator`. Not
confirmed from the docs, so kept plain: the wording of the 400s (HubSpot's error body with
category VALIDATION_ERROR), whether a page may reach past 10,000 (here it is cut at the cap), a
limit over 200 (here a 400), the typeIds of leads' company associations, and the answer for a
record without associations (a 207 error with subCategory crm.associations.NO_ASSOCIATIONS_FOUND,
as seen in traffic reports).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from connectors.sandbox.hubspot_objects import (
    OBJECT_TYPES,
    CrmObject,
    HubSpotObjects,
    error,
    modified_property,
    stamp,
)
from connectors.sandbox.server import Request, Response

SEARCH_LIMIT_MAX = 200
SEARCH_LIMIT_DEFAULT = 10
SEARCH_RESULT_CAP = 10_000
FILTER_GROUPS_MAX = 5
FILTERS_PER_GROUP_MAX = 10
FILTERS_MAX = 25
ASSOCIATIONS_BATCH_MAX = 1_000
# Properties searched as moments (epoch milliseconds) rather than as text.
_MOMENTS = ("createdate", "lastmodifieddate", "hs_lastmodifieddate")
# (primary, unlabelled) association typeIds to companies: contact->company 1 and 279 are
# HubSpot's documented ones; the leads' pair is the sandbox's own.
_COMPANY_TYPE_IDS = {"contacts": (1, 279), "leads": (610, 611)}
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "EQ": lambda held, wanted: held == wanted,
    "NEQ": lambda held, wanted: held != wanted,
    "GT": lambda held, wanted: held > wanted,
    "GTE": lambda held, wanted: held >= wanted,
    "LT": lambda held, wanted: held < wanted,
    "LTE": lambda held, wanted: held <= wanted,
}
_PRESENCE = ("HAS_PROPERTY", "NOT_HAS_PROPERTY")


class _Refused(ValueError):
    """A search body HubSpot would answer with a 400."""


@lru_cache(maxsize=65_536)
def epoch_ms(moment: str) -> int:
    """A timestamp as HubSpot's epoch milliseconds: digits already are; ISO 8601 is converted."""
    text = moment.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    parsed = dt.datetime.fromisoformat(text)
    if parsed.utcoffset() is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return (parsed - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)


class HubSpotSearch(HubSpotObjects):
    """Search and associations over the records HubSpotObjects holds."""

    # The most results one query pages through (a setting of HubSpotEmulator: tests lower it).
    search_result_cap: int
    # Seconds a change takes to reach the search index (a setting of HubSpotEmulator).
    search_index_seconds: float

    def _search(self, request: Request, object_type: str) -> Response:
        """One page of the records matching the body's filterGroups, sorted, from `after`."""
        body = request.json_or_none()
        try:
            if not isinstance(body, dict):
                raise _Refused("Invalid input JSON on line 1")
            limit = _integer(body.get("limit", SEARCH_LIMIT_DEFAULT), "limit")
            after = _integer(body.get("after") or 0, "after")
            if not 0 < limit <= SEARCH_LIMIT_MAX:
                raise _Refused(f"limit must be between 1 and {SEARCH_LIMIT_MAX}, not {limit}")
            if not 0 <= after < self.search_result_cap:
                raise _Refused(
                    f"Search pages through at most {self.search_result_cap} results, "
                    f"not from after {after}"
                )
            wanted = body.get("properties")
            if wanted is not None and not (
                isinstance(wanted, list) and all(isinstance(n, str) for n in wanted)
            ):
                raise _Refused("properties must be a list of property names")
            with self.lock:
                matches = self._matching(object_type, body.get("filterGroups") or [])
                ordered = self._sorted(object_type, matches, body.get("sorts") or [])
                results = [
                    self._render(object_type, found, wanted or [], [])
                    # Nothing past the cap is ever answered, whatever the limit.
                    for found in ordered[after : min(after + limit, self.search_result_cap)]
                ]
        except _Refused as refused:
            return error(400, str(refused), "VALIDATION_ERROR")
        answer: dict[str, Any] = {"total": len(ordered), "results": results}
        # The next page is named by the total, past the cap too: following it there is the 400.
        if after + limit < len(ordered):
            answer["paging"] = {"next": {"after": str(after + limit)}}
        return Response(body=answer)

    def _matching(self, object_type: str, groups: Any) -> list[CrmObject]:
        """The records meeting any group (every filter of a group); all records for none."""
        if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
            raise _Refused("filterGroups must be a list of objects")
        if len(groups) > FILTER_GROUPS_MAX:
            raise _Refused(f"at most {FILTER_GROUPS_MAX} filterGroups, not {len(groups)}")
        tests = [[self._filter(object_type, f) for f in g.get("filters") or []] for g in groups]
        if any(len(group) > FILTERS_PER_GROUP_MAX for group in tests):
            raise _Refused(f"at most {FILTERS_PER_GROUP_MAX} filters in a filterGroup")
        if sum(len(group) for group in tests) > FILTERS_MAX:
            raise _Refused(f"at most {FILTERS_MAX} filters in all")
        held = list(self._objects[object_type].values())
        if self.search_index_seconds:
            # A record changed too recently is not in the index yet (its older version is not
            # kept here: it is simply not found).
            indexed = epoch_ms(stamp()) - int(self.search_index_seconds * 1000)
            held = [o for o in held if epoch_ms(o.updated_at) <= indexed]
        if not tests:
            return held
        return [o for o in held if any(all(test(o) for test in group) for group in tests)]

    def _filter(self, object_type: str, spec: Any) -> Callable[[CrmObject], bool]:
        """One filter as a test of a record."""
        if not isinstance(spec, dict) or not isinstance(spec.get("propertyName"), str):
            raise _Refused("a filter needs a propertyName")
        name, operator = spec["propertyName"], str(spec.get("operator") or "EQ")
        self._known(object_type, name)
        if operator in _PRESENCE:
            present = operator == "HAS_PROPERTY"
            return lambda found: (self._held(object_type, found, name) is not None) is present
        if operator == "IN" and isinstance(spec.get("values"), list):
            values = {self._comparable(name, str(v)) for v in spec["values"]}
            return lambda found: self._held(object_type, found, name) in values
        compare = _COMPARISONS.get(operator)
        if compare is None or spec.get("value") is None:
            raise _Refused(f"operator {operator} with value {spec.get('value')!r} is not valid")
        wanted = self._comparable(name, str(spec["value"]))

        def test(found: CrmObject) -> bool:
            held = self._held(object_type, found, name)
            return held is not None and compare(held, wanted)

        return test

    def _sorted(self, object_type: str, found: list[CrmObject], sorts: Any) -> list[CrmObject]:
        """Ordered by each sort in turn (values missing last), then by id."""
        if not isinstance(sorts, list):
            raise _Refused("sorts must be a list")
        ordered = sorted(found, key=lambda o: int(o.id))
        for spec in reversed(sorts):
            if not isinstance(spec, dict) or not isinstance(spec.get("propertyName"), str):
                raise _Refused("a sort needs a propertyName")
            name = spec["propertyName"]
            self._known(object_type, name)
            descending = str(spec.get("direction") or "ASCENDING").upper() == "DESCENDING"
            present = [o for o in ordered if self._held(object_type, o, name) is not None]
            missing = [o for o in ordered if self._held(object_type, o, name) is None]
            present.sort(key=lambda o: self._held(object_type, o, name), reverse=descending)
            ordered = present + missing
        return ordered

    def _known(self, object_type: str, name: str) -> None:
        builtin = ("hs_object_id", "createdate", modified_property(object_type))
        if name not in builtin and name not in self._properties[object_type]:
            kind = OBJECT_TYPES[object_type][2][0]
            raise _Refused(f"Property {name!r} does not exist on {kind}")

    def _held(self, object_type: str, found: CrmObject, name: str) -> Any:
        """A record's value of `name`, comparable with what `_comparable` makes of a filter's."""
        if name == "hs_object_id":
            return int(found.id)
        if name == "createdate":
            return epoch_ms(found.created_at)
        if name == modified_property(object_type):
            return epoch_ms(found.updated_at)
        return found.properties.get(name)

    @staticmethod
    def _comparable(name: str, value: str) -> Any:
        try:
            if name == "hs_object_id":
                return int(value)
            return epoch_ms(value) if name in _MOMENTS else value
        except ValueError:
            raise _Refused(f"{value!r} is not a valid value of {name}") from None

    # ---- v4 batch associations read --------------------------------------------------------

    def _batch_associations(self, request: Request, from_type: str, to_type: str) -> Response:
        """Each asked record's associated `to_type` records: the first one labelled Primary."""
        body = request.json_or_none()
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or not all(
            isinstance(i, dict) and isinstance(i.get("id"), str | int) for i in inputs
        ):
            return error(400, "Invalid input JSON on line 1", "VALIDATION_ERROR")
        if len(inputs) > ASSOCIATIONS_BATCH_MAX:
            message = (
                f"Batch input size {len(inputs)} exceeds the maximum of {ASSOCIATIONS_BATCH_MAX}"
            )
            return error(400, message, "VALIDATION_ERROR")
        primary, unlabelled = _COMPANY_TYPE_IDS.get(from_type, (0, 0))
        started, results, errors = stamp(), [], []
        singular, other = OBJECT_TYPES[from_type][2][0], OBJECT_TYPES[to_type][2][0]
        with self.lock:
            for record_id in dict.fromkeys(str(i["id"]) for i in inputs):
                found = self._objects[from_type].get(record_id)
                linked = found.links.get(to_type, []) if found is not None else []
                if not linked:
                    errors.append(
                        {
                            "status": "error",
                            "category": "OBJECT_NOT_FOUND",
                            "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                            "context": {"fromObjectId": [record_id]},
                            "message": f"No {other} is associated with {singular} {record_id}.",
                        }
                    )
                    continue
                to = []
                for n, linked_id in enumerate(linked):
                    kinds = [{"category": "HUBSPOT_DEFINED", "typeId": unlabelled, "label": None}]
                    if n == 0:
                        kinds.insert(
                            0,
                            {"category": "HUBSPOT_DEFINED", "typeId": primary, "label": "Primary"},
                        )
                    to.append({"toObjectId": int(linked_id), "associationTypes": kinds})
                results.append({"from": {"id": record_id}, "to": to})
        answer: dict[str, Any] = {"status": "COMPLETE", "results": results}
        answer |= {"startedAt": started, "completedAt": stamp()}
        if not errors:
            return Response(body=answer)
        return Response(207, answer | {"numErrors": len(errors), "errors": errors})


def _integer(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _Refused(f"{name} must be an integer, not {value!r}") from None
