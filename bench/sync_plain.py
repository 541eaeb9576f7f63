"""The plain approach a user would otherwise script: one update call per record, with the
vendor's official Python client, one record after the other.

Each function runs in a child process of its own (bench/sync.py spawns it), so the script does
not share an interpreter with the emulators, as segsync's workers do not.

- Salesforce: simple-salesforce, `sf.Lead.update(record_id, {field: value})`, with the session id
  the sandbox hands out (simple-salesforce's own login only speaks to *.salesforce.com hosts).
- HubSpot: hubspot-api-client, `client.crm.contacts.basic_api.update(record_id,
  SimplePublicObjectInput(properties={field: value}))`. A 429 is handled as a careful user's
  script does: sleep for Retry-After when HubSpot sends it, else `wait_429` seconds, and send the
  same update again. (The client's urllib3 Retry would not help: it never retries PATCH.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class PlainResult:
    """How the plain script went: its time and the calls it made, as it counted them."""

    records: int
    written: int
    failed: int
    calls: int
    rate_limited: int  # 429 answers (HubSpot)
    seconds: float
    first_error: str | None = None


def plain_salesforce(
    instance_url: str,
    session_id: str,
    ca_bundle: str,
    object_type: str,
    field: str,
    updates: list[tuple[str, str]],
    deadline_seconds: float,
) -> PlainResult:
    """Update each record with its own `sf.<Object>.update` call."""
    import requests
    from simple_salesforce.api import Salesforce
    from simple_salesforce.exceptions import SalesforceError

    session = requests.Session()
    session.verify = ca_bundle
    session.trust_env = False  # REQUESTS_CA_BUNDLE and proxies must not apply (127.0.0.1 only)
    sf = Salesforce(instance_url=instance_url, session_id=session_id, session=session)
    sobject = getattr(sf, object_type)
    written = failed = calls = 0
    first_error = None
    started = time.perf_counter()
    for record_id, value in updates:
        if time.perf_counter() - started > deadline_seconds:
            first_error = first_error or f"stopped after {deadline_seconds:g} s"
            break
        calls += 1
        try:
            sobject.update(record_id, {field: value or None})
            written += 1
        except SalesforceError as exc:
            failed += 1
            first_error = first_error or f"{exc.status}: {exc.content!r}"[:300]
    seconds = time.perf_counter() - started
    session.close()
    return PlainResult(len(updates), written, failed, calls, 0, seconds, first_error)


def plain_hubspot(
    base_url: str,
    access_token: str,
    ca_bundle: str,
    field: str,
    updates: list[tuple[str, str]],
    wait_429: float,
    deadline_seconds: float,
) -> PlainResult:
    """Update each contact with its own `basic_api.update` call, sleeping on 429s."""
    from hubspot import HubSpot  # type: ignore[import-untyped]
    from hubspot.crm.contacts import (  # type: ignore[import-untyped]
        ApiException,
        SimplePublicObjectInput,
    )

    client = HubSpot(access_token=access_token, host=base_url, ssl_ca_cert=ca_bundle)
    api = client.crm.contacts.basic_api
    written = failed = calls = limited = 0
    first_error = None
    started = time.perf_counter()
    for record_id, value in updates:
        while True:
            if time.perf_counter() - started > deadline_seconds:
                seconds = time.perf_counter() - started
                error = f"stopped after {deadline_seconds:g} s"
                return PlainResult(
                    len(updates), written, failed, calls, limited, seconds, first_error or error
                )
            calls += 1
            try:
                api.update(record_id, SimplePublicObjectInput(properties={field: value}))
                written += 1
            except ApiException as exc:
                if exc.status == 429:
                    limited += 1
                    headers = exc.headers or {}
                    retry_after = headers.get("Retry-After")
                    time.sleep(float(retry_after) if retry_after else wait_429)
                    continue
                failed += 1
                first_error = first_error or f"{exc.status}: {exc.body!r}"[:300]
            break
    seconds = time.perf_counter() - started
    return PlainResult(len(updates), written, failed, calls, limited, seconds, first_error)
