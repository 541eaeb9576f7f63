"""Accounts: the segments published to `api` that contain one (the hot path), and details."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from models.account_details import account_details
from models.accounts import find_account
from models.publishing import account_segment_names
from web.auth import ReadKey
from web.errors import ErrorResponse
from web.v1.account_fields import AccountFields
from web.v1.names import NO_NUL

router = APIRouter(tags=["accounts"])
_Route = TypeVar("_Route", bound=Callable[..., Any])
# How looking an account up by its key can fail.
_LOOKUP_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No account has that external id or domain."},
    400: {"model": ErrorResponse, "description": "The domain names more than one account."},
}


def _lookup(path: str, summary: str) -> Callable[[_Route], _Route]:
    """A GET route that looks an account up by the key in `path`."""
    return router.get(path, summary=summary, responses=_LOOKUP_ERRORS)


# An external id or a domain (a URL or an email address gives its domain), as import takes them.
AccountKey = Annotated[
    str,
    Path(
        min_length=1,
        max_length=255,
        pattern=NO_NUL,
        description="The account's external id, or its domain (a URL or email address works).",
    ),
]


class AccountRef(BaseModel):
    """Which account was found for the key."""

    external_id: str
    name: str | None
    domain: str | None


class AccountSegments(BaseModel):
    """An account and the names of the segments published to api that contain it, in order."""

    account: AccountRef
    segments: list[str]


@_lookup("/accounts/{key:path}/segments", "The segments published to api that hold the account.")
def account_segments(request: Request, key: AccountKey, _key: ReadKey) -> AccountSegments:
    """Looked up by external id first, then by registrable domain (as `accounts show` does)."""
    with request.app.state.sessions() as session:
        account = find_account(session, key)
        return AccountSegments(
            account=AccountRef(
                external_id=account.external_id, name=account.name, domain=account.domain
            ),
            segments=account_segment_names(session, account.id, "api"),
        )


class AccountDetails(BaseModel):
    """An account's fields and the segments listed on its details."""

    account: AccountFields
    segments: list[str] = Field(
        description="Account appears in these segments: those published to account_details "
        "that contain it, in name order."
    )


# After /accounts/{key}/segments, which would otherwise be read as an account key ending so.
@_lookup(
    "/accounts/{key:path}",
    "An account's fields and the segments published to account_details that hold it.",
)
def account(request: Request, key: AccountKey, _key: ReadKey) -> AccountDetails:
    """What `segsync accounts show KEY` shows, from the same function."""
    with request.app.state.sessions() as session:
        details = account_details(session, key)
    return AccountDetails(
        account=AccountFields(**details.fields, crm=details.crm_attributes),
        segments=details.segments,
    )
