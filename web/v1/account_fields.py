"""An account's fields as the API answers them (account details and segment member pages)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from models.account_details import account_fields, crm_attributes
from models.accounts import Account


class AccountFields(BaseModel):
    """The fields `segsync accounts show` shows; free CRM attributes under `crm`."""

    external_id: str
    name: str | None
    domain: str | None = Field(description="The registrable domain (acme.co.uk).")
    industry: str | None
    employee_count: int | None
    annual_revenue: float | None
    country: str | None
    region: str | None
    profile_fit: str | None
    buying_stage: str | None
    intent_score: int | None
    salesforce_account_id: str | None
    hubspot_company_id: str | None
    crm: dict[str, str] = Field(description="Imported `crm.<name>` columns, by name.")


def fields_of(account: Account) -> AccountFields:
    """The answer's fields of `account`."""
    return AccountFields(**account_fields(account), crm=crm_attributes(account))
