"""The Salesforce emulator's records: schema, 18-character ids, per-record validation and SOQL."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

KEY_PREFIXES = {"Lead": "00Q", "Contact": "003", "Account": "001"}
# The 18th-character checksum alphabet Salesforce uses for case-insensitive ids.
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Z0-5]{3})?$")
SEED_TIME = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


class ApiError(Exception):
    """A request-level error answer: HTTP status, errorCode and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> list[dict[str, Any]]:
        """The REST error body Salesforce sends: a list of {message, errorCode}."""
        return [{"message": self.message, "errorCode": self.code}]


@dataclass(frozen=True)
class FieldSpec:
    """One field as describe reports it."""

    name: str
    type: str
    length: int
    label: str
    updateable: bool = True
    custom: bool = False

    def describe(self) -> dict[str, Any]:
        """The field's entry in `sobjects/{obj}/describe`."""
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "length": self.length,
            "updateable": self.updateable,
            "createable": self.updateable,
            "nillable": self.name != "Id",
            "custom": self.custom,
            "calculated": False,
        }


def _common() -> tuple[FieldSpec, ...]:
    return (
        FieldSpec("Id", "id", 18, "Record ID", updateable=False),
        FieldSpec("SystemModstamp", "datetime", 0, "System Modstamp", updateable=False),
        FieldSpec("LastModifiedDate", "datetime", 0, "Last Modified Date", updateable=False),
        FieldSpec("Segment_Names__c", "string", 255, "Segment Names", custom=True),
        FieldSpec("Segment_Names_Long__c", "textarea", 32768, "Segment Names Long", custom=True),
        FieldSpec("Segment_Picklist__c", "multipicklist", 4099, "Segment Picklist", custom=True),
    )


def _person() -> tuple[FieldSpec, ...]:
    return (
        FieldSpec("FirstName", "string", 40, "First Name"),
        FieldSpec("LastName", "string", 80, "Last Name"),
        FieldSpec("Email", "email", 80, "Email"),
    )


SCHEMA: dict[str, dict[str, FieldSpec]] = {
    name: {spec.name.lower(): spec for spec in specs}
    for name, specs in {
        "Lead": (
            *_common(),
            *_person(),
            FieldSpec("Company", "string", 255, "Company"),
            FieldSpec("Website", "url", 255, "Website"),
        ),
        "Contact": (
            *_common(),
            *_person(),
            FieldSpec("AccountId", "reference", 18, "Account ID"),
        ),
        "Account": (
            *_common(),
            FieldSpec("Name", "string", 255, "Account Name"),
            FieldSpec("Website", "url", 255, "Website"),
        ),
    }.items()
}
_TEXT_TYPES = {"string", "textarea", "email", "url", "multipicklist", "picklist", "phone"}


def make_id(prefix: str, number: int) -> str:
    """The 18-character id of the `number`th record with key prefix `prefix`."""
    digits = ""
    for _ in range(7):
        number, rest = divmod(number, 62)
        digits = _BASE62[rest] + digits
    return with_checksum(f"{prefix}5g000{digits}")


def with_checksum(id15: str) -> str:
    """A 15-character id with its 3-character case checksum appended."""
    suffix = ""
    for chunk in range(3):
        bits = sum(
            1 << i for i, char in enumerate(id15[chunk * 5 : chunk * 5 + 5]) if char.isupper()
        )
        suffix += _CHECKSUM[bits]
    return id15 + suffix


def format_datetime(value: dt.datetime) -> str:
    """Salesforce's JSON datetime: 2024-01-01T00:00:00.000+0000."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{value.microsecond // 1000:03d}+0000"
    )


class Store:
    """Every record of the emulated org, by object type and id (insertion order is id order)."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in SCHEMA}
        self.deleted: set[str] = set()
        self._counters = dict.fromkeys(SCHEMA, 0)

    @staticmethod
    def object_name(name: str) -> str | None:
        """The object's canonical name, case-insensitively, or None."""
        return next((known for known in SCHEMA if known.lower() == name.lower()), None)

    @staticmethod
    def field(object_type: str, name: str) -> FieldSpec | None:
        """The field's spec, case-insensitively, or None."""
        return SCHEMA[object_type].get(name.lower())

    def add(self, object_type: str, rows: list[dict[str, Any]], at: dt.datetime) -> list[str]:
        """Insert rows (unknown fields refused) and return their new ids."""
        ids = []
        for row in rows:
            self._counters[object_type] += 1
            record_id = make_id(KEY_PREFIXES[object_type], self._counters[object_type])
            record: dict[str, Any] = dict.fromkeys(
                (spec.name for spec in SCHEMA[object_type].values()), None
            )
            record.update(Id=record_id, SystemModstamp=at, LastModifiedDate=at)
            for name, value in row.items():
                spec = self.field(object_type, name)
                if spec is None:
                    raise KeyError(f"{object_type} has no field {name}")
                record[spec.name] = value
            self.records[object_type][record_id] = record
            ids.append(record_id)
        return ids

    def delete(self, object_type: str, record_id: str) -> None:
        """Move a record to the recycle bin: later updates get ENTITY_IS_DELETED."""
        del self.records[object_type][record_id]
        self.deleted.add(record_id)

    def check_update(
        self, object_type: str, record_id: str, values: dict[FieldSpec, str | None]
    ) -> dict[str, Any] | None:
        """The per-record error an update would get, or None when it would succeed."""
        if not _ID.match(record_id):
            return _error("MALFORMED_ID", f"{object_type} ID: invalid ID field: {record_id}", "Id")
        full = record_id if len(record_id) == 18 else with_checksum(record_id)
        if not full.startswith(KEY_PREFIXES[object_type]):
            return _error(
                "MALFORMED_ID", f"{object_type} ID: id value of incorrect type: {record_id}", "Id"
            )
        if full in self.deleted:
            return _error("ENTITY_IS_DELETED", "entity is deleted")
        if full not in self.records[object_type]:
            return _error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        for spec, value in values.items():
            if not spec.updateable:
                return _error(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {spec.name}. Please check the security "
                    "settings of this field and verify that it is read/write for your profile "
                    "or permission set.",
                    spec.name,
                )
            if value is not None and spec.type in _TEXT_TYPES and len(value) > spec.length:
                return _error(
                    "STRING_TOO_LONG",
                    f"{spec.label}: data value too large: {value} (max length={spec.length})",
                    spec.name,
                )
        return None

    def apply(
        self, object_type: str, record_id: str, values: dict[FieldSpec, str | None], at: dt.datetime
    ) -> str:
        """Store the values ("" is stored as null, as Salesforce does); return the 18-char id."""
        full = record_id if len(record_id) == 18 else with_checksum(record_id)
        record = self.records[object_type][full]
        for spec, value in values.items():
            record[spec.name] = value or None
        record["SystemModstamp"] = record["LastModifiedDate"] = at
        return full


def _error(code: str, message: str, *fields: str) -> dict[str, Any]:
    return {"statusCode": code, "message": message, "fields": list(fields)}


@dataclass(frozen=True)
class Query:
    """A parsed SOQL query of the restricted form the emulator answers."""

    object_type: str
    fields: tuple[FieldSpec, ...]  # empty for SELECT COUNT()
    count: bool
    since: tuple[FieldSpec, str, dt.datetime] | None
    order: tuple[FieldSpec, bool] | None  # (field, descending)
    limit: int | None
    # WHERE Id IN (...): the 18-character forms of the ids listed.
    ids: frozenset[str] | None = None

    def run(self, store: Store) -> list[dict[str, Any]]:
        """The matching records, filtered, ordered and limited."""
        records = store.records[self.object_type]
        if self.ids is None:
            rows = list(records.values())
        else:
            # Looked up rather than scanned: a retried batch reads 200 ids of a large org.
            # Ids sort in creation order, the order a scan would give.
            rows = [records[record_id] for record_id in sorted(self.ids) if record_id in records]
        if self.since is not None:
            spec, operator, moment = self.since
            if operator == ">":
                rows = [row for row in rows if row[spec.name] > moment]
            else:
                rows = [row for row in rows if row[spec.name] >= moment]
        if self.order is not None:
            spec, descending = self.order
            # Nulls sort first ascending, as SOQL's default NULLS FIRST does.
            rows.sort(
                key=lambda row: (row[spec.name] is not None, str(row[spec.name] or "")),
                reverse=descending,
            )
        return rows[: self.limit] if self.limit is not None else rows


_SOQL = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\S+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+ORDER\s+BY\s+(?P<order>\S+)(?:\s+(?P<direction>ASC|DESC))?)?"
    r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_WHERE = re.compile(r"^(?P<field>\w+)\s*(?P<op>>=|>)\s*(?P<value>\S+)$")
_LITERAL = r"'(?:[^'\\]|\\.)*'"
_WHERE_IN = re.compile(
    rf"^(?P<field>\w+)\s+IN\s*\(\s*(?P<values>{_LITERAL}(?:\s*,\s*{_LITERAL})*)\s*\)$",
    re.IGNORECASE | re.DOTALL,
)
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_DATETIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.\d{1,3})?(Z|[+-]\d{2}:\d{2}|[+-]\d{4})$"
)


def parse_soql(text: str) -> Query:
    """Parse the SOQL the emulator answers, or raise ApiError as Salesforce words it."""
    # SELECT f, ... | COUNT() FROM obj [WHERE datetime-field >|>= literal | Id IN ('id', ...)]
    # [ORDER BY f [ASC|DESC]] [LIMIT n]
    match = _SOQL.match(text)
    if match is None:
        raise ApiError(400, "MALFORMED_QUERY", f"unexpected token: {text.strip()[:80]!r}")
    object_type = Store.object_name(match["object"])
    if object_type is None:
        raise ApiError(
            400,
            "INVALID_TYPE",
            f"sObject type '{match['object']}' is not supported. If you are attempting to use a "
            "custom object, be sure to append the '__c' after the entity name.",
        )
    names = [name.strip() for name in match["fields"].split(",")]
    count = [name.replace(" ", "").upper() for name in names] == ["COUNT()"]
    fields: list[FieldSpec] = []
    if not count:
        for name in names:
            if not _NAME.match(name):
                raise ApiError(400, "MALFORMED_QUERY", f"unexpected token: '{name}'")
            fields.append(_known_field(object_type, name))
    since = None
    ids = None
    where_in = _WHERE_IN.match(match["where"].strip()) if match["where"] else None
    if where_in is not None:
        ids = _id_list(object_type, where_in["field"], where_in["values"])
    elif match["where"]:
        where = _WHERE.match(match["where"].strip())
        if where is None:
            raise ApiError(400, "MALFORMED_QUERY", f"unexpected token: '{match['where'].strip()}'")
        spec = _known_field(object_type, where["field"])
        moment = _datetime_literal(where["value"])
        if spec.type != "datetime" or moment is None:
            raise ApiError(
                400,
                "INVALID_FIELD",
                f"value of filter criterion for field '{spec.name}' must be of type "
                f"{spec.type} and should not be enclosed in quotes",
            )
        since = (spec, where["op"], moment)
    order = None
    if match["order"]:
        order = (
            _known_field(object_type, match["order"]),
            (match["direction"] or "").upper() == "DESC",
        )
    limit = int(match["limit"]) if match["limit"] else None
    return Query(object_type, tuple(fields), count, since, order, limit, ids)


def _id_list(object_type: str, field: str, values: str) -> frozenset[str]:
    """The 18-character ids of an `Id IN ('...', ...)` list (quotes and escapes removed)."""
    spec = _known_field(object_type, field)
    if spec.name != "Id":
        # Salesforce allows IN on other fields; the emulator answers only what the adapter asks.
        raise ApiError(400, "MALFORMED_QUERY", f"unexpected token: '{field} IN'")
    ids = set()
    for literal in re.findall(_LITERAL, values):
        value = re.sub(r"\\(.)", r"\1", literal[1:-1])
        if not _ID.match(value):
            raise ApiError(400, "INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {value}")
        ids.add(value if len(value) == 18 else with_checksum(value))
    return frozenset(ids)


def _known_field(object_type: str, name: str) -> FieldSpec:
    spec = Store.field(object_type, name)
    if spec is None:
        raise ApiError(
            400,
            "INVALID_FIELD",
            f"No such column '{name}' on entity '{object_type}'. If you are attempting to use a "
            "custom field, be sure to append the '__c' after the custom field name. Please "
            "reference your WSDL or the describe call for the appropriate names.",
        )
    return spec


def _datetime_literal(text: str) -> dt.datetime | None:
    match = _DATETIME.match(text)
    if match is None:
        return None
    zone = match[2]
    if zone == "Z":
        zone = "+00:00"
    elif ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:]}"
    return dt.datetime.fromisoformat(match[1] + zone)


def render(record: dict[str, Any], fields: tuple[FieldSpec, ...]) -> dict[str, Any]:
    """One record's selected fields as JSON values (datetimes formatted as Salesforce does)."""
    out: dict[str, Any] = {}
    for spec in fields:
        value = record[spec.name]
        out[spec.name] = format_datetime(value) if isinstance(value, dt.datetime) else value
    return out
