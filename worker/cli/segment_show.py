"""`segsync segments show NAME`: a segment's definition and members, and for one read from a CRM
where it is read from, its schedule, its last refreshes with their churn and the rows of the last
one that matched no account.

The models (with SQLAlchemy) are imported inside the functions, so that --help loads only click.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from worker.cli.output import render_table

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from models.refresh_history import RefreshSummary

# Unmatched rows the table shows; --json gives every row kept (models keep the first 100).
UNMATCHED_SHOWN = 10


def segment_details(session: Session, name: str, refreshes: int) -> dict[str, Any]:
    """Segment `name` as `segments show --json` prints it, with its `refreshes` newest refreshes
    when it is read from a CRM."""
    from models.crm_segment_overview import crm_source_overview
    from models.refresh_history import recent_refreshes
    from models.segment_catalog import find_segment
    from models.segment_overview import segment_summary

    segment = find_segment(session, name)
    row = segment_summary(session, segment.name)
    shown: dict[str, Any] = {
        "name": row.name,
        "folder": row.folder,
        "source": row.source,
        "members": row.members,
        "published_for": list(row.uses),
        "filters": [{"kind": kind, "description": text} for kind, text in row.filters],
        "crm": None,
    }
    source = crm_source_overview(session, segment)
    if source is None:
        return shown
    history = recent_refreshes(session, segment, refreshes)
    last_read = next((r for r in history if r.status == "succeeded"), None)
    shown["crm"] = {
        "kind": source.kind,
        "reads": source.description,
        "system": source.system,
        "connection": source.connection,
        "object_id": source.object_id,
        "column": source.column,
        "schedule": source.schedule,
        "next_refresh_at": _iso(source.next_refresh_at),
        "refreshes": [_refresh_as_dict(refresh) for refresh in history],
        "unmatched": None if last_read is None else _unmatched_as_dict(last_read),
    }
    return shown


def _refresh_as_dict(refresh: RefreshSummary) -> dict[str, Any]:
    return {
        "refresh": refresh.id,
        "trigger": refresh.trigger,
        "status": refresh.status,
        "reason": refresh.reason,
        "created_at": _iso(refresh.created_at),
        "started_at": _iso(refresh.started_at),
        "finished_at": _iso(refresh.finished_at),
        "rows_read": refresh.rows_read,
        "entered": refresh.entered,
        "exited": refresh.exited,
        "unmatched": refresh.unmatched,
        "members": refresh.members,
        "churn": refresh.churn,
        "churn_rate": refresh.churn_rate,
    }


def _unmatched_as_dict(refresh: RefreshSummary) -> dict[str, Any]:
    return {
        "refresh": refresh.id,
        "total": refresh.unmatched,
        "rows": [
            {"crm_id": row.crm_id, "name": row.name, "website": row.website}
            for row in refresh.unmatched_rows
        ],
    }


def _iso(moment: datetime | None) -> str | None:
    from models.base import as_utc

    return as_utc(moment).isoformat() if moment else None


def _minute(iso: str | None) -> str:
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M") if iso else ""


def print_segment(shown: dict[str, Any]) -> None:
    """`segments show`'s tables: the definition, then a CRM segment's refreshes and unmatched
    rows."""
    settings: list[tuple[str, object]] = [
        ("name", shown["name"]),
        ("folder", shown["folder"]),
        ("source", shown["source"]),
    ]
    crm = shown["crm"]
    if crm is not None:
        schedule = "on demand"
        if crm["schedule"]:
            schedule = f"{crm['schedule']} (UTC), next {_minute(crm['next_refresh_at'])}"
        settings += [("reads", crm["reads"]), ("schedule", schedule)]
    else:
        settings += [(f"filter {f['kind']}", f["description"]) for f in shown["filters"]]
    settings += [
        ("members", shown["members"]),
        ("published for", ", ".join(shown["published_for"]) or "(not published)"),
    ]
    click.echo(render_table(["setting", "value"], settings))
    if crm is None:
        return
    click.echo()
    if not crm["refreshes"]:
        click.echo("Not refreshed yet: `segsync segments refresh NAME` reads it from the CRM.")
        return
    _print_refreshes(crm["refreshes"])
    if crm["unmatched"] is not None and crm["unmatched"]["total"]:
        click.echo()
        _print_unmatched(crm["unmatched"])


def _print_refreshes(refreshes: list[dict[str, Any]]) -> None:
    click.echo("Last refreshes, newest first (churn: accounts that entered or left):")
    rows = []
    for r in refreshes:
        rate = f" ({r['churn_rate']:.0%})" if r["churn_rate"] is not None else ""
        counted = r["status"] == "succeeded"
        rows.append(
            (
                r["refresh"],
                r["trigger"],
                r["status"],
                _minute(r["finished_at"] or r["started_at"] or r["created_at"]),
                *(
                    (r["rows_read"], r["entered"], r["exited"], r["unmatched"], r["members"])
                    if counted
                    else ("",) * 5
                ),
                f"{r['churn']}{rate}" if counted else "",
            )
        )
    headers = ["refresh", "trigger", "status", "when (UTC)", "rows read", "entered", "exited"]
    click.echo(render_table([*headers, "unmatched", "members", "churn"], rows))
    for r in refreshes:
        if r["reason"]:
            click.echo(f"refresh {r['refresh']} {r['status']}: {r['reason']}")


def _print_unmatched(unmatched: dict[str, Any]) -> None:
    rows = unmatched["rows"][:UNMATCHED_SHOWN]
    click.echo(f"CRM rows matching no account in refresh {unmatched['refresh']}:")
    click.echo(
        render_table(
            ["crm id", "name", "website"], [(r["crm_id"], r["name"], r["website"]) for r in rows]
        )
    )
    more = unmatched["total"] - len(rows)
    if more > 0:
        kept = len(unmatched["rows"])
        click.echo(f"and {more} more" + (f" (`--json` lists {kept})" if kept > len(rows) else ""))
