"""A HubSpot company list's members, for CRM List Sync segments: the list's memberships (Lists
v3, paged with `after`), each with its company's domain and name.

Built on HubSpotConnector: its SDK clients, its `_call` (errors, secrets) and the base class's
`_read_page` (a page meeting a retryable error is read again in place). Shapes followed:
developers.hubspot.com "CRM Lists" v3 ("Fetch List by ID" answers `{"list": {..., "objectTypeId",
"processingType"}}`; "Fetch List Memberships Ordered by ID" answers `results` of `{recordId,
membershipTimestamp}` and `paging.next.after`, limit at most 250) and the CRM objects batch read
(at most 100 ids per call), as hubspot-api-client 12's crm.lists and crm.objects models parse them.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

from connectors.errors import FatalError
from connectors.hubspot import HubSpotConnector, _HttpError
from connectors.members import CrmMember

# The objectTypeId of HubSpot's companies (contacts are 0-1).
COMPANIES_TYPE_ID = "0-2"
# The documented maximum `limit` of a memberships page.
MEMBERSHIPS_PAGE_SIZE = 250
# The documented maximum of ids per CRM objects batch read.
BATCH_READ_MAX = 100
# The company properties read: the domain (the website when a company has no domain) and name.
_COMPANY_PROPERTIES = ("domain", "website", "name")
# HubSpot's standard objects by objectTypeId, to name a refused list's kind of records.
_OBJECT_NAMES = {"0-1": "contacts", "0-2": "companies", "0-3": "deals", "0-5": "tickets"}


def company_list_members(connector: HubSpotConnector, list_id: str) -> Iterator[CrmMember]:
    """Every member of the HubSpot company list `list_id`, lazily, with its domain and name.

    The list is checked before this returns: FatalError when it does not exist or is not a list
    of companies; reading the members may raise what any HubSpot read raises (RetryableError,
    DailyQuotaError, FatalError).
    """
    wanted = list_id.strip()
    if not wanted.isdigit():
        raise FatalError(f"a hubspot list id is a number, not {list_id!r}", code="INVALID_LIST_ID")
    _check_company_list(connector, wanted)
    return _members(connector, wanted)


def _check_company_list(connector: HubSpotConnector, list_id: str) -> None:
    """FatalError naming the list when it is missing or holds records other than companies."""
    what = f"reading hubspot list {list_id}"
    fetch = partial(
        connector._call,
        partial(connector._lists_api.get_by_id, list_id),
        what=what,
        keep=lambda failure: failure.status == 404,
    )
    answer: Any = connector._read_page(fetch, what=f"list {list_id}")
    if isinstance(answer, _HttpError):
        raise FatalError(
            f"hubspot list {list_id} was not found (deleted, or in another account)",
            code="OBJECT_NOT_FOUND",
        )
    found = answer.list
    type_id = str(found.object_type_id)
    if type_id != COMPANIES_TYPE_ID:
        kind = _OBJECT_NAMES.get(type_id, "records of another object")
        raise FatalError(
            f"hubspot list {list_id} ({connector._clean(str(found.name))!r}) is a list of {kind} "
            f"(objectTypeId {type_id}), not of companies: a segment reads a company list",
            code="NOT_A_COMPANY_LIST",
        )


def _members(connector: HubSpotConnector, list_id: str) -> Iterator[CrmMember]:
    after: str | None = None
    while True:
        cursor = {"after": after} if after else {}
        fetch = partial(
            connector._call,
            partial(
                connector._memberships_api.get_page,
                list_id,
                limit=MEMBERSHIPS_PAGE_SIZE,
                **cursor,
            ),
            what=f"reading the members of hubspot list {list_id}",
        )
        page = connector._read_page(fetch, what=f"list {list_id}'s members")
        ids = [str(member.record_id) for member in page.results or []]
        for start in range(0, len(ids), BATCH_READ_MAX):
            yield from _with_companies(connector, ids[start : start + BATCH_READ_MAX])
        following = page.paging.next if page.paging else None
        if following is None or not following.after:
            return
        after = str(following.after)


def _with_companies(connector: HubSpotConnector, ids: list[str]) -> Iterator[CrmMember]:
    """The members `ids` with their companies' domains and names, read in one batch call."""
    fetch = partial(
        connector._read_properties,
        "companies",
        ids,
        _COMPANY_PROPERTIES,
        what="reading the domains of list members",
    )
    companies = connector._read_page(fetch, what="the members' companies")
    for record_id in ids:
        # A company deleted since the page was read is still this list's member as read: the
        # worker matches it by id, and no domain is known for it.
        properties = companies.get(record_id, {})
        yield CrmMember(
            record_id,
            website=properties.get("domain") or properties.get("website") or None,
            name=properties.get("name") or None,
        )
