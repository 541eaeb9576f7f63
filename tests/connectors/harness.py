"""What the connector contract suite needs from each vendor: an emulator, a connector, records,
and the CRM sources whose members an adapter reads (reports, list views, lists)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from connectors.base import Connector
from connectors.members import CrmMember
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
    # edit_records(ids): someone else edits each of these records in the CRM, as a user of the
    # vendor's own screens would: its email becomes a new address at a new domain. The vendor's
    # modification time of the record moves (what incremental reads find).
    edit_records: Callable[[list[str]], None]
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


@dataclass
class MemberSource:
    """One kind of CRM source a vendor's adapter reads members from, on the harness's emulator.

    A vendor's harness module declares `MEMBER_SOURCES = {kind: factory}`, each factory making
    this from the vendor's Harness; the member contract (tests/connectors/test_member_contract.py)
    runs against every one. A vendor whose adapter reads no members declares none.
    """

    harness: Harness
    # What the source is, as error messages and test ids name it ("report", "company_list").
    kind: str
    # make(n) -> (source id, its members as the adapter should read them): a new source holding
    # exactly n members, each with a website and a name. A source may take in every record of
    # its kind (a list view over all Accounts): then a test makes one source only.
    make: Callable[[int], tuple[str, list[CrmMember]]]
    # add(source_id, n) -> n new members now in the source, made by changing the CRM's data.
    add: Callable[[str, int], list[CrmMember]]
    # remove(source_id, crm_ids): these members leave the source through a change of the CRM.
    remove: Callable[[str, list[str]], None]
    # read(connector, source_id) -> the adapter's reader (FatalError naming an unknown source).
    read: Callable[[Connector, str], Iterable[CrmMember]]
    # A well-formed id of a source that does not exist.
    missing_id: str
    # Members the adapter reads per page (rows per report run): the contract reads several.
    page_size: int
    # A regular expression found in the path of every page request (and in its route name in
    # emulator.calls), and that request's method: faults are injected on the second page.
    page_path: str
    page_method: str = "GET"


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
