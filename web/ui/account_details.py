"""Account Details: look an account up by domain or external id; its fields and segments."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from models.account_details import AccountDetails, account_details
from models.errors import SegsyncError
from web.ui.signed_in import Reader
from web.ui.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/accounts")
def account_details_page(
    request: Request, who: Reader, key: Annotated[str, Query(max_length=2000)] = ""
) -> Response:
    """The lookup form; with `key`, the account's fields and "appears in these segments"."""
    key = key.strip()
    details: AccountDetails | None = None
    error: str | None = None
    if key:
        try:
            with request.app.state.sessions() as session:
                details = account_details(session, key)
        except SegsyncError as refused:  # not found, or a domain shared by several accounts
            error = str(refused)
    return render(
        request,
        "account_details.html",
        who,
        status_code=404 if error else 200,
        key=key,
        details=details,
        error=error,
    )
