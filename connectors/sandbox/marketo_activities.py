"""The Marketo emulator's activity log: New Lead and Change Data Value activities, the date-based
paging token, Get Lead Activities and Get Lead Changes.

experienceleague.adobe.com/en/docs/marketo-developer/marketo/rest/ (paging-tokens, lead-database/
activities), emulated as documented:
- `GET /rest/v1/activities/pagingtoken.json?sinceDatetime=ISO-8601` hands out a token for that
  moment; activities are returned from *after* it (the emulator takes that literally: an activity
  stamped at exactly that second is not returned).
- Activity dates are kept to the second, as Marketo writes them (`2024-05-01T10:20:30Z`).
- `GET /rest/v1/activities.json` takes up to ten `activityTypeIds`; `GET /rest/v1/activities/
  leadchanges.json` has no type filter (it returns Change Data Value and New Lead activities) and
  requires `fields`: only changes to those fields are returned. Both page by 300 (`batchSize`
  lower), always return a `nextPageToken`, set `moreResult`, and leave `result` out when nothing
  is found; both take up to 30 `leadIds`.
- Every activity of a lead goes when the lead is deleted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connectors.sandbox.marketo_leads import (
    FIELDS,
    PAGE_SIZE_MAX,
    Refused,
    listed,
    marketo_time,
    ok,
    page_token,
    read_page_token,
)
from connectors.sandbox.server import Request, Response

NEW_LEAD_ACTIVITY = 12
CHANGE_DATA_VALUE_ACTIVITY = 13
ACTIVITY_TYPE_IDS_MAX = 10
LEAD_IDS_MAX = 30
# Reason and source Marketo gives a change made through the API, and one made in its screens.
API_CHANGE = ("Web service API", "Web service API")
USER_CHANGE = ("Changed by user", "Web client")


@dataclass(frozen=True)
class Activity:
    """One activity of one lead; `field`, `new`, `old`, `reason`, `source` for a data change."""

    id: int
    lead_id: int
    date: dt.datetime  # UTC, to the second
    type_id: int
    field: str | None = None
    new: str | None = None
    old: str | None = None
    reason: str = ""
    source: str = ""

    def answer(self) -> dict[str, Any]:
        """The activity as Get Lead Activities and Get Lead Changes list it."""
        base: dict[str, Any] = {
            "id": self.id,
            "marketoGUID": str(self.id),
            "leadId": self.lead_id,
            "activityDate": marketo_time(self.date),
            "activityTypeId": self.type_id,
        }
        if self.type_id == NEW_LEAD_ACTIVITY:
            return base | {
                "primaryAttributeValueId": self.lead_id,
                "attributes": [
                    {"name": "Created Date", "value": self.date.date().isoformat()},
                    {"name": "Source Type", "value": "Web service API"},
                ],
            }
        spec = FIELDS[self.field or ""]
        return base | {
            "primaryAttributeValueId": spec.id,
            "primaryAttributeValue": spec.display_name,
            "fields": [
                {"id": spec.id, "name": spec.name, "newValue": self.new, "oldValue": self.old}
            ],
            "attributes": [
                {"name": "Reason", "value": self.reason},
                {"name": "Source", "value": self.source},
                {"name": "Lead ID", "value": self.lead_id},
            ],
        }


def to_the_second(moment: dt.datetime) -> dt.datetime:
    """`moment` in UTC without its fraction of a second (Marketo's resolution)."""
    return moment.astimezone(dt.UTC).replace(microsecond=0)


class ActivityLog:
    """The activities of one emulated instance, in the order they happened (activity id order).

    Not locked itself: the emulator holds its lock around every call.
    """

    def __init__(self) -> None:
        self._activities: list[Activity] = []
        self._next_id = 1

    def new_lead(self, lead_id: int, created: dt.datetime) -> None:
        """Log a lead's creation (New Lead, kept for the life of the lead)."""
        self._add(lead_id, created, NEW_LEAD_ACTIVITY)

    def changed(
        self,
        lead_id: int,
        field: str,
        old: str | None,
        new: str | None,
        moment: dt.datetime,
        why: tuple[str, str] = API_CHANGE,
    ) -> None:
        """Log a field's value change (Change Data Value); a value written again is no change."""
        if old == new:
            return
        reason, source = why
        self._add(lead_id, moment, CHANGE_DATA_VALUE_ACTIVITY, field, new, old, reason, source)

    def forget_lead(self, lead_id: int) -> None:
        """A deleted lead's activities go with it."""
        self._activities = [a for a in self._activities if a.lead_id != lead_id]

    def all(self) -> list[Activity]:
        """Every activity, oldest first."""
        return list(self._activities)

    def _add(self, lead_id: int, moment: dt.datetime, type_id: int, *details: Any) -> None:
        self._activities.append(
            Activity(self._next_id, lead_id, to_the_second(moment), type_id, *details)
        )
        self._next_id += 1

    # ---- the API ----------------------------------------------------------------------------

    def paging_token(self, request: Request) -> Response:
        """A date-based paging token for `sinceDatetime` (ISO 8601)."""
        since = request.param("sinceDatetime") or ""
        if not since:
            raise Refused("1003", "sinceDatetime cannot be blank")
        try:
            moment = dt.datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError:
            raise Refused("1001", f"Invalid value '{since}'. Required of type 'datetime'") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return ok(nextPageToken=page_token(since=moment.timestamp(), after=0))

    def activities_page(self, request: Request) -> Response:
        """Get Lead Activities: up to ten activityTypeIds from a paging token."""
        types = [t for t in listed(request, "activityTypeIds") if t]
        if not request.param("nextPageToken"):
            raise Refused("1003", "nextPageToken cannot be blank")
        if not types:
            raise Refused("1003", "activityTypeIds cannot be blank")
        if len(types) > ACTIVITY_TYPE_IDS_MAX or not all(t.isdigit() for t in types):
            raise Refused("1003", "activityTypeIds takes up to 10 integer ids")
        wanted = {int(t) for t in types}
        return self._page(request, lambda a: a.type_id in wanted)

    def lead_changes_page(self, request: Request) -> Response:
        """Get Lead Changes: New Lead activities and changes to the listed `fields`."""
        if not request.param("nextPageToken"):
            raise Refused("1003", "nextPageToken cannot be blank")
        fields = {f for f in listed(request, "fields") if f}
        if not fields:
            raise Refused("1003", "fields cannot be blank")
        unknown = sorted(fields - set(FIELDS))
        if unknown:
            raise Refused("1006", f"Field '{unknown[0]}' not found")
        return self._page(
            request,
            lambda a: (
                a.type_id == NEW_LEAD_ACTIVITY
                or (a.type_id == CHANGE_DATA_VALUE_ACTIVITY and a.field in fields)
            ),
        )

    def _page(self, request: Request, keep: Callable[[Activity], bool]) -> Response:
        leads = [value for value in listed(request, "leadIds") if value]
        if len(leads) > LEAD_IDS_MAX or not all(value.isdigit() for value in leads):
            raise Refused("1003", f"leadIds takes up to {LEAD_IDS_MAX} integer ids")
        only = {int(value) for value in leads}
        try:
            size = min(max(int(request.param("batchSize") or PAGE_SIZE_MAX), 1), PAGE_SIZE_MAX)
        except ValueError:
            raise Refused(
                "1001", "Invalid value for batchSize. Required of type 'integer'"
            ) from None
        state = read_page_token(request.param("nextPageToken") or "")
        since, after = float(state.get("since", 0)), int(state.get("after", 0))
        found = [
            a
            for a in self._activities
            if a.id > after
            and a.date.timestamp() > since
            and (not only or a.lead_id in only)
            and keep(a)
        ]
        page = found[:size]
        body: dict[str, Any] = {
            "nextPageToken": page_token(since=since, after=page[-1].id if page else after),
            "moreResult": len(found) > size,
        }
        if page:
            body["result"] = [activity.answer() for activity in page]
        return ok(**body)
