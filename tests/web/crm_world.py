"""A CRM segment with three refreshes, put in place with models functions (no CRM needed), for
the API's and the web app's tests of a segment's source and churn."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from models.connections import ConnectionSpec, add_connection
from models.crm_sources import create_crm_segment
from models.segment_catalog import find_segment
from models.segment_refreshes import apply_crm_members, claim_refresh, fail_refresh, start_refresh
from tests.factories import add_accounts


@dataclass(frozen=True)
class Row:
    """A CRM row as the connectors yield it (models read crm_id, website and name)."""

    crm_id: str
    website: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class CrmWorld:
    """What crm_segment() made: the segment, its connection, report id and rows' ids."""

    segment: str
    connection: str
    report: str
    account_ids: tuple[str, ...]
    ghost: Row
    failure: str


def crm_segment(
    session: Session, tag: str, name: str, refreshes: int = 3, connection: str | None = None
) -> CrmWorld:
    """A Salesforce report segment `name` (tag: 8 letters or digits) read through a new
    connection (`connection`, or one named after the tag), refreshed `refreshes` times (at most
    3): 3 entered and 1 unmatched row; then 1 entered and 1 exited; then failed."""
    ids = tuple(f"001{tag}{n:04d}" for n in range(4))
    add_accounts(
        session,
        [
            {"external_id": f"{tag}-{n}", "salesforce_account_id": crm_id}
            for n, crm_id in enumerate(ids)
        ],
    )
    connection = connection or f"sf-{tag.lower()}"
    report = f"00O{tag}0000"
    add_connection(session, ConnectionSpec(connection, "salesforce", {}, {}, {"token": "T"}), None)
    create_crm_segment(
        session,
        name,
        connection=connection,
        kind="salesforce_report",
        ref=report,
        schedule="0 6 * * 1",
    )
    ghost = Row(f"001{tag}9999", f"https://ghost-{tag.lower()}.example", "Ghost Corp")
    failure = f"Salesforce report {report} was not found: it was deleted or is not shared"
    world = CrmWorld(name, connection, report, ids, ghost, failure)
    readings = [
        [Row(ids[0]), Row(ids[1]), Row(ids[2]), ghost],
        [Row(ids[1]), Row(ids[2]), Row(ids[3])],
    ]
    for number in range(refreshes):
        segment = find_segment(session, name)
        refresh = start_refresh(session, segment)
        if number < len(readings):
            claimed = claim_refresh(session, refresh.id)
            assert claimed is not None
            apply_crm_members(session, claimed, readings[number])
        else:
            fail_refresh(session, refresh, failure)
    return world
