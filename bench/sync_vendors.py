"""What the sync benchmark (bench/sync.py) knows of each vendor: one `BenchVendor` entry per
system, in `BENCH_VENDORS`, and nothing about a vendor anywhere else in bench/.

An entry names what only the benchmark has: its emulator subclass (bench/sync_emulators.py), its
seeder (bench/sync_data.py), its plain one-call-per-record script (bench/sync_plain.py, optional)
and the calls its theoretical minimum counts that no adapter states. The rest is derived:

- the object and field written: the emulator's `describe()["fields"]` (its first object, unless
  the entry names one), and the field's maximum length from the adapter's own describe;
- the records one write call takes: the adapter's `batch_size` (connectors.base.Connector);
- the records one read call returns: the adapter module's page-size constant, by name;
- rate windows, the adapter class and the emulator's base: the registry (connectors.systems).

A registry system with no entry here is refused by `--systems` and left out of its default.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from bench.sync_batched import (
    BatchedJob,
    BatchedResult,
    batched_eloqua,
    batched_hubspot,
    batched_marketo,
    batched_pardot,
    batched_salesforce,
)
from bench.sync_data import (
    Records,
    Seeding,
    seed_eloqua,
    seed_hubspot,
    seed_marketo,
    seed_pardot,
    seed_salesforce,
)
from bench.sync_emulators import (
    BenchEloqua,
    BenchEmulator,
    BenchHubSpot,
    BenchMarketo,
    BenchPardot,
    BenchSalesforce,
)
from bench.sync_plain import (
    PlainJob,
    PlainResult,
    plain_eloqua,
    plain_hubspot,
    plain_marketo,
    plain_pardot,
    plain_salesforce,
)
from connectors.base import Connector
from connectors.systems import SYSTEMS, VENDORS

E = TypeVar("E", bound=BenchEmulator)


@dataclass(frozen=True)
class PlainScript:
    """The plain script a user would otherwise write, and the calls it makes before its first
    update (a token, a base-URL discovery): its minimum is one call per record plus these."""

    run: Callable[[PlainJob], PlainResult]
    logins: int = 0


@dataclass(frozen=True)
class BenchVendor(Generic[E]):
    """One system as the benchmark runs it."""

    # The emulator the benchmark starts: the sandbox's, counting answers by status and serving
    # what the plain script calls.
    emulator: type[E]
    # Makes the records in the emulator (and any account links in the database).
    seed: Callable[[E, Seeding], Records]
    # Login calls of one segsync run (a token, a session, a base-URL discovery; 0 for a token
    # given in the connection).
    logins: int
    # Calls one write batch costs (Eloqua: upload, create the sync, read its status).
    calls_per_write: int = 1
    # Records one write call takes; None: the adapter's batch_size.
    records_per_write_call: int | None = None
    # Records one read call returns: a number, or the name of the adapter module's constant.
    read_page: int | str = "PAGE_SIZE"
    # The object written; None: the first the emulator describes.
    object_type: str | None = None
    # None: the report says "no plain script".
    plain: PlainScript | None = None
    # The batched hand-written script (bench/sync_batched.py); None: not measured.
    batched: Callable[[BatchedJob], BatchedResult] | None = None
    # Parts of the emulator's route names ("METHOD path") of the calls that write (a write
    # batch, a bulk job's steps): every other call is a read, a login or a describe.
    write_routes: tuple[str, ...] = ()


# Every benchmarked system, by registry name.
BENCH_VENDORS: Mapping[str, BenchVendor[Any]] = MappingProxyType(
    {
        "salesforce": BenchVendor(
            BenchSalesforce,
            seed_salesforce,
            logins=1,
            # A SOQL query page (query/queryMore) holds 2,000 rows; the adapter names no constant.
            read_page=2000,
            # The plain script uses the session the emulator hands out: no login call.
            plain=PlainScript(plain_salesforce),
            batched=batched_salesforce,
            write_routes=("composite/sobjects", "/jobs/ingest", "PATCH /services/data/"),
        ),
        "hubspot": BenchVendor(
            BenchHubSpot,
            seed_hubspot,
            logins=0,
            plain=PlainScript(plain_hubspot),
            batched=batched_hubspot,
            write_routes=("/batch/update", "PATCH /crm/v3/objects/"),
        ),
        "marketo": BenchVendor(
            BenchMarketo,
            seed_marketo,
            logins=1,
            # Leads are read by id windows of a write batch's size.
            read_page="BATCH_SIZE",
            plain=PlainScript(plain_marketo, logins=1),
            batched=batched_marketo,
            write_routes=("POST /rest/v1/leads.json",),
        ),
        "pardot": BenchVendor(
            BenchPardot,
            seed_pardot,
            logins=0,
            # API v5 writes one prospect per PATCH (the adapter's batch of 50 is a unit of work).
            records_per_write_call=1,
            plain=PlainScript(plain_pardot),
            batched=batched_pardot,
            write_routes=("PATCH /api/v5/objects/prospects/", "/api/v5/imports"),
        ),
        "eloqua": BenchVendor(
            BenchEloqua,
            seed_eloqua,
            logins=1,
            calls_per_write=3,
            plain=PlainScript(plain_eloqua, logins=1),
            batched=batched_eloqua,
            write_routes=("/api/bulk/2.0/", "PUT /api/rest/1.0/data/contact/"),
        ),
    }
)
# The registry's systems that have an entry, in the registry's order.
BENCHMARKED = tuple(system for system in SYSTEMS if system in BENCH_VENDORS)


def refusal(system: str) -> str | None:
    """Why `--systems` cannot take `system`, in one line; None when it can."""
    if system in BENCH_VENDORS:
        return None
    if system in VENDORS:
        return (
            f"{system} has no benchmark entry: add a BenchVendor for it to BENCH_VENDORS in "
            "bench/sync_vendors.py"
        )
    return f"unknown system {system!r} (benchmarked: {', '.join(BENCHMARKED)})"


def adapter_class(system: str) -> type[Connector]:
    """The system's Connector class, as the registry names it."""
    vendor = VENDORS[system]
    adapter: type[Connector] = getattr(importlib.import_module(vendor.module), vendor.adapter)
    return adapter


def records_per_write_call(system: str) -> int:
    """Records one write call takes at the vendor's maximum."""
    given = BENCH_VENDORS[system].records_per_write_call
    return given if given is not None else adapter_class(system).batch_size


def bulk_batch_size(system: str) -> int | None:
    """Records one bulk job of the adapter takes (None: it has no bulk path)."""
    return adapter_class(system).bulk_batch_size


def read_page(system: str) -> int:
    """Records one read call returns."""
    page = BENCH_VENDORS[system].read_page
    if isinstance(page, int):
        return page
    return int(getattr(importlib.import_module(VENDORS[system].module), page))


def target(system: str, emulator: BenchEmulator) -> tuple[str, str]:
    """(object, field) the benchmark writes: from the emulator's description."""
    fields: dict[str, str] = emulator.describe()["fields"]
    object_type = BENCH_VENDORS[system].object_type or next(iter(fields))
    return object_type, fields[object_type]


def rate_windows() -> dict[str, tuple[int, float]]:
    """Rate windows the emulators enforce, the vendors' own (connectors.systems): (calls, s)."""
    return {
        name: (vendor.limits.rate.calls, vendor.limits.rate.per_seconds)
        for name, vendor in VENDORS.items()
        if vendor.limits.rate is not None
    }


def minimum_calls(system: str, records: int, to_write: int) -> int:
    """Writes at the vendor's batch maximum, read pages at its page size, and logins."""
    entry = BENCH_VENDORS[system]
    writes = math.ceil(to_write / records_per_write_call(system)) * entry.calls_per_write
    reads = math.ceil(records / read_page(system))
    return writes + reads + entry.logins


def write_calls(system: str, routes: Mapping[str, int]) -> int:
    """Of calls counted by route, those that write (the entry's write_routes)."""
    parts = BENCH_VENDORS[system].write_routes
    return sum(count for route, count in routes.items() if any(p in route for p in parts))
