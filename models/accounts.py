"""Accounts: the companies segments are made of, found by external id or domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Float, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, utcnow
from models.domains import registrable_domain
from models.errors import InputError, NotFoundError

PROFILE_FITS = ("A", "B", "C", "D")


class Account(Base):
    """One company, keyed by the external id of the system it came from."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str | None] = mapped_column(String(255))
    # The registrable domain (acme.co.uk), never a host or URL: what records are matched on.
    domain: Mapped[str | None] = mapped_column(String(255), index=True)
    industry: Mapped[str | None] = mapped_column(String(255))
    employee_count: Mapped[int | None] = mapped_column(BigInteger)
    annual_revenue: Mapped[float | None] = mapped_column(Float)
    country: Mapped[str | None] = mapped_column(String(100))
    region: Mapped[str | None] = mapped_column(String(100))
    profile_fit: Mapped[str | None] = mapped_column(String(1))
    buying_stage: Mapped[str | None] = mapped_column(String(100))
    intent_score: Mapped[int | None] = mapped_column(Integer)
    salesforce_account_id: Mapped[str | None] = mapped_column(String(18), index=True)
    hubspot_company_id: Mapped[str | None] = mapped_column(String(40), index=True)
    # Free CRM/MAP attributes imported from `crm.<name>` columns, as text values.
    crm_attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


def find_account(session: Session, key: str) -> Account:
    """The account whose external id is `key`, else the one whose domain is `key`'s domain."""
    key = key.strip()
    account = session.scalar(select(Account).where(Account.external_id == key))
    if account is not None:
        return account
    try:
        domain = registrable_domain(key)
    except InputError:
        domain = None
    if domain is not None:
        matches = session.scalars(
            select(Account).where(Account.domain == domain).order_by(Account.id).limit(2)
        ).all()
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InputError(
                f"more than one account has domain {domain}: name one by its external id"
            )
    raise NotFoundError(f"no account with external id or domain {key!r}")
