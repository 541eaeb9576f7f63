"""Segment members read from a CRM: the rows of a Salesforce report or list view, the companies
of a HubSpot list. The worker matches them to accounts (models): by the CRM id first, then by
the registrable domain of the row's website where it has one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CrmMember:
    """One account-like row of a CRM source: its id in the CRM, and its website when known."""

    # The Salesforce Account Id (18 characters), or the HubSpot company id.
    crm_id: str
    # The row's website or company domain as the CRM holds it (not normalised), if it has one.
    website: str | None = None
    # The row's name, for listing rows that match no account.
    name: str | None = None
