"""HubSpot's incremental read: the records modified after a moment, through the CRM search API
(`POST /crm/v3/objects/{objectType}/search`), oldest modification first.

Facts followed (developers.hubspot.com "Search the CRM" and its Limitations; changelog 2024-09
"Increasing our API limits"): the modification time is `lastmodifieddate` on contacts and
`hs_lastmodifieddate` on companies and the other objects, filtered in epoch milliseconds; a page
holds at most 200 records; `after` is an offset, and one query pages through at most 10,000
results (asking past them is answered 400); the search endpoints have a rate limit of their
own, five requests per second per account (older material says four per token), whose 429 is
mapped like every other (retryable; Retry-After honoured, else a second). Search results carry
no associations, so each page's companies come from one v4 batch associations read (`POST
/crm/v4/associations/{objectType}/companies/batch/read`), whose Primary label names the company
the full read takes.

Every page is a new query from the last modification time read (GTE; the first from since's
millisecond), passing over (`after`) the records already read at that very time: an offset into
one long query would skip a record whenever one read before it is edited meanwhile (it moves to
the end of the order, the rest move up one); only an edit, during the read, of a record sharing
the last millisecond read can still do so. The 10,000 cap then only binds when that many records
share one millisecond: the read stops with a FatalError saying so rather than miss any.

HubSpot's search index follows changes by some seconds: a record changed just before a read may
not be found by it, which the caller's watermark must allow for (as for clock skew).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import replace
from functools import partial
from typing import Any

from connectors.base import Record
from connectors.errors import FatalError, RetryableError
from connectors.hubspot import (
    _MATCH_PROPERTIES,
    HubSpotConnector,
    _objects,
    _properties,
    _results,
)

SEARCH_PAGE_SIZE = 200
# The most results one search query pages through.
SEARCH_RESULT_CAP = 10_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# One page as read: each record with its modification time (epoch ms), and whether more follow.
_Page = tuple[list[tuple[int, Record]], bool]


def modified_property(object_type: str) -> str:
    """The property holding a record's last modification time on `object_type`."""
    return "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"


def modified_records(
    connector: HubSpotConnector,
    object_type: str,
    field: str,
    since: dt.datetime,
) -> Iterator[Record]:
    """The records modified after `since`, each once, lazily, a page at a time."""
    stamp_property = modified_property(object_type)
    properties = sorted({field, stamp_property, *_MATCH_PROPERTIES[object_type]})
    # HubSpot keeps milliseconds: a record stamped in since's own millisecond may have been
    # modified after since, so that millisecond is read whole (GTE); one modified before since
    # in it is read once more, which is harmless.
    floor = (since - _EPOCH) // dt.timedelta(milliseconds=1)
    passed = 0  # records at `floor` that the query's order puts before those not read yet
    # A record edited during the read comes back later in the order: read once, it is not
    # yielded again (one id per record read, far smaller than the records themselves).
    seen: set[str] = set()
    while True:
        offset = passed
        limit = min(SEARCH_PAGE_SIZE, SEARCH_RESULT_CAP - offset)
        if limit <= 0:
            moment = (_EPOCH + dt.timedelta(milliseconds=floor)).isoformat()
            raise FatalError(
                f"hubspot has {offset} or more {object_type} modified at the same moment "
                f"({moment}): its search cannot page past {SEARCH_RESULT_CAP} of them, so they "
                "cannot be read incrementally; a full read reads them",
                code="SEARCH_RESULT_CAP",
            )
        body: dict[str, Any] = {
            "filterGroups": [
                {
                    "filters": [
                        {
                            "propertyName": stamp_property,
                            "operator": "GTE",
                            "value": str(floor),
                        }
                    ]
                }
            ],
            "sorts": [{"propertyName": stamp_property, "direction": "ASCENDING"}],
            "properties": properties,
            "limit": limit,
        }
        if offset:
            body["after"] = str(offset)
        records, more = connector._read_page(
            partial(_page, connector, object_type, field, stamp_property, body),
            what=f"{object_type} modified since {since.isoformat()}",
        )
        for _, record in records:
            if record.id not in seen:
                seen.add(record.id)
                yield record
        if not more or not records:
            return
        last = records[-1][0]
        at_last = sum(1 for stamp, _ in records if stamp == last)
        if last == floor:
            passed += at_last
        else:
            floor, passed = last, at_last


def _page(
    connector: HubSpotConnector,
    object_type: str,
    field: str,
    stamp_property: str,
    body: Mapping[str, Any],
) -> _Page:
    """One search call, then (contacts, leads) one associations call for its companies."""
    parse = partial(_search_answer, connector, object_type, field, stamp_property)
    records, more = connector._call(
        partial(
            connector._read_json, "POST", f"/crm/v3/objects/{object_type}/search", parse, body=body
        ),
        what=f"searching {object_type}",
        object_type=object_type,
    )
    if object_type == "companies" or not records:
        return records, more
    ids = [record.id for _, record in records]
    companies: dict[str, str] = connector._call(
        partial(
            connector._read_json,
            "POST",
            f"/crm/v4/associations/{object_type}/companies/batch/read",
            partial(_primary_companies, connector, object_type),
            body={"inputs": [{"id": record_id} for record_id in ids]},
        ),
        what=f"reading the companies of {object_type}",
        object_type=object_type,
    )
    linked = [
        (stamp, replace(record, linked_account_id=companies.get(record.id)))
        for stamp, record in records
    ]
    return linked, more


def _search_answer(
    connector: HubSpotConnector,
    object_type: str,
    field: str,
    stamp_property: str,
    answer: Mapping[str, Any],
) -> _Page:
    """A search page's records with their modification times, and whether more follow."""
    records = []
    for item in _results(answer):
        stamp = _properties(item).get(stamp_property)
        if not stamp:
            raise ValueError(f"a record has no {stamp_property}")
        records.append((_epoch_ms(stamp), connector._record(object_type, field, item)))
    following = (answer.get("paging") or {}).get("next") or {}
    return records, bool(following.get("after"))


def _primary_companies(
    connector: HubSpotConnector, object_type: str, answer: Mapping[str, Any]
) -> dict[str, str]:
    """A batch associations read's answer: each record's Primary company (else its first)."""
    # A record without a company is reported in a 207's errors as OBJECT_NOT_FOUND
    # (NO_ASSOCIATIONS_FOUND); any other error leaves a company unknown: read the page again.
    for error in _objects(answer.get("errors"), "errors"):
        category = str(error.get("category") or "ERROR")
        if category != "OBJECT_NOT_FOUND":
            message = connector._clean(str(error.get("message") or ""))
            raise RetryableError(
                f"hubspot could not read the companies of some {object_type} ({category}): "
                f"{message}",
                code=category,
            )
    companies: dict[str, str] = {}
    for item in _objects(answer.get("results"), "results"):
        source = item.get("from") or {}
        linked = _objects(item.get("to"), "associations")
        if not isinstance(source, dict) or source.get("id") is None or not linked:
            continue
        primary = next((to for to in linked if _labelled_primary(to)), linked[0])
        if primary.get("toObjectId") is None:
            raise ValueError("an association has no toObjectId")
        companies[str(source["id"])] = str(primary["toObjectId"])
    return companies


def _labelled_primary(association: Mapping[str, Any]) -> bool:
    kinds = association.get("associationTypes") or []
    return any(isinstance(kind, dict) and kind.get("label") == "Primary" for kind in kinds)


def _epoch_ms(stamp: str) -> int:
    """HubSpot's datetime value (ISO 8601, or epoch milliseconds) as epoch milliseconds."""
    text = stamp.strip()
    if text.isdigit():
        return int(text)
    moment = dt.datetime.fromisoformat(text)
    if moment.utcoffset() is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return (moment - _EPOCH) // dt.timedelta(milliseconds=1)
