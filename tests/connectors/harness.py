"""What the connector contract suite needs from each vendor: an emulator, a connector, records."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from connectors.base import Connector
from connectors.sandbox.server import Emulator, EmulatorServer
from connectors.sandbox.tls import SandboxCertificates

ServedEmulator = TypeVar("ServedEmulator", bound=Emulator)

# Fault kinds every emulator understands, besides the generic ones of connectors.sandbox.server
# (server_error, slow, drop_connection):
#   rate_limit     - the vendor's rate-limit answer on the next request(s)
#   daily_limit    - the vendor's daily-quota-spent answer on the next request(s)
#   expire_token   - every access token issued so far stops working (the next call gets the
#                    vendor's expired-session answer; a new login/refresh works)
#   record_failure - params record_ids=[...]: the next write fails those records with a
#                    record-level error (code param optional), the others succeed


@dataclass
class Harness:
    """One vendor's side of the contract suite."""

    system: str
    emulator: Emulator
    object_type: str
    # A text field on object_type that exists in the emulator, with max length field_max_length.
    field: str
    field_max_length: int
    # Records per page the adapter reads; the suite seeds several pages' worth.
    page_size: int
    # make_connector() -> a connector with working credentials to the emulator;
    # make_connector(valid=False) -> the same with credentials the emulator refuses.
    make_connector: Callable[..., Connector]
    # add_records(n) creates n records of object_type with the field empty; returns their ids.
    add_records: Callable[[int], list[str]]
    # stored_value(record_id) -> the field's value as the emulator holds it now.
    stored_value: Callable[[str], str | None]
    # Every secret the connector was given (passwords, tokens, client secrets): none may appear
    # in a log line or an exception message.
    secrets: list[str]
    # The fewest calls the vendor's API allows for writing, and for reading back, a full batch:
    # one for a batch endpoint; more where the vendor only offers a multi-step bulk import
    # (Eloqua: definition, upload, sync status), updates one record per call (Pardot), or has no
    # read-by-ids (Eloqua pages a search).
    calls_per_full_batch: int = 1
    calls_per_full_read: int = 1
    # Whether the vendor reports API usage against a quota at all (Eloqua does not).
    reports_quota: bool = True


@contextmanager
def serving(
    emulator: ServedEmulator, certificates: SandboxCertificates
) -> Iterator[ServedEmulator]:
    """`emulator` served over HTTPS on 127.0.0.1 for the block."""
    server = EmulatorServer(emulator, certificates)
    server.start()
    try:
        yield emulator
    finally:
        server.stop()
