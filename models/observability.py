"""What segsync's programs record about themselves for `segsync health` and `segsync metrics`:
beat's heartbeat and each connection's quota as its vendor last reported it.

Both live in the database, not in a process: any number of workers feed them, a restart loses
nothing, and the probe and the metrics server read them without talking to a worker.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Integer, String
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base, utcnow


class ServiceHeartbeat(Base):
    """The last time a program of one kind (e.g. "beat") on one host said it was alive."""

    __tablename__ = "service_heartbeats"

    component: Mapped[str] = mapped_column(String(32), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255), primary_key=True)
    pid: Mapped[int] = mapped_column(Integer)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ConnectionQuota(Base):
    """A connection's API use against its vendor's limit for one period, as the vendor last
    reported it (HubSpot's and Pardot's response headers, Marketo's daily usage call)."""

    __tablename__ = "connection_quotas"

    connection_id: Mapped[int] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True
    )
    # "daily", "ten_seconds", ...: as connectors.base.QuotaUsage.period.
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    used: Mapped[int] = mapped_column(Integer)
    limit: Mapped[int] = mapped_column(Integer)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def _upsert(session: Session, table: type[Base], values: dict[str, Any], keys: list[str]) -> None:
    """Insert `values` into `table`, or update the row with the same `keys` to them."""
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(table).values(**values)
    changed = {name: value for name, value in values.items() if name not in keys}
    session.execute(statement.on_conflict_do_update(index_elements=keys, set_=changed))


def record_heartbeat(session: Session, component: str, hostname: str, pid: int) -> None:
    """Say that `component` on `hostname` is alive now (one row per component and host)."""
    values = {"component": component, "hostname": hostname, "pid": pid, "seen_at": utcnow()}
    _upsert(session, ServiceHeartbeat, values, ["component", "hostname"])


def record_quota(session: Session, connection_id: int, period: str, used: int, limit: int) -> None:
    """Keep the vendor's latest report of `connection_id`'s use against its `period` limit."""
    values = {
        "connection_id": connection_id,
        "period": period,
        "used": used,
        "limit": limit,
        "reported_at": utcnow(),
    }
    _upsert(session, ConnectionQuota, values, ["connection_id", "period"])
