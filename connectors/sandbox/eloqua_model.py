"""What the Eloqua emulator holds, shared by its application API (eloqua.py) and its Bulk API
(eloqua_bulk.py): the contact fields with their limits, contacts, and Eloqua's timestamp format."""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass

from connectors.eloqua_time import wall_moments

SMALL_TEXT_MAX = 100
LARGE_TEXT_MAX = 32_000
PAGE_MAX = 1000
SEGMENT_FIELD = "C_Segment_Names1"
SEGMENT_FIELD_LONG = "C_Segment_Names_Long1"
MODIFIED_FIELD = "C_DateModified"
CREATED_FIELD = "C_DateCreated"
# How a search writes a moment: a date, or a date and a time to the second.
_SEARCH_MOMENTS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d")
# A field statement of an import definition: {{Contact.Id}} or {{Contact.Field(C_X)}}.
STATEMENT = re.compile(r"^\{\{Contact\.(?:Id|Field\(([A-Za-z0-9_]+)\))\}\}$")


@dataclass(frozen=True)
class Field:
    """One contact field as Eloqua describes it."""

    id: str
    internal_name: str
    name: str
    data_type: str  # "text", "largeText", "date"
    read_only: bool = False
    standard: bool = False
    # The REST contact property that carries a standard field, if any.
    rest_name: str | None = None

    @property
    def max_length(self) -> int | None:
        """The most characters a value may have (None: not a text field)."""
        return {"text": SMALL_TEXT_MAX, "largeText": LARGE_TEXT_MAX}.get(self.data_type)


FIELDS = (
    Field(
        "100001", "C_EmailAddress", "Email Address", "text", standard=True, rest_name="emailAddress"
    ),
    Field("100002", "C_FirstName", "First Name", "text", standard=True, rest_name="firstName"),
    Field("100003", "C_LastName", "Last Name", "text", standard=True, rest_name="lastName"),
    Field("100004", "C_Company", "Company", "text", standard=True, rest_name="accountName"),
    Field("100005", CREATED_FIELD, "Date Created", "date", read_only=True, standard=True),
    # Moved by Eloqua on every change of the contact; the REST contact's `updatedAt`.
    Field("100006", MODIFIED_FIELD, "Date Modified", "date", read_only=True, standard=True),
    Field("100200", SEGMENT_FIELD, "Segment Names", "text"),
    Field("100201", SEGMENT_FIELD_LONG, "Segment Names (long)", "largeText"),
)


@dataclass
class Contact:
    """One contact."""

    id: str
    fields: dict[str, str]  # internal name -> value (absent when blank)
    account_id: str | None
    created_at: int
    updated_at: int


def field_named(name: str | None) -> Field | None:
    """The field with this internal or REST name (case-insensitive), if any."""
    if not name:
        return None
    for known in FIELDS:
        if name.lower() in (known.internal_name.lower(), (known.rest_name or "").lower()):
            return known
    return None


def iso(moment: float | None = None) -> str:
    """A moment (now by default) as Eloqua's Bulk API writes it."""
    when = dt.datetime.fromtimestamp(time.time() if moment is None else moment, dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def search_moment(text: str) -> int | None:
    """A search value ("YYYY-MM-DD HH:MM:SS" or "YYYY-MM-DD", US Eastern wall time, Eloqua's
    server time) as epoch seconds; None if it is neither. A wall time that means two moments
    (the hour repeated in November) means the later, one that means none (the hour skipped in
    March) is read as standard time: a client must not lean on either."""
    for layout in _SEARCH_MOMENTS:
        try:
            wall = dt.datetime.strptime(text, layout)
        except ValueError:
            continue
        moments = wall_moments(wall) or [(wall + dt.timedelta(hours=5)).replace(tzinfo=dt.UTC)]
        return int(max(moments).timestamp())
    return None


def now_stamp() -> int:
    """Now as Eloqua stamps a contact's createdAt / updatedAt: whole epoch seconds."""
    return int(time.time())
