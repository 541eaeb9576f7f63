"""One account as a person looks it up: its fields and the segments published for its details.

`segsync accounts show` and `GET /v1/accounts/{key}` both answer with this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from models.accounts import Account, find_account
from models.publishing import account_segment_names

# The use whose segments an account's details list ("Account appears in these segments").
ACCOUNT_DETAILS_USE = "account_details"
# The fields shown for an account, in the order shown.
SHOWN_FIELDS = (
    "external_id",
    "name",
    "domain",
    "industry",
    "employee_count",
    "annual_revenue",
    "country",
    "region",
    "profile_fit",
    "buying_stage",
    "intent_score",
    "salesforce_account_id",
    "hubspot_company_id",
)


@dataclass(frozen=True)
class AccountDetails:
    """An account's shown fields and the names of the account_details segments holding it."""

    fields: dict[str, Any]
    crm_attributes: dict[str, str]
    segments: list[str]

    def as_flat_dict(self) -> dict[str, Any]:
        """The fields with the free CRM attributes as `crm.<name>` keys, as the CLI shows them."""
        flat = dict(self.fields)
        for name, value in self.crm_attributes.items():
            flat[f"crm.{name}"] = value
        return flat


def account_fields(account: Account) -> dict[str, Any]:
    """The shown fields of `account`, in order (its free CRM attributes are apart)."""
    return {field: getattr(account, field) for field in SHOWN_FIELDS}


def crm_attributes(account: Account) -> dict[str, str]:
    """The account's free CRM attributes (imported `crm.<name>` columns), by name."""
    return {name: str(value) for name, value in sorted(account.crm_attributes.items())}


def account_details(session: Session, key: str) -> AccountDetails:
    """The account whose external id or domain is `key`, with its account_details segments."""
    account = find_account(session, key)
    return AccountDetails(
        fields=account_fields(account),
        crm_attributes=crm_attributes(account),
        segments=account_segment_names(session, account.id, ACCOUNT_DETAILS_USE),
    )
