"""CPU seconds for bench/sync.py: of the `segsync worker` processes during a run, and of reading
every HubSpot contact the old way (hubspot-api-client model objects) against the adapter's way now.

Worker CPU is read from /proc/<pid>/stat (Linux; psutil is not a dependency): for every process
in a worker's process group (each worker is started in a session of its own, so its group is the
worker and its pool children), user + system time of the process itself and of its reaped
children (a pool child that exited hands its time to the worker). A run's CPU is the difference
between a reading before it and one after it, summed over the workers.

The HubSpot read comparison runs each read in a fresh child process (spawned by bench/sync.py)
and times it by `time.process_time()` around the read alone (not the interpreter's start or the
imports), against the same running emulator:

- before: what the adapter did until commit c026ec6, `client.crm.objects.basic_api.get_page`
  pages of 100 with the field, the match properties and company associations, each result a
  SimplePublicObjectWithAssociations model the SDK builds (timestamps parsed by dateutil), then
  its id, properties and associated company ids taken from the model;
- now: the adapter's `read_records` (the JSON answer parsed directly).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_TICKS = os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(group: int) -> float:
    """User + system CPU seconds of every live process in process group `group`, their reaped
    children's included."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:  # the process ended while the folder was listed
            continue
        # The command name (field 2) is in parentheses and may hold spaces: split after it.
        fields = raw.rsplit(")", 1)[1].split()
        # fields[0] is field 3 (state): pgrp is field 5, utime..cstime fields 14-17.
        if int(fields[2]) == group:
            total += sum(int(value) for value in fields[11:15])
    return total / _TICKS


@dataclass(frozen=True)
class ReadCost:
    """One read of every record: how many, CPU and wall seconds, calls and 429s waited out."""

    records: int
    cpu_seconds: float
    seconds: float
    calls: int
    rate_limited: int


@dataclass(frozen=True)
class HubSpotRead:
    """What a child needs to read a HubSpot emulator's records."""

    settings: dict[str, str]
    secrets: dict[str, str]
    described: dict[str, Any]
    ca_bundle: str
    object_type: str
    field: str


def read_with_sdk_models(job: HubSpotRead) -> ReadCost:
    """Read every record with hubspot-api-client's get_page, as the adapter did before c026ec6."""
    from hubspot import HubSpot  # type: ignore[import-untyped]
    from hubspot.crm.objects import ApiException  # type: ignore[import-untyped]

    from connectors.hubspot import _MATCH_PROPERTIES, PAGE_SIZE

    client = HubSpot(
        access_token=job.described["access_token"],
        host=job.described["base_url"],
        ssl_ca_cert=job.ca_bundle,
    )
    api = client.crm.objects.basic_api
    properties = sorted({job.field, *_MATCH_PROPERTIES[job.object_type]})
    associations = ["companies"] if job.object_type != "companies" else None
    records = calls = limited = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    after: str | None = None
    while True:
        calls += 1
        try:
            page = api.get_page(
                job.object_type,
                limit=PAGE_SIZE,
                after=after,
                properties=properties,
                associations=associations,
            )
        except ApiException as exc:
            if exc.status != 429:
                raise
            limited += 1
            time.sleep(float((exc.headers or {}).get("Retry-After") or 1))
            continue
        for item in page.results or []:
            # What the adapter's _record took from each model: id, the properties, companies.
            values = item.properties or {}
            _ = (str(item.id), values.get(job.field), values.get("email"))
            found = (item.associations or {}).get("companies")
            _ = [str(link.id) for link in (found.results if found else None) or []]
            records += 1
        following = page.paging.next if page.paging else None
        if following is None or not following.after:
            break
        after = str(following.after)
    cpu = time.process_time() - cpu_started
    return ReadCost(records, cpu, time.perf_counter() - started, calls, limited)


def read_with_adapter(job: HubSpotRead) -> ReadCost:
    """Read every record with the adapter's read_records (the JSON answer parsed directly)."""
    from worker.connector_factory import build_connector

    connector = build_connector("hubspot", job.settings, job.secrets)
    try:
        started, cpu_started = time.perf_counter(), time.process_time()
        records = sum(1 for _ in connector.read_records(job.object_type, job.field))
        cpu = time.process_time() - cpu_started
        calls = connector.api_calls
    finally:
        connector.close()
    return ReadCost(records, cpu, time.perf_counter() - started, calls, 0)
